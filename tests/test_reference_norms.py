"""normbook.reference.instance_norm / group_norm / layer_norm and the statistics layout, against torch.

Every forward function is compared with ``torch.nn.functional`` over many shapes,
dtypes, eps values and with/without the affine parameters; the error cases check
both our message and that torch rejects the same input; the layout tests check
that ``stats_groups`` labels exactly the elements torch pools into one mean and
variance.
"""

import re

import pytest
import torch
import torch.nn.functional as F

from normbook import reference as R

DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: dict(atol=3e-5, rtol=1e-4), torch.float64: dict(atol=1e-10, rtol=1e-9)}
EPS = [1e-5, 1e-3, 0.5]
# 3D (N, C, L) and 4D (N, C, H, W) inputs, including single samples, single channels and thin images.
INSTANCE_SHAPES = [(1, 1, 2), (2, 3, 7), (5, 1, 4), (3, 6, 1, 2), (2, 4, 3, 5), (1, 3, 6, 6), (4, 2, 9, 1)]


def _data(shape, dtype, seed, c_affine=None):
    """A shifted, scaled random input and random affine parameters of shape ``c_affine`` (default (C,))."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=dtype) * 3 + 1.5
    pshape = c_affine if c_affine is not None else (shape[1],)
    w = torch.randn(pshape, generator=g, dtype=dtype)
    b = torch.randn(pshape, generator=g, dtype=dtype)
    return x, w, b


def _seed(*parts) -> int:
    """A deterministic seed from ints, bools and shapes (no str hashing, so stable across runs)."""
    flat = [int(v) for p in parts for v in (p if isinstance(p, tuple) else (p,))]
    return sum((i + 7) * v for i, v in enumerate(flat)) % 10_000


# ---------------------------------------------------------------- instance norm


@pytest.mark.parametrize("shape", INSTANCE_SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("eps", EPS)
def test_instance_norm_matches_torch(shape, dtype, affine, eps):
    x, w, b = _data(shape, dtype, _seed(shape, affine))
    w, b = (w, b) if affine else (None, None)
    ours = R.instance_norm(x, w, b, eps=eps)
    theirs = F.instance_norm(x, weight=w, bias=b, eps=eps)
    assert ours.shape == x.shape and ours.dtype == dtype
    torch.testing.assert_close(ours, theirs, **TOL[dtype])


@pytest.mark.parametrize("seed", range(25))
def test_instance_norm_random_shapes_against_modules(seed):
    g = torch.Generator().manual_seed(seed)
    ndim = int(torch.randint(3, 5, (1,), generator=g))
    shape = tuple(int(s) for s in torch.randint(1, 6, (ndim,), generator=g))
    shape = shape[:2] + (shape[2] + 1,) + shape[3:]  # at least 2 spatial elements
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 2 - 1
    module = {3: torch.nn.InstanceNorm1d, 4: torch.nn.InstanceNorm2d}[ndim](shape[1], affine=True).double()
    with torch.no_grad():
        module.weight.normal_(generator=g)
        module.bias.normal_(generator=g)
    torch.testing.assert_close(R.instance_norm(x, module.weight, module.bias, module.eps), module(x))


def test_instance_norm_only_weight_or_only_bias():
    x, w, b = _data((2, 3, 4, 4), torch.float64, 7)
    torch.testing.assert_close(R.instance_norm(x, weight=w), F.instance_norm(x, weight=w))
    torch.testing.assert_close(R.instance_norm(x, bias=b), F.instance_norm(x, bias=b))


# ---------------------------------------------------------------- group norm

# (shape, group counts to try): C = 1, 4, 6, 12 with every divisor; 2D, 3D, 4D and 5D inputs.
GROUP_CASES = [
    ((3, 1, 5), [1]),
    ((2, 4), [1, 2, 4]),
    ((2, 6, 5), [1, 2, 3, 6]),
    ((3, 4, 3, 3), [1, 2, 4]),
    ((1, 12, 2, 3), [1, 2, 3, 4, 6, 12]),
    ((2, 6, 2, 3, 2), [1, 3, 6]),
]


@pytest.mark.parametrize("shape,groups", GROUP_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("eps", EPS)
def test_group_norm_matches_torch(shape, groups, dtype, affine, eps):
    x, w, b = _data(shape, dtype, _seed(shape, affine))
    w, b = (w, b) if affine else (None, None)
    for g in groups:
        ours = R.group_norm(x, g, w, b, eps=eps)
        torch.testing.assert_close(ours, F.group_norm(x, g, w, b, eps=eps), **TOL[dtype])


@pytest.mark.parametrize("seed", range(20))
def test_group_norm_random_shapes_against_module(seed):
    g = torch.Generator().manual_seed(seed)
    groups, per_group = (int(v) for v in torch.randint(1, 5, (2,), generator=g))
    spatial = tuple(int(s) for s in torch.randint(1, 5, (int(torch.randint(0, 3, (1,), generator=g)),), generator=g))
    shape = (int(torch.randint(2, 5, (1,), generator=g)), groups * per_group) + spatial  # N=1: see below
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 4
    module = torch.nn.GroupNorm(groups, shape[1], eps=1e-4).double()
    with torch.no_grad():
        module.weight.normal_(generator=g)
        module.bias.normal_(generator=g)
    torch.testing.assert_close(R.group_norm(x, groups, module.weight, module.bias, module.eps), module(x))


@pytest.mark.parametrize("shape,groups", [((1, 4), 4), ((1, 3, 1), 3), ((1, 2, 1, 1), 2)])
def test_group_norm_single_value_groups_rejected_like_torch(shape, groups):
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        F.group_norm(torch.zeros(shape), groups)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        R.group_norm(torch.zeros(shape), groups)


def test_group_norm_single_value_groups_in_a_batch_give_zeros_like_torch():
    """With N > 1 torch accepts one value per group (and returns zeros); so does the reference."""
    x = torch.randn(3, 4)
    torch.testing.assert_close(R.group_norm(x, 4), F.group_norm(x, 4))
    torch.testing.assert_close(R.group_norm(x, 4), torch.zeros(3, 4))


# ---------------------------------------------------------------- layer norm

# (input shape, normalized_shape): 1, 2, 3 and 4 trailing dims, including the whole input.
LAYER_CASES = [
    ((5,), (5,)),
    ((4, 7), (7,)),
    ((4, 7), (4, 7)),
    ((2, 3, 8), (8,)),
    ((2, 3, 8), (3, 8)),
    ((2, 3, 4, 5), (5,)),
    ((2, 3, 4, 5), (4, 5)),
    ((2, 3, 4, 5), (3, 4, 5)),
    ((2, 3, 4, 5), (2, 3, 4, 5)),
    ((3, 2, 2, 3, 2), (2, 3, 2)),
]


@pytest.mark.parametrize("shape,normalized_shape", LAYER_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("eps", EPS)
def test_layer_norm_matches_torch(shape, normalized_shape, dtype, affine, eps):
    x, w, b = _data(shape, dtype, _seed(shape, normalized_shape), c_affine=normalized_shape)
    w, b = (w, b) if affine else (None, None)
    ours = R.layer_norm(x, normalized_shape, w, b, eps=eps)
    torch.testing.assert_close(ours, F.layer_norm(x, normalized_shape, w, b, eps=eps), **TOL[dtype])
    # normalized_shape may be given as a list or a torch.Size, as with torch
    torch.testing.assert_close(R.layer_norm(x, list(normalized_shape), w, b, eps=eps), ours)
    torch.testing.assert_close(R.layer_norm(x, torch.Size(normalized_shape), w, b, eps=eps), ours)


@pytest.mark.parametrize("seed", range(20))
def test_layer_norm_random_shapes_against_module(seed):
    g = torch.Generator().manual_seed(seed)
    shape = tuple(int(s) for s in torch.randint(1, 5, (int(torch.randint(1, 5, (1,), generator=g)),), generator=g))
    k = int(torch.randint(1, len(shape) + 1, (1,), generator=g))
    x = torch.randn(shape, generator=g, dtype=torch.float64) + 3
    module = torch.nn.LayerNorm(shape[-k:], eps=1e-3).double()
    with torch.no_grad():
        module.weight.normal_(generator=g)
        module.bias.normal_(generator=g)
    ours = R.layer_norm(x, shape[-k:], module.weight, module.bias, module.eps)
    torch.testing.assert_close(ours, module(x))


# ---------------------------------------------------------------- error cases


def _torch_rejects(fn):
    """torch must reject the same input (any exception): our checks are not stricter than torch's."""
    with pytest.raises((RuntimeError, ValueError, TypeError, NotImplementedError, ZeroDivisionError, AttributeError)):
        fn()


