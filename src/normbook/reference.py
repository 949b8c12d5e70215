"""Readable from-scratch normalization layers, checked against torch.

Every function here computes what a ``torch.nn`` normalization layer computes,
in plain tensor operations, so that a reader can see every step. The tests in
``tests/test_reference.py`` compare each one with ``torch.nn.functional`` over
many shapes, dtypes and flags.

All four layers share one idea: reshape the input to a *view* and take the mean
and the biased variance over some dimensions of that view. :func:`stats_layout`
says which view and which dimensions; the forward functions and the book's
figures (``normbook.plotting``) both use it, so the pictures show exactly what
the code computes.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor

__all__ = [
    "KINDS",
    "stats_layout",
    "stats_groups",
    "check_input",
    "batch_stats",
    "uses_batch_stats",
    "momentum_factor",
    "update_running_stats",
    "batch_norm",
    "batch_norm_backward",
    "instance_norm",
    "layer_norm",
    "group_norm",
    "rms_norm",
]

KINDS = ("batch", "layer", "instance", "group")
_SHAPE_NAMES = {2: "(N, C)", 3: "(N, C, L)", 4: "(N, C, H, W)", 5: "(N, C, D, H, W)"}


def _describe(x: Tensor) -> str:
    return f"{x.dim()}D {tuple(x.shape)}"


def check_input(x: Tensor, ndims: Sequence[int] = (2, 3, 4), num_features: Optional[int] = None) -> None:
    """Raise a clear error unless ``x`` has one of ``ndims`` dimensions and ``num_features`` channels.

    ``x``: (N, C, *). The messages name what was expected and what came in,
    e.g. ``expected 4D input (N, C, H, W), got 3D (2, 3, 4)``.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in ndims:
        wanted = " or ".join(f"{d}D {_SHAPE_NAMES.get(d, '')}".strip() for d in ndims)
        raise ValueError(f"expected {wanted} input, got {_describe(x)}")
    if not x.is_floating_point():
        raise TypeError(f"expected a floating point input (e.g. x.float()), got dtype {x.dtype}")
    if num_features is not None and x.shape[1] != num_features:
        raise ValueError(
            f"expected {num_features} channels in dim 1 of input {_describe(x)}, got {x.shape[1]}; "
            "dim 1 must be the channel/feature dimension C (permute your tensor, or change num_features)"
        )


