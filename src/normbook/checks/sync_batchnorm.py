"""Check normbook's SyncBatchNorm across real processes against one ``nn.BatchNorm`` over the whole batch.

``python -m normbook.checks.sync_batchnorm`` starts 2 processes with
``torch.multiprocessing.spawn`` (or runs as one rank under ``torchrun --nproc-per-node P``),
joins them in a process group and, for every :data:`CASES` entry, splits batches between
them (also unevenly), runs a few training steps and an eval step, and compares on every
process with one ``nn.BatchNorm`` fed the concatenated batch:

- outputs, input gradients, running statistics, eval-mode outputs: equal. The input
  gradients are those of the reference's loss ``sum_r loss_r`` (the sum of the
  processes' losses), because the synced statistics carry every process's gradient.
- weight/bias gradients: each process's own gradient is ``d loss_r / d param``.
  ``DistributedDataParallel`` all-reduces them and divides by the number of processes P,
  so the processes train with ``(1/P) d(sum_r loss_r)/d param``: the reference's gradient
  divided by P (the gradient of the mean of the processes' losses). The layer is wrapped
  in a real ``DistributedDataParallel`` to check this.
- plain per-process ``nn.BatchNorm`` must *not* match (otherwise the check proves nothing).

It prints one line per case, prefixed ``[gloo/cpu]`` (always), ``[gloo/cuda]`` (needs a
GPU) and ``[nccl/cuda]`` (needs 2 GPUs; also checks ``nn.SyncBatchNorm``), or a
``skipped: needs ...`` line, then ``PASS`` or ``FAIL`` (exit status 0 or 1).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Optional, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ..sync_batchnorm import SyncBatchNorm
from .processes import spawn

__all__ = ["Case", "CASES", "TOL", "run_check", "failures", "main"]


@dataclass(frozen=True)
class Case:
    """One check: ``shape`` (C, *) of each sample, ``batches`` (samples per process), dtype, momentum, affine.

    The inputs are ``2 * randn + 0.5 + offset`` (the second process's slice shifted by 1.5 more):
    a large ``offset`` makes a channel's mean large compared with its spread.
    """

    shape: tuple[int, ...]
    batches: tuple[int, ...]
    dtype: torch.dtype = torch.float32
    momentum: Optional[float] = 0.1
    affine: bool = True
    steps: int = 3
    offset: float = 0.0

    def label(self) -> str:
        split = "+".join(str(b) for b in self.batches)
        spatial = "".join(f", {s}" for s in self.shape[1:])
        shift = f" offset={self.offset:g}" if self.offset else ""
        return (f"{len(self.shape) + 1}D {str(self.dtype).removeprefix('torch.')} ({split}, {self.shape[0]}{spatial})"
                f"{shift} momentum={self.momentum} affine={self.affine}")

    def tolerance(self) -> float:
        """Largest accepted relative error: :data:`TOL` plus 8 roundings of the offset per unit of spread (2).

        Inputs near ``offset`` are themselves rounded by about ``eps * offset``; two correct
        implementations may differ by a few such roundings divided by the spread.
        """
        return TOL[self.dtype] + 8 * torch.finfo(self.dtype).eps * abs(self.offset) / 2


CASES = (
    Case((4, 5, 5), (3, 5)),
    Case((6,), (6, 2), torch.float64, momentum=None),
    Case((3, 7), (4, 4), affine=False),
    Case((2, 3, 2, 2), (1, 2), torch.float64),
    Case((3, 4, 4), (5, 3), offset=1e3),
    Case((4, 6), (2, 7), torch.float64, offset=1e6),
)
TOL = {torch.float32: 2e-5, torch.float64: 1e-10}
_QUANTITIES = ("output", "input grad", "DDP-averaged param grads", "running stats", "eval output")


def _batch_norm_for(dims: int, **kwargs: Any) -> nn.Module:
    return (nn.BatchNorm1d if dims in (2, 3) else nn.BatchNorm2d if dims == 4 else nn.BatchNorm3d)(**kwargs)


def _rel_err(a: Tensor, b: Tensor) -> float:
    """max |a - b| / max(1, max |b|): an error that is small for both small and large values."""
    if a.numel() == 0:
        return 0.0
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).abs().max() / max(1.0, float(b.abs().max())))


def _check_case(case: Case, index: int, rank: int, world: int, device: torch.device, with_torch_sync: bool) -> dict[str, float]:
    """Run ``case`` in this process; return errors (max over this process) against one BatchNorm on the whole batch."""
    if len(case.batches) != world:
        raise ValueError(f"case {case.label()} splits the batch over {len(case.batches)} processes, but the world has {world}")
    g = torch.Generator().manual_seed(1000 + index)  # the same numbers in every process
    lo, hi = sum(case.batches[:rank]), sum(case.batches[:rank + 1])
    c, dims = case.shape[0], len(case.shape) + 1
    kwargs = dict(num_features=c, momentum=case.momentum, affine=case.affine, dtype=case.dtype, device=device)
    ref = _batch_norm_for(dims, **kwargs)
    plain = _batch_norm_for(dims, **kwargs)
    layers: dict[str, nn.Module] = {"normbook": SyncBatchNorm(**kwargs)}
    if with_torch_sync:
        layers["torch"] = nn.SyncBatchNorm(**kwargs)
    if case.affine:
        w, b = torch.randn(c, generator=g, dtype=case.dtype), torch.randn(c, generator=g, dtype=case.dtype)
        with torch.no_grad():
            for m in (ref, plain, *layers.values()):
                m.weight.copy_(w)
                m.bias.copy_(b)
    # DDP averages the parameter gradients over the processes (it needs parameters to wrap).
    ids = [device] if device.type == "cuda" else None
    runs = {name: DistributedDataParallel(layer, device_ids=ids) if case.affine else layer for name, layer in layers.items()}
    errs: dict[str, float] = {}

    def note(key: str, value: float) -> None:
        errs[key] = max(errs.get(key, 0.0), value)

    for _ in range(case.steps):
        total = sum(case.batches)
        x = torch.randn((total, *case.shape), generator=g, dtype=case.dtype) * 2 + 0.5 + case.offset
        x[case.batches[0]:] += 1.5  # the processes' data differ, as shards of real data do
        up = torch.randn(x.shape, generator=g, dtype=case.dtype)  # the upstream gradient dL/dy
        x, up = x.to(device), up.to(device)
        xr = x.clone().requires_grad_(True)
        y = ref(xr)
        (y * up).sum().backward()  # the reference's loss: the sum of the processes' losses
        for name, run in runs.items():
            xs = x[lo:hi].clone().requires_grad_(True)
            ys = run(xs)
            (ys * up[lo:hi]).sum().backward()  # this process's loss_r
            note(f"{name}/output", _rel_err(ys, y[lo:hi]))
            note(f"{name}/input grad", _rel_err(xs.grad, xr.grad[lo:hi]))
        if x[lo:hi].numel() // c >= 2:
            note("plain/output", _rel_err(plain(x[lo:hi]), y[lo:hi]))
    for name, layer in layers.items():
        note(f"{name}/running stats", max(_rel_err(layer.running_mean, ref.running_mean),
                                          _rel_err(layer.running_var, ref.running_var)))
        if case.affine:  # after DDP: (1/P) sum_r d loss_r / d param == the reference's gradient / P
            for pname in ("weight", "bias"):
                note(f"{name}/DDP-averaged param grads",
                     _rel_err(getattr(layer, pname).grad, getattr(ref, pname).grad / world))
        layer.eval()
    ref.eval()
    x = (torch.randn((4, *case.shape), generator=g, dtype=case.dtype) + case.offset).to(device)
    for name, layer in layers.items():
        note(f"{name}/eval output", _rel_err(layer(x), ref(x)))
    note("plain/running stats", max(_rel_err(plain.running_mean, ref.running_mean),
                                    _rel_err(plain.running_var, ref.running_var)))
    return errs


def _max_over_processes(errs: dict[str, float], device: torch.device) -> dict[str, float]:
    keys = sorted(errs)
    t = torch.tensor([errs[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return dict(zip(keys, t.tolist()))


def _worker(rank: int, init: str, queue: Any, world: int, backend: str, device_kind: str, with_torch_sync: bool,
            cases: Sequence[Case]) -> None:
    """One process of the check: join the group, run every case, send rank 0's results to ``queue``."""
    dist.init_process_group(backend, init_method=init, rank=rank, world_size=world, timeout=timedelta(seconds=120))
    try:
        device = torch.device(device_kind)
        if device.type == "cuda":
            device = torch.device("cuda", rank % torch.cuda.device_count())
            torch.cuda.set_device(device)
        results = [_max_over_processes(_check_case(case, i, rank, world, device, with_torch_sync), device)
                   for i, case in enumerate(cases)]
        if rank == 0 and queue is not None:
            queue.put(results)
    finally:
        dist.destroy_process_group()


def run_check(backend: str = "gloo", device: str = "cpu", world: int = 2, with_torch_sync: bool = False,
              cases: Sequence[Case] = CASES) -> list[dict[str, float]]:
    """Start ``world`` processes with ``torch.multiprocessing.spawn`` and run ``cases`` in them.

    Returns, per case, the largest error over all processes of each compared quantity
    (relative to one ``nn.BatchNorm`` over the concatenated batch).
    """
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' or 'nccl', got {backend!r}")
    return spawn(_worker, world, world, backend, device, with_torch_sync, tuple(cases))


def failures(case: Case, errs: dict[str, float]) -> list[str]:
    """What went wrong in one case's errors: synced quantities above tolerance, or a per-process BatchNorm that matched."""
    tol = case.tolerance()
    bad = [f"{key}: error {value:.3g} > tolerance {tol:.2g}" for key, value in sorted(errs.items())
           if not key.startswith("plain/") and not value <= tol]
    if not errs.get("plain/output", 1.0) > 1e-2:
        bad.append(f"plain/output: per-process BatchNorm should differ from the whole-batch one, but differs by {errs.get('plain/output')}")
    return bad


def _summary(tag: str, cases: Sequence[Case], results: Sequence[dict[str, float]], others: Sequence[str]) -> tuple[list[str], bool]:
    lines, ok = [], True
    for case, errs in zip(cases, results):
        bad = failures(case, errs)
        ok &= not bad
        compared = [q for q in _QUANTITIES if any(k.endswith("/" + q) for k in errs)]
        who = " and ".join(others)
        if bad:
            lines.append(f"{tag} {case.label()}: FAIL {'; '.join(bad)}")
        else:
            lines.append(f"{tag} {case.label()}: {who} == one BatchNorm over the {sum(case.batches)} samples "
                         f"in {', '.join(compared)} (tol {case.tolerance():.2g}); "
                         f"per-process BatchNorm output off by {errs['plain/output']:.2f}")
    return lines, ok


_LEGEND = ("reference: one nn.BatchNorm over the concatenated batch, loss = sum of the processes' losses; "
           "DDP-averaged param grads = the reference's / number of processes")


def _run_all(world: int = 2) -> tuple[list[str], bool]:
    """Every check this machine can run: gloo on CPU; gloo on CUDA tensors (>= 1 GPU); nccl with nn.SyncBatchNorm (>= 2 GPUs)."""
    lines = [f"normbook.checks.sync_batchnorm: {world} processes via torch.multiprocessing.spawn", _LEGEND]
    ok = True
    more, good = _summary("[gloo/cpu]", CASES, run_check("gloo", "cpu", world), ["normbook"])
    lines += more
    ok &= good
    gpus = torch.cuda.device_count()
    if gpus >= 1:
        more, good = _summary("[gloo/cuda]", CASES, run_check("gloo", "cuda", world), ["normbook"])
        lines += more
        ok &= good
    else:
        lines.append(f"[gloo/cuda] skipped: needs 1 CUDA device, found {gpus}")
    if gpus >= world and dist.is_nccl_available():
        more, good = _summary("[nccl/cuda]", CASES, run_check("nccl", "cuda", world, with_torch_sync=True),
                              ["normbook", "nn.SyncBatchNorm"])
        lines += more
        ok &= good
    else:
        lines.append(f"[nccl/cuda] skipped: needs {world} CUDA devices, found {gpus}")
    return lines, ok


def _torchrun_main() -> int:
    """Under torchrun (RANK/WORLD_SIZE set): this process is one rank; gloo on CPU; rank 0 prints."""
    world, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
    dist.init_process_group("gloo", init_method="env://", timeout=timedelta(seconds=120))
    try:
        cases = [Case(c.shape, tuple(c.batches[i % len(c.batches)] for i in range(world)), c.dtype, c.momentum,
                      c.affine, c.steps, c.offset) for c in CASES]
        results = [_max_over_processes(_check_case(case, i, rank, world, torch.device("cpu"), False), torch.device("cpu"))
                   for i, case in enumerate(cases)]
    finally:
        dist.destroy_process_group()
    lines, ok = _summary("[gloo/cpu]", cases, results, ["normbook"])
    if rank == 0:
        print(f"normbook.checks.sync_batchnorm: {world} processes via torchrun")
        print(_LEGEND)
        print("\n".join(lines))
        print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m normbook.checks.sync_batchnorm`` (or under ``torchrun``): print a summary; 0 on success."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv:
        print(f"usage: python -m normbook.checks.sync_batchnorm  (no arguments; got {argv})", file=sys.stderr)
        return 2
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return _torchrun_main()
    try:
        lines, ok = _run_all()
    except Exception as err:  # a worker died: report it, fail
        print(f"FAIL: {type(err).__name__}: {err}")
        return 1
    print("\n".join(lines))
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
