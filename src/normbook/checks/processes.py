"""Run a function in a group of local processes, and let each one leave without the interpreter's teardown.

:func:`spawn` runs a module-level function (the checks of this package); :func:`run_in_processes` runs one from
its source, e.g. a function defined in a notebook cell. On torch 2.14.1 a gloo process now and then aborts
while Python shuts down, after its work and ``destroy_process_group`` are done ("terminate called without an
active exception", SIGABRT: 4 of 32 runs of ``python -m normbook.checks.sync_batchnorm`` on this book's CI
machine, and 2 of 12 of ``normbook.checks.ddp_running_stats``; none of 12 on torch 2.15.0). So a process that
has finished and sent its results leaves with :func:`leave`: ``os._exit(0)`` after flushing its output, and
the operating system frees what the teardown would have. A failing process still reports its error.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any, Callable, NoReturn

import torch

__all__ = ["leave", "run_in_processes", "spawn"]


def leave() -> NoReturn:
    """End this process now with exit status 0, after flushing stdout and stderr (no interpreter teardown)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def spawn(worker: Callable[..., None], world: int, *args: Any) -> Any:
    """Run ``worker(rank, init, queue, *args)`` in ``world`` new processes; return what one of them put in ``queue``.

    The processes are started by ``torch.multiprocessing.spawn`` (so ``worker`` must be a module-level
    function: each process imports it); ``init`` is a ``file://`` rendezvous in a temporary folder for
    ``torch.distributed.init_process_group`` (no network port). Exactly one rank should ``queue.put`` its
    results. Each process leaves with :func:`leave` once ``worker`` returns; an exception in any of them
    is raised here by ``torch.multiprocessing`` (``ProcessRaisedException``).
    """
    import torch.multiprocessing as mp  # noqa: PLC0415 (only where processes are spawned)

    if not isinstance(world, int) or world < 1:
        raise ValueError(f"expected world >= 1 processes, got {world!r}")
    queue = mp.get_context("spawn").SimpleQueue()
    with tempfile.TemporaryDirectory() as tmp:
        init = Path(tmp, "rendezvous").as_uri()
        mp.spawn(_run_then_leave, args=(worker, init, queue, args), nprocs=world, join=True)
    if queue.empty():
        raise RuntimeError(f"{getattr(worker, '__name__', worker)} returned in every process, but none sent results")
    return queue.get()


def _run_then_leave(rank: int, worker: Callable[..., None], init: str, queue: Any, args: tuple) -> NoReturn:
    worker(rank, init, queue, *args)
    leave()


_FOOTER = """
import sys
import torch
_rank, _tmp = int(sys.argv[1]), sys.argv[2]
_args = torch.load(_tmp + "/args.pt")
_result = {name}(_rank, {init!r}, *_args)
torch.save(_result, _tmp + f"/rank{{_rank}}.pt")
from normbook.checks.processes import leave
leave()  # no interpreter teardown: see normbook.checks.processes
"""


def run_in_processes(fn: Callable[..., Any], world: int, *args: Any, timeout: float = 300.0) -> list[Any]:
    """Run ``fn(rank, init_method, *args)`` in ``world`` fresh Python processes; return each rank's result, by rank.

    What ``torchrun`` or ``torch.multiprocessing.spawn`` would do, for a function they cannot reach:
    one defined in a notebook cell (a spawned process cannot import it from the notebook). ``fn``'s
    source (``inspect.getsource``) is written to a script in a temporary folder and run by ``world``
    processes of this Python, each with its rank; ``init_method`` is a ``file://`` rendezvous for
    ``torch.distributed.init_process_group`` in that folder, so no network port is needed. ``fn`` must
    therefore be self-contained: a plain ``def`` that imports what it uses inside its body. ``args``
    and the results travel through ``torch.save`` / ``torch.load(weights_only=True)``: tensors,
    numbers, strings, and lists, tuples and dicts of them. A process that fails raises a
    ``RuntimeError`` with the end of its error output.
    """
    if not callable(fn) or not hasattr(fn, "__name__") or fn.__name__ == "<lambda>":
        raise TypeError(f"expected a function defined with def, got {fn!r}")
    if not isinstance(world, int) or world < 1:
        raise ValueError(f"expected world >= 1 processes, got {world!r}")
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as err:
        raise ValueError(f"the source of {fn.__name__} cannot be read ({err}): define it in a file or a notebook cell") from None
    with tempfile.TemporaryDirectory() as tmp:
        init = Path(tmp, "rendezvous").as_uri()
        script = Path(tmp, "rank_main.py")
        script.write_text(source + _FOOTER.format(name=fn.__name__, init=init), encoding="utf-8")
        torch.save(list(args), Path(tmp, "args.pt"))
        procs = [subprocess.Popen([sys.executable, str(script), str(rank), tmp], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for rank in range(world)]
        errors = []
        try:
            for rank, proc in enumerate(procs):
                _, err = proc.communicate(timeout=timeout)
                if proc.returncode != 0:
                    errors.append(f"rank {rank} exited with status {proc.returncode}:\n{err[-2000:]}")
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        if errors:
            raise RuntimeError(f"{fn.__name__} failed in {len(errors)} of {world} processes; " + "\n".join(errors))
        return [torch.load(Path(tmp, f"rank{rank}.pt"), weights_only=True) for rank in range(world)]