def stats_layout(kind: str, shape: Sequence[int], num_groups: int = 1) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Say how a normalization layer groups the elements of an input of ``shape`` (N, C, *).

    Returns ``(view_shape, reduce_dims)``: reshape the input to ``view_shape``; one
    mean and one variance are computed over ``reduce_dims`` of that view for each
    index of the remaining dimensions. Elements that share those indices share
    statistics.

    - ``"batch"``: view (N, C, S), statistics over (N, S) -> one pair per channel.
    - ``"instance"``: view (N, C, S), over S -> one pair per sample and channel.
    - ``"layer"``: view (N, C*S), over C*S -> one pair per sample.
    - ``"group"``: view (N, G, C/G*S), over C/G*S -> one pair per sample and group.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if len(shape) < 2:
        raise ValueError(f"expected a shape (N, C, *) with at least 2 dimensions, got {tuple(shape)}")
    n, c = int(shape[0]), int(shape[1])
    s = 1
    for size in shape[2:]:
        s *= int(size)
    if kind == "batch":
        return (n, c, s), (0, 2)
    if kind == "instance":
        return (n, c, s), (2,)
    if kind == "layer":
        return (n, c * s), (1,)
    if num_groups < 1 or c % num_groups != 0:
        raise ValueError(f"num_channels ({c}) must be divisible by num_groups ({num_groups})")
    return (n, num_groups, (c // num_groups) * s), (2,)


def stats_groups(kind: str, shape: Sequence[int], num_groups: int = 1) -> Tensor:
    """Label every element of an input of ``shape`` with the id of the statistics it is normalized with.

    Returns an int64 tensor of ``shape``: two elements share a mean and a variance
    exactly when their labels are equal. Built from :func:`stats_layout`, so it is the
    grouping the forward functions use.
    """
    view_shape, dims = stats_layout(kind, shape, num_groups)
    kept = [1 if d in dims else size for d, size in enumerate(view_shape)]
    labels = torch.arange(int(torch.tensor(kept).prod())).reshape(kept)
    return labels.expand(view_shape).reshape(tuple(shape))


def _normalize(x: Tensor, kind: str, eps: float, num_groups: int = 1) -> Tensor:
    """Subtract the mean and divide by sqrt(biased variance + eps) over the groups of :func:`stats_layout`."""
    view_shape, dims = stats_layout(kind, x.shape, num_groups)
    v = x.reshape(view_shape)
    mean = v.mean(dim=dims, keepdim=True)
    var = v.var(dim=dims, unbiased=False, keepdim=True)
    return ((v - mean) / torch.sqrt(var + eps)).reshape(x.shape)


def _per_channel(t: Tensor, x: Tensor) -> Tensor:
    """Shape a (C,) vector so it broadcasts over x (N, C, *): (1, C, 1, ...)."""
    return t.reshape(1, -1, *([1] * (x.dim() - 2)))


def _check_vector(name: str, t: Optional[Tensor], size: int) -> None:
    if t is not None and tuple(t.shape) != (size,):
        raise ValueError(f"expected {name} of shape ({size},) to match the {size} channels of the input, got {tuple(t.shape)}")


def _affine(y: Tensor, weight: Optional[Tensor], bias: Optional[Tensor]) -> Tensor:
    """Apply gamma (weight) and beta (bias) per channel, when given."""
    if weight is not None:
        y = y * _per_channel(weight, y)
    if bias is not None:
        y = y + _per_channel(bias, y)
    return y


def batch_stats(x: Tensor) -> tuple[Tensor, Tensor, int]:
    """Per-channel mean and *biased* variance of ``x`` (N, C, *) over every dim but C.

    Returns ``(mean (C,), var (C,), n)`` where ``n = x.numel() // C`` is the number
    of values each channel's statistics were computed from.
    """
    check_input(x, ndims=(2, 3, 4, 5))
    view_shape, dims = stats_layout("batch", x.shape)
    v = x.reshape(view_shape)
    return v.mean(dim=dims), v.var(dim=dims, unbiased=False), v.shape[0] * v.shape[2]


def uses_batch_stats(training: bool, has_running_stats: bool) -> bool:
    """Decide which statistics batch norm normalizes with: True -> the batch's, False -> the running ones.

    torch's rule: batch statistics when the module is training, or when it has no
    running statistics (``track_running_stats=False``); running statistics only in
    eval mode with tracked statistics.
    """
    return training or not has_running_stats


def momentum_factor(momentum: Optional[float], num_batches_tracked: int) -> float:
    """The weight a new batch gets in the running average.

    ``momentum`` as given, or ``1 / num_batches_tracked`` (a cumulative average of all
    batches so far) when ``momentum`` is None. ``num_batches_tracked`` counts this batch.
    """
    if momentum is None:
        if num_batches_tracked < 1:
            raise ValueError(f"num_batches_tracked must count the current batch (>= 1), got {num_batches_tracked}")
        return 1.0 / num_batches_tracked
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1] or None, got {momentum}")
    return momentum


def update_running_stats(
    running_mean: Tensor, running_var: Tensor, mean: Tensor, var: Tensor, n: int, momentum: float
) -> tuple[Tensor, Tensor]:
    """Return the new running statistics after one training batch (pure: inputs are not changed).

    ``running = (1 - momentum) * running + momentum * batch_stat``, where the variance
    that goes in is the *unbiased* batch variance ``var * n / (n - 1)`` although the
    batch was normalized with the biased ``var``. All tensors have shape (C,).
    """
    if momentum is None or isinstance(momentum, bool):
        raise ValueError(f"momentum must be a number in [0, 1]; for momentum=None pass "
                         f"momentum_factor(None, num_batches_tracked), got {momentum!r}")
    momentum = momentum_factor(momentum, 1)  # checks the range
    if n < 2:
        raise ValueError(f"the unbiased variance needs at least 2 values per channel, got n={n}")
    unbiased = var * n / (n - 1)
    new_mean = (1 - momentum) * running_mean + momentum * mean
    new_var = (1 - momentum) * running_var + momentum * unbiased
    return new_mean, new_var


def batch_norm(
    x: Tensor,
    running_mean: Optional[Tensor] = None,
    running_var: Optional[Tensor] = None,
    weight: Optional[Tensor] = None,
    bias: Optional[Tensor] = None,
    training: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch norm forward for ``x`` of shape (N, C), (N, C, L) or (N, C, H, W); same shape out.

    Computes ``y = (x - mean) / sqrt(var + eps) * weight + bias`` per channel C, with

    - batch statistics (mean and *biased* variance over every dim but C) when
      :func:`uses_batch_stats` says so; then, if running buffers are given, they are
      updated **in place** with :func:`update_running_stats`, as
      ``torch.nn.functional.batch_norm`` does;
    - the running statistics ``running_mean``/``running_var`` (C,) otherwise (eval mode).

    ``weight`` and ``bias`` (C,) are the optional affine parameters gamma and beta.
    Like torch, ``eps`` must be positive with batch statistics and non-negative otherwise.
    """
    check_input(x, ndims=(2, 3, 4))
    c = x.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        _check_vector(name, t, c)
    if (running_mean is None) != (running_var is None):
        raise ValueError("give both running_mean and running_var, or neither")
    has_running = running_mean is not None
    use_batch = uses_batch_stats(training, has_running)
    if eps < 0 or (use_batch and eps == 0):
        raise ValueError(
            f"batch_norm eps must be positive when normalizing with batch statistics (non-negative otherwise), "
            f"got {eps}: a channel whose values are all equal would give 0/0"
        )
    if use_batch:
        mean, var, n = batch_stats(x)
        if n < 2:  # also in eval mode without running statistics, as torch's modules do
            raise ValueError(
                f"Expected more than 1 value per channel when training, got input {_describe(x)}: "
                "batch statistics need at least 2 values per channel; use a batch of at least 2 samples "
                "(or more than one position per channel), or eval mode with running statistics"
            )
        if training and has_running:
            new_mean, new_var = update_running_stats(running_mean, running_var, mean, var, n, momentum)
            with torch.no_grad():
                running_mean.copy_(new_mean)
                running_var.copy_(new_var)
    else:
        mean, var = running_mean, running_var
    y = (x - _per_channel(mean, x)) / torch.sqrt(_per_channel(var, x) + eps)
    return _affine(y, weight, bias)


def batch_norm_backward(
    grad_output: Tensor,
    x: Tensor,
    running_mean: Optional[Tensor] = None,
    running_var: Optional[Tensor] = None,
    weight: Optional[Tensor] = None,
    training: bool = True,
    eps: float = 1e-5,
) -> tuple[Tensor, Tensor, Tensor]:
    """Batch norm backward: the gradients of a loss L through :func:`batch_norm` with the same arguments.

    ``grad_output`` is dL/dy for the output y, of the shape of ``x`` (N, C), (N, C, L) or (N, C, H, W).
    Returns ``(grad_input, grad_weight, grad_bias)``: dL/dx (shape of ``x``), and dL/dgamma and
    dL/dbeta (C,), computed also when ``weight`` is None (as if gamma = 1 and beta = 0).
    Per channel, over its m = numel / C values, with ``x_hat`` the normalized input and
    ``sigma = sqrt(var + eps)``:

    - ``grad_bias = sum(g)`` and ``grad_weight = sum(g * x_hat)``;
    - with batch statistics (:func:`uses_batch_stats`), the mean and variance depend on every
      value of the channel, and ``grad_input = gamma / sigma * (g - mean(g) - x_hat * mean(g * x_hat))``;
    - with the running statistics (eval mode) the layer is a fixed affine map, and
      ``grad_input = gamma / sqrt(running_var + eps) * g``.

    The running buffers are only read, never updated. Inputs are validated like :func:`batch_norm`.
    """
    check_input(x, ndims=(2, 3, 4))
    if not isinstance(grad_output, Tensor) or grad_output.shape != x.shape:
        got = _describe(grad_output) if isinstance(grad_output, Tensor) else type(grad_output).__name__
        raise ValueError(f"expected grad_output of the input's shape {tuple(x.shape)}, got {got}")
    c = x.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight)):
        _check_vector(name, t, c)
    if (running_mean is None) != (running_var is None):
        raise ValueError("give both running_mean and running_var, or neither")
    use_batch = uses_batch_stats(training, running_mean is not None)
    if eps < 0 or (use_batch and eps == 0):
        raise ValueError(f"batch_norm eps must be positive when normalizing with batch statistics "
                         f"(non-negative otherwise), got {eps}")
    # One row per channel: (N, C, S) with statistics over dims (0, 2), as in the forward pass.
    view_shape, dims = stats_layout("batch", x.shape)
    v, g = x.reshape(view_shape), grad_output.reshape(view_shape)
    if use_batch:
        if v.shape[0] * v.shape[2] < 2:
            raise ValueError(f"Expected more than 1 value per channel when training, got input {_describe(x)}")
        mean = v.mean(dim=dims, keepdim=True)
        var = v.var(dim=dims, unbiased=False, keepdim=True)
    else:
        mean, var = running_mean.reshape(1, c, 1), running_var.reshape(1, c, 1)
    sigma = torch.sqrt(var + eps)
    x_hat = (v - mean) / sigma
    # y = gamma * x_hat + beta: beta collects g, gamma collects g * x_hat, x_hat receives gamma * g.
    grad_bias = g.sum(dim=dims)
    grad_weight = (g * x_hat).sum(dim=dims)
    gamma = weight.reshape(1, c, 1) if weight is not None else torch.ones_like(sigma)
    grad_x_hat = gamma * g
    if use_batch:
        # mean and var depend on x too: remove from grad_x_hat its mean and its component along x_hat.
        grad_x_hat = (grad_x_hat - grad_x_hat.mean(dim=dims, keepdim=True)
                      - x_hat * (grad_x_hat * x_hat).mean(dim=dims, keepdim=True))
    return (grad_x_hat / sigma).reshape(x.shape), grad_weight, grad_bias


def instance_norm(
    x: Tensor, weight: Optional[Tensor] = None, bias: Optional[Tensor] = None, eps: float = 1e-5
) -> Tensor:
    """Instance norm forward for ``x`` (N, C, L) or (N, C, H, W): statistics per sample and channel.

    Each (n, c) slice is normalized with its own mean and biased variance over the
    spatial positions; ``weight``/``bias`` (C,) are optional. Same shape out.
    """
    check_input(x, ndims=(3, 4))
    _check_vector("weight", weight, x.shape[1])
    _check_vector("bias", bias, x.shape[1])
    if x.shape[2:].numel() == 1:
        raise ValueError(f"Expected more than 1 spatial element when training, got input {_describe(x)}")
    return _affine(_normalize(x, "instance", eps), weight, bias)


def layer_norm(
    x: Tensor, normalized_shape: Sequence[int], weight: Optional[Tensor] = None, bias: Optional[Tensor] = None,
    eps: float = 1e-5,
) -> Tensor:
    """Layer norm forward: statistics over the last ``len(normalized_shape)`` dims of ``x``.

    ``x``: (*, *normalized_shape); ``weight``/``bias`` have shape ``normalized_shape``
    and are applied elementwise. Same shape out.
    """
    shape = tuple(int(s) for s in normalized_shape)
    if not shape or x.dim() < len(shape) or tuple(x.shape[x.dim() - len(shape):]) != shape:
        raise ValueError(f"expected input whose last dims are normalized_shape {shape}, got {_describe(x)}")
    if not x.is_floating_point():
        raise TypeError(f"expected a floating point input (e.g. x.float()), got dtype {x.dtype}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != shape:
            raise ValueError(f"expected {name} of shape {shape}, got {tuple(t.shape)}")
    y = _normalize(x.reshape(-1, 1, *shape), "layer", eps).reshape(x.shape)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def group_norm(
    x: Tensor, num_groups: int, weight: Optional[Tensor] = None, bias: Optional[Tensor] = None, eps: float = 1e-5
) -> Tensor:
    """Group norm forward for ``x`` (N, C, *): channels split into ``num_groups`` groups per sample.

    Each sample's group of C/G channels (with all their positions) shares one mean and
    one biased variance; ``weight``/``bias`` (C,) are applied per channel. Same shape out.
    """
    check_input(x, ndims=(2, 3, 4, 5))
    _check_vector("weight", weight, x.shape[1])
    _check_vector("bias", bias, x.shape[1])
    view_shape, _ = stats_layout("group", x.shape, num_groups)
    if view_shape[0] * view_shape[2] == 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input {_describe(x)}")
    return _affine(_normalize(x, "group", eps, num_groups), weight, bias)


def rms_norm(
    x: Tensor, normalized_shape: Sequence[int], weight: Optional[Tensor] = None, eps: Optional[float] = None
) -> Tensor:
    """RMSNorm forward: divide by the root mean square over the last ``len(normalized_shape)`` dims of ``x``.

    ``y = x / sqrt(mean(x**2) + eps) * weight``: unlike layer norm, no mean is
    subtracted and there is no bias. ``x``: (*, *normalized_shape); ``weight`` (optional)
    has shape ``normalized_shape``. As in torch 2.7 and later, the statistics are
    computed in the input's "opmath" type (float32 for float16 and bfloat16 inputs, else
    the input's dtype), ``eps=None`` means that type's machine epsilon
    (``torch.finfo(float32).eps`` for float16, bfloat16 and float32,
    ``torch.finfo(float64).eps`` for float64), and the result is rounded to ``x.dtype``
    once, at the end. (Torch 2.6 takes ``torch.finfo(x.dtype).eps`` for ``eps=None``
    and rounds to a 16-bit ``x.dtype`` before multiplying by ``weight``.) Same shape and
    dtype out.
    """
    shape = tuple(int(s) for s in normalized_shape)
    if not shape or x.dim() < len(shape) or tuple(x.shape[x.dim() - len(shape):]) != shape:
        raise ValueError(f"expected input whose last dims are normalized_shape {shape}, got {_describe(x)}")
    if not x.is_floating_point():
        raise TypeError(f"expected a floating point input (e.g. x.float()), got dtype {x.dtype}")
    if weight is not None and tuple(weight.shape) != shape:
        raise ValueError(f"expected weight of shape {shape}, got {tuple(weight.shape)}")
    opmath = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    if eps is None:
        eps = torch.finfo(opmath).eps
    dims = tuple(range(x.dim() - len(shape), x.dim()))
    xs = x.to(opmath)
    mean_square = (xs * xs).mean(dim=dims, keepdim=True)
    y = xs / torch.sqrt(mean_square + eps)
    if weight is not None:
        y = y * weight.to(opmath)
    return y.to(x.dtype)
