"""The book's figures: which elements share statistics, tensors as heat maps, histograms.

Figures are small (about 100 dpi) so that stored notebooks stay light. Each
function draws into matplotlib axes and returns the figure or axes it drew on.

Every figure a helper returns is readable on the book's page: at most ``PAGE_WIDTH_IN``
wide, so the page shows it at full size, with no text below ``MIN_FONT_PT`` points, an
opaque white background (readable in the theme's dark mode too), and axis labels on every
panel that is not an image.
"""

from __future__ import annotations

from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Text
from torch import Tensor

from .reference import KINDS, stats_groups

__all__ = [
    "DPI",
    "PAGE_WIDTH_IN",
    "MIN_FONT_PT",
    "stats_cube",
    "stats_cubes",
    "heatmap",
    "histograms",
    "running_stats_curves",
    "stats_table",
    "image_row",
    "scalar_curves",
    "event_histograms",
    "padding_source_index",
    "padding_sources",
    "activation_curves",
    "image_grids",
    "curve_panels",
]

DPI = 100
#: The widest figure, in inches at DPI, that the book shows at full size: its output column is 688 px
#: wide in a 1280-px desktop window, 672 px inside the dark theme's padding (tests/test_browser.py checks).
PAGE_WIDTH_IN = 6.5
#: The smallest text, in points, in any figure (shown at full size at 100 dpi, a point is a point on screen).
MIN_FONT_PT = 8
_TITLE_PT, _LABEL_PT, _SMALL_PT = 9, 8, 8
_TITLES = {"batch": "BatchNorm", "layer": "LayerNorm", "instance": "InstanceNorm", "group": "GroupNorm"}
_SHADE, _PLAIN = "#3b7dd8", "#e8eef7"


def _panel_width(width: float, cols: int) -> float:
    """The width of one of ``cols`` side-by-side panels: ``width`` inches, less where the row would be wider than the page."""
    return min(width, PAGE_WIDTH_IN / cols)


def _ink(rgba: Sequence[float]) -> str:
    """Black or white, whichever reads better on a cell of colour ``rgba`` (by its luminance)."""
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def _finish(fig: Figure) -> Figure:
    """Hold ``fig`` to the book's rules and lay it out: no wider than the page, no text below MIN_FONT_PT, opaque white."""
    w, h = fig.get_size_inches()
    if w > PAGE_WIDTH_IN:
        fig.set_size_inches(PAGE_WIDTH_IN, h)
    fig.patch.set_facecolor("white")
    fig.patch.set_alpha(1.0)
    for text in fig.findobj(Text):  # titles, labels, legends, tick labels, texts in cells
        if text.get_fontsize() < MIN_FONT_PT:
            text.set_fontsize(MIN_FONT_PT)
    fig.tight_layout()
    return fig


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
    ax.set_xlabel("H, W", labelpad=-12, fontsize=_LABEL_PT)
    ax.set_ylabel("N", labelpad=-12, fontsize=_LABEL_PT)
    ax.set_zlabel("C", labelpad=-12, fontsize=_LABEL_PT)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_zticks([])
    title = _TITLES[kind] + (f" ({num_groups} groups)" if kind == "group" else "")
    ax.set_title(title, fontsize=_TITLE_PT)
    ax.view_init(elev=20, azim=-60)
    return ax


def stats_cubes(
    kinds: Sequence[str] = KINDS, shape: Sequence[int] = (4, 6, 5), num_groups: int = 2, width: float = 3.0
) -> Figure:
    """Side-by-side :func:`stats_cube` panels, one per kind in ``kinds``, each ``width`` inches or less to fit the page."""
    if not kinds:
        raise ValueError("expected at least one kind to draw, got none")
    size = _panel_width(width, len(kinds))
    fig = plt.figure(figsize=(size * len(kinds), size), dpi=DPI)
    for i, kind in enumerate(kinds):
        stats_cube(fig.add_subplot(1, len(kinds), i + 1, projection="3d"), kind, shape, num_groups)
    return _finish(fig)


