"""Checks that chapter 5 (05_running_stats.ipynb) made of normbook's own helpers, moved here.

- normbook.sync_batchnorm's local_stats + combine_stats and its SyncBatchNorm on the chapter's
  shifted batch (one float32 channel per offset 0 ... 10 000), against a float64 ground truth,
  Chan's two-part formula written out and nn.BatchNorm2d (the chapter now links to chapter 7
  for the merge and measures only nn.BatchNorm2d);
- normbook.reference refuses one value per channel where torch does, with torch's words;
- torch.optim.swa_utils.update_bn undoes normbook.training.freeze_bn_stats completely: it overwrites
  the frozen statistics, and its model.train(was_training) puts the layers back in training mode;
  freeze_bn_stats again restores only the mode (the chapter keeps update_bn away from frozen statistics).
"""

import pytest
import torch
from torch import nn
from torch.optim.swa_utils import update_bn

from normbook import reference as R
from normbook import sync_batchnorm as SB
from normbook.training import freeze_bn_stats

OFFSETS = [0.0, 1e1, 1e2, 1e3, 1e4]
MESSAGE = "Expected more than 1 value per channel"


@pytest.fixture
def shifted():
    """The chapter's batch: (16, 5, 16, 16) float32, spread 1, channel c shifted by OFFSETS[c]."""
    shift = torch.tensor(OFFSETS, dtype=torch.float64).reshape(1, -1, 1, 1)
    g = torch.Generator().manual_seed(15)
    draw = torch.randn(16, len(OFFSETS), 16, 16, generator=g, dtype=torch.float64)
    x = (draw + shift).float()
    rest = x.double() - shift  # exact in float64 for these values
    return x, shift, rest.mean(dim=(0, 2, 3)), rest.var(dim=(0, 2, 3), unbiased=False)


def _rel_err(v, truth):
    return ((v.double() - truth).abs() / truth).max().item()


def test_local_and_combined_stats_of_uneven_slices_match_the_float64_truth(shifted):
    x, _, _, true_var = shifted
    n_vals = x.numel() // x.shape[1]
    slices = [x[:3], x[3:4], x[4:11], x[11:]]  # 3 + 1 + 7 + 5 images
    parts = [SB.local_stats(s) for s in slices]
    counts = torch.tensor([float(p[0]) for p in parts], dtype=torch.float64)
    n_all, _, chan_var = SB.combine_stats(
        counts, torch.stack([p[1] for p in parts]), torch.stack([p[2] for p in parts])
    )
    assert n_all == n_vals and counts.tolist() == [768.0, 256.0, 1792.0, 1280.0]
    assert _rel_err(chan_var, true_var) < 1e-6
    # Chan's formula for two parts, written out: the same as four parts merged at once
    (n_a, mu_a, m2_a), (n_b, mu_b, m2_b) = SB.local_stats(x[:5]), SB.local_stats(x[5:])
    m2_pair = m2_a + m2_b + (mu_b - mu_a) ** 2 * n_a * n_b / (n_a + n_b)
    torch.testing.assert_close(m2_pair / n_vals, chan_var, rtol=1e-7, atol=0)


def test_normbook_sync_batchnorm_without_a_process_group_matches_the_truth_and_torch(shifted):
    x, shift, _, true_var = shifted
    rest = x.double() - shift
    y_true = (rest - rest.mean(dim=(0, 2, 3), keepdim=True)) / torch.sqrt(true_var.reshape(1, -1, 1, 1) + 1e-5)
    y_normbook = SB.SyncBatchNorm(len(OFFSETS), affine=False)(x)
    y_torch = nn.BatchNorm2d(len(OFFSETS), affine=False)(x)
    # within a few float32 roundings of each channel's offset (the inputs' own precision)
    tol = (8 * torch.finfo(torch.float32).eps * shift + 1e-5).expand_as(y_true)
    assert ((y_normbook.double() - y_true).abs() <= tol).all()
    torch.testing.assert_close(y_normbook, y_torch, atol=1e-3, rtol=0)


def test_reference_refuses_one_value_per_channel_like_torch():
    with pytest.raises(ValueError, match=MESSAGE):
        R.batch_norm(torch.randn(1, 3), torch.zeros(3), torch.ones(3))  # training
    with pytest.raises(ValueError, match=MESSAGE):
        R.batch_norm(torch.randn(1, 3), training=False)  # eval, no running statistics
    with pytest.raises(ValueError, match=MESSAGE):
        nn.BatchNorm1d(3, track_running_stats=False).eval()(torch.randn(1, 3))
    # eval mode with running statistics needs no batch statistics
    assert R.batch_norm(torch.randn(1, 3), torch.zeros(3), torch.ones(3), training=False).shape == (1, 3)


def test_update_bn_overwrites_frozen_statistics_and_freezing_again_restores_only_the_mode():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(144, 2))
    bn = model[1]
    with torch.no_grad():  # "pretrained" statistics
        bn.running_mean.fill_(0.5)
        bn.running_var.fill_(2.0)
        bn.num_batches_tracked.fill_(1000)
    data = torch.randn(4, 3, 8, 8) * 3 + 2
    model.train()
    assert freeze_bn_stats(model) == ["1"] and not bn.training
    update_bn([data], model)
    assert model.training and bn.training  # model.train(was_training) re-enabled it
    with torch.no_grad():
        features = model[0](data)
    # reset and recomputed from the loader: the pretrained statistics are gone
    torch.testing.assert_close(bn.running_mean, features.mean(dim=(0, 2, 3)))
    torch.testing.assert_close(bn.running_var, features.var(dim=(0, 2, 3)))
    assert bn.num_batches_tracked.item() == 1
    freeze_bn_stats(model)
    assert not bn.training
    assert not torch.allclose(bn.running_mean, torch.full((4,), 0.5))
    assert not torch.allclose(bn.running_var, torch.full((4,), 2.0))
    # frozen again, the (recomputed) statistics stay put in training
    before = bn.running_mean.clone()
    model(data)
    assert torch.equal(bn.running_mean, before)
    # a model in eval mode stays in eval mode
    model.eval()
    update_bn([data], model)
    assert not model.training and not bn.training
