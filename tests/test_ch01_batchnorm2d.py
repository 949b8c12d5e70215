"""Checks that chapter 1 (01_batchnorm2d.ipynb) made of normbook's own helpers, moved here.

- normbook.reference.stats_groups("batch", ...), the grouping the chapter's cube figure draws: one group
  per channel of N*H*W elements, H and W pooled like the flattened H*W;
- normbook.reference.batch_stats and batch_norm on note 0's 2 x 2 x 2 x 2 example: the hand-computed
  statistics, and the output nn.BatchNorm2d gives;
- normbook.reference.uses_batch_stats: the chapter's four-case table.
"""

import pytest
import torch
from torch import nn

from normbook import reference

# Note 0's input (notes/text/note0.txt, section 2).
NOTE0_INPUT = torch.tensor(
    [[[[1, 1], [1, 2]], [[-1, 1], [0, 1]]], [[[0, -1], [2, 2]], [[0, -1], [3, 1]]]], dtype=torch.float32
)


def test_the_cube_groups_one_channel_across_samples_and_positions():
    groups = reference.stats_groups("batch", (4, 6, 5))
    assert groups.unique().numel() == 6
    assert all(int((groups == c).sum()) == 4 * 5 for c in range(6))
    assert torch.equal(groups[:, 2], torch.full((4, 5), 2))


@pytest.mark.parametrize("hw", [(5, 1), (1, 5), (5, 5)])
def test_height_and_width_are_pooled_like_the_flattened_positions(hw):
    flat = reference.stats_groups("batch", (4, 6, hw[0] * hw[1]))
    four_d = reference.stats_groups("batch", (4, 6, *hw)).flatten(2)
    assert torch.equal(four_d, flat)


def test_batch_stats_on_note_0s_example_are_the_hand_computed_ones():
    mean, var, n = reference.batch_stats(NOTE0_INPUT)
    assert mean.tolist() == [1.0, 0.5] and var.tolist() == [1.0, 1.5] and n == 8


def test_reference_batch_norm_matches_torch_on_note_0s_example():
    layer = nn.BatchNorm2d(2)
    ours = reference.batch_norm(NOTE0_INPUT, weight=layer.weight, bias=layer.bias, training=True, eps=layer.eps)
    torch.testing.assert_close(ours, layer(NOTE0_INPUT))


@pytest.mark.parametrize("training, tracking, batch", [(True, True, True), (True, False, True),
                                                       (False, True, False), (False, False, True)])
def test_uses_batch_stats_is_the_four_case_table(training, tracking, batch):
    assert reference.uses_batch_stats(training, tracking) is batch
    layer = nn.BatchNorm2d(2, affine=False, track_running_stats=tracking)
    layer(torch.randn(16, 2, 4, 4, generator=torch.Generator().manual_seed(0)) * 3 + 5)
    layer.train(training)
    x = torch.randn(8, 2, 4, 4, generator=torch.Generator().manual_seed(1))
    by_batch = nn.functional.batch_norm(x, None, None, training=True)
    assert torch.allclose(layer(x), by_batch, atol=1e-5) is batch
