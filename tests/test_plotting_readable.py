"""Every figure helper in normbook.plotting makes a figure a reader can read on the book's page.

- At most PAGE_WIDTH_IN wide as the notebook stores it (the inline backend's tight bounding box at
  DPI), so the page shows it at full size (tests/test_browser.py checks that the page does);
- no text below MIN_FONT_PT points at that size;
- an opaque background (readable in the theme's dark mode);
- every panel has an x and a y label, or is an image panel (a picture with no data axes).
"""

import inspect
import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from PIL import Image  # noqa: E402
from torch import nn  # noqa: E402

from normbook import plotting  # noqa: E402


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


def _histogram_events(scale, steps=3):
    rng = np.random.default_rng(int(scale * 10))
    events = []
    for step in range(steps):
        counts, edges = np.histogram(rng.normal(0, scale * (step + 1), 2000), bins=30)
        events.append((step, edges[1:], counts.astype(float)))
    return events


def _scalars(shift):
    return {tag: [(e, shift + v / e) for e in range(1, 7)] for v, tag in
            enumerate(["loss/train", "accuracy/train", "loss/test", "accuracy/test"], start=1)}


def _one_panel(ax_helper, projection=None, helper=None):
    """An Axes helper's drawing in a 3.2-inch figure, finished as the figure helpers finish theirs."""
    fig = plt.figure(figsize=(3.2, 3.2), dpi=plotting.DPI)
    ax = fig.add_subplot(projection=projection)
    plotting.stats_cube(ax, "batch") if helper == "cube" else ax_helper(ax)
    return plotting._finish(fig)


# One or more calls per helper, the widest the chapters make and wider, as (id, zero-argument factory).
CASES = {
    "stats_cube": [("batch", lambda: _one_panel(lambda _: None, projection="3d", helper="cube"))],
    "stats_cubes": [("four kinds", lambda: plotting.stats_cubes(shape=(4, 6, 5), num_groups=2)),
                    ("wide panels asked", lambda: plotting.stats_cubes(width=5.0))],
    "heatmap": [("3x4", lambda: _one_panel(lambda ax: plotting.heatmap(ax, torch.randn(3, 4, generator=_g()), "t")))],
    "histograms": [("6 in 3 cols", lambda: plotting.histograms(
        {f"h{i}": torch.randn(500, generator=_g(i)) for i in range(6)}, cols=3, value_range=(-2.0, 2.0))),
        ("8 in 4 cols", lambda: plotting.histograms({f"h{i}": torch.randn(50, generator=_g(i)) for i in range(8)}))],
    "running_stats_curves": [("two histories", lambda: plotting.running_stats_curves(
        {"momentum=0.1": torch.rand(31, 2, generator=_g()), "momentum=None": torch.rand(31, 2, generator=_g(1))},
        0.5, 2.0)), ("width 9 asked", lambda: plotting.running_stats_curves(
            {"m": torch.rand(5, 2, generator=_g())}, 0.0, 1.0, width=9.0))],
    "stats_table": [("(N, C)", lambda: plotting.stats_table(torch.arange(12.0).reshape(4, 3))),
                    ("(N, C, L)", lambda: plotting.stats_table(torch.arange(12.0).reshape(2, 3, 2))),
                    ("many panels", lambda: plotting.stats_table(torch.arange(48.0).reshape(6, 2, 4), "instance"))],
    "image_row": [("5 images", lambda: plotting.image_row(
        {f"im{i}": torch.rand(3, 8, 8, generator=_g(i)) for i in range(5)})),
        ("8 images", lambda: plotting.image_row({f"im{i}": torch.rand(8, 8, generator=_g(i)) for i in range(8)}))],
    "scalar_curves": [("four tags", lambda: plotting.scalar_curves(
        {"with BatchNorm": _scalars(0.0), "without BatchNorm": _scalars(0.5)},
        ["loss/train", "accuracy/train", "loss/test", "accuracy/test"])),
        ("one tag", lambda: plotting.scalar_curves({"run": _scalars(0.0)}, ["loss/test"]))],
    "event_histograms": [("3x3", lambda: plotting.event_histograms(
        {row: {f"conv{i}": _histogram_events(i) for i in (1, 2, 3)} for row in ("BN net", "BN after", "no BN")},
        bins=80))],
    "padding_sources": [("two pads", lambda: plotting.padding_sources(
        {"ReflectionPad2d(2)": nn.ReflectionPad2d(2), "ReplicationPad2d(2)": nn.ReplicationPad2d(2)})),
        ("four pads", lambda: plotting.padding_sources(
            {f"ZeroPad2d({k})": nn.ZeroPad2d(k) for k in range(1, 5)}))],
    "activation_curves": [("three", lambda: plotting.activation_curves(
        torch.linspace(-4, 4, 9), {n: (torch.linspace(-4, 4, 9), torch.ones(9)) for n in ("relu", "sigmoid", "tanh")}))],
    "image_grids": [("two grids", lambda: plotting.image_grids(
        {"a": np.zeros((34, 274, 3), np.uint8), "b": np.full((68, 274, 3), 200, np.uint8)}, width=9.0))],
    "curve_panels": [("two panels", lambda: plotting.curve_panels(
        {f"learning rate {lr}": {"with BN": torch.rand(100, generator=_g()), "without BN": torch.rand(100, generator=_g(1))}
         for lr in (0.05, 0.5)}, ylabel="training loss (cross-entropy)")),
        ("four panels", lambda: plotting.curve_panels({f"p{i}": {"a": torch.rand(10, generator=_g(i))} for i in range(4)}))],
}


