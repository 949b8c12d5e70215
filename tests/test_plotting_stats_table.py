"""normbook.plotting.stats_table: the drawn colours are the statistics groups, the texts are the values."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from normbook import reference as R  # noqa: E402
from normbook.plotting import stats_table  # noqa: E402


@pytest.mark.parametrize("shape", [(3, 3), (2, 5), (4, 1), (2, 2, 3), (3, 1, 4), (1, 4, 2)])
@pytest.mark.parametrize("kind", ["batch", "layer", "instance"])
def test_stats_table_draws_groups_and_values(shape, kind):
    x = torch.arange(int(np.prod(shape)), dtype=torch.float32).reshape(shape) - 2.5
    fig = stats_table(x, kind, fmt="{:.1f}")
    groups = R.stats_groups(kind, shape) % 10
    panels = [groups] if len(shape) == 2 else list(groups)
    values = [x] if len(shape) == 2 else list(x)
    assert len(fig.axes) == len(panels)
    for ax, g, v in zip(fig.axes, panels, values):
        np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), g.numpy())
        assert [t.get_text() for t in ax.texts] == [f"{value:.1f}" for value in v.flatten().tolist()]
    plt.close(fig)


def test_stats_table_group_kind_and_float64():
    x = torch.randn(2, 4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    fig = stats_table(x, "group", num_groups=2, fmt="{:.3f}")
    assert np.asarray(fig.axes[0].images[0].get_array()).tolist() == [[0] * 3] * 2 + [[1] * 3] * 2
    assert fig.axes[1].texts[0].get_text() == f"{x[1, 0, 0].item():.3f}"
    plt.close(fig)


@pytest.mark.parametrize("x, message", [
    (torch.zeros(2, 3, 4, 4), r"got 4D \(2, 3, 4, 4\); for a 4D \(N, C, H, W\) input pass x.flatten\(2\)"),
    (torch.zeros(3), r"got 1D \(3,\)"),
    ([[0.0, 1.0]], "got list"),
])
def test_stats_table_rejects_bad_input(x, message):
    with pytest.raises(ValueError, match=message):
        stats_table(x)


def test_stats_table_rejects_bad_kind():
    with pytest.raises(ValueError, match="kind must be one of"):
        stats_table(torch.zeros(2, 3), "weight")
