"""normbook.plotting.scalar_curves and event_histograms: figures drawn from TensorBoard event files."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch.utils.tensorboard import SummaryWriter  # noqa: E402

from normbook import plotting  # noqa: E402
from normbook.tensorboard import read_histograms, read_scalars  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A real run folder: scalars at steps 1..3, histograms of N(0, s^2) at steps 0..2."""
    logdir = tmp_path_factory.mktemp("run")
    g = torch.Generator().manual_seed(0)
    with SummaryWriter(str(logdir)) as writer:
        for step in range(3):
            writer.add_scalar("loss", 2.0 / (step + 1), step + 1)
            writer.add_scalar("acc", 0.1 * (step + 1), step + 1)
            for name, scale in (("a", 1.0), ("b", 3.0)):
                writer.add_histogram(name, torch.randn(4000, generator=g) * scale * (step + 1), step)
    return read_scalars(logdir), read_histograms(logdir)


@pytest.mark.parametrize("tags", [["loss"], ["loss", "acc"]])
def test_scalar_curves_draws_one_line_per_run_in_each_panel(run, tags):
    scalars, _ = run
    twice = {k: [(s, v * 2) for s, v in vals] for k, vals in scalars.items()}
    fig = plotting.scalar_curves({"one": scalars, "two": twice}, tags)
    assert [ax.get_title() for ax in fig.axes] == tags
    for ax, tag in zip(fig.axes, tags):
        lines = ax.get_lines()
        assert len(lines) == 2
        np.testing.assert_allclose(lines[0].get_ydata(), [v for _, v in scalars[tag]])
        np.testing.assert_allclose(lines[1].get_ydata(), [2 * v for _, v in scalars[tag]])
        assert list(lines[0].get_xdata()) == [1, 2, 3]
    plt.close(fig)


def test_scalar_curves_errors(run):
    scalars, _ = run
    with pytest.raises(ValueError, match="has no scalars"):
        plotting.scalar_curves({"one": scalars}, ["nope"])
    with pytest.raises(ValueError, match="at least one run"):
        plotting.scalar_curves({}, ["loss"])


@pytest.mark.parametrize("bins", [10, 40])
def test_event_histograms_draw_every_step_as_a_density_with_the_right_spread(run, bins):
    _, hists = run
    fig = plotting.event_histograms({"row": {"a": hists["a"], "b": hists["b"]}, "other": {"a": hists["a"]}}, bins=bins)
    axes = fig.axes
    assert len(axes) == 4 and not axes[3].axison  # the short row's empty panel is switched off
    for ax, (tag, scale) in zip(axes[:2], (("a", 1.0), ("b", 3.0))):
        patches = ax.patches
        assert len(patches) == 3  # one stairs line per step
        for step, stairs in enumerate(patches):
            values, edges = stairs.get_data().values, stairs.get_data().edges
            assert len(values) == bins
            np.testing.assert_allclose((values * np.diff(edges)).sum(), 1.0)  # a density
            centers = (edges[:-1] + edges[1:]) / 2
            mass = values * np.diff(edges)
            variance = (mass * centers ** 2).sum() - (mass * centers).sum() ** 2
            # binning adds h^2 / 12 to the variance (Sheppard); what remains is the logged N(0, s^2)'s
            spread = np.sqrt(variance - np.diff(edges)[0] ** 2 / 12)
            assert spread == pytest.approx(scale * (step + 1), rel=0.1)
    plt.close(fig)


def test_event_histograms_errors(run):
    _, hists = run
    with pytest.raises(ValueError, match="at least one panel"):
        plotting.event_histograms({"row": {}})
    with pytest.raises(ValueError, match="no histogram events"):
        plotting.event_histograms({"row": {"a": []}})
    with pytest.raises(ValueError, match="bins >= 2"):
        plotting.event_histograms({"row": {"a": hists["a"]}}, bins=1)
