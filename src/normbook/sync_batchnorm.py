"""Synchronized batch norm on any device, built from torch.distributed collectives.

In training mode batch norm normalizes with the mean and variance of the batch. When
a batch is split over several processes (data parallel training), each process only
sees its own part; :class:`SyncBatchNorm` normalizes with the statistics of the *whole*
batch instead. Per channel:

1. every process ``r`` computes its count ``n_r``, mean ``mean_r`` and sum of squared
   deviations ``M2_r = sum (x - mean_r)**2`` from its own values, with the corrected
   two-pass algorithm (:func:`local_stats`);
2. one differentiable all-gather gives every process all the ``(n_r, mean_r, M2_r)``
   (:func:`all_gather`; ``2C + 1`` numbers per process, in float64);
3. Chan et al.'s parallel formula merges them (:func:`combine_stats`)::

       n = sum n_r,   mean = sum n_r * mean_r / n,
       M2 = sum M2_r + sum n_r * (mean_r - mean)**2,   var = M2 / n   (biased)

   which is exact: ``mean`` and ``var`` are those of the concatenated batch. The running
   variance gets the unbiased ``var * n / (n - 1)``.

Why not sum ``x`` and ``x * x`` and take ``var = E[x^2] - E[x]^2`` (one all-reduce, one
pass)? Because it cancels catastrophically when a channel's mean is large compared with
its spread: with float32 inputs ``randn + 1000`` both terms are about 1e6, where one unit
in float32's last place is already 0.06, so their difference, the variance of about 1,
comes out tens of percent off (issue 15 measured 39 %). The formulas above only ever
subtract a mean from values close to it, and add up small non-negative numbers.

The all-gather is differentiable (its backward pass all-reduces the gradients with
:class:`AllReduceSum`), so the input gradients are those of one batch norm over the
concatenated batch. A process may hold an empty batch (``n_r = 0``): it contributes
nothing but still takes part in the collectives. Without an initialized process group
this is plain batch norm (a world of one process).

How ``torch.nn.SyncBatchNorm`` does it: every rank computes its mean and
``invstd = 1 / sqrt(var + eps)`` (``torch.batch_norm_stats``), all-gathers
``(mean, invstd, count)``, drops ranks with count 0, and merges them with
``torch.batch_norm_gather_stats_with_counts`` (the same parallel formula, applied one
rank at a time, after turning ``invstd`` back into a variance); its backward pass is
written by hand and all-reduces two sums of ``C`` numbers each. normbook gathers ``M2``
instead of ``invstd`` (no ``eps`` to undo), lets autograd derive the backward pass, and
runs on any device and backend (gloo on CPU, nccl on CUDA), where ``nn.SyncBatchNorm``
refuses CPU tensors in training mode once a process group is initialized. Both give the
statistics of one batch norm over the whole batch.

``python -m normbook.checks.sync_batchnorm`` starts 2 CPU processes (gloo) and checks
all this against one ``nn.BatchNorm`` over the concatenated batch.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from .reference import check_input, momentum_factor, update_running_stats, uses_batch_stats

__all__ = [
    "AllReduceSum",
    "all_reduce_sum",
    "all_gather",
    "local_stats",
    "combine_stats",
    "global_batch_stats",
    "sync_batch_norm",
    "SyncBatchNorm",
    "convert_sync_batchnorm",
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


def all_gather(tensor: Tensor, group: ProcessGroup = None) -> Tensor:
    """Differentiable all-gather: ``tensor`` (K,) of every process of ``group``, stacked to (P, K) in rank order.

    Written as an all-reduce: each process puts its tensor in its own row of zeros and
    :func:`all_reduce_sum` adds the rows up, so the backward pass is that of
    :class:`AllReduceSum`. Every process must pass the same K. Without an initialized
    process group P is 1.
    """
    if not isinstance(tensor, Tensor) or tensor.dim() != 1:
        got = f"{tensor.dim()}D {tuple(tensor.shape)}" if isinstance(tensor, Tensor) else type(tensor).__name__
        raise ValueError(f"expected a 1D tensor (K,), got {got}")
    if not _distributed():
        return tensor.unsqueeze(0)
    rank, world = dist.get_rank(group), dist.get_world_size(group)
    rows = [tensor if r == rank else torch.zeros_like(tensor) for r in range(world)]
    return all_reduce_sum(torch.stack(rows), group)


def local_stats(x: Tensor) -> tuple[int, Tensor, Tensor]:
    """Per-channel count, mean and sum of squared deviations ``M2`` of one process's ``x`` (N, C, *).

    Returns ``(n, mean (C,), M2 (C,))`` with ``n = N * prod(*)`` values per channel, by the
    corrected two-pass algorithm: a first pass for the mean ``m0``, a second for the
    deviations ``d = x - m0`` (in ``x``'s dtype, at least float32), then
    ``mean = m0 + sum(d) / n`` and ``M2 = sum(d**2) - sum(d)**2 / n``, which remove what
    the rounding of ``m0`` left (exact arithmetic gives ``sum(d) = 0``). The sums of ``d``
    and the results are float64: a float32 mean rounded to float32 would be off by up to
    half a unit in the last place of the offset, which :func:`combine_stats` would carry
    into the variance. An empty batch (``n = 0``) gives zeros. Differentiable.
    """
    check_input(x, ndims=(2, 3, 4, 5))
    c = x.shape[1]
    dims = [0] + list(range(2, x.dim()))
    n = x.numel() // c if c else 0
    xa = x.to(torch.promote_types(x.dtype, torch.float32))
    m0 = xa.sum(dims) / max(n, 1)
    d = xa - m0.reshape((1, c) + (1,) * (x.dim() - 2))
    dsum = d.sum(dims, dtype=torch.float64)
    return n, m0.double() + dsum / max(n, 1), (d * d).sum(dims, dtype=torch.float64) - dsum * dsum / max(n, 1)


def combine_stats(counts: Tensor, means: Tensor, m2s: Tensor) -> tuple[int, Tensor, Tensor]:
    """Merge P parts' statistics into those of their concatenation (Chan et al.'s parallel formula).

    ``counts`` (P,), ``means`` (P, C) and ``m2s`` (P, C) are each part's count, mean and
    sum of squared deviations (:func:`local_stats`). Returns ``(n, mean (C,), var (C,))``
    with ``n = sum counts``, ``mean = sum counts * means / n`` and the *biased* variance
    ``var = (sum m2s + sum counts * (means - mean)**2) / n``. Parts with count 0 are
    ignored. Differentiable in ``means`` and ``m2s``.
    """
    for name, t, dims in (("counts", counts, 1), ("means", means, 2), ("m2s", m2s, 2)):
        if not isinstance(t, Tensor) or t.dim() != dims:
            got = f"{t.dim()}D {tuple(t.shape)}" if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"expected {name} as a {dims}D tensor ({'P' if dims == 1 else 'P, C'}), got {got}")
    if means.shape != m2s.shape or means.shape[0] != counts.shape[0]:
        raise ValueError(f"expected counts (P,), means (P, C) and m2s (P, C) with the same P and C, "
                         f"got {tuple(counts.shape)}, {tuple(means.shape)}, {tuple(m2s.shape)}")
    n = int(counts.sum().item())
    if n == 0:
        raise ValueError("every part is empty (total count 0): no statistics to combine")
    w = counts.to(means.dtype).unsqueeze(1)  # (P, 1)
    means = torch.where(w > 0, means, torch.zeros_like(means))  # an empty part's mean is meaningless
    mean = (w * means).sum(0) / n
    m2 = m2s.sum(0) + (w * (means - mean) ** 2).sum(0)
    return n, mean, m2 / n


def global_batch_stats(x: Tensor, group: ProcessGroup = None) -> tuple[Tensor, Tensor, int]:
    """Per-channel mean and *biased* variance of the batch that all processes' ``x`` (N_r, C, *) form together.

    :func:`local_stats` here, :func:`all_gather` of ``(n_r, mean_r, M2_r)`` packed in one
    float64 vector of ``2C + 1`` numbers (float64 also keeps counts above 2**24 exact),
    :func:`combine_stats` of the gathered (P, 2C + 1). Returns ``(mean (C,), var (C,), n)``
    in ``x``'s dtype (at least float32), where ``n`` is the global number of values per
    channel. A process may hold an empty batch; all of them may not.
    """
    n_r, mean_r, m2_r = local_stats(x)
    c = x.shape[1]
    count = torch.full((1,), float(n_r), dtype=torch.float64, device=x.device)
    gathered = all_gather(torch.cat([count, mean_r, m2_r]), group)  # (P, 2C + 1)
    if not gathered[:, 0].sum() > 0:
        raise ValueError(f"every process holds an empty batch (global count 0) for input {tuple(x.shape)}: nothing to normalize")
    n, mean, var = combine_stats(gathered[:, 0], gathered[:, 1:c + 1], gathered[:, c + 1:])
    acc = torch.promote_types(x.dtype, torch.float32)
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
        # training mode from here on. Like nn.BatchNorm, update only with the flag set *and* buffers present: the
        # flag may change after construction (False keeps the buffers, unused; True cannot create them)
        tracking = self.track_running_stats and self.running_mean is not None
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
    passed in directly comes back as a new SyncBatchNorm. Lazy batch norm layers must have run once.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(module).__name__}")
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, (SyncBatchNorm, nn.SyncBatchNorm)):
        if isinstance(module, nn.modules.lazy.LazyModuleMixin) and module.has_uninitialized_params():
            raise ValueError(f"expected batch norm layers that know their number of channels, got an uninitialized "
                             f"{type(module).__name__}: run one forward pass (a dry run) before converting")
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