ERROR_CASES = [
    # wrong number of dimensions
    ("instance 2D", lambda: R.instance_norm(torch.zeros(2, 3)), ValueError,
     "expected 3D (N, C, L) or 4D (N, C, H, W) input, got 2D (2, 3)", lambda: F.instance_norm(torch.zeros(2, 3))),
    ("instance 1D", lambda: R.instance_norm(torch.zeros(4)), ValueError, "got 1D (4,)",
     lambda: F.instance_norm(torch.zeros(4))),
    ("group 1D", lambda: R.group_norm(torch.zeros(6), 2), ValueError,
     "expected 2D (N, C) or 3D (N, C, L) or 4D (N, C, H, W) or 5D (N, C, D, H, W) input, got 1D (6,)",
     lambda: F.group_norm(torch.zeros(6), 2)),
    ("layer too few dims", lambda: R.layer_norm(torch.zeros(4, 5), (3, 4, 5)), ValueError,
     "expected input whose last dims are normalized_shape (3, 4, 5), got 2D (4, 5)",
     lambda: F.layer_norm(torch.zeros(4, 5), (3, 4, 5))),
    ("layer wrong trailing dims", lambda: R.layer_norm(torch.zeros(2, 3, 4), (3,)), ValueError,
     "expected input whose last dims are normalized_shape (3,), got 3D (2, 3, 4)",
     lambda: F.layer_norm(torch.zeros(2, 3, 4), (3,))),
    ("layer empty normalized_shape", lambda: R.layer_norm(torch.zeros(2, 3), ()), ValueError,
     "normalized_shape ()", lambda: F.layer_norm(torch.zeros(2, 3), ())),
    # channels not divisible by groups
    ("group 4 channels / 3", lambda: R.group_norm(torch.zeros(2, 4, 3), 3), ValueError,
     "num_channels (4) must be divisible by num_groups (3)", lambda: F.group_norm(torch.zeros(2, 4, 3), 3)),
    ("group more groups than channels", lambda: R.group_norm(torch.zeros(2, 4, 3), 8), ValueError,
     "num_channels (4) must be divisible by num_groups (8)", lambda: F.group_norm(torch.zeros(2, 4, 3), 8)),
    ("group zero groups", lambda: R.group_norm(torch.zeros(2, 4, 3), 0), ValueError,
     "must be divisible by num_groups (0)", lambda: F.group_norm(torch.zeros(2, 4, 3), 0)),
    # affine parameters of the wrong shape
    ("instance weight", lambda: R.instance_norm(torch.zeros(2, 3, 4), weight=torch.ones(4)), ValueError,
     "expected weight of shape (3,) to match the 3 channels of the input, got (4,)",
     lambda: F.instance_norm(torch.zeros(2, 3, 4), weight=torch.ones(4))),
    ("instance bias", lambda: R.instance_norm(torch.zeros(2, 3, 4), bias=torch.ones(3, 1)), ValueError,
     "expected bias of shape (3,) to match the 3 channels of the input, got (3, 1)",
     lambda: F.instance_norm(torch.zeros(2, 3, 4), weight=torch.ones(3), bias=torch.ones(3, 2))),
    ("group weight", lambda: R.group_norm(torch.zeros(2, 4, 3), 2, weight=torch.ones(2)), ValueError,
     "expected weight of shape (4,) to match the 4 channels of the input, got (2,)",
     lambda: F.group_norm(torch.zeros(2, 4, 3), 2, weight=torch.ones(2))),
    ("group bias", lambda: R.group_norm(torch.zeros(2, 4, 3), 2, bias=torch.ones(5)), ValueError,
     "expected bias of shape (4,)", lambda: F.group_norm(torch.zeros(2, 4, 3), 2, bias=torch.ones(5))),
    ("layer weight per channel", lambda: R.layer_norm(torch.zeros(2, 3, 4, 4), (3, 4, 4), weight=torch.ones(3)),
     ValueError, "expected weight of shape (3, 4, 4), got (3,)",
     lambda: F.layer_norm(torch.zeros(2, 3, 4, 4), (3, 4, 4), weight=torch.ones(3))),
    ("layer bias", lambda: R.layer_norm(torch.zeros(2, 5), (5,), bias=torch.ones(2, 5)), ValueError,
     "expected bias of shape (5,), got (2, 5)", lambda: F.layer_norm(torch.zeros(2, 5), (5,), bias=torch.ones(2, 5))),
    # integer input
    ("instance int", lambda: R.instance_norm(torch.zeros(2, 3, 4, dtype=torch.int64)), TypeError,
     "expected a floating point input (e.g. x.float()), got dtype torch.int64",
     lambda: F.instance_norm(torch.zeros(2, 3, 4, dtype=torch.int64))),
    ("group int", lambda: R.group_norm(torch.zeros(2, 4, 3, dtype=torch.int32), 2), TypeError,
     "got dtype torch.int32", lambda: F.group_norm(torch.zeros(2, 4, 3, dtype=torch.int32), 2)),
    ("layer int", lambda: R.layer_norm(torch.zeros(2, 5, dtype=torch.uint8), (5,)), TypeError,
     "got dtype torch.uint8", lambda: F.layer_norm(torch.zeros(2, 5, dtype=torch.uint8), (5,))),
    # one spatial element: nothing to normalize over
    ("instance 1x1", lambda: R.instance_norm(torch.zeros(2, 3, 1, 1)), ValueError,
     "Expected more than 1 spatial element when training, got input 4D (2, 3, 1, 1)",
     lambda: F.instance_norm(torch.zeros(2, 3, 1, 1))),
    ("instance L=1", lambda: R.instance_norm(torch.zeros(4, 3, 1)), ValueError,
     "Expected more than 1 spatial element", lambda: F.instance_norm(torch.zeros(4, 3, 1))),
    # not a tensor
    ("instance list", lambda: R.instance_norm([[1.0, 2.0]]), TypeError, "expected a torch.Tensor, got list",
     lambda: F.instance_norm([[1.0, 2.0]])),
]


