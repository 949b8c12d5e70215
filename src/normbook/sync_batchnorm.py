"""Synchronized batch norm on any device, built from torch.distributed collectives.

In training mode batch norm normalizes with the mean and variance of the batch. When
a batch is split over several processes (data parallel training), each process only
sees its own part; :class:`SyncBatchNorm` computes the statistics of the *whole*
batch instead:

1. every process sums, per channel, its values and their squares and counts them;
2. one differentiable all-reduce adds these ``2C + 1`` numbers over the processes;
3. ``mean = sum / n`` and the biased ``var = sumsq / n - mean**2`` are the statistics
   of the concatenated batch; the running statistics get the unbiased ``var * n / (n - 1)``.

The all-reduce is differentiable (:class:`AllReduceSum`), so the input gradients are
those of one batch norm over the concatenated batch. ``torch.nn.SyncBatchNorm`` does
the same but refuses CPU tensors; this version runs on any device and backend
(gloo on CPU, nccl on CUDA). Without an initialized process group it is plain
batch norm (a world of one process).

``python -m normbook.sync_batchnorm`` starts 2 CPU processes (gloo) and checks all this
against one ``nn.BatchNorm`` over the concatenated batch; see :func:`main`.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from .reference import check_input, momentum_factor, update_running_stats, uses_batch_stats

__all__ = [
    "AllReduceSum",
    "all_reduce_sum",
    "global_batch_stats",
    "sync_batch_norm",
    "SyncBatchNorm",
    "convert_sync_batchnorm",
    "Case",
    "CASES",
    "run_check",
    "failures",
    "main",
]

ProcessGroup = Any  # torch.distributed.ProcessGroup, or None for the default (WORLD) group


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


class AllReduceSum(torch.autograd.Function):
    """Sum a tensor over all processes of ``group``; the backward pass sums the gradients the same way.

    Forward: every process gets ``sum_r tensor_r``. Backward: the gradient of each
    ``tensor_r`` is ``sum_k grad_k`` (every process's output depends on every input).
    """

    @staticmethod
    def forward(ctx: Any, tensor: Tensor, group: ProcessGroup = None) -> Tensor:  # type: ignore[override]
        ctx.group = group
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out, op=dist.ReduceOp.SUM, group=group)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        return grad, None


def all_reduce_sum(tensor: Tensor, group: ProcessGroup = None) -> Tensor:
    """Differentiable sum of ``tensor`` (any shape) over the processes of ``group``; same shape out.

    Without an initialized process group this is a world of one process: ``tensor`` itself.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(tensor).__name__}")
    return AllReduceSum.apply(tensor, group) if _distributed() else tensor


