"""normbook.plotting.image_row: one panel per image, showing exactly the (rescaled or clipped) pixels."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from normbook import plotting  # noqa: E402


def _shown(fig):
    """The arrays the panels display, in order."""
    return [np.asarray(ax.images[0].get_array()) for ax in fig.axes]


@pytest.mark.parametrize("shape", [(3, 8, 8), (1, 5, 7), (6, 4), (3, 1, 9)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.uint8])
def test_rescaled_panels_show_min_max_scaled_pixels(shape, dtype):
    g = torch.Generator().manual_seed(sum(shape))
    img = (torch.rand(shape, generator=g) * 200).to(dtype)
    fig = plotting.image_row({"a": img, "b": img.double() * 3 - 7})
    v = img.double().reshape(-1, *shape[-2:])
    expected = ((v - v.min()) / (v.max() - v.min())).permute(1, 2, 0).numpy()
    expected = expected if v.shape[0] == 3 else expected[..., 0]
    for shown in _shown(fig):  # an affine change of the pixels looks the same after rescaling
        np.testing.assert_allclose(shown, expected, atol=1e-6)
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    plt.close(fig)


def test_without_rescale_values_are_clipped():
    img = torch.tensor([[[-1.0, 0.25], [0.5, 2.0]]] * 3)
    fig = plotting.image_row({"clipped": img}, rescale=False)
    np.testing.assert_allclose(_shown(fig)[0][..., 0], [[0.0, 0.25], [0.5, 1.0]])
    plt.close(fig)


def test_constant_image_does_not_divide_by_zero():
    fig = plotting.image_row({"flat": torch.full((3, 4, 4), 0.7)})
    assert np.isfinite(_shown(fig)[0]).all()
    plt.close(fig)


@pytest.mark.parametrize("images, message", [
    ({}, "expected at least one image"),
    ({"batch": torch.zeros(2, 3, 4, 4)}, "expected image 'batch' as (3, H, W), (1, H, W) or (H, W), got 4D (2, 3, 4, 4)"),
    ({"two": torch.zeros(2, 4, 4)}, "got 3D (2, 4, 4)"),
    ({"list": [[0.0]]}, "got list"),
])
def test_bad_images_are_rejected(images, message):
    with pytest.raises(ValueError, match=__import__("re").escape(message)):
        plotting.image_row(images)
    plt.close("all")
