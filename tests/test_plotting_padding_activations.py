"""normbook.plotting: padding_source_index / padding_sources, activation_curves, image_grids."""

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from normbook.plotting import activation_curves, image_grids, padding_source_index, padding_sources  # noqa: E402

NP_MODES = {nn.ReflectionPad2d: "reflect", nn.ReplicationPad2d: "edge", nn.CircularPad2d: "wrap"}


def numpy_index(mode, h, w, padding):
    left, right, top, bottom = padding
    index = np.arange(h * w).reshape(h, w)
    if mode == "constant":
        return np.pad(index, ((top, bottom), (left, right)), mode="constant", constant_values=-1)
    return np.pad(index, ((top, bottom), (left, right)), mode=mode)


from padding_cases import CLASSES, PADDINGS, SIZES, pad4, torch_accepts  # a tests/ helper


CASES = [(cls, hw, p) for cls in CLASSES for hw in SIZES for p in PADDINGS]
VALID = [case for case in CASES if torch_accepts(*case)]
INVALID = [case for case in CASES if not torch_accepts(*case)]


@pytest.mark.parametrize("cls,hw,padding", INVALID)
def test_padding_source_index_passes_on_torchs_error_for_too_much_padding(cls, hw, padding):
    with pytest.raises(RuntimeError) as from_torch:
        cls(padding)(torch.zeros(1, 1, *hw))
    with pytest.raises(RuntimeError, match=re.escape(str(from_torch.value).splitlines()[0])):
        padding_source_index(cls(padding), *hw)


@pytest.mark.parametrize("cls,hw,padding", VALID)
def test_padding_source_index_matches_numpy_and_torch(cls, hw, padding):
    h, w = hw
    pad = cls(padding)
    src = padding_source_index(pad, h, w)
    assert src.dtype == torch.long
    np.testing.assert_array_equal(src.numpy(), numpy_index(NP_MODES.get(cls, "constant"), h, w, pad4(padding)))
    # the claim itself, on random values: every copied cell holds its source's value
    x = torch.randn(1, 1, h, w, generator=torch.Generator().manual_seed(h * 10 + w))
    y = pad(x)[0, 0]
    copied = src >= 0
    torch.testing.assert_close(y[copied], x.flatten()[src[copied]], rtol=0, atol=0)
    assert torch.all(y[~copied] == 0)


@pytest.mark.parametrize("value", [-1.0, 0.0, 2.0, 4.0, 3.5])
def test_padding_source_index_constant_values_that_look_like_indices(value):
    src = padding_source_index(nn.ConstantPad2d((1, 2, 0, 1), value), 3, 3)
    np.testing.assert_array_equal(src.numpy(), numpy_index("constant", 3, 3, (1, 2, 0, 1)))


def test_padding_source_index_errors():
    with pytest.raises(TypeError, match="expected a padding module"):
        padding_source_index(lambda t: t, 3, 3)
    with pytest.raises(ValueError, match="positive int height and width"):
        padding_source_index(nn.ZeroPad2d(1), 0, 3)
    with pytest.raises(ValueError, match=r"return \(1, 1, H', W'\)"):
        padding_source_index(nn.Flatten(), 3, 3)
    with pytest.raises(RuntimeError, match="Padding size should be less than"):
        padding_source_index(nn.ReflectionPad2d(3), 3, 3)


def test_padding_sources_colours_copies_like_their_source():
    pads = {"reflect": nn.ReflectionPad2d(2), "replicate": nn.ReplicationPad2d((1, 0, 2, 1)), "zero": nn.ZeroPad2d(1)}
    fig = padding_sources(pads, 3, 3)
    assert len(fig.axes) == 3
    for ax, (name, pad) in zip(fig.axes, pads.items()):
        rgba = np.asarray(ax.images[0].get_array())
        src = padding_source_index(pad, 3, 3).numpy()
        for k in range(9):
            cells = rgba[src == k]
            assert len(cells) >= 1 and np.all(cells == cells[0])
        if (src < 0).any():
            assert np.allclose(rgba[src < 0], (0.85, 0.85, 0.85, 1.0))
        out = pad(torch.arange(9.0).reshape(1, 1, 3, 3))[0, 0]
        assert [t.get_text() for t in ax.texts] == [f"{v:g}" for v in out.flatten().tolist()]
        assert ax.get_title() == name
    plt.close(fig)
    with pytest.raises(ValueError, match="at least one padding module"):
        padding_sources({})


@pytest.mark.parametrize("n", [1, 2, 3])
def test_activation_curves_draws_values_and_gradients(n):
    x = torch.linspace(-3, 3, 13)
    curves = {f"f{i}": (x * i, torch.full_like(x, float(i))) for i in range(n)}
    fig = activation_curves(x, curves)
    assert len(fig.axes) == n
    for ax, (y, dy) in zip(fig.axes, curves.values()):
        lines = ax.get_lines()
        np.testing.assert_allclose(lines[0].get_ydata(), y.numpy())
        np.testing.assert_allclose(lines[1].get_ydata(), dy.numpy())
        np.testing.assert_allclose(lines[0].get_xdata(), x.numpy())
    plt.close(fig)


def test_activation_curves_errors():
    x = torch.linspace(-1, 1, 5)
    with pytest.raises(ValueError, match="1D tensor"):
        activation_curves(x[None], {"f": (x, x)})
    with pytest.raises(ValueError, match="empty dict"):
        activation_curves(x, {})
    with pytest.raises(ValueError, match=r"curves\['f'\] as \(values, gradients\)"):
        activation_curves(x, {"f": (x, x[:3])})


@pytest.mark.parametrize("shapes", [[(32, 256, 3)], [(32, 256, 3), (64, 128, 4)]])
def test_image_grids_shows_each_image(shapes):
    rng = np.random.default_rng(0)
    images = {f"img{i}": rng.integers(0, 256, s, dtype=np.uint8) for i, s in enumerate(shapes)}
    fig = image_grids(images)
    assert len(fig.axes) == len(shapes)
    for ax, (title, img) in zip(fig.axes, images.items()):
        np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), img)
        assert ax.get_title() == title
    plt.close(fig)


def test_image_grids_errors():
    with pytest.raises(ValueError, match="empty dict"):
        image_grids({})
    with pytest.raises(ValueError, match=r"uint8 array \(H, W, 3 or 4\)"):
        image_grids({"x": np.zeros((4, 4, 3), dtype=np.float32)})
    with pytest.raises(ValueError, match=r"uint8 array \(H, W, 3 or 4\)"):
        image_grids({"x": np.zeros((3, 4, 5), dtype=np.uint8)})