@pytest.mark.parametrize("name,call,error,message,torch_call", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_bad_input_is_rejected_like_torch(name, call, error, message, torch_call):
    with pytest.raises(error, match=re.escape(message)):
        call()
    _torch_rejects(torch_call)


def test_instance_norm_treats_3d_input_as_batched():
    """reference.instance_norm has no unbatched (C, H, W) mode: a 3D input is (N, C, L), as in F.instance_norm."""
    x = _data((3, 4, 5), torch.float64, 1)[0]
    torch.testing.assert_close(R.instance_norm(x), torch.nn.InstanceNorm1d(4)(x))
    unbatched = torch.nn.InstanceNorm2d(3)(x)  # the module reads the same tensor as one (C=3, H=4, W=5) image
    torch.testing.assert_close(R.instance_norm(x.unsqueeze(0)).squeeze(0), unbatched)
    assert not torch.allclose(R.instance_norm(x), unbatched)


# torch.var warns about zero degrees of freedom on an empty reduction; the result is still torch's.
@pytest.mark.filterwarnings(r"ignore:var\(\):UserWarning")
@pytest.mark.parametrize("shape", [(0, 3, 4), (2, 0, 4, 4)])
def test_instance_norm_empty_batch_like_torch(shape):
    torch.testing.assert_close(R.instance_norm(torch.zeros(shape)), F.instance_norm(torch.zeros(shape)))


# ---------------------------------------------------------------- stats_layout / stats_groups


@pytest.mark.parametrize("shape,groups", [((2, 6), 3), ((3, 4, 5), 2), ((2, 6, 3, 2), 3), ((1, 4, 2, 2, 2), 4)])
def test_stats_layout_views_cover_the_input(shape, groups):
    numel = int(torch.tensor(shape).prod())
    n, c = shape[0], shape[1]
    expected = {"batch": ((0, 2), c), "instance": ((2,), n * c), "layer": ((1,), n), "group": ((2,), n * groups)}
    for kind in R.KINDS:
        view, dims = R.stats_layout(kind, shape, groups)
        kept = int(torch.tensor([s for d, s in enumerate(view) if d not in dims]).prod())
        assert int(torch.tensor(view).prod()) == numel, (kind, view)
        assert (dims, kept) == expected[kind]
        assert R.stats_groups(kind, shape, groups).unique().tolist() == list(range(kept))


def test_stats_groups_special_cases_agree():
    """Instance norm is group norm with C groups; layer norm over (C, *) is group norm with one group."""
    shape = (3, 4, 2, 5)
    assert torch.equal(R.stats_groups("instance", shape), R.stats_groups("group", shape, num_groups=4))
    assert torch.equal(R.stats_groups("layer", shape), R.stats_groups("group", shape, num_groups=1))
    assert not torch.equal(R.stats_groups("batch", shape), R.stats_groups("instance", shape))


def _normalize_with(kind, x, groups, eps=1e-12):
    """The reference layer of ``kind`` with a negligible eps (batch norm refuses eps=0 with batch statistics)."""
    if kind == "batch":
        return R.batch_norm(x, eps=eps)
    if kind == "instance":
        return R.instance_norm(x, eps=eps)
    if kind == "layer":
        return R.layer_norm(x, x.shape[1:], eps=eps)
    return R.group_norm(x, groups, eps=eps)


@pytest.mark.parametrize("kind", R.KINDS)
@pytest.mark.parametrize("shape,groups", [((3, 4, 5), 2), ((2, 6, 3, 2), 3), ((4, 2, 3), 1)])
def test_every_group_of_labels_is_normalized(kind, shape, groups):
    """Within each label of stats_groups, the reference output has mean 0 and biased variance 1."""
    x = _data(shape, torch.float64, _seed(shape, groups))[0]
    y = _normalize_with(kind, x, groups)
    labels = R.stats_groups(kind, shape, groups)
    for label in labels.unique():
        members = y[labels == label]
        assert members.numel() > 1
        torch.testing.assert_close(members.mean(), torch.tensor(0.0, dtype=x.dtype), atol=1e-12, rtol=0)
        torch.testing.assert_close(members.var(unbiased=False), torch.tensor(1.0, dtype=x.dtype))


def _torch_forward(kind, x, groups):
    if kind == "batch":
        return F.batch_norm(x, None, None, training=True)
    if kind == "instance":
        return F.instance_norm(x)
    if kind == "layer":
        return F.layer_norm(x, x.shape[1:])
    return F.group_norm(x, groups)


@pytest.mark.parametrize("kind", R.KINDS)
@pytest.mark.parametrize("shape,groups", [((3, 4, 5), 2), ((2, 6, 3, 2), 3)])
def test_labels_are_exactly_what_torch_pools(kind, shape, groups):
    """Nudging one input element changes exactly the outputs that share its label (in torch's own layers)."""
    x = _data(shape, torch.float64, 3)[0]
    labels = R.stats_groups(kind, shape, groups)
    base = _torch_forward(kind, x, groups)
    flat = x.flatten()
    for i in range(0, flat.numel(), 5):
        nudged = flat.clone()
        nudged[i] += 1.0
        changed = (_torch_forward(kind, nudged.reshape(shape), groups) - base).abs() > 1e-9
        assert torch.equal(changed, labels == labels.flatten()[i]), (kind, i)
