"""What ``DistributedDataParallel`` does to a BatchNorm's running statistics and gradients, shown with 2 CPU processes.

``python -m normbook.checks.ddp_running_stats`` starts 2 processes (gloo, CPU tensors), wraps a
``BatchNorm1d`` in ``DistributedDataParallel`` in each, and trains it for a few steps on batches
split between the processes, the second process's samples shifted (shards whose data differ).
It then compares every process's running statistics with single-process references computed
from the same numbers.

DDP copies rank 0's buffers to every rank (a broadcast) at construction, at the start of the first
forward pass, and at the start of every forward pass whose *previous* one ran with gradients enabled
outside ``no_sync()`` (``DistributedDataParallel._post_forward`` sets ``require_forward_param_sync``;
the module's training or eval mode plays no part); after a forward under ``no_sync()`` or
``torch.no_grad()`` the next one starts without a broadcast. Here every forward is a training step, so:

- by default (``forward_sync_buffers=True`` where DDP has that parameter, else
  ``broadcast_buffers=True``; "buffers broadcast") rank 0 holds the statistics of rank 0's slices
  alone after the last training step, and rank r holds rank 0's statistics from one step
  earlier, updated once with its own last slice; one more forward through DDP (an evaluation,
  say, right after a training step) and every rank holds rank 0's;
- with the forward-pass sync switched off ("buffers local") each rank keeps the statistics of
  its own slices;
- with normbook's ``SyncBatchNorm`` every rank holds the statistics of the whole batches.

It also checks the parameter gradients DDP leaves on every rank: the *mean* over the ranks of
each rank's own gradient (an all-reduce, then a division by the number of processes). With plain
BatchNorm that is the mean of the per-slice gradients; with SyncBatchNorm it is the gradient of
the mean of the per-process losses, that is, 1/P times the gradient of one BatchNorm over the
whole batch whose loss is the *sum* of the per-process losses.

:func:`run_check` returns everything as tensors (for a notebook to assert on); :func:`failures`
lists what disagrees with the statements above; :func:`main` prints a summary and exits 1 on failure.
:func:`run_in_processes` (from :mod:`normbook.checks.processes`, importable from here too) runs any
self-contained function (one defined in a notebook, say) as the rank of a process group in fresh Python
processes, from its source.
"""

from __future__ import annotations

import copy
import inspect
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Optional, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn

from .processes import run_in_processes, spawn  # run_in_processes: chapter 7 imports it from here

__all__ = ["SETUPS", "Config", "Report", "make_batches", "references", "run_check", "failures", "summary", "main",
           "run_in_processes"]

SETUPS = ("buffers broadcast", "buffers local", "SyncBatchNorm")
TOL = 1e-5  # float32: every compared number is a mean or variance of a few values of order 1-10


@dataclass(frozen=True)
class Config:
    """The experiment: ``slices`` samples per process each step, ``channels`` features, ``steps`` training steps.

    Process r's samples get ``shift * r`` added (shards whose data differ); ``seed`` fixes every number.
    ``momentum`` is the BatchNorm's (default None: the running statistics are the plain average of
    the batch statistics seen, which makes them easy to read; DDP treats any momentum alike).
    """

    slices: tuple[int, ...] = (16, 16)
    channels: int = 3
    steps: int = 4
    shift: float = 3.0
    momentum: Optional[float] = None
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.slices) < 2 or any(int(n) < 2 for n in self.slices):
            raise ValueError(f"expected at least 2 processes with at least 2 samples each, got slices={self.slices}")
        if self.channels < 1 or self.steps < 2:
            raise ValueError(f"expected channels >= 1 and steps >= 2, got channels={self.channels}, steps={self.steps}")


@dataclass
class Report:
    """What every rank held, per setup (see :data:`SETUPS`), and the single-process references.

    ``stats[setup][when]``: (ranks, 2, C) running mean (index 0) and running variance (index 1),
    ``when`` is "after training" or "after one more forward". ``grads[setup]``: (ranks, 2, C)
    weight and bias gradients after the last step. ``refs``: the references of :func:`references`.
    """

    config: Config
    stats: dict[str, dict[str, Tensor]] = field(default_factory=dict)
    grads: dict[str, Tensor] = field(default_factory=dict)
    refs: dict[str, Tensor] = field(default_factory=dict)


def make_batches(config: Config) -> list[Tensor]:
    """The ``steps`` global batches (sum(slices), C), float32; rows of process r are shifted by ``shift * r``.

    Drawn from a generator seeded with ``config.seed``: the same numbers in every process.
    """
    g = torch.Generator().manual_seed(config.seed)
    shifts = torch.cat([torch.full((n,), config.shift * r) for r, n in enumerate(config.slices)])
    return [torch.randn(sum(config.slices), config.channels, generator=g) + shifts[:, None] for _ in range(config.steps)]


