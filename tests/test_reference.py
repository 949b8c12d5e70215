"""normbook.reference.batch_norm against torch.nn.functional.batch_norm, over many cases."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from normbook import reference as R

SHAPES = [(2, 1), (5, 3), (4, 7, 1), (3, 2, 9), (2, 4, 3, 5), (6, 1, 2, 2), (2, 3, 1, 1), (1, 5, 4, 3)]
DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: dict(atol=2e-5, rtol=1e-4), torch.float64: dict(atol=1e-10, rtol=1e-9)}


def _case(shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    c = shape[1]
    x = torch.randn(shape, generator=g, dtype=dtype) * 3 + 1.5
    stats = (torch.randn(c, generator=g, dtype=dtype), torch.rand(c, generator=g, dtype=dtype) + 0.5)
    affine = (torch.randn(c, generator=g, dtype=dtype), torch.randn(c, generator=g, dtype=dtype))
    return x, stats, affine


def _torch_module(shape, dtype, training, tracked, affine, stats, params, momentum, eps):
    """The nn layer a reader would use for this input, configured like the reference call."""
    cls = torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d
    m = cls(shape[1], eps=eps, momentum=momentum, affine=affine, track_running_stats=tracked, dtype=dtype)
    with torch.no_grad():
        if tracked:
            m.running_mean.copy_(stats[0])
            m.running_var.copy_(stats[1])
        if affine:
            m.weight.copy_(params[0])
            m.bias.copy_(params[1])
    return m.train(training)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training,tracked,affine", list(itertools.product([True, False], repeat=3)))
def test_batch_norm_matches_torch(shape, dtype, training, tracked, affine):
    x, stats, params = _case(shape, dtype, seed=sum(shape) + 10 * training + 100 * tracked + 1000 * affine)
    if (training or not tracked) and x.numel() // shape[1] < 2:
        pytest.skip("a single value per channel cannot be normalized with batch statistics (tested below)")
    momentum, eps = 0.3, 1e-3
    module = _torch_module(shape, dtype, training, tracked, affine, stats, params, momentum, eps)
    rm, rv = (stats[0].clone(), stats[1].clone()) if tracked else (None, None)
    w, b = params if affine else (None, None)
    ours = R.batch_norm(x, rm, rv, w, b, training, momentum, eps)
    torch.testing.assert_close(ours, module(x).detach(), **TOL[dtype])
    if tracked:  # running statistics updated in place exactly like torch (or left alone in eval)
        torch.testing.assert_close((rm, rv), (module.running_mean, module.running_var), **TOL[dtype])
        assert torch.equal(rm, stats[0]) != training


@pytest.mark.parametrize("seed", range(20))
def test_batch_norm_random_shapes_against_module(seed):
    g = torch.Generator().manual_seed(seed)
    ndim = int(torch.randint(2, 5, (1,), generator=g))
    shape = [int(s) for s in torch.randint(2, 6, (ndim,), generator=g)]
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    module = {2: torch.nn.BatchNorm1d, 3: torch.nn.BatchNorm1d, 4: torch.nn.BatchNorm2d}[ndim](shape[1]).double()
    with torch.no_grad():
        module.weight.normal_(generator=g)
        module.bias.normal_(generator=g)
    rm, rv = module.running_mean.clone(), module.running_var.clone()
    for _ in range(3):  # a few training steps, then eval with the running statistics
        expected = module(x)
        ours = R.batch_norm(x, rm, rv, module.weight, module.bias, True, module.momentum, module.eps)
        torch.testing.assert_close(ours, expected)
        x = x * 1.1 + 0.2
    torch.testing.assert_close((rm, rv), (module.running_mean, module.running_var))
    module.eval()
    torch.testing.assert_close(R.batch_norm(x, rm, rv, module.weight, module.bias, False), module(x))


def test_batch_stats_are_per_channel_and_biased():
    x = torch.arange(24, dtype=torch.float64).reshape(2, 3, 4)
    mean, var, n = R.batch_stats(x)
    per_channel = x.transpose(0, 1).reshape(3, -1)
    assert n == 8
    torch.testing.assert_close(mean, per_channel.mean(1))
    torch.testing.assert_close(var, per_channel.var(1, unbiased=False))
    assert not torch.allclose(var, per_channel.var(1, unbiased=True))


@pytest.mark.parametrize(
    "x, kwargs, error, message",
    [
        (torch.zeros(4), {}, ValueError, "expected 2D (N, C) or 3D (N, C, L) or 4D (N, C, H, W) input, got 1D (4,)"),
        (torch.zeros(2, 3, 4, 5, 6), {}, ValueError, "got 5D (2, 3, 4, 5, 6)"),
        (torch.zeros(2, 3, dtype=torch.int64), {}, TypeError, "floating point"),
        (torch.zeros(4, 3), {"running_mean": torch.zeros(5), "running_var": torch.ones(5)}, ValueError,
         "expected running_mean of shape (3,) to match the 3 channels"),
        (torch.zeros(4, 3), {"weight": torch.ones(2)}, ValueError, "expected weight of shape (3,)"),
        (torch.zeros(4, 3), {"running_mean": torch.zeros(3)}, ValueError, "give both running_mean and running_var"),
        (torch.zeros(1, 3), {}, ValueError, "Expected more than 1 value per channel when training"),
        (torch.zeros(1, 3, 1, 1), {}, ValueError, "Expected more than 1 value per channel when training"),
        ("not a tensor", {}, TypeError, "expected a torch.Tensor, got str"),
    ],
)
def test_batch_norm_rejects_bad_input(x, kwargs, error, message):
    with pytest.raises(error, match=__import__("re").escape(message)):
        R.batch_norm(x, **kwargs)


@pytest.mark.parametrize("training,tracked,eps,ok", [
    (True, True, 0.0, False), (False, False, 0.0, False), (False, True, 0.0, True), (False, True, -1e-5, False),
])
def test_eps_rules_match_torch(training, tracked, eps, ok):
    x = torch.randn(4, 3)
    stats = (torch.zeros(3), torch.ones(3)) if tracked else (None, None)
    module = torch.nn.BatchNorm1d(3, eps=eps, track_running_stats=tracked).train(training)
    if ok:
        torch.testing.assert_close(R.batch_norm(x, *stats, training=training, eps=eps), module(x).detach())
        return
    with pytest.raises(ValueError, match="batch_norm eps must be"):
        module(x)
    with pytest.raises(ValueError, match="batch_norm eps must be"):
        R.batch_norm(x, *stats, training=training, eps=eps)


def test_single_sample_is_fine_in_eval_mode():
    x = torch.randn(1, 3)
    y = R.batch_norm(x, torch.zeros(3), torch.ones(3), training=False, eps=0.0)
    torch.testing.assert_close(y, x)


@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1), (1, 3, 1, 1)])
def test_single_value_per_channel_is_refused_in_eval_mode_without_running_stats(shape):
    # eval mode without running statistics still normalizes with batch statistics, so
    # torch's module refuses one value per channel there too; the reference must agree
    x = torch.randn(shape)
    module = torch.nn.BatchNorm1d(3, track_running_stats=False).eval() if len(shape) < 4 else \
        torch.nn.BatchNorm2d(3, track_running_stats=False).eval()
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        module(x)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        R.batch_norm(x, training=False)


def test_check_input_names_the_channel_mismatch():
    with pytest.raises(ValueError, match=r"expected 5 channels in dim 1 of input 3D \(2, 3, 5\), got 3"):
        R.check_input(torch.zeros(2, 3, 5), ndims=(2, 3), num_features=5)


@pytest.mark.parametrize("kind,shape,groups,count", [
    ("batch", (2, 3, 4), 1, 3), ("instance", (2, 3, 4), 1, 6), ("layer", (2, 3, 4), 1, 2), ("group", (2, 4, 4), 2, 4),
])
def test_stats_groups_counts(kind, shape, groups, count):
    labels = R.stats_groups(kind, shape, groups)
    assert labels.shape == shape
    assert labels.unique().numel() == count


def test_stats_layout_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kind must be one of"):
        R.stats_layout("weight", (2, 3))
    with pytest.raises(ValueError, match=r"num_channels \(3\) must be divisible by num_groups \(2\)"):
        R.stats_layout("group", (2, 3, 4), 2)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        R.stats_layout("batch", (5,))


@pytest.mark.parametrize("momentum", [None, True, 1.5, -0.1])
def test_update_running_stats_rejects_bad_momentum(momentum):
    stats = (torch.zeros(2), torch.ones(2))
    with pytest.raises(ValueError, match="momentum must be"):
        R.update_running_stats(*stats, torch.zeros(2), torch.ones(2), n=4, momentum=momentum)
