"""normbook.reference.batch_norm on BatchNorm1d inputs, (N, C) and (N, C, L), against torch.

Compared with ``torch.nn.functional.batch_norm`` and ``nn.BatchNorm1d`` over random
shapes, both float dtypes, training/eval, with or without affine parameters and
running statistics (including their in-place update), plus the errors chapter 02 shows.
"""

import itertools
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from normbook import reference as R

DTYPES = (torch.float32, torch.float64)
TOL = {torch.float32: dict(atol=1e-5, rtol=1e-4), torch.float64: dict(atol=1e-12, rtol=1e-10)}
FLAGS = list(itertools.product([True, False], repeat=3))  # training, affine, running stats


def _shape(seed: int) -> tuple[int, ...]:
    """A random (N, C) or (N, C, L) shape with N >= 2 (so training mode always works)."""
    g = torch.Generator().manual_seed(seed)
    n, c, length = (int(v) for v in torch.randint(1, 9, (3,), generator=g))
    return (n + 1, c) if seed % 2 == 0 else (n + 1, c, length)


def _tensors(shape, dtype, seed):
    g = torch.Generator().manual_seed(1000 + seed)
    c = shape[1]
    x = torch.randn(shape, generator=g, dtype=dtype) * 2.5 - 0.7
    rm, rv = torch.randn(c, generator=g, dtype=dtype), torch.rand(c, generator=g, dtype=dtype) + 0.2
    w, b = torch.randn(c, generator=g, dtype=dtype), torch.randn(c, generator=g, dtype=dtype)
    return x, rm, rv, w, b


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training,affine,running", FLAGS)
def test_matches_functional_batch_norm(seed, dtype, training, affine, running):
    shape = _shape(seed)
    x, rm, rv, w, b = _tensors(shape, dtype, seed)
    stats = (rm.clone(), rv.clone()) if running else (None, None)
    theirs_stats = (rm.clone(), rv.clone()) if running else (None, None)
    params = (w, b) if affine else (None, None)
    ours = R.batch_norm(x, *stats, *params, training=training, momentum=0.2, eps=1e-4)
    theirs = F.batch_norm(x, *theirs_stats, *params, training=training or not running, momentum=0.2, eps=1e-4)
    assert ours.shape == x.shape and ours.dtype == dtype
    torch.testing.assert_close(ours, theirs, **TOL[dtype])
    if running:  # updated in place exactly when training, like F.batch_norm
        torch.testing.assert_close(stats, theirs_stats, **TOL[dtype])
        assert torch.equal(stats[0], rm) != training


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training,affine,tracked", FLAGS)
def test_matches_batchnorm1d_module(seed, dtype, training, affine, tracked):
    shape = _shape(seed + 50)
    x, _, _, w, b = _tensors(shape, dtype, seed + 50)
    module = nn.BatchNorm1d(shape[1], affine=affine, track_running_stats=tracked, dtype=dtype)
    if affine:
        with torch.no_grad():
            module.weight.copy_(w)
            module.bias.copy_(b)
    rm, rv = (torch.zeros(shape[1], dtype=dtype), torch.ones(shape[1], dtype=dtype)) if tracked else (None, None)
    for step in range(3):  # training steps move the running statistics; then the chosen mode
        xs = x * (1 + step) + step
        torch.testing.assert_close(R.batch_norm(xs, rm, rv, module.weight, module.bias), module(xs), **TOL[dtype])
    module.train(training)
    expected = module(x)
    ours = R.batch_norm(x, rm, rv, module.weight, module.bias, training=training)
    torch.testing.assert_close(ours, expected, **TOL[dtype])
    if tracked:
        torch.testing.assert_close((rm, rv), (module.running_mean, module.running_var), **TOL[dtype])


@pytest.mark.parametrize("shape", [(2, 3), (5, 4, 7), (3, 1, 2)])
def test_cumulative_momentum_via_momentum_factor(shape):
    """momentum=None in torch is the reference with momentum_factor(None, k) at the k-th batch."""
    module = nn.BatchNorm1d(shape[1], momentum=None, dtype=torch.float64)
    rm, rv = torch.zeros(shape[1], dtype=torch.float64), torch.ones(shape[1], dtype=torch.float64)
    g = torch.Generator().manual_seed(sum(shape))
    for k in range(1, 5):
        x = torch.randn(shape, generator=g, dtype=torch.float64) * k + k
        ours = R.batch_norm(x, rm, rv, momentum=R.momentum_factor(None, k))
        torch.testing.assert_close(ours, module(x).detach())
    torch.testing.assert_close((rm, rv), (module.running_mean, module.running_var))