def _upstream(config: Config) -> list[Tensor]:
    """The upstream gradients dL/dy, one (sum(slices), C) tensor per step (a different stream from the data)."""
    g = torch.Generator().manual_seed(config.seed + 1)
    return [torch.randn(sum(config.slices), config.channels, generator=g) for _ in range(config.steps)]


def _bounds(config: Config, rank: int) -> slice:
    return slice(sum(config.slices[:rank]), sum(config.slices[:rank + 1]))


def _new_bn(config: Config) -> nn.BatchNorm1d:
    bn = nn.BatchNorm1d(config.channels, momentum=config.momentum)
    with torch.no_grad():  # gamma and beta away from 1 and 0, the same in every process
        bn.weight.copy_(torch.linspace(0.5, 1.5, config.channels))
        bn.bias.copy_(torch.linspace(-1.0, 1.0, config.channels))
    return bn


def _stats(bn: nn.Module) -> Tensor:
    return torch.stack([bn.running_mean.detach().clone(), bn.running_var.detach().clone()])


def _grads(bn: nn.Module) -> Tensor:
    return torch.stack([bn.weight.grad.detach().clone(), bn.bias.grad.detach().clone()])


def references(config: Config) -> dict[str, Tensor]:
    """Single-process references, each (2, C) statistics or gradients, or (ranks, 2, C) per rank.

    - ``whole``: running statistics of one BatchNorm fed the whole batches;
    - ``own``: (ranks, 2, C) running statistics of a BatchNorm fed only rank r's slices;
    - ``rank0_then_own``: (ranks, 2, C) rank 0's statistics after ``steps - 1`` steps, updated once
      with rank r's last slice (what DDP's buffer broadcast leaves on rank r after training);
    - ``local_grads``: (ranks, 2, C) weight/bias gradients of a BatchNorm on rank r's last slice,
      loss ``sum(y_r * dL/dy_r)``;
    - ``whole_sum_grads``: (2, C) the gradients of one BatchNorm over the whole last batch whose loss
      is the *sum* of the per-process losses ``sum_r sum(y_r * dL/dy_r)``.
    """
    batches, ups = make_batches(config), _upstream(config)
    ranks = range(len(config.slices))
    whole = _new_bn(config)
    own = [_new_bn(config) for _ in ranks]
    for x in batches:
        whole(x)
        for r in ranks:
            own[r](x[_bounds(config, r)])
    rank0 = _new_bn(config)
    for x in batches[:-1]:
        rank0(x[_bounds(config, 0)])
    then_own = []
    for r in ranks:
        bn = copy.deepcopy(rank0)
        bn(batches[-1][_bounds(config, r)])
        then_own.append(_stats(bn))
    local = []
    for r in ranks:
        bn = _new_bn(config)
        (bn(batches[-1][_bounds(config, r)]) * ups[-1][_bounds(config, r)]).sum().backward()
        local.append(_grads(bn))
    bn = _new_bn(config)
    (bn(batches[-1]) * ups[-1]).sum().backward()
    return {
        "whole": _stats(whole),
        "own": torch.stack([_stats(b) for b in own]),
        "rank0_then_own": torch.stack(then_own),
        "local_grads": torch.stack(local),
        "whole_sum_grads": _grads(bn),
    }


def _buffer_sync(ddp: type, on: bool) -> dict[str, bool]:
    """DDP's keyword for syncing buffers before forward passes, picked by feature: ``forward_sync_buffers``
    where DDP has that parameter (it leaves the sync at construction on), else ``broadcast_buffers``
    (which switches the sync at construction off too)."""
    name = "forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(ddp).parameters else "broadcast_buffers"
    return {name: on}


def _gather(t: Tensor) -> Tensor:
    parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, t.contiguous())
    return torch.stack(parts)


