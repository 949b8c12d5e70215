"""normbook.reference.batch_norm_backward against autograd through torch.nn.functional.batch_norm.

Many shapes, dtypes, eps and flags; torch.autograd.gradcheck in float64 on a custom autograd Function
whose backward is the reference (so the reference is checked against finite differences, not only
against torch); the two properties of the training-mode input gradient; and the error messages.
"""

import itertools

import pytest
import torch
import torch.nn.functional as F

from normbook import reference as R

SHAPES = [(2, 1), (5, 3), (4, 7, 1), (3, 2, 9), (2, 4, 3, 5), (6, 1, 2, 2), (2, 3, 1, 1), (1, 5, 4, 3), (64, 2),
          (1, 3), (1, 2, 1), (1, 4, 1, 1)]  # the last three: one value per channel
DTYPES = [torch.float32, torch.float64]
EPS = [1e-5, 1e-3, 0.5]
TOL = {torch.float32: dict(atol=5e-5, rtol=1e-4), torch.float64: dict(atol=1e-10, rtol=1e-9)}


def _case(shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    c = shape[1]
    x = torch.randn(shape, generator=g, dtype=dtype) * 3 + 1.5
    up = torch.randn(shape, generator=g, dtype=dtype)
    stats = (torch.randn(c, generator=g, dtype=dtype), torch.rand(c, generator=g, dtype=dtype) + 0.5)
    params = (torch.randn(c, generator=g, dtype=dtype), torch.randn(c, generator=g, dtype=dtype))
    return x, up, stats, params


def _autograd(x, up, stats, params, training, tracked, affine, eps):
    """dL/dx, dL/dgamma, dL/dbeta by autograd through F.batch_norm, for the loss sum(y * up)."""
    x = x.clone().requires_grad_()
    w = params[0].clone().requires_grad_() if affine else torch.ones_like(params[0], requires_grad=True)
    b = params[1].clone().requires_grad_() if affine else torch.zeros_like(params[1], requires_grad=True)
    rm, rv = (stats[0].clone(), stats[1].clone()) if tracked else (None, None)
    # as torch's modules do: batch statistics in eval mode too when there are no running statistics
    y = F.batch_norm(x, rm, rv, w, b, training=training or not tracked, momentum=0.1, eps=eps)
    (y * up).sum().backward()
    return x.grad, w.grad, b.grad


def _batch_ok(shape, training, tracked):
    """Whether the layer can run: batch statistics need more than 1 value per channel."""
    return not ((training or not tracked) and shape[0] * torch.Size(shape[2:]).numel() < 2)


FLAGS = list(itertools.product([True, False], repeat=3))  # training, tracked, affine
# Every combination that can run (the others are refused, tested in test_one_value_per_channel_is_refused).
RUNNABLE = [(shape, *flags) for shape in SHAPES for flags in FLAGS if _batch_ok(shape, *flags[:2])]
REFUSED = [(shape, *flags) for shape in SHAPES for flags in FLAGS if not _batch_ok(shape, *flags[:2])]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps", EPS)
@pytest.mark.parametrize("shape,training,tracked,affine", RUNNABLE)
def test_backward_matches_autograd(shape, dtype, eps, training, tracked, affine):
    seed = sum(shape) + 10 * training + 100 * tracked + 1000 * affine + int(eps * 1e5)
    x, up, stats, params = _case(shape, dtype, seed)
    expected = _autograd(x, up, stats, params, training, tracked, affine, eps)
    rm, rv = (stats[0].clone(), stats[1].clone()) if tracked else (None, None)
    ours = R.batch_norm_backward(up, x, rm, rv, params[0] if affine else None, training, eps)
    torch.testing.assert_close(ours, expected, **TOL[dtype])
    if tracked:  # the buffers are only read
        assert torch.equal(rm, stats[0]) and torch.equal(rv, stats[1])


def test_the_parametrization_covers_both_kinds():
    """The filter keeps eval mode with running statistics for one value per channel, and refuses the rest."""
    assert len(RUNNABLE) + len(REFUSED) == len(SHAPES) * len(FLAGS)
    assert ((1, 3), False, True, True) in RUNNABLE and ((1, 3), True, True, True) in REFUSED
    assert all(shape[0] * torch.Size(shape[2:]).numel() == 1 for shape, *_ in REFUSED)


@pytest.mark.parametrize("shape,training,tracked,affine", REFUSED)
def test_one_value_per_channel_is_refused(shape, training, tracked, affine):
    """Batch statistics of a single value per channel: torch and the reference both raise ValueError."""
    x, up, stats, params = _case(shape, torch.float64, seed=1)
    rm, rv = (stats[0].clone(), stats[1].clone()) if tracked else (None, None)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        _autograd(x, up, stats, params, training, tracked, affine, 1e-5)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        R.batch_norm_backward(up, x, rm, rv, params[0] if affine else None, training)


@pytest.mark.parametrize("seed", range(20))
def test_random_shapes_and_scales(seed):
    """Random shapes, offsets and scales of the input, in float64, training mode."""
    g = torch.Generator().manual_seed(seed)
    ndim = int(torch.randint(2, 5, (1,), generator=g))
    shape = [int(torch.randint(2, 6, (1,), generator=g))] + [int(torch.randint(1, 5, (1,), generator=g))
                                                            for _ in range(ndim - 1)]
    scale, offset = 10.0 ** float(torch.empty(1).uniform_(-2, 2, generator=g)), float(torch.randn(1, generator=g)) * 50
    x = torch.randn(shape, generator=g, dtype=torch.float64) * scale + offset
    up = torch.randn(shape, generator=g, dtype=torch.float64)
    w = torch.randn(shape[1], generator=g, dtype=torch.float64)
    params = (w, torch.zeros_like(w))
    expected = _autograd(x, up, (None, None), params, True, False, True, 1e-5)
    torch.testing.assert_close(R.batch_norm_backward(up, x, weight=w), expected, atol=1e-9, rtol=1e-7)


class _ReferenceBatchNorm(torch.autograd.Function):
    """Forward: normbook.reference.batch_norm; backward: normbook.reference.batch_norm_backward."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, eps):
        ctx.save_for_backward(x, weight, running_mean, running_var)
        ctx.training, ctx.eps = training, eps
        rm = None if running_mean is None else running_mean.clone()  # the forward must not move the buffers
        rv = None if running_var is None else running_var.clone()
        return R.batch_norm(x, rm, rv, weight, bias, training, 0.1, eps)

    @staticmethod
    def backward(ctx, grad_output):
        x, weight, rm, rv = ctx.saved_tensors
        gx, gw, gb = R.batch_norm_backward(grad_output, x, rm, rv, weight, ctx.training, ctx.eps)
        return gx, gw, gb, None, None, None, None


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 5), (2, 3, 2, 3), (5, 1, 1, 2)])
@pytest.mark.parametrize("training,tracked", [(True, True), (True, False), (False, True), (False, False)])
@pytest.mark.parametrize("eps", [1e-5, 0.1])
def test_gradcheck_float64(shape, training, tracked, eps):
    """The reference backward against finite differences of the reference forward (float64)."""
    x, _, stats, params = _case(shape, torch.float64, seed=len(shape) + 7 * training + 3 * tracked)
    x = x.requires_grad_()
    w, b = (p.clone().requires_grad_() for p in params)
    rm, rv = stats if tracked else (None, None)
    assert torch.autograd.gradcheck(_ReferenceBatchNorm.apply, (x, w, b, rm, rv, training, eps))


@pytest.mark.parametrize("shape", [(8, 3), (4, 2, 6), (2, 3, 4, 4)])
@pytest.mark.parametrize("eps", [0.0, 1e-5, 0.5])
def test_training_gradient_sums_to_zero_and_is_orthogonal_up_to_eps(shape, eps):
    """Per channel: sum(dx) = 0, and sum(dx * x_hat) = gamma/sigma * sum(g * x_hat) * eps / (var + eps)."""
    x, up, _, params = _case(shape, torch.float64, seed=11)
    eps_forward = eps if eps > 0 else 1e-300  # eps = 0 is refused; a negligible eps stands for it
    gx, gw, _ = R.batch_norm_backward(up, x, weight=params[0], eps=eps_forward)
    mean, var, _ = R.batch_stats(x)
    dims = [0] + list(range(2, x.dim()))
    view = (1, -1) + (1,) * (x.dim() - 2)
    x_hat = (x - mean.view(view)) / torch.sqrt(var.view(view) + eps_forward)
    sigma = torch.sqrt(var + eps_forward)
    torch.testing.assert_close(gx.sum(dim=dims), torch.zeros_like(mean), atol=1e-10, rtol=0)
    along = (gx * x_hat).sum(dim=dims)
    torch.testing.assert_close(along, params[0] / sigma * gw * eps_forward / (var + eps_forward), atol=1e-10, rtol=1e-8)


def test_eval_mode_is_a_fixed_affine_map():
    x, up, stats, params = _case((6, 3, 2, 2), torch.float64, seed=5)
    gx, _, _ = R.batch_norm_backward(up, x, stats[0], stats[1], params[0], training=False, eps=1e-3)
    torch.testing.assert_close(gx, up * (params[0] / torch.sqrt(stats[1] + 1e-3)).view(1, 3, 1, 1))


def test_samples_are_coupled_in_training_only():
    """Changing sample 0's upstream gradient changes sample 1's input gradient in training mode only."""
    x, up, stats, params = _case((5, 3), torch.float64, seed=2)
    up2 = up.clone()
    up2[0] += 1.0
    for training, coupled in ((True, True), (False, False)):
        a = R.batch_norm_backward(up, x, stats[0], stats[1], params[0], training)[0]
        b = R.batch_norm_backward(up2, x, stats[0], stats[1], params[0], training)[0]
        assert (not torch.equal(a[1:], b[1:])) == coupled


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_close_to_float64(dtype):
    x, up, _, params = _case((16, 4, 3, 3), torch.float64, seed=3)
    exact = R.batch_norm_backward(up, x, weight=params[0])
    low = R.batch_norm_backward(up.to(dtype), x.to(dtype), weight=params[0].to(dtype))
    assert all(t.dtype == dtype for t in low)
    for a, b in zip(low, exact):
        scale = b.abs().max()
        assert (a.double() - b).abs().max() < 0.05 * scale


def test_errors_name_what_was_expected():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"expected grad_output of the input's shape \(4, 3\), got 2D \(4, 2\)"):
        R.batch_norm_backward(torch.randn(4, 2), x)
    with pytest.raises(ValueError, match="expected 2D"):
        R.batch_norm_backward(torch.randn(4), torch.randn(4))
    with pytest.raises(ValueError, match=r"expected weight of shape \(3,\)"):
        R.batch_norm_backward(x, x, weight=torch.ones(2))
    with pytest.raises(ValueError, match="give both running_mean and running_var"):
        R.batch_norm_backward(x, x, running_mean=torch.zeros(3))
    with pytest.raises(ValueError, match="eps must be positive"):
        R.batch_norm_backward(x, x, eps=0.0)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        R.batch_norm_backward(torch.randn(1, 3), torch.randn(1, 3))
    with pytest.raises(TypeError, match="floating point"):
        R.batch_norm_backward(x, torch.ones(4, 3, dtype=torch.int64))
    # eval mode with running statistics: one sample is fine, and eps = 0 too
    one = torch.randn(1, 3)
    gx, _, _ = R.batch_norm_backward(one, one, torch.zeros(3), torch.ones(3), training=False, eps=0.0)
    torch.testing.assert_close(gx, one)
