"""Fold an inference-mode BatchNorm2d into the convolution before it.

In eval mode batch norm is a fixed per-channel affine map,
``bn(z) = (z - running_mean) / sqrt(running_var + eps) * gamma + beta = s * z + t``
with ``s = gamma / sqrt(running_var + eps)`` and ``t = beta - s * running_mean``.
A convolution ``z = W * x + b`` followed by it is therefore one convolution with
weight ``s[o] * W[o]`` and bias ``s * b + t``: one layer less to run at inference.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["fuse_conv_bn", "fuse_model"]


def _check_pair(conv: nn.Module, bn: nn.Module) -> None:
    if not isinstance(conv, nn.Conv2d):
        raise TypeError(f"expected an nn.Conv2d to fold into, got {type(conv).__name__}")
    if not isinstance(bn, nn.BatchNorm2d):
        raise TypeError(f"expected an nn.BatchNorm2d to fold, got {type(bn).__name__}")
    if bn.training:
        raise ValueError(
            "the BatchNorm2d is in training mode, where it normalizes with each batch's statistics and cannot be folded; "
            "call model.eval() (or bn.eval()) first"
        )
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(
            "the BatchNorm2d has no running statistics (track_running_stats=False): in eval mode it still uses "
            "each batch's statistics, so it is not a fixed affine map and cannot be folded"
        )
    if conv.out_channels != bn.num_features:
        raise ValueError(
            f"channel counts differ: the Conv2d has {conv.out_channels} output channels, "
            f"the BatchNorm2d normalizes {bn.num_features}; fold a BatchNorm2d into the convolution that feeds it"
        )


def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new Conv2d computing ``bn(conv(x))`` for an eval-mode ``bn``; x (N, C_in, H, W) -> (N, C_out, H', W').

    Weight ``(C_out, C_in/groups, kH, kW)`` is scaled per output channel by
    ``s = gamma / sqrt(running_var + eps)``; bias (C_out,) becomes ``s * (b - running_mean) + beta``
    (``b = 0`` when the conv has no bias; gamma = 1 when ``bn`` has no weight, beta = 0 when it has
    no bias: ``affine=False``, or ``bias=False`` in torch versions that have that argument).
    The inputs are not changed. The arithmetic is done in float64 and cast back to the conv's dtype.
    """
    _check_pair(conv, bn)
    fused = copy.deepcopy(conv)
    w = conv.weight.detach().double()
    mean, var = bn.running_mean.detach().double(), bn.running_var.detach().double()
    gamma = bn.weight.detach().double() if bn.weight is not None else torch.ones_like(mean)
    beta = bn.bias.detach().double() if bn.bias is not None else torch.zeros_like(mean)
    b = conv.bias.detach().double() if conv.bias is not None else torch.zeros_like(mean)
    s = gamma / torch.sqrt(var + bn.eps)
    weight = (w * s.reshape(-1, 1, 1, 1)).to(conv.weight.dtype)
    bias = (s * (b - mean) + beta).to(conv.weight.dtype)
    fused.weight = nn.Parameter(weight, requires_grad=conv.weight.requires_grad)
    fused.bias = nn.Parameter(bias, requires_grad=conv.weight.requires_grad)
    return fused


def fuse_model(model: nn.Module) -> nn.Module:
    """A copy of an eval-mode ``model`` with every Conv2d -> BatchNorm2d pair folded into one Conv2d.

    Pairs are found inside ``nn.Sequential`` containers (at any depth), where a BatchNorm2d directly
    follows a Conv2d; the BatchNorm2d becomes ``nn.Identity`` so module names stay valid. The model
    passed in is not changed; other layers (and BatchNorm layers not after a Conv2d) are kept.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}")
    if model.training:
        raise ValueError("the model is in training mode, where BatchNorm uses batch statistics; call model.eval() first")
    fused = copy.deepcopy(model)
    for seq in [m for m in fused.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for first, second in zip(names, names[1:]):
            conv, bn = seq._modules[first], seq._modules[second]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                seq._modules[first] = fuse_conv_bn(conv, bn)
                seq._modules[second] = nn.Identity()
    return fused