def _worker(rank: int, init: str, queue: Any, config: Config) -> None:
    """One process: join the gloo group, train each setup under DDP, send rank 0's gathered results to ``queue``."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    from ..sync_batchnorm import SyncBatchNorm, convert_sync_batchnorm

    world = len(config.slices)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world, timeout=timedelta(seconds=120))
    try:
        batches, ups, mine = make_batches(config), _upstream(config), _bounds(config, rank)
        stats: dict[str, dict[str, Tensor]] = {}
        grads: dict[str, Tensor] = {}
        for setup in SETUPS:
            bn = _new_bn(config)
            if setup == "SyncBatchNorm":
                bn = convert_sync_batchnorm(bn)
                assert isinstance(bn, SyncBatchNorm)
            model = DDP(bn, **_buffer_sync(DDP, setup != "buffers local"))
            for x, up in zip(batches, ups):
                model.zero_grad(set_to_none=True)
                (model(x[mine]) * up[mine]).sum().backward()  # DDP all-reduces and averages the gradients here
            stats[setup] = {"after training": _gather(_stats(bn))}
            grads[setup] = _gather(_grads(bn))
            model.eval()
            with torch.no_grad():
                model(batches[0][mine])  # an evaluation right after a training step: buffers are broadcast first
            stats[setup]["after one more forward"] = _gather(_stats(bn))
        if rank == 0 and queue is not None:  # plain lists: tensors would travel as shared memory of a dead process
            queue.put(({k: {w: t.tolist() for w, t in v.items()} for k, v in stats.items()},
                       {k: t.tolist() for k, t in grads.items()}))
    finally:
        dist.destroy_process_group()


def run_check(config: Config = Config()) -> Report:
    """Start ``len(config.slices)`` gloo processes on CPU with ``torch.multiprocessing.spawn``; return a :class:`Report`.

    Works from a notebook; in a script, call it under ``if __name__ == "__main__":`` (spawned
    processes import the main module again).
    """
    if not isinstance(config, Config):
        raise TypeError(f"expected a normbook.checks.ddp_running_stats.Config, got {type(config).__name__}")
    stats, grads = spawn(_worker, len(config.slices), config)
    return Report(config, {k: {w: torch.tensor(t) for w, t in v.items()} for k, v in stats.items()},
                  {k: torch.tensor(t) for k, t in grads.items()}, references(config))


def _close(a: Tensor, b: Tensor) -> bool:
    return bool(torch.allclose(a, b, atol=TOL, rtol=TOL))


def failures(report: Report) -> list[str]:
    """Every statement of the module docstring that ``report`` contradicts (empty when all hold)."""
    refs, stats, grads = report.refs, report.stats, report.grads
    world = len(report.config.slices)
    bad = []
    b = stats["buffers broadcast"]
    if not _close(b["after training"][0], refs["own"][0]):
        bad.append("buffers broadcast: rank 0's statistics are not those of rank 0's slices alone")
    for r in range(1, world):
        if not _close(b["after training"][r], refs["rank0_then_own"][r]):
            bad.append(f"buffers broadcast: rank {r} does not hold rank 0's statistics updated with its own last slice")
    if not all(_close(s, refs["own"][0]) for s in b["after one more forward"]):
        bad.append("buffers broadcast: after one more forward not every rank holds rank 0's statistics")
    nb = stats["buffers local"]
    for when in nb:
        if not all(_close(nb[when][r], refs["own"][r]) for r in range(world)):
            bad.append(f"buffers local ({when}): some rank does not hold the statistics of its own slices")
    sy = stats["SyncBatchNorm"]
    for when in sy:
        if not all(_close(s, refs["whole"]) for s in sy[when]):
            bad.append(f"SyncBatchNorm ({when}): some rank does not hold the whole batches' statistics")
    for setup in ("buffers broadcast", "buffers local"):
        if not all(_close(g, refs["local_grads"].mean(0)) for g in grads[setup]):
            bad.append(f"{setup}: DDP's gradients are not the mean of the per-process gradients")
    if not all(_close(g, refs["whole_sum_grads"] / world) for g in grads["SyncBatchNorm"]):
        bad.append("SyncBatchNorm: DDP's gradients are not 1/P of one BatchNorm's whose loss is the sum of the per-process losses")
    # The experiment must be able to tell these apart: rank 0's slices alone must not look like the whole batch.
    if _close(refs["own"][0], refs["whole"]) or _close(refs["own"][0], refs["own"][1]):
        bad.append("the experiment cannot tell rank 0's statistics from the whole batch's: use a larger shift")
    return bad


def summary(report: Report) -> list[str]:
    """The report as lines of text: channel 0's running mean/variance on every rank, to 2 decimals."""
    cfg, refs = report.config, report.refs

    def pair(t: Tensor) -> str:
        return f"{float(t[0, 0]):.2f}/{float(t[1, 0]):.2f}"

    def ranks(t: Tensor) -> str:
        return ", ".join(f"rank {r} {pair(s)}" for r, s in enumerate(t))

    lines = [
        f"normbook.checks.ddp_running_stats: {len(cfg.slices)} processes (gloo, CPU), BatchNorm1d({cfg.channels}, "
        f"momentum={cfg.momentum}) in DistributedDataParallel, {cfg.steps} steps of "
        f"{' + '.join(map(str, cfg.slices))} samples; process r's samples shifted by {cfg.shift:g} * r",
        f"running mean/var of channel 0: one BatchNorm fed the whole batches {pair(refs['whole'])}; "
        f"fed one process's slices only: {ranks(refs['own'])}",
    ]
    for setup in SETUPS:
        for when, t in report.stats[setup].items():
            lines.append(f"[{setup}] {when}: {ranks(t)}")
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m normbook.checks.ddp_running_stats``: print the summary, then PASS or FAIL (exit 1)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv:
        print(f"usage: python -m normbook.checks.ddp_running_stats  (no arguments; got {argv})", file=sys.stderr)
        return 2
    try:
        report = run_check()
    except Exception as err:  # a worker died: report it, fail
        print(f"FAIL: {type(err).__name__}: {err}")
        return 1
    print("\n".join(summary(report)))
    bad = failures(report)
    print("\n".join(f"FAIL: {line}" for line in bad) if bad else "PASS")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
