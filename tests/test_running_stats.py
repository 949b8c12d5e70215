"""BatchNorm's running statistics: normbook.reference against nn.BatchNorm1d/2d buffers over many steps.

Covers ``update_running_stats``, ``momentum_factor``, ``uses_batch_stats``, the in-place
update of ``batch_norm``, their error cases, and ``normbook.plotting.running_stats_curves``.
"""

import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from normbook import plotting  # noqa: E402
from normbook import reference as R  # noqa: E402

SHAPES = [(2, 1), (5, 3), (4, 7, 1), (3, 2, 9), (1, 4, 3), (2, 4, 3, 5), (6, 1, 2, 2), (1, 3, 4, 4)]
MOMENTA = [0.0, 0.1, 0.37, 1.0, None]
DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: dict(atol=1e-5, rtol=1e-5), torch.float64: dict(atol=1e-12, rtol=1e-12)}
STEPS = 7


def _module(shape, momentum, dtype, tracked=True):
    cls = nn.BatchNorm2d if len(shape) == 4 else nn.BatchNorm1d
    return cls(shape[1], momentum=momentum, track_running_stats=tracked, dtype=dtype)


def _batches(shape, dtype, seed):
    """STEPS batches whose mean and spread drift, so every step changes the running statistics."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g, dtype=dtype) * (1 + t) + 2 * t - 3 for t in range(STEPS)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("momentum", MOMENTA)
@pytest.mark.parametrize("dtype", DTYPES)
def test_update_running_stats_follows_module_buffers(shape, momentum, dtype):
    module = _module(shape, momentum, dtype)
    rm, rv = module.running_mean.clone(), module.running_var.clone()
    for t, x in enumerate(_batches(shape, dtype, seed=sum(shape)), start=1):
        module(x)
        mean, var, n = R.batch_stats(x)
        before = (rm.clone(), rv.clone(), mean.clone(), var.clone())
        factor = R.momentum_factor(momentum, t)
        new_rm, new_rv = R.update_running_stats(rm, rv, mean, var, n, factor)
        for old, now in zip(before, (rm, rv, mean, var)):  # pure: nothing given was changed
            assert torch.equal(old, now)
        rm, rv = new_rm, new_rv
        assert int(module.num_batches_tracked) == t
        torch.testing.assert_close((rm, rv), (module.running_mean, module.running_var), **TOL[dtype])
        assert rm.dtype == rv.dtype == dtype


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("momentum", MOMENTA)
@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_updates_buffers_in_place_like_module(shape, momentum, dtype):
    module = _module(shape, momentum, dtype)
    g = torch.Generator().manual_seed(7 + sum(shape))
    with torch.no_grad():
        module.weight.normal_(generator=g)
        module.bias.normal_(generator=g)
    rm, rv = module.running_mean.clone(), module.running_var.clone()
    for t, x in enumerate(_batches(shape, dtype, seed=100 + sum(shape)), start=1):
        expected = module(x)
        ours = R.batch_norm(x, rm, rv, module.weight, module.bias, True, R.momentum_factor(momentum, t), module.eps)
        torch.testing.assert_close(ours, expected, **TOL[dtype])
        torch.testing.assert_close((rm, rv), (module.running_mean, module.running_var), **TOL[dtype])
    module.eval()  # then eval mode normalizes with exactly these buffers and leaves them alone
    x = _batches(shape, dtype, seed=1)[0]
    frozen = (rm.clone(), rv.clone())
    torch.testing.assert_close(R.batch_norm(x, rm, rv, module.weight, module.bias, False), module(x), **TOL[dtype])
    assert torch.equal(rm, frozen[0]) and torch.equal(rv, frozen[1])


@pytest.mark.parametrize("shape", [(8, 3, 20, 20), (4, 5), (3, 2, 6)])
def test_running_var_gets_the_unbiased_variance(shape):
    x = _batches(shape, torch.float64, seed=3)[-1]
    mean, var, n = R.batch_stats(x)
    assert n == x.numel() // shape[1]
    _, rv = R.update_running_stats(torch.zeros_like(mean), torch.zeros_like(var), mean, var, n, 1.0)
    dims = [d for d in range(x.dim()) if d != 1]
    torch.testing.assert_close(rv, x.var(dim=dims, unbiased=True))
    torch.testing.assert_close(var, x.var(dim=dims, unbiased=False))
    assert not torch.allclose(rv, var, rtol=1e-9, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 3), (2, 2, 3, 3)])
def test_momentum_none_is_the_plain_mean_of_batch_statistics(dtype, shape):
    module = _module(shape, None, dtype)
    means, unbiased = [], []
    for x in _batches(shape, dtype, seed=11):
        module(x)
        mean, var, n = R.batch_stats(x)
        means.append(mean)
        unbiased.append(var * n / (n - 1))
    torch.testing.assert_close(module.running_mean, torch.stack(means).mean(0), **TOL[dtype])
    torch.testing.assert_close(module.running_var, torch.stack(unbiased).mean(0), **TOL[dtype])
    assert int(module.num_batches_tracked) == STEPS


def test_momentum_factor_values():
    assert [R.momentum_factor(None, t) for t in range(1, 6)] == [1.0, 0.5, 1 / 3, 0.25, 0.2]
    for momentum, t in itertools.product([0.0, 0.1, 0.5, 1.0], [1, 2, 50]):
        assert R.momentum_factor(momentum, t) == momentum  # the count only matters for None


@pytest.mark.parametrize("training,tracked", list(itertools.product([True, False], repeat=2)))
@pytest.mark.parametrize("shape", [(5, 3), (4, 2, 3, 3)])
def test_uses_batch_stats_matches_torch(training, tracked, shape):
    module = _module(shape, 0.1, torch.float64, tracked=tracked).train(training)
    if tracked:  # running statistics far from the batch's, so the two choices give different outputs
        with torch.no_grad():
            module.running_mean.fill_(10.0)
            module.running_var.fill_(9.0)
    x = _batches(shape, torch.float64, seed=5)[0]
    before = None if not tracked else (module.running_mean.clone(), module.running_var.clone())
    out = module(x).detach()
    with_batch = R.batch_norm(x, None, None, module.weight, module.bias, True, eps=module.eps)
    used_batch = torch.allclose(out, with_batch)
    if not used_batch:
        torch.testing.assert_close(out, R.batch_norm(x, before[0], before[1], module.weight, module.bias, False))
    assert used_batch == R.uses_batch_stats(training, has_running_stats=tracked)
    if tracked:  # buffers change exactly when training
        assert torch.equal(module.running_mean, before[0]) != training
        assert int(module.num_batches_tracked) == int(training)
    else:
        assert module.running_mean is None and module.running_var is None


def test_eval_without_tracking_behaves_like_training_without_tracking():
    x = _batches((6, 3, 2, 2), torch.float32, seed=9)[2]
    module = _module(x.shape, 0.1, torch.float32, tracked=False)
    torch.testing.assert_close(module.train()(x), module.eval()(x), rtol=0, atol=0)


def test_rule_looks_at_the_buffers_not_the_flag():
    """Setting track_running_stats=False after construction keeps the buffers, so eval uses them."""
    module = nn.BatchNorm1d(3).eval()
    with torch.no_grad():
        module.running_mean.fill_(4.0)
    module.track_running_stats = False
    x = _batches((5, 3), torch.float32, seed=2)[0]
    assert not R.uses_batch_stats(module.training, has_running_stats=module.running_mean is not None)
    torch.testing.assert_close(module(x), R.batch_norm(x, module.running_mean, module.running_var,
                                                       module.weight, module.bias, False))


@pytest.mark.parametrize("momentum,count,message", [
    (None, 0, "num_batches_tracked must count the current batch"),
    (None, -3, "num_batches_tracked must count the current batch"),
    (1.5, 1, "momentum must be in [0, 1] or None, got 1.5"),
    (-0.1, 4, "momentum must be in [0, 1] or None, got -0.1"),
])
def test_momentum_factor_rejects_bad_arguments(momentum, count, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        R.momentum_factor(momentum, count)


@pytest.mark.parametrize("n", [0, 1])
def test_update_running_stats_needs_two_values_per_channel(n):
    z = torch.zeros(3)
    with pytest.raises(ValueError, match=f"needs at least 2 values per channel, got n={n}"):
        R.update_running_stats(z, z + 1, z, z, n, 0.1)


def test_batch_norm_rejects_a_single_value_per_channel_when_training_like_torch():
    x = torch.randn(1, 3)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        nn.BatchNorm1d(3)(x)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        R.batch_norm(x, torch.zeros(3), torch.ones(3))


def test_running_stats_curves_draws_one_line_per_history_and_the_truth():
    histories = {"a": torch.rand(11, 2), "b": torch.rand(11, 2, dtype=torch.float64)}
    fig = plotting.running_stats_curves(histories, true_mean=3.0, true_var=4.0)
    try:
        axes = fig.get_axes()
        assert [ax.get_title() for ax in axes] == ["running_mean", "running_var"]
        for col, ax in enumerate(axes):
            lines = ax.get_lines()
            assert len(lines) == 3
            torch.testing.assert_close(torch.tensor(lines[1].get_ydata()), histories["b"][:, col])
            assert list(lines[2].get_ydata()) == [[3.0, 4.0][col]] * 2
    finally:
        plt.close(fig)


@pytest.mark.parametrize("histories,message", [
    ({}, "at least one history"),
    ({"a": torch.rand(5, 3)}, r"history 'a' as a tensor \(steps \+ 1, 2\).*got \(5, 3\)"),
    ({"a": torch.rand(1, 2)}, r"got \(1, 2\)"),
    ({"a": [[0.0, 1.0]]}, "got list"),
])
def test_running_stats_curves_rejects_bad_histories(histories, message):
    with pytest.raises(ValueError, match=message):
        plotting.running_stats_curves(histories, 0.0, 1.0)
