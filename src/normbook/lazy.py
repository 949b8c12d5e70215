"""Lazy modules: which parameters and buffers are still uninitialized, and a dry run that materializes them.

A lazy module (``nn.LazyBatchNorm2d``, ``nn.LazyConv2d``, ``nn.LazyLinear``, ...) holds
``UninitializedParameter``/``UninitializedBuffer`` placeholders until its first forward pass,
which gives them their shapes and turns the module into its eager class (``cls_to_become``).
:func:`tensor_states` and :func:`describe_tensors` show that state; :func:`dry_run` performs the
first forward pass without side effects on the batch-norm running statistics; :func:`size_mismatches`
finds size attributes (``num_features``, ``in_channels``, ``in_features``) that disagree with the tensors,
as a lazy module that got its tensors from ``load_state_dict`` instead of a forward pass can leave them.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _NormBase
from torch.nn.modules.conv import _ConvNd
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter

__all__ = ["tensor_states", "uninitialized", "describe_tensors", "dry_run", "size_mismatches"]

TensorState = tuple[str, str, str, Optional[tuple[int, ...]]]


def _check_module(module: object) -> None:
    if not isinstance(module, nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(module).__name__}")


def tensor_states(module: nn.Module) -> list[TensorState]:
    """One row ``(name, "parameter" | "buffer", class name, shape or None)`` per tensor of ``module``.

    Parameters come first, then buffers, each in ``named_parameters``/``named_buffers`` order.
    The shape is ``None`` for an ``UninitializedParameter``/``UninitializedBuffer`` (it has none
    yet), else the tuple of the tensor's sizes (``()`` for a scalar such as ``num_batches_tracked``).
    """
    _check_module(module)
    rows: list[TensorState] = []
    for kind, named in (("parameter", module.named_parameters()), ("buffer", module.named_buffers())):
        for name, t in named:
            lazy = isinstance(t, (UninitializedParameter, UninitializedBuffer))
            rows.append((name, kind, type(t).__name__, None if lazy else tuple(t.shape)))
    return rows


def uninitialized(module: nn.Module) -> list[str]:
    """Names of the parameters and buffers of ``module`` that are still uninitialized (empty when none are)."""
    return [name for name, _, _, shape in tensor_states(module) if shape is None]


def describe_tensors(module: nn.Module) -> str:
    """A text table of :func:`tensor_states`: the module's class, then one line per tensor (name, kind, class, shape)."""
    rows = tensor_states(module)
    lines = [f"{type(module).__name__}: {len(rows)} tensors"]
    width = max((len(name) for name, *_ in rows), default=0)
    for name, kind, cls, shape in rows:
        lines.append(f"  {name:<{width}}  {kind:<9}  {cls:<21}  {'uninitialized' if shape is None else shape}")
    return "\n".join(lines)


def dry_run(module: nn.Module, *example: Tensor, train: bool = False) -> nn.Module:
    """Run ``module(*example)`` once to materialize its lazy parameters and buffers; return ``module``.

    ``example``: one or more input tensors of the shapes the model will see, e.g. a dummy batch
    (N, C, H, W) (only C, and for ``LazyLinear`` the last size, matter to lazy modules). Move the
    model to its device and dtype *before* the dry run. By default the pass runs in eval mode under
    ``torch.no_grad()``, so batch-norm running statistics and ``num_batches_tracked`` keep their
    initial values; ``train=True`` runs it in training mode (the dummy batch then counts as a
    training batch). Every submodule's training flag is restored afterwards. Raises RuntimeError
    naming the tensors the pass did not reach.
    """
    _check_module(module)
    if not example or not all(isinstance(t, Tensor) for t in example):
        got = ", ".join(type(t).__name__ for t in example) or "nothing"
        raise TypeError(f"expected one or more example input tensors, got {got}")
    modes = [(m, m.training) for m in module.modules()]
    try:
        module.train(train)
        with torch.no_grad():
            module(*example)
    finally:
        for m, mode in modes:
            m.training = mode
    left = uninitialized(module)
    if left:
        raise RuntimeError(
            f"the dry run left {len(left)} tensors uninitialized: {', '.join(left)}; the forward pass did "
            "not reach these lazy modules: call dry_run with inputs that use every branch of the model"
        )
    return module


SizeMismatch = tuple[str, str, int, int]


def _size_from_tensors(module: nn.Module) -> Optional[tuple[str, int]]:
    """(attribute, the size its tensors imply) for a linear, convolution or norm layer; None if nothing to check."""

    def known(t: Optional[Tensor]) -> bool:
        return t is not None and not isinstance(t, (UninitializedParameter, UninitializedBuffer))

    if isinstance(module, nn.Linear) and known(module.weight):  # weight (out_features, in_features)
        return "in_features", module.weight.shape[1]
    if isinstance(module, _ConvNd) and known(module.weight):
        if module.transposed:  # weight (in_channels, out_channels / groups, *kernel_size)
            return "in_channels", module.weight.shape[0]
        return "in_channels", module.weight.shape[1] * module.groups  # weight (out, in / groups, *kernel_size)
    if isinstance(module, _NormBase):  # BatchNorm*d, InstanceNorm*d and their lazy twins: tensors of shape (C,)
        for t in (module.weight, module.running_mean):
            if known(t):
                return "num_features", t.shape[0]
    return None


def size_mismatches(module: nn.Module) -> list[SizeMismatch]:
    """Size attributes of ``module``'s layers that disagree with their tensors: rows ``(name, attribute, stored, from tensors)``.

    Checks ``in_features`` of linear layers (weight (out, in)), ``in_channels`` of convolutions (weight
    (out, in / groups, *k); transposed: (in, out / groups, *k)) and ``num_features`` of batch and instance
    norms (weight or running_mean (C,)). ``name`` is the submodule's name as in ``named_modules`` ("" for
    ``module`` itself), so ``setattr(module.get_submodule(name), attribute, size)`` repairs a row. Layers
    whose tensors are still uninitialized, and norms without weight and running statistics, are skipped.
    An empty list means every checked attribute matches. Why it matters: a lazy layer that gets its tensors
    from ``load_state_dict`` rather than a forward pass can keep the 0 it was built with (PyTorch issues
    73009 and 147389), and code that reads the attribute (``repr``, rebuilding a layer) then sees 0.
    """
    _check_module(module)
    rows: list[SizeMismatch] = []
    for name, m in module.named_modules():
        found = _size_from_tensors(m)
        if found is not None and getattr(m, found[0]) != found[1]:
            rows.append((name, found[0], getattr(m, found[0]), found[1]))
    return rows
