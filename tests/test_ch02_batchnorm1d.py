"""normbook's helpers on chapter 02's own examples (BatchNorm1d).

The chapter shows these helpers at work (the grouping figures, the from-scratch layer, the input
guard); the checks that they are right on exactly the chapter's inputs live here, not in the chapter.
"""

import pytest
import torch
from torch import nn

from normbook import reference

X2D = torch.tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8]], dtype=torch.float)
X3D = torch.tensor([[[0, 1, 2], [3, 4, 5]], [[6, 7, 8], [9, 10, 11]]], dtype=torch.float)
ONE_SAMPLE = "Expected more than 1 value per channel when training"


def test_stats_groups_of_the_2d_example_are_the_columns():
    groups = reference.stats_groups("batch", tuple(X2D.shape))
    assert torch.equal(groups, torch.tensor([[0, 1, 2]] * 3))


def test_stats_groups_of_the_3d_example_are_the_channels():
    groups = reference.stats_groups("batch", tuple(X3D.shape))
    assert torch.equal(groups[:, 0], torch.zeros(2, 3, dtype=torch.long))
    assert torch.equal(groups[:, 1], torch.ones(2, 3, dtype=torch.long))
    assert reference.stats_layout("batch", tuple(X3D.shape)) == ((2, 2, 3), (0, 2))


def test_stats_groups_of_an_nlc_tensor_are_the_positions():
    """The chapter's figure of the wrong grouping: an (N, L, C) tensor fed as it is groups by position."""
    wrong = reference.stats_groups("batch", (2, 3, 3))
    right = reference.stats_groups("batch", (2, 3, 3)).permute(0, 2, 1)
    assert torch.equal(wrong, torch.arange(3)[None, :, None].expand(2, 3, 3))
    assert torch.equal(right, torch.arange(3)[None, None, :].expand(2, 3, 3))


def test_reference_batch_norm_on_the_2d_example():
    torch.testing.assert_close(reference.batch_norm(X2D), nn.BatchNorm1d(3)(X2D).detach())


def test_reference_batch_norm_updates_running_buffers_like_the_layer_on_the_3d_example():
    m = nn.BatchNorm1d(2)
    y = m(X3D)
    running_mean, running_var = torch.zeros(2), torch.ones(2)
    ours = reference.batch_norm(X3D, running_mean, running_var, m.weight, m.bias, training=True)
    torch.testing.assert_close(ours, y)
    torch.testing.assert_close((running_mean, running_var), (m.running_mean, m.running_var))
    torch.testing.assert_close(running_var, torch.full((2,), 0.9 + 0.1 * 58 / 5))


def test_check_input_says_which_size_dim_1_should_have():
    features = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"expected 3 channels in dim 1 of input 2D \(4, 5\), got 5"):
        reference.check_input(features, ndims=(2, 3), num_features=3)


def test_check_input_refuses_a_4d_input_for_batchnorm1d():
    images = torch.randn(2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"expected 2D \(N, C\) or 3D \(N, C, L\) input, got 4D \(2, 3, 4, 4\)"):
        reference.check_input(images, ndims=(2, 3), num_features=3)


def test_reference_batch_norm_refuses_a_batch_of_one_in_training():
    one = torch.tensor([[0.5, -1.0, 2.0]])
    with pytest.raises(ValueError, match=ONE_SAMPLE):
        reference.batch_norm(one, torch.zeros(3), torch.ones(3), training=True)
