"""normbook.reference.rms_norm against torch's RMSNorm.

Compared with ``torch.nn.functional.rms_norm`` and ``torch.nn.RMSNorm`` over many
shapes, normalized shapes of one to three dims, four dtypes, eps values including
``eps=None`` (the machine epsilon of the computation type), with and without a
weight; the error cases check both our message and that torch rejects the same input.

nn.RMSNorm exists in every torch the book supports (2.6 and later), so nothing here is skipped.
What ``eps=None`` means for float16 and bfloat16 inputs changed in torch 2.7 (PyTorch pull
request 142848): before, the input type's own machine epsilon; since, float32's, as in
``normbook.reference.rms_norm``. ``_torch_default_eps`` finds out, by computing, which of the two
the installed torch uses, and the comparisons of ``eps=None`` pass it where it differs.
"""

import re
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from normbook import reference as R

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
# Both sides compute in float32 (float64 for float64 inputs) and round once: they may differ
# by one rounding of the output dtype.
TOL = {
    torch.float16: dict(atol=1e-3, rtol=1e-3),
    torch.bfloat16: dict(atol=8e-3, rtol=8e-3),
    torch.float32: dict(atol=1e-5, rtol=1e-5),
    torch.float64: dict(atol=1e-12, rtol=1e-12),
}
EPS = [None, 0.0, 1e-6, 1e-5, 0.1]
# (input shape, normalized_shape): the last dims of the input.
SHAPES = [
    ((7,), (7,)),
    ((3, 8), (8,)),
    ((2, 5, 16), (16,)),
    ((2, 5, 16), (5, 16)),
    ((4, 1, 3, 3), (1, 3, 3)),
    ((2, 3, 4, 5), (4, 5)),
    ((6, 1), (1,)),
]


def _data(shape, normalized_shape, dtype, seed, offset=0.5):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * 2 + offset).to(dtype)
    w = (torch.randn(normalized_shape, generator=g, dtype=torch.float64) + 1).to(dtype)
    return x, w


def _opmath_eps(dtype):
    return torch.finfo(torch.float64 if dtype == torch.float64 else torch.float32).eps


def _tiny(dtype):
    """Inputs whose mean square is about 4 * _opmath_eps(dtype): there eps changes the output by about 10 %."""
    g = torch.Generator().manual_seed(3)
    return (torch.randn(5, 64, generator=g, dtype=torch.float64) * 2 * _opmath_eps(dtype) ** 0.5).to(dtype)


def _torch_default_eps(dtype):
    """The eps torch's rms_norm computes with for eps=None on ``dtype``, found by computing on tiny inputs:
    the computation type's machine epsilon (torch 2.7 and later) or, for float16 and bfloat16 in torch 2.6,
    the input type's own."""
    x = _tiny(dtype)
    x64 = x.double()
    theirs = _torch_rms_norm(x, (64,), None, None)
    found = []
    for eps in {_opmath_eps(dtype), torch.finfo(dtype).eps}:
        truth = (x64 / torch.sqrt(x64.pow(2).mean(-1, keepdim=True) + eps)).to(dtype)
        if torch.allclose(theirs, truth, **TOL[dtype]):
            found.append(eps)
    assert len(found) == 1, (dtype, found)
    return found[0]