def global_batch_stats(x: Tensor, group: ProcessGroup = None) -> tuple[Tensor, Tensor, int]:
    """Per-channel mean and *biased* variance of the batch that all processes' ``x`` (N_r, C, *) form together.

    Each process contributes ``sum``, ``sum of squares`` (C,) and its count ``N_r * prod(*)``,
    packed in one float64 vector of ``2C + 1`` numbers and summed by one differentiable
    all-reduce. Returns ``(mean (C,), var (C,), n)`` in ``x``'s dtype (at least float32),
    where ``n`` is the global number of values per channel. A process may hold an empty batch.
    """
    check_input(x, ndims=(2, 3, 4, 5))
    c = x.shape[1]
    dims = [0] + list(range(2, x.dim()))
    acc = torch.promote_types(x.dtype, torch.float32)
    xa = x.to(acc)
    count = torch.full((1,), x.numel() // c if c else 0, dtype=torch.float64, device=x.device)
    local = torch.cat([xa.sum(dims).double(), (xa * xa).sum(dims).double(), count])
    total = all_reduce_sum(local, group)
    n = int(total[2 * c].item())
    if n == 0:
        raise ValueError(f"every process holds an empty batch (global count 0) for input {tuple(x.shape)}: nothing to normalize")
    mean = total[:c] / n
    var = (total[c:2 * c] / n - mean * mean).clamp_min(0)
    return mean.to(acc), var.to(acc), n


def sync_batch_norm(
    x: Tensor,
    running_mean: Optional[Tensor] = None,
    running_var: Optional[Tensor] = None,
    weight: Optional[Tensor] = None,
    bias: Optional[Tensor] = None,
    momentum: float = 0.1,
    eps: float = 1e-5,
    group: ProcessGroup = None,
) -> Tensor:
    """Training-mode batch norm of ``x`` (N_r, C, *) with the statistics of all processes' batches; same shape out.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias`` with :func:`global_batch_stats`.
    When given, ``running_mean``/``running_var`` (C,) are updated in place with the global
    mean and the global *unbiased* variance (identically on every process). Every process of
    ``group`` must call this, with the same C. ``momentum`` is the running-average weight.
    """
    check_input(x, ndims=(2, 3, 4, 5))
    c = x.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (c,):
            raise ValueError(f"expected {name} of shape ({c},) to match the {c} channels of the input, got {tuple(t.shape)}")
    if (running_mean is None) != (running_var is None):
        raise ValueError("give both running_mean and running_var, or neither")
    mean, var, n = global_batch_stats(x, group)
    if n < 2:
        raise ValueError(
            f"Expected more than 1 value per channel when training, got {n} over all processes (input {tuple(x.shape)} here): "
            "use bigger batches, or call .eval()"
        )
    if running_mean is not None:
        new_mean, new_var = update_running_stats(running_mean, running_var, mean.detach(), var.detach(), n, momentum)
        with torch.no_grad():
            running_mean.copy_(new_mean)
            running_var.copy_(new_var)
    shape = (1, c) + (1,) * (x.dim() - 2)
    y = (x.to(mean.dtype) - mean.reshape(shape)) * torch.rsqrt(var.reshape(shape) + eps)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y.to(x.dtype)


class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """``nn.SyncBatchNorm`` for any device and backend: inputs (N, C, *) with 2 to 5 dims.

    Training mode: :func:`sync_batch_norm` over ``process_group`` (default: all processes).
    Eval mode never communicates, like ``nn.SyncBatchNorm``: with running statistics it
    normalizes with them; without (``track_running_stats=False``) each process normalizes
    with its own batch's statistics.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: Optional[float] = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        process_group: ProcessGroup = None,
        device: Any = None,
        dtype: Optional[torch.dtype] = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device=device, dtype=dtype)
        if not bias:  # nn.SyncBatchNorm(bias=False), also on torch versions without that argument
            self.register_parameter("bias", None)
        self.process_group = process_group

    def _check_input_dim(self, input: Tensor) -> None:
        check_input(input, ndims=(2, 3, 4, 5), num_features=self.num_features)

    def forward(self, x: Tensor) -> Tensor:
        """Normalize ``x`` (N, C, *); same shape out."""
        self._check_input_dim(x)
        if not self.training:  # like nn.SyncBatchNorm: eval mode never communicates
            batch = uses_batch_stats(False, self.running_mean is not None)
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, batch, 0.0, self.eps)
        tracking = self.track_running_stats  # training mode from here on
        factor = 0.0
        if tracking:
            self.num_batches_tracked.add_(1)
            factor = momentum_factor(self.momentum, int(self.num_batches_tracked))
        return sync_batch_norm(
            x,
            self.running_mean if tracking else None,
            self.running_var if tracking else None,
            self.weight,
            self.bias,
            factor,
            self.eps,
            self.process_group,
        )


def convert_sync_batchnorm(module: nn.Module, process_group: ProcessGroup = None) -> nn.Module:
    """Replace every ``nn.BatchNorm1d/2d/3d`` in ``module`` by a normbook :class:`SyncBatchNorm`.

    Parameters, buffers, ``training`` and ``requires_grad`` carry over (the same tensors, like
    ``nn.SyncBatchNorm.convert_sync_batchnorm``). Returns the converted module; a BatchNorm
    passed in directly comes back as a new SyncBatchNorm.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(module).__name__}")
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, (SyncBatchNorm, nn.SyncBatchNorm)):
        out = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats, process_group, bias=module.bias is not None)
        if module.affine:
            with torch.no_grad():
                out.weight = module.weight
                out.bias = module.bias
        out.running_mean = module.running_mean
        out.running_var = module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
        if hasattr(module, "qconfig"):
            out.qconfig = module.qconfig
    for name, child in module.named_children():
        out.add_module(name, convert_sync_batchnorm(child, process_group))
    return out