@pytest.mark.parametrize("shape", [(2, 3, 4), (4, 2, 1), (1, 5, 6), (3, 6, 2)])
def test_three_d_is_batch_norm_over_n_times_l_rows(shape):
    """(N, C, L) pools N*L values per channel: the same as (N*L, C) rows after a permute."""
    n, c, length = shape
    x = torch.randn(shape, generator=torch.Generator().manual_seed(length), dtype=torch.float64)
    rows = x.permute(0, 2, 1).reshape(n * length, c)
    back = R.batch_norm(rows).reshape(n, length, c).permute(0, 2, 1)
    torch.testing.assert_close(R.batch_norm(x), back)
    torch.testing.assert_close(R.batch_norm(x), F.batch_norm(x, None, None, training=True))
    mean, var, count = R.batch_stats(x)
    assert count == n * length
    torch.testing.assert_close((mean, var), (rows.mean(0), rows.var(0, unbiased=False)))


@pytest.mark.parametrize("x, seed_output", [
    (torch.arange(9.0).reshape(3, 3), [[-1.2247] * 3, [0.0] * 3, [1.2247] * 3]),
    (torch.arange(12.0).reshape(2, 2, 3), [[[-1.2865, -0.9649, -0.6433]] * 2, [[0.6433, 0.9649, 1.2865]] * 2]),
])
def test_seed_examples(x, seed_output):
    torch.testing.assert_close(R.batch_norm(x), torch.tensor(seed_output), atol=5e-5, rtol=0)


# --- errors -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, num_features", [((4, 5), 3), ((2, 3, 5), 5), ((6, 1), 2)])
def test_channel_mismatch_messages(shape, num_features):
    x = torch.zeros(shape)
    expected = (f"expected {num_features} channels in dim 1 of input {len(shape)}D {shape}, got {shape[1]}; "
                "dim 1 must be the channel/feature dimension C")
    with pytest.raises(ValueError, match=re.escape(expected)):
        R.check_input(x, ndims=(2, 3), num_features=num_features)
    with pytest.raises(ValueError, match=re.escape(f"expected running_mean of shape ({shape[1]},) to match")):
        R.batch_norm(x, torch.zeros(num_features), torch.ones(num_features))
    with pytest.raises(ValueError, match=re.escape(f"expected weight of shape ({shape[1]},)")):
        R.batch_norm(x, weight=torch.ones(num_features))
    with pytest.raises(RuntimeError, match=f"running_mean should contain {shape[1]} elements not {num_features}"):
        nn.BatchNorm1d(num_features)(x)
    R.check_input(x, ndims=(2, 3), num_features=shape[1])  # the right number passes


@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (1, 2, 3, 4), (2, 3, 4, 5, 6), (5,)])
def test_wrong_number_of_dims_for_1d(shape):
    x = torch.zeros(shape)
    expected = f"expected 2D (N, C) or 3D (N, C, L) input, got {len(shape)}D {shape}"
    with pytest.raises(ValueError, match=re.escape(expected)):
        R.check_input(x, ndims=(2, 3))
    with pytest.raises(ValueError, match=re.escape(f"expected 2D or 3D input (got {len(shape)}D input)")):
        nn.BatchNorm1d(shape[1] if len(shape) > 1 else 5)(x)


@pytest.mark.parametrize("shape", [(1, 3), (1, 4, 1), (1, 1)])
@pytest.mark.parametrize("running", [True, False])
def test_one_value_per_channel_in_training(shape, running):
    x = torch.randn(shape)
    stats = (torch.zeros(shape[1]), torch.ones(shape[1])) if running else (None, None)
    prefix = "Expected more than 1 value per channel when training"
    with pytest.raises(ValueError, match=prefix + re.escape(f", got input {len(shape)}D {shape}: ")):
        R.batch_norm(x, *stats, training=True)
    with pytest.raises(ValueError, match=prefix):
        nn.BatchNorm1d(shape[1], track_running_stats=running)(x)
    if running:  # eval mode normalizes with the running statistics: one sample is fine
        module = nn.BatchNorm1d(shape[1]).eval()
        torch.testing.assert_close(R.batch_norm(x, *stats, training=False), module(x))
        torch.testing.assert_close(R.batch_norm(x, *stats, training=False), x / (1 + 1e-5) ** 0.5)


def test_one_sequence_with_several_positions_trains():
    """A batch of ONE (1, C, L) sample still has L values per channel, so training works."""
    x = torch.randn(1, 3, 4, generator=torch.Generator().manual_seed(3))
    module = nn.BatchNorm1d(3)
    rm, rv = torch.zeros(3), torch.ones(3)
    torch.testing.assert_close(R.batch_norm(x, rm, rv), module(x).detach())
    torch.testing.assert_close((rm, rv), (module.running_mean, module.running_var))