PARAMS = [pytest.param(factory, id=f"{name}-{case}") for name, cases in CASES.items() for case, factory in cases]


def test_every_figure_helper_is_checked_here():
    helpers = {name for name in plotting.__all__ if callable(getattr(plotting, name))
               and inspect.signature(getattr(plotting, name)).return_annotation in ("Figure", "Axes")}
    assert helpers == set(CASES), f"add a case for {sorted(helpers - set(CASES))}"


def _stored_png(fig: Figure) -> Image.Image:
    """The PNG as a notebook stores it: matplotlib-inline saves with bbox_inches='tight' at the figure's dpi."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return Image.open(io.BytesIO(buffer.getvalue()))


@pytest.mark.parametrize("factory", PARAMS)
def test_figure_fits_the_page_with_readable_text(factory):
    fig = factory()
    try:
        assert fig.dpi == plotting.DPI
        assert fig.get_figwidth() <= plotting.PAGE_WIDTH_IN + 1e-9
        png = _stored_png(fig)  # draws the figure: every tick label now exists
        assert png.width <= plotting.PAGE_WIDTH_IN * plotting.DPI + 2, f"stored {png.width} px wide"
        small = [(t.get_text(), t.get_fontsize()) for t in fig.findobj(Text)
                 if t.get_visible() and t.get_text().strip() and t.get_fontsize() < plotting.MIN_FONT_PT]
        assert not small, f"text below {plotting.MIN_FONT_PT} pt: {small[:5]}"
        alpha = np.asarray(png.convert("RGBA"))[..., 3]
        assert alpha.min() == 255, "the stored PNG must be opaque (transparent parts turn dark in dark mode)"
        corners = np.asarray(png.convert("RGB"))[[0, 0, -1, -1], [0, -1, 0, -1]]
        assert corners.min() >= 230, f"expected a white background, corners are {corners.tolist()}"
    finally:
        plt.close(fig)


@pytest.mark.parametrize("factory", PARAMS)
def test_every_data_panel_has_axis_labels(factory):
    fig = factory()
    try:
        for ax in fig.axes:
            if not ax.axison or ax.images:  # an image panel: a picture, or a table of values drawn as one
                continue
            labels = [ax.get_xlabel(), ax.get_ylabel()] + ([ax.get_zlabel()] if ax.name == "3d" else [])
            assert all(label.strip() for label in labels), f"panel {ax.get_title()!r} lacks an axis label: {labels}"
    finally:
        plt.close(fig)


@pytest.mark.parametrize("factory", PARAMS)
def test_finish_raises_smaller_text_to_the_minimum(factory):
    """_finish, which every figure helper ends with, raises any text below MIN_FONT_PT to it."""
    fig = factory()
    try:
        for text in fig.findobj(Text):
            text.set_fontsize(5)
        plotting._finish(fig)
        assert min(t.get_fontsize() for t in fig.findobj(Text)) >= plotting.MIN_FONT_PT
    finally:
        plt.close(fig)


@pytest.mark.parametrize("factory", PARAMS)
def test_numbers_in_cells_contrast_with_their_cell(factory):
    """A value written in a coloured cell (heat maps, tables, padding pictures) is black on light, white on dark."""
    fig = factory()
    try:
        for ax in fig.axes:
            if not ax.images or not ax.texts:
                continue
            image = ax.images[0]
            rgba = image.to_rgba(image.get_array()) if image.get_array().ndim == 2 else image.get_array()
            for text in ax.texts:
                col, row = (int(round(v)) for v in text.get_position())
                r, g, b = np.asarray(rgba[row, col][:3], dtype=float) / (255 if rgba.dtype == np.uint8 else 1)
                ink = np.asarray(matplotlib.colors.to_rgb(text.get_color()))
                luminance = lambda c: 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]  # noqa: E731
                assert abs(luminance(ink) - luminance((r, g, b))) >= 0.35, (
                    f"{text.get_text()!r} in {text.get_color()} on cell colour {(r, g, b)}")
    finally:
        plt.close(fig)
