"""Run a function in a group of local processes, and let each one leave without the interpreter's teardown.

The checks of this package start their processes here. On torch 2.14.1 a gloo process now and then aborts
while Python shuts down, after its work and ``destroy_process_group`` are done ("terminate called without an
active exception", SIGABRT: 4 of 32 runs of ``python -m normbook.checks.sync_batchnorm`` on this book's CI
machine, and 2 of 12 of ``normbook.checks.ddp_running_stats``; none of 12 on torch 2.15.0). So a process that
has finished and sent its results leaves with :func:`leave`: ``os._exit(0)`` after flushing its output, and
the operating system frees what the teardown would have. A failing process still reports its error.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, NoReturn

__all__ = ["leave", "spawn"]


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
    import torch.multiprocessing as mp

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
