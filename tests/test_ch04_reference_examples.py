"""Chapter 4's examples run on normbook.reference: the checks of normbook's own code that left the chapter.

The chapter teaches torch's layers; what it used to show about the book's reference implementations
(their messages, their reading of a 3D input, the labels behind its figure, their identities) is checked
here, on the chapter's own inputs. tests/test_reference_norms.py covers the same functions more broadly.
"""

import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from normbook import reference


def _randn(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_a_3d_tensor_is_read_as_n_c_l_not_as_one_image():
    """The chapter's unbatched image (C=5, H=6, W=2): InstanceNorm2d reads it as one image, the reference as
    5 samples of 6 channels of length 2 (like F.instance_norm and InstanceNorm1d), with no error."""
    image = _randn(5, 6, 2)
    unbatched = nn.InstanceNorm2d(5)(image)
    as_3d = reference.instance_norm(image)
    torch.testing.assert_close(as_3d, nn.InstanceNorm1d(6)(image))
    assert not torch.allclose(as_3d, unbatched, atol=1e-3)
    torch.testing.assert_close(reference.instance_norm(image.unsqueeze(0)).squeeze(0), unbatched)


def test_integer_input_message_says_what_to_do():
    ints = torch.arange(32).reshape(1, 2, 4, 4)
    with pytest.raises(TypeError, match=re.escape("expected a floating point input (e.g. x.float()), got dtype "
                                                  "torch.int64")):
        reference.instance_norm(ints)
    torch.testing.assert_close(reference.instance_norm(ints.float()), nn.InstanceNorm2d(2)(ints.float()))


X6 = _randn(2, 6, 4, 4)


@pytest.mark.parametrize("call,error,message", [
    (lambda: reference.group_norm(X6, 4), ValueError, "num_channels (6) must be divisible by num_groups (4)"),
    (lambda: reference.instance_norm(torch.randn(2, 6)), ValueError,
     "expected 3D (N, C, L) or 4D (N, C, H, W) input, got 2D (2, 6)"),
    (lambda: reference.instance_norm(X6, weight=torch.ones(3)), ValueError,
     "expected weight of shape (6,) to match the 6 channels of the input, got (3,)"),
    (lambda: reference.layer_norm(X6, (6, 4, 4), weight=torch.ones(6)), ValueError,
     "expected weight of shape (6, 4, 4), got (6,)"),
], ids=["groups", "2d input", "instance weight", "layer weight"])
def test_reference_messages_say_what_was_expected_and_what_came_in(call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call()


def test_torch_rejects_the_same_group_count():
    with pytest.raises(RuntimeError, match="divisible by num_groups"):
        F.group_norm(X6, 4)


@pytest.mark.parametrize("kind", ["batch", "layer", "instance", "group"])
def test_every_label_of_the_figure_is_one_mean_and_variance(kind):
    """The cube of the figure, (4, 6, 5) with 2 groups: every set of elements that share a label comes out of
    the reference layer with mean 0 and biased variance 1; the label counts are the table's 'number of means'."""
    shape, groups, eps = (4, 6, 5), 2, 1e-12
    x = _randn(*shape, dtype=torch.float64) * 3 + 2
    y = {"batch": lambda: reference.batch_norm(x, eps=eps),
         "layer": lambda: reference.layer_norm(x, shape[1:], eps=eps),
         "instance": lambda: reference.instance_norm(x, eps=eps),
         "group": lambda: reference.group_norm(x, groups, eps=eps)}[kind]()
    labels = reference.stats_groups(kind, shape, groups)
    assert labels.unique().numel() == {"batch": 6, "layer": 4, "instance": 24, "group": 8}[kind]
    means = torch.stack([y[labels == k].mean() for k in labels.unique()])
    variances = torch.stack([y[labels == k].var(unbiased=False) for k in labels.unique()])
    torch.testing.assert_close(means, torch.zeros_like(means), atol=1e-12, rtol=0)
    torch.testing.assert_close(variances, torch.ones_like(variances))


def test_the_chapters_identities_hold_for_the_reference_layers():
    """The chapter's 'one layer written as another', on its input (8, 6, 7, 7), for the reference layers."""
    x = _randn(8, 6, 7, 7) * 2 + 0.5
    w, b = _randn(6, seed=1), _randn(6, seed=2)
    torch.testing.assert_close(reference.instance_norm(x, w, b), F.instance_norm(x, weight=w, bias=b))
    torch.testing.assert_close(reference.group_norm(x, 3, w, b), F.group_norm(x, 3, w, b))
    torch.testing.assert_close(reference.layer_norm(x, (6, 7, 7)), F.layer_norm(x, (6, 7, 7)))
    torch.testing.assert_close(reference.instance_norm(x), reference.group_norm(x, num_groups=6))
    torch.testing.assert_close(reference.layer_norm(x, x.shape[1:]), reference.group_norm(x, num_groups=1))