def _torch_rms_norm(x, normalized_shape, weight, eps):
    """F.rms_norm, without the warning some releases give when falling back from a fused kernel."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return F.rms_norm(x, list(normalized_shape), weight, eps)


@pytest.mark.parametrize("shape, normalized_shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps", EPS)
@pytest.mark.parametrize("affine", [False, True])
def test_rms_norm_matches_torch(shape, normalized_shape, dtype, eps, affine):
    x, w = _data(shape, normalized_shape, dtype, seed=len(shape) * 31 + len(normalized_shape))
    w = w if affine else None
    # eps=None: ours computes with the computation type's epsilon; a torch before 2.7 may use another one
    ours_eps = _torch_default_eps(dtype) if eps is None else eps
    ours = R.rms_norm(x, normalized_shape, w, eps=ours_eps)
    if eps is None and ours_eps == _opmath_eps(dtype):
        torch.testing.assert_close(R.rms_norm(x, normalized_shape, w), ours, rtol=0, atol=0)
    theirs = _torch_rms_norm(x, normalized_shape, w, eps)
    assert ours.shape == x.shape and ours.dtype == theirs.dtype == dtype
    torch.testing.assert_close(ours, theirs, **TOL[dtype])
    # a list or a torch.Size works as well as a tuple
    torch.testing.assert_close(R.rms_norm(x, list(normalized_shape), w, eps=ours_eps), ours, rtol=0, atol=0)
    torch.testing.assert_close(R.rms_norm(x, torch.Size(normalized_shape), w, eps=ours_eps), ours, rtol=0, atol=0)


@pytest.mark.parametrize("seed", range(20))
def test_rms_norm_random_shapes_against_module(seed):
    """nn.RMSNorm with random shapes, a trained-looking weight and a random eps (or None)."""
    g = torch.Generator().manual_seed(seed)
    ndim = int(torch.randint(1, 5, (1,), generator=g))
    shape = tuple(int(s) for s in torch.randint(1, 7, (ndim,), generator=g))
    k = int(torch.randint(1, ndim + 1, (1,), generator=g))
    eps = None if seed % 3 == 0 else float(10 ** -torch.randint(1, 8, (1,), generator=g).item())
    dtype = torch.float64 if seed % 2 else torch.float32
    module = nn.RMSNorm(shape[-k:], eps=eps, dtype=dtype)
    with torch.no_grad():
        module.weight.normal_(1.0, 0.3, generator=g)
    x = torch.randn(shape, generator=g, dtype=dtype) * 3 - 1
    torch.testing.assert_close(R.rms_norm(x, shape[-k:], module.weight, module.eps), module(x), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_eps_none_is_the_computation_types_machine_epsilon(dtype):
    """Ours: eps=None is finfo(float32).eps for 16-bit inputs, not finfo(dtype).eps. Torch: the same from 2.7
    on, and in every release for float32 and float64; for 16-bit inputs torch 2.6 takes finfo(dtype).eps."""
    expected_eps = _opmath_eps(dtype)
    torch_eps = _torch_default_eps(dtype)
    if dtype in (torch.float32, torch.float64):
        assert torch_eps == expected_eps
    else:
        assert torch_eps in (expected_eps, torch.finfo(dtype).eps)
    x = _tiny(dtype)
    torch.testing.assert_close(R.rms_norm(x, (64,)), R.rms_norm(x, (64,), eps=expected_eps), rtol=0, atol=0)
    theirs = _torch_rms_norm(x, (64,), None, None)
    torch.testing.assert_close(R.rms_norm(x, (64,), eps=torch_eps), theirs, **TOL[dtype])
    # with eps=None, ours matches torch exactly where torch uses the computation type's epsilon
    assert torch.allclose(R.rms_norm(x, (64,)), theirs, **TOL[dtype]) == (torch_eps == expected_eps)
    assert nn.RMSNorm(64).eps is None


@pytest.mark.parametrize("low", [torch.float16, torch.bfloat16])
def test_mixed_dtypes_low_precision_input_float32_weight(low):
    """A 16-bit input with a float32 weight, as under autocast: computed in float32, rounded once to the input's dtype."""
    x, w = _data((4, 6, 32), (32,), torch.float32, seed=5)
    x = x.to(low)
    ours = R.rms_norm(x, (32,), w)
    theirs = _torch_rms_norm(x, (32,), w, None)
    assert ours.dtype == low
    torch.testing.assert_close(ours, theirs.to(low), **TOL[low])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rms_norm_of_centred_input_is_layer_norm(dtype):
    """LayerNorm(x) == RMSNorm(x - mean(x)): the identity the chapter states."""
    x, w = _data((3, 5, 12), (12,), dtype, seed=9, offset=4.0)
    centred = x - x.mean(-1, keepdim=True)
    torch.testing.assert_close(R.rms_norm(centred, (12,), w, eps=1e-5), R.layer_norm(x, (12,), w, None, eps=1e-5),
                               **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rms_norm_is_scale_invariant_but_not_shift_invariant(dtype):
    x, _ = _data((4, 10), (10,), dtype, seed=11)
    y = R.rms_norm(x, (10,), eps=0.0)
    torch.testing.assert_close(R.rms_norm(3.5 * x, (10,), eps=0.0), y, **TOL[dtype])
    torch.testing.assert_close(R.rms_norm(-x, (10,), eps=0.0), -y, **TOL[dtype])
    assert not torch.allclose(R.rms_norm(x + 2.0, (10,), eps=0.0), y, atol=1e-2)
    # every row of the output has root mean square 1
    torch.testing.assert_close(y.pow(2).mean(-1), torch.ones(4, dtype=dtype), **TOL[dtype])


def test_rms_norm_gradient_matches_torch():
    x, w = _data((3, 4, 8), (8,), torch.float64, seed=13)
    x1, w1 = x.clone().requires_grad_(), w.clone().requires_grad_()
    x2, w2 = x.clone().requires_grad_(), w.clone().requires_grad_()
    g = torch.randn(3, 4, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    (R.rms_norm(x1, (8,), w1, eps=1e-6) * g).sum().backward()
    (F.rms_norm(x2, [8], w2, 1e-6) * g).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)
    torch.testing.assert_close(w1.grad, w2.grad)


@pytest.mark.parametrize(
    "case, ours, ours_type, ours_msg, torch_call",
    [
        ("last dims differ", lambda: R.rms_norm(torch.zeros(2, 5, 7), (8,)), ValueError,
         "last dims are normalized_shape (8,), got 3D (2, 5, 7)", lambda: F.rms_norm(torch.zeros(2, 5, 7), [8])),
        ("too few dims", lambda: R.rms_norm(torch.zeros(4, 5), (3, 4, 5)), ValueError,
         "normalized_shape (3, 4, 5), got 2D (4, 5)", lambda: F.rms_norm(torch.zeros(4, 5), [3, 4, 5])),
        ("weight shape", lambda: R.rms_norm(torch.zeros(2, 8), (8,), torch.ones(4)), ValueError,
         "weight of shape (8,), got (4,)", lambda: F.rms_norm(torch.zeros(2, 8), [8], torch.ones(4))),
        ("integer input", lambda: R.rms_norm(torch.zeros(2, 8, dtype=torch.long), (8,)), TypeError,
         "floating point input", lambda: F.rms_norm(torch.zeros(2, 8, dtype=torch.long), [8])),
    ],
)
def test_rms_norm_rejects_what_torch_rejects(case, ours, ours_type, ours_msg, torch_call):
    with pytest.raises(ours_type, match=re.escape(ours_msg)):
        ours()
    with pytest.raises((RuntimeError, ValueError, TypeError)):
        torch_call()
