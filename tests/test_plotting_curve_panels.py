"""normbook.plotting.curve_panels: one panel per title, one line per curve holding exactly its values."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from normbook.plotting import curve_panels  # noqa: E402


@pytest.mark.parametrize("n_panels,n_lines,steps", [(1, 1, 2), (2, 2, 30), (3, 1, 7), (1, 4, 100)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lines_hold_the_values(n_panels, n_lines, steps, dtype):
    g = torch.Generator().manual_seed(n_panels * 100 + n_lines + steps)
    panels = {f"panel {p}": {f"run {k}": torch.randn(steps, generator=g, dtype=dtype) for k in range(n_lines)}
              for p in range(n_panels)}
    fig = curve_panels(panels, ylabel="loss")
    assert len(fig.axes) == n_panels
    for ax, (title, lines) in zip(fig.axes, panels.items()):
        assert ax.get_title() == title and ax.get_ylabel() == "loss"
        assert [t.get_text() for t in ax.get_legend().get_texts()] == list(lines)
        for line, values in zip(ax.get_lines(), lines.values()):
            np.testing.assert_array_equal(line.get_xdata(), np.arange(steps))
            np.testing.assert_allclose(line.get_ydata(), values.double().numpy())
    plt.close(fig)


def test_nan_curves_are_marked():
    fig = curve_panels({"lr 0.5": {"plain": torch.tensor([1.0, float("nan"), float("nan")]),
                                   "bn": torch.tensor([1.0, 0.5, 0.2])}})
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["plain (NaN)", "bn"]
    plt.close(fig)


@pytest.mark.parametrize("bad,match", [
    ({}, "at least one panel"),
    ({"a": {}}, "at least one panel"),
    ({"a": {"x": torch.zeros(3, 2)}}, r"'a'/'x' as a 1D tensor \(steps,\) of >= 2 values, got 2D \(3, 2\)"),
    ({"a": {"x": torch.zeros(1)}}, r"got 1D \(1,\)"),
    ({"a": {"x": [1.0, 2.0]}}, "got list"),
])
def test_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        curve_panels(bad)
