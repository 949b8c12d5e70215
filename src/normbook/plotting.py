"""The book's figures: which elements share statistics, tensors as heat maps, histograms.

Figures are small (about 100 dpi) so that stored notebooks stay light. Each
function draws into matplotlib axes and returns the figure or axes it drew on.
"""

from __future__ import annotations

from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from .reference import KINDS, stats_groups

__all__ = ["DPI", "stats_cube", "stats_cubes", "heatmap", "shared_stats_grid", "histograms"]

DPI = 100
_TITLES = {"batch": "BatchNorm", "layer": "LayerNorm", "instance": "InstanceNorm", "group": "GroupNorm"}
_SHADE, _PLAIN = "#3b7dd8", "#e8eef7"


def stats_cube(
    ax: Axes, kind: str, shape: Sequence[int] = (4, 6, 5), num_groups: int = 2, pick: Sequence[int] = (0, 0, 0)
) -> Axes:
    """Draw an (N, C, H*W) cube on 3D ``ax``, shading the elements that share statistics with ``pick``.

    The grouping comes from ``normbook.reference.stats_groups``, the same layout the
    reference layers normalize with. ``shape`` is (N, C, H*W); ``num_groups`` is used
    for ``kind="group"``.
    """
    if len(shape) != 3 or len(pick) != 3:
        raise ValueError(f"expected shape and pick as (N, C, H*W) triples, got {tuple(shape)} and {tuple(pick)}")
    groups = stats_groups(kind, shape, num_groups).numpy()
    shared = groups == groups[tuple(pick)]
    colors = np.where(shared, _SHADE, _PLAIN)
    # matplotlib's voxel axes are (x, y, z): put H*W across, N into the depth, C up.
    filled = np.ones(shape, dtype=bool).transpose(2, 0, 1)
    ax.voxels(filled, facecolors=colors.transpose(2, 0, 1), edgecolor="#5a5a5a", linewidth=0.3)
    ax.set_xlabel("H, W", labelpad=-12)
    ax.set_ylabel("N", labelpad=-12)
    ax.set_zlabel("C", labelpad=-12)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_zticks([])
    title = _TITLES[kind] + (f" ({num_groups} groups)" if kind == "group" else "")
    ax.set_title(title, fontsize=10)
    ax.view_init(elev=20, azim=-60)
    return ax


def stats_cubes(
    kinds: Sequence[str] = KINDS, shape: Sequence[int] = (4, 6, 5), num_groups: int = 2, width: float = 3.0
) -> Figure:
    """Side-by-side :func:`stats_cube` panels, one per kind in ``kinds``."""
    fig = plt.figure(figsize=(width * len(kinds), width), dpi=DPI)
    for i, kind in enumerate(kinds):
        stats_cube(fig.add_subplot(1, len(kinds), i + 1, projection="3d"), kind, shape, num_groups)
    fig.tight_layout()
    return fig


def heatmap(ax: Axes, values: Tensor, title: str = "", fmt: str = "{:.2f}", cmap: str = "coolwarm") -> Axes:
    """Show a 2D tensor as a heat map with each value written in its cell."""
    if values.dim() != 2:
        raise ValueError(f"expected a 2D tensor to draw, got {values.dim()}D {tuple(values.shape)}")
    v = values.detach().cpu().float().numpy()
    ax.imshow(v, cmap=cmap)
    for (r, c), value in np.ndenumerate(v):
        ax.text(c, r, fmt.format(value), ha="center", va="center", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    return ax


def shared_stats_grid(shape: Sequence[int], kind: str = "batch", num_groups: int = 1, cmap: str = "tab10") -> Figure:
    """Draw every element of an (N, C, *) input as a cell, coloured by the statistics it shares.

    One panel per sample (rows: channels, columns: flattened positions), so a reader
    sees which values are pooled into one mean and variance.
    """
    shape = tuple(shape)
    groups = stats_groups(kind, shape, num_groups)
    n, c = shape[0], shape[1]
    flat = groups.reshape(n, c, -1).numpy()
    fig, axes = plt.subplots(1, n, figsize=(1.0 + 0.6 * flat.shape[2] * n, 0.5 + 0.5 * c), dpi=DPI, squeeze=False)
    for i, ax in enumerate(axes[0]):
        ax.imshow(flat[i], cmap=cmap, vmin=0, vmax=max(9, int(groups.max())))
        for (r, col), g in np.ndenumerate(flat[i]):
            ax.text(col, r, f"g{g}", ha="center", va="center", fontsize=8, color="white")
        ax.set_title(f"sample n={i}", fontsize=9)
        ax.set_yticks(range(c), [f"c={k}" for k in range(c)], fontsize=8)
        ax.set_xticks(range(flat.shape[2]), [str(k) for k in range(flat.shape[2])], fontsize=7)
        ax.set_xlabel("position (flattened)" if len(shape) > 2 else "", fontsize=8)
    fig.suptitle(f"{_TITLES[kind]} on {shape}: cells with the same label share one mean and variance", fontsize=9)
    fig.tight_layout()
    return fig


def histograms(
    named: dict[str, Tensor], bins: int = 40, cols: int = 4, value_range: Optional[tuple[float, float]] = None
) -> Figure:
    """A grid of histograms, one per named tensor (e.g. activations before and after BatchNorm)."""
    if not named:
        raise ValueError("expected at least one tensor to draw")
    rows = -(-len(named) // cols)
    fig, axes = plt.subplots(rows, min(cols, len(named)), figsize=(2.6 * min(cols, len(named)), 2.0 * rows),
                             dpi=DPI, squeeze=False)
    for ax in axes.flat[len(named):]:
        ax.axis("off")
    for ax, (name, t) in zip(axes.flat, named.items()):
        values = t.detach().cpu().float().flatten().numpy()
        ax.hist(values, bins=bins, range=value_range, color=_SHADE)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def running_stats_curves(
    histories: dict[str, Tensor], true_mean: float, true_var: float, width: float = 9.0
) -> Figure:
    """Two panels: one channel's running_mean and running_var against the training step, one line per history.

    ``histories`` maps a label (e.g. ``"momentum=0.1"``) to a tensor of shape (steps + 1, 2)
    whose row t holds (running_mean, running_var) after t training batches (row 0: the
    initial buffers). Dashed lines mark the data's true mean and variance.
    """
    if not histories:
        raise ValueError("expected at least one history to draw, got none")
    for label, h in histories.items():
        if not isinstance(h, Tensor) or h.dim() != 2 or h.shape[0] < 2 or h.shape[1] != 2:
            got = tuple(h.shape) if isinstance(h, Tensor) else type(h).__name__
            raise ValueError(f"expected history {label!r} as a tensor (steps + 1, 2) of (mean, var) rows, got {got}")
    fig, axes = plt.subplots(1, 2, figsize=(width, width / 3), dpi=DPI)
    for col, (ax, name, truth) in enumerate(zip(axes, ("running_mean", "running_var"), (true_mean, true_var))):
        for label, h in histories.items():
            ax.plot(np.arange(h.shape[0]), h[:, col].detach().cpu().double().numpy(), label=label, linewidth=1.2)
        ax.axhline(truth, color="black", linestyle="--", linewidth=1, label=f"true value {truth:g}")
        ax.set_xlabel("training step (batches seen)", fontsize=8)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