# ---------------------------------------------------------------------------------------------
# The multi-process check: normbook's SyncBatchNorm over 2 processes == one BatchNorm over the
# concatenated batch, while plain BatchNorm per process is not.
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One check: ``shape`` (C, *) of each sample, ``batches`` (samples per process), dtype, momentum, affine."""

    shape: tuple[int, ...]
    batches: tuple[int, ...]
    dtype: torch.dtype = torch.float32
    momentum: Optional[float] = 0.1
    affine: bool = True
    steps: int = 3

    def label(self) -> str:
        split = "+".join(str(b) for b in self.batches)
        spatial = "".join(f", {s}" for s in self.shape[1:])
        return (f"{len(self.shape) + 1}D {str(self.dtype).removeprefix('torch.')} ({split}, {self.shape[0]}{spatial}) "
                f"momentum={self.momentum} affine={self.affine}")


CASES = (
    Case((4, 5, 5), (3, 5)),
    Case((6,), (6, 2), torch.float64, momentum=None),
    Case((3, 7), (4, 4), affine=False),
    Case((2, 3, 2, 2), (1, 2), torch.float64),
)
TOL = {torch.float32: 2e-5, torch.float64: 1e-10}
_QUANTITIES = ("output", "input grad", "param grads", "running stats", "eval output")


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
    errs: dict[str, float] = {}

    def note(key: str, value: float) -> None:
        errs[key] = max(errs.get(key, 0.0), value)

    for _ in range(case.steps):
        total = sum(case.batches)
        x = torch.randn((total, *case.shape), generator=g, dtype=case.dtype) * 2 + 0.5
        x[case.batches[0]:] += 1.5  # the processes' data differ, as shards of real data do
        up = torch.randn(x.shape, generator=g, dtype=case.dtype)  # the upstream gradient dL/dy
        x, up = x.to(device), up.to(device)
        xr = x.clone().requires_grad_(True)
        y = ref(xr)
        (y * up).sum().backward()
        for name, layer in layers.items():
            xs = x[lo:hi].clone().requires_grad_(True)
            ys = layer(xs)
            (ys * up[lo:hi]).sum().backward()
            note(f"{name}/output", _rel_err(ys, y[lo:hi]))
            note(f"{name}/input grad", _rel_err(xs.grad, xr.grad[lo:hi]))
        if x[lo:hi].numel() // c >= 2:
            note("plain/output", _rel_err(plain(x[lo:hi]), y[lo:hi]))
    for name, layer in layers.items():
        note(f"{name}/running stats", max(_rel_err(layer.running_mean, ref.running_mean),
                                          _rel_err(layer.running_var, ref.running_var)))
        if case.affine:  # each process holds its share of dL/dweight: their sum is the whole batch's
            for pname in ("weight", "bias"):
                summed = getattr(layer, pname).grad.clone()
                dist.all_reduce(summed)
                note(f"{name}/param grads", _rel_err(summed, getattr(ref, pname).grad))
        layer.eval()
    ref.eval()
    x = torch.randn((4, *case.shape), generator=g, dtype=case.dtype).to(device)
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


def _worker(rank: int, world: int, backend: str, device_kind: str, init: str, with_torch_sync: bool,
            cases: Sequence[Case], queue: Any) -> None:
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
    """Start ``world`` processes with ``torch.multiprocessing.spawn`` and run :data:`CASES` in them.

    Returns, per case, the largest error over all processes of each compared quantity
    (relative to one ``nn.BatchNorm`` over the concatenated batch).
    """
    import torch.multiprocessing as mp

    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' or 'nccl', got {backend!r}")
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    with tempfile.TemporaryDirectory() as tmp:
        init = Path(tmp, "rendezvous").as_uri()
        mp.spawn(_worker, args=(world, backend, device, init, with_torch_sync, tuple(cases), queue), nprocs=world, join=True)
    return queue.get()


def failures(case: Case, errs: dict[str, float]) -> list[str]:
    """What went wrong in one case's errors: synced quantities above tolerance, or a per-process BatchNorm that matched."""
    tol = TOL[case.dtype]
    bad = [f"{key}: error {value:.3g} > tolerance {tol:g}" for key, value in sorted(errs.items())
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
                         f"in {', '.join(compared)} (tol {TOL[case.dtype]:g}); "
                         f"per-process BatchNorm output off by {errs['plain/output']:.2f}")
    return lines, ok


def _run_all(world: int = 2) -> tuple[list[str], bool]:
    """Every check this machine can run: gloo on CPU; gloo on CUDA tensors (>= 1 GPU); nccl with nn.SyncBatchNorm (>= 2 GPUs)."""
    lines = [f"normbook.sync_batchnorm: {world} processes via torch.multiprocessing.spawn"]
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
                      c.affine, c.steps) for c in CASES]
        results = [_max_over_processes(_check_case(case, i, rank, world, torch.device("cpu"), False), torch.device("cpu"))
                   for i, case in enumerate(cases)]
    finally:
        dist.destroy_process_group()
    lines, ok = _summary("[gloo/cpu]", cases, results, ["normbook"])
    if rank == 0:
        print(f"normbook.sync_batchnorm: {world} processes via torchrun")
        print("\n".join(lines))
        print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m normbook.sync_batchnorm`` (or under ``torchrun``): print a summary; 0 on success."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv:
        print(f"usage: python -m normbook.sync_batchnorm  (no arguments; got {argv})", file=sys.stderr)
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