def heatmap(ax: Axes, values: Tensor, title: str = "", fmt: str = "{:.2f}", cmap: str = "coolwarm") -> Axes:
    """Show a 2D tensor as a heat map with each value written in its cell."""
    if values.dim() != 2:
        raise ValueError(f"expected a 2D tensor to draw, got {values.dim()}D {tuple(values.shape)}")
    v = values.detach().cpu().float().numpy()
    image = ax.imshow(v, cmap=cmap)
    for (r, c), value in np.ndenumerate(v):
        ax.text(c, r, fmt.format(value), ha="center", va="center", fontsize=_SMALL_PT,
                color=_ink(image.cmap(image.norm(value))))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=_TITLE_PT)
    return ax


def histograms(
    named: dict[str, Tensor], bins: int = 40, cols: int = 4, value_range: Optional[tuple[float, float]] = None,
    xlabel: str = "value", ylabel: str = "count",
) -> Figure:
    """A grid of histograms, one per named tensor (e.g. activations before and after BatchNorm).

    Each tensor (any shape) is flattened; ``cols`` panels per row, each at most 2.6 inches wide.
    """
    if not named:
        raise ValueError("expected at least one tensor to draw")
    rows, ncols = -(-len(named) // cols), min(cols, len(named))
    width = _panel_width(2.6, ncols)
    fig, axes = plt.subplots(rows, ncols, figsize=(width * ncols, 2.0 * rows), dpi=DPI, squeeze=False)
    for ax in axes.flat[len(named):]:
        ax.axis("off")
    for ax, (name, t) in zip(axes.flat, named.items()):
        values = t.detach().cpu().float().flatten().numpy()
        ax.hist(values, bins=bins, range=value_range, color=_SHADE)
        ax.set_title(name, fontsize=_TITLE_PT)
        ax.set_xlabel(xlabel, fontsize=_LABEL_PT)
        ax.set_ylabel(ylabel, fontsize=_LABEL_PT)
        ax.tick_params(labelsize=_SMALL_PT)
    return _finish(fig)


def running_stats_curves(
    histories: dict[str, Tensor], true_mean: float, true_var: float, width: float = PAGE_WIDTH_IN
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
    width = min(width, PAGE_WIDTH_IN)
    fig, axes = plt.subplots(1, 2, figsize=(width, max(2.4, width / 2.6)), dpi=DPI)
    names, units = ("running_mean", "running_var"), ("data units", "data units squared")
    for col, (ax, name, unit, truth) in enumerate(zip(axes, names, units, (true_mean, true_var))):
        for label, h in histories.items():
            ax.plot(np.arange(h.shape[0]), h[:, col].detach().cpu().double().numpy(), label=label, linewidth=1.2)
        ax.axhline(truth, color="black", linestyle="--", linewidth=1, label=f"true value {truth:g}")
        ax.set_xlabel("training step (batches seen)", fontsize=_LABEL_PT)
        ax.set_ylabel(f"{name} ({unit})", fontsize=_LABEL_PT)
        ax.set_title(name, fontsize=_TITLE_PT)
        ax.tick_params(labelsize=_SMALL_PT)
        ax.legend(fontsize=_SMALL_PT)
    return _finish(fig)


def stats_table(x: Tensor, kind: str = "batch", num_groups: int = 1, fmt: str = "{:g}", cmap: str = "tab10") -> Figure:
    """Draw the values of ``x`` (N, C) or (N, C, L) laid out as torch prints them, coloured by shared statistics.

    (N, C): one panel, a row per sample n and a column per feature c. (N, C, L): one
    panel per sample n, a row per channel c and a column per position l. Cells of one
    colour share one mean and one variance (``normbook.reference.stats_groups``; colours
    repeat after 10 groups).
    """
    if not isinstance(x, Tensor) or x.dim() not in (2, 3):
        got = f"{x.dim()}D {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"expected a 2D (N, C) or 3D (N, C, L) tensor, got {got}; for a 4D (N, C, H, W) input pass x.flatten(2), positions flattened")
    groups = (stats_groups(kind, tuple(x.shape), num_groups) % 10).numpy()
    values = x.detach().cpu().double().numpy()
    if x.dim() == 2:
        panels, labels = [(values, groups, f"{_TITLES[kind]} on (N, C) = {tuple(x.shape)}")], ("n", "c")
    else:
        panels, labels = [(values[i], groups[i], f"sample n={i}") for i in range(x.shape[0])], ("c", "l")
    rows, cols = panels[0][0].shape
    # Panels side by side as long as they fit the page, then on further rows.
    panel_w, panel_h = 0.55 * cols + 0.5, 0.8 + 0.45 * rows + 0.3 * (x.dim() - 2)
    per_row = max(1, min(len(panels), int((PAGE_WIDTH_IN - 0.3) // panel_w)))
    grid_rows = -(-len(panels) // per_row)
    fig, axes = plt.subplots(grid_rows, per_row, figsize=(0.3 + panel_w * per_row, panel_h * grid_rows), dpi=DPI,
                             squeeze=False)
    for ax in axes.flat[len(panels):]:
        fig.delaxes(ax)
    for ax, (v, g, title) in zip(axes.flat, panels):
        image = ax.imshow(g, cmap=cmap, vmin=0, vmax=9)
        for (r, c), value in np.ndenumerate(v):
            ax.text(c, r, fmt.format(value), ha="center", va="center", fontsize=_SMALL_PT,
                    color=_ink(image.cmap(image.norm(g[r, c]))))
        ax.set_yticks(range(rows), [f"{labels[0]}={k}" for k in range(rows)], fontsize=_SMALL_PT)
        ax.set_xticks(range(cols), [f"{labels[1]}={k}" for k in range(cols)], fontsize=_SMALL_PT)
        ax.xaxis.tick_top()
        ax.set_title(title, fontsize=_SMALL_PT, pad=14)
    if x.dim() == 3:
        fig.suptitle(f"{_TITLES[kind]} on (N, C, L) = {tuple(x.shape)}", fontsize=_TITLE_PT)
    return _finish(fig)


def image_row(images: dict[str, Tensor], rescale: bool = True, size: float = 1.6) -> Figure:
    """Show images side by side, one titled panel per entry of ``images``.

    Each tensor is one image: (3, H, W) colour, or (1, H, W) / (H, W) grey. With
    ``rescale`` each image is mapped to [0, 1] by its own min and max (so normalized
    tensors with any range can be looked at); without it, values are clipped to [0, 1].
    """
    if not images:
        raise ValueError("expected at least one image to draw, got an empty dict")
    size = _panel_width(size, len(images))
    fig, axes = plt.subplots(1, len(images), figsize=(size * len(images), size + 0.3), dpi=DPI, squeeze=False)
    for ax, (title, img) in zip(axes[0], images.items()):
        if not isinstance(img, Tensor) or not (img.dim() == 2 or (img.dim() == 3 and img.shape[0] in (1, 3))):
            got = f"{img.dim()}D {tuple(img.shape)}" if isinstance(img, Tensor) else type(img).__name__
            raise ValueError(f"expected image {title!r} as (3, H, W), (1, H, W) or (H, W), got {got}; "
                             "pass one image of a batch, e.g. batch[0]")
        v = img.detach().cpu().double().reshape(-1, *img.shape[-2:])
        v = (v - v.min()) / (v.max() - v.min()).clamp_min(1e-12) if rescale else v.clamp(0, 1)
        ax.imshow(v.permute(1, 2, 0).numpy() if v.shape[0] == 3 else v[0].numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=_SMALL_PT)
    return _finish(fig)


def scalar_curves(
    runs: dict[str, dict[str, list[tuple[int, float]]]], tags: Sequence[str], width: float = 3.25,
    xlabel: str = "epoch", ylabels: Optional[dict[str, str]] = None, cols: int = 2,
) -> Figure:
    """One panel per TensorBoard scalar tag, one line per run; ``cols`` panels per row.

    ``runs`` maps a run's label to what ``normbook.tensorboard.read_scalars`` returned for it
    (tag -> [(step, value)]); ``tags`` picks the panels, e.g. ``["loss/train", "accuracy/test"]``.
    A panel's y label is ``ylabels[tag]``, else the tag's first part ("loss" for "loss/train").
    """
    if not runs or not tags:
        raise ValueError(f"expected at least one run and one tag, got {len(runs)} runs and {len(tags)} tags")
    for label, scalars in runs.items():
        missing = [t for t in tags if t not in scalars]
        if missing:
            raise ValueError(f"run {label!r} has no scalars {missing}; it has {sorted(scalars)}")
    ncols = min(cols, len(tags))
    nrows, width = -(-len(tags) // ncols), _panel_width(width, ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, 2.3 * nrows), dpi=DPI, squeeze=False)
    for ax in axes.flat[len(tags):]:
        fig.delaxes(ax)
    for ax, tag in zip(axes.flat, tags):
        for label, scalars in runs.items():
            steps, values = zip(*scalars[tag])
            ax.plot(steps, values, marker="o", markersize=3, label=label)
        ax.set_title(tag, fontsize=_TITLE_PT)
        ax.set_xlabel(xlabel, fontsize=_LABEL_PT)
        ax.set_ylabel((ylabels or {}).get(tag, tag.split("/")[0]), fontsize=_LABEL_PT)
        ax.tick_params(labelsize=_SMALL_PT)
    axes[0][0].legend(fontsize=_SMALL_PT)
    return _finish(fig)


def event_histograms(
    rows: dict[str, dict[str, list[tuple[int, np.ndarray, np.ndarray]]]], bins: int = 40, width: float = 2.6,
    xlabel: str = "value", ylabel: str = "density",
) -> Figure:
    """A grid of TensorBoard histograms as read back from event files, one line per step (darker = later).

    ``rows`` maps a row label to {panel title -> [(step, bucket_limits (B,), bucket_counts (B,))]}
    (entries of ``normbook.tensorboard.read_histograms``). TensorBoard's uneven buckets are
    re-binned into ``bins`` equal bins over the panel's range and drawn as densities.
    """
    if not rows or any(not panels for panels in rows.values()):
        raise ValueError("expected rows of at least one panel each: {row label: {panel title: histogram events}}")
    if bins < 2:
        raise ValueError(f"expected bins >= 2, got {bins}")
    cols = max(len(panels) for panels in rows.values())
    width = _panel_width(width, cols)
    fig, axes = plt.subplots(len(rows), cols, figsize=(width * cols, 2.1 * len(rows)), dpi=DPI, squeeze=False)
    for r, (row, panels) in enumerate(rows.items()):
        for ax in axes[r][len(panels):]:
            ax.axis("off")
        for ax, (title, events) in zip(axes[r], panels.items()):
            if not events:
                raise ValueError(f"panel {title!r} of row {row!r} has no histogram events")
            lo = min(float(limits[0]) for _, limits, _ in events)
            hi = max(float(limits[-1]) for _, limits, _ in events)
            edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
            colors = plt.cm.viridis(np.linspace(0.85, 0.0, len(events)))
            for color, (step, limits, counts) in zip(colors, events):
                centers = (np.concatenate([limits[:1], limits[:-1]]) + limits) / 2  # bucket i spans limits[i-1]..limits[i]
                density, _ = np.histogram(centers, bins=edges, weights=counts)
                ax.stairs(density / max(density.sum(), 1.0) / np.diff(edges), edges, color=color, label=f"step {step}")
            ax.set_title(f"{row}: {title}", fontsize=_SMALL_PT)
            ax.set_xlabel(xlabel, fontsize=_LABEL_PT)
            ax.set_ylabel(ylabel, fontsize=_LABEL_PT)
            ax.tick_params(labelsize=_SMALL_PT)
    axes[0][0].legend(fontsize=_SMALL_PT)
    return _finish(fig)


def padding_source_index(pad: torch.nn.Module, height: int, width: int) -> Tensor:
    """Which input cell each output cell of a 2D padding module copies: (H', W') long, -1 where it writes a constant.

    The module pads two index images, ``arange(H*W)`` and the same shifted by H*W, each
    of shape (1, 1, H, W). A copied cell moves with the shift; a constant cell does not.
    """
    if not isinstance(pad, torch.nn.Module):
        raise TypeError(f"expected a padding module such as nn.ReflectionPad2d(2), got {type(pad).__name__}")
    if not (isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0):
        raise ValueError(f"expected positive int height and width, got {height!r} and {width!r}")
    index = torch.arange(height * width, dtype=torch.float64).reshape(1, 1, height, width)
    with torch.no_grad():
        a, b = pad(index), pad(index + height * width)
    if a.dim() != 4 or a.shape[:2] != (1, 1):
        raise ValueError(f"expected the module to return (1, 1, H', W') for a (1, 1, H, W) input, got {tuple(a.shape)}")
    copied = (b - a) == height * width
    return torch.where(copied, a, torch.full_like(a, -1.0))[0, 0].long()


def padding_sources(pads: dict[str, torch.nn.Module], height: int = 3, width: int = 3, size: float = 2.3) -> Figure:
    """One panel per padding module: its output for ``arange(H*W)``, each cell coloured by the input cell it copies.

    Cells in the colour of an input cell are copies of it (sources from
    :func:`padding_source_index`); grey cells hold the constant the module writes. The
    black frame marks the original (H, W) input; the number in a cell is the padded value.
    """
    if not pads:
        raise ValueError("expected at least one padding module to draw, got an empty dict")
    cmap = plt.get_cmap("tab20" if height * width > 10 else "tab10")
    size = _panel_width(size, len(pads))
    fig, axes = plt.subplots(1, len(pads), figsize=(size * len(pads), size + 0.3), dpi=DPI, squeeze=False)
    x = torch.arange(height * width, dtype=torch.float32).reshape(1, 1, height, width)
    for ax, (title, pad) in zip(axes[0], pads.items()):
        src = padding_source_index(pad, height, width).numpy()
        with torch.no_grad():
            values = pad(x)[0, 0].numpy()
        colors = np.where(src[..., None] >= 0, cmap(np.clip(src, 0, None) % cmap.N), (0.85, 0.85, 0.85, 1.0))
        ax.imshow(colors)
        for (r, c), v in np.ndenumerate(values):
            ax.text(c, r, f"{v:g}", ha="center", va="center", fontsize=_SMALL_PT, color=_ink(colors[r, c]))
        left, _, top, _ = (tuple(pad.padding) * 4)[:4] if hasattr(pad, "padding") else (0, 0, 0, 0)
        ax.add_patch(plt.Rectangle((left - 0.5, top - 0.5), width, height, fill=False, edgecolor="black", linewidth=2))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=_SMALL_PT)
    return _finish(fig)


def activation_curves(x: Tensor, curves: dict[str, tuple[Tensor, Tensor]], size: float = 3.0) -> Figure:
    """One panel per activation: f(x) (solid) and its gradient f'(x) (dashed) against x.

    ``x`` is (L,); ``curves`` maps a name to (values (L,), gradients (L,)), e.g. from
    autograd: ``y = f(x); y.sum().backward()`` gives ``x.grad``.
    """
    if not isinstance(x, Tensor) or x.dim() != 1:
        raise ValueError(f"expected x as a 1D tensor (L,), got {tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    if not curves:
        raise ValueError("expected at least one (values, gradients) pair to draw, got an empty dict")
    for name, pair in curves.items():
        if len(pair) != 2 or any(not isinstance(t, Tensor) or t.shape != x.shape for t in pair):
            raise ValueError(f"expected curves[{name!r}] as (values, gradients), each of x's shape {tuple(x.shape)}")
    height = size * 0.75
    size = _panel_width(size, len(curves))
    fig, axes = plt.subplots(1, len(curves), figsize=(size * len(curves), height), dpi=DPI, squeeze=False)
    xs = x.detach().cpu().double().numpy()
    for ax, (name, (y, dy)) in zip(axes[0], curves.items()):
        ax.plot(xs, y.detach().cpu().double().numpy(), color=_SHADE, label=f"{name}(x)")
        ax.plot(xs, dy.detach().cpu().double().numpy(), color="#d8563b", linestyle="--", label=f"d {name}(x) / dx")
        ax.axhline(0, color="#999999", linewidth=0.6)
        ax.axvline(0, color="#999999", linewidth=0.6)
        ax.set_title(name, fontsize=_TITLE_PT)
        ax.set_xlabel("x", fontsize=_LABEL_PT)
        ax.set_ylabel("value", fontsize=_LABEL_PT)
        ax.tick_params(labelsize=_SMALL_PT)
        ax.legend(fontsize=_SMALL_PT)
    return _finish(fig)


def image_grids(images: dict[str, np.ndarray], width: float = PAGE_WIDTH_IN) -> Figure:
    """Stack wide uint8 images (H, W, 3), e.g. TensorBoard grids from ``read_images``, one titled row each."""
    if not images:
        raise ValueError("expected at least one image to draw, got an empty dict")
    for title, img in images.items():
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] not in (3, 4):
            got = f"{img.dtype} {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
            raise ValueError(f"expected image {title!r} as a uint8 array (H, W, 3 or 4), got {got}")
    width = min(width, PAGE_WIDTH_IN)
    heights = [img.shape[0] * width / img.shape[1] for img in images.values()]
    fig, axes = plt.subplots(len(images), 1, figsize=(width, sum(heights) + 0.3 * len(images)), dpi=DPI,
                             squeeze=False, gridspec_kw={"height_ratios": heights})
    for ax, (title, img) in zip(axes[:, 0], images.items()):
        ax.imshow(img, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=_SMALL_PT)
    return _finish(fig)


def curve_panels(
    panels: dict[str, dict[str, Tensor]], xlabel: str = "training step", ylabel: str = "loss",
    width: float = PAGE_WIDTH_IN,
) -> Figure:
    """One panel per title in ``panels``, one line per label: ``panels[title][label]`` is a 1D tensor (steps,).

    NaN values (a diverged run) leave the line's remaining steps blank; the legend marks such lines "(NaN)".
    """
    if not panels or any(not lines for lines in panels.values()):
        raise ValueError("expected at least one panel, each with at least one curve")
    for title, lines in panels.items():
        for label, v in lines.items():
            if not isinstance(v, Tensor) or v.dim() != 1 or v.numel() < 2:
                got = f"{v.dim()}D {tuple(v.shape)}" if isinstance(v, Tensor) else type(v).__name__
                raise ValueError(f"expected curve {title!r}/{label!r} as a 1D tensor (steps,) of >= 2 values, got {got}")
    width = min(width, PAGE_WIDTH_IN)
    fig, axes = plt.subplots(1, len(panels), figsize=(width, max(2.4, width / (2.2 * len(panels)) + 1.0)), dpi=DPI,
                             squeeze=False)
    for ax, (title, lines) in zip(axes[0], panels.items()):
        for label, v in lines.items():
            values = v.detach().cpu().double().numpy()
            ax.plot(np.arange(len(values)), values, linewidth=1.0,
                    label=label + (" (NaN)" if np.isnan(values).any() else ""))
        ax.set_xlabel(xlabel, fontsize=_LABEL_PT)
        ax.set_ylabel(ylabel, fontsize=_LABEL_PT)
        ax.set_title(title, fontsize=_TITLE_PT)
        ax.tick_params(labelsize=_SMALL_PT)
        ax.legend(fontsize=_SMALL_PT)
    return _finish(fig)
