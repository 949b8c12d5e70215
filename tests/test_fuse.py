"""normbook.fuse against conv -> batch norm in eval mode, and against torch's own fuse_conv_bn_eval."""

import inspect
import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from normbook.fuse import fuse_conv_bn, fuse_model
from normbook.training import small_cnn

TOL = {torch.float32: dict(atol=1e-5, rtol=1e-4), torch.float64: dict(atol=1e-12, rtol=1e-10)}
# (in, out, kernel, stride, padding, groups, dilation)
CONVS = [(3, 4, 3, 1, 1, 1, 1), (4, 6, 1, 1, 0, 1, 1), (6, 6, 3, 2, 1, 3, 1), (2, 5, (3, 1), 1, (1, 0), 1, 2),
         (4, 4, 3, 1, 1, 4, 1)]


def _pair(spec, dtype, conv_bias, affine, seed):
    g = torch.Generator().manual_seed(seed)
    cin, cout, k, stride, pad, groups, dil = spec
    conv = nn.Conv2d(cin, cout, k, stride, pad, dil, groups, bias=conv_bias, dtype=dtype)
    bn = nn.BatchNorm2d(cout, eps=1e-3, affine=affine, dtype=dtype)
    with torch.no_grad():
        for p in conv.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=dtype))
        bn.running_mean.copy_(torch.randn(cout, generator=g, dtype=dtype) * 2)
        bn.running_var.copy_(torch.rand(cout, generator=g, dtype=dtype) * 3 + 0.1)
        if affine:
            bn.weight.copy_(torch.randn(cout, generator=g, dtype=dtype))
            bn.bias.copy_(torch.randn(cout, generator=g, dtype=dtype))
    x = torch.randn(3, cin, 7, 6, generator=g, dtype=dtype)
    return conv.eval(), bn.eval(), x


@pytest.mark.parametrize("spec", CONVS)
@pytest.mark.parametrize("dtype,conv_bias,affine", list(itertools.product([torch.float32, torch.float64], [True, False], [True, False])))
def test_fused_conv_computes_bn_of_conv(spec, dtype, conv_bias, affine):
    conv, bn, x = _pair(spec, dtype, conv_bias, affine, seed=hash((spec, conv_bias, affine)) % 1000)
    fused = fuse_conv_bn(conv, bn)
    with torch.no_grad():
        expected = bn(conv(x))
        got = fused(x)
    torch.testing.assert_close(got, expected, **TOL[dtype])
    torch.testing.assert_close(got, fuse_conv_bn_eval(conv, bn)(x).detach(), **TOL[dtype])
    assert isinstance(fused, nn.Conv2d) and fused.bias is not None and fused.weight.dtype == dtype
    assert (fused.stride, fused.padding, fused.groups, fused.dilation) == (conv.stride, conv.padding, conv.groups, conv.dilation)


@pytest.mark.parametrize("conv_bias", [True, False])
def test_batchnorm_without_bias_parameter_folds(conv_bias):
    """BatchNorm2d(bias=False) has a weight but ``bn.bias is None``: beta is 0."""
    if "bias" not in inspect.signature(nn.BatchNorm2d).parameters:
        pytest.skip(f"torch {torch.__version__} has no BatchNorm2d(bias=...) argument")
    conv, _, x = _pair(CONVS[0], torch.float64, conv_bias, True, seed=3)
    bn = nn.BatchNorm2d(conv.out_channels, bias=False, dtype=torch.float64)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2.0)
        bn.running_mean.uniform_(-1.0, 1.0)
        bn.running_var.uniform_(0.5, 2.0)
    assert bn.bias is None
    bn.eval()
    with torch.no_grad():
        torch.testing.assert_close(fuse_conv_bn(conv, bn)(x), bn(conv(x)), **TOL[torch.float64])


def test_inputs_are_not_changed():
    conv, bn, x = _pair(CONVS[0], torch.float32, True, True, seed=1)
    before = [t.clone() for t in (*conv.parameters(), *bn.parameters(), *bn.buffers())]
    fuse_conv_bn(conv, bn)
    after = [*conv.parameters(), *bn.parameters(), *bn.buffers()]
    assert all(torch.equal(a, b) for a, b in zip(before, after))


def test_a_wrong_fold_is_detected():
    """The comparison can fail: folding with the wrong eps gives different outputs."""
    conv, bn, x = _pair(CONVS[0], torch.float64, True, True, seed=2)
    bn.running_var.fill_(1e-3)
    fused = fuse_conv_bn(conv, bn)
    bn.eps = 1e-1
    with pytest.raises(AssertionError):
        torch.testing.assert_close(fused(x).detach(), bn(conv(x)).detach(), **TOL[torch.float64])


@pytest.mark.parametrize("batch_norm", [True, False])
def test_fuse_model_keeps_outputs_and_removes_every_batchnorm(batch_norm):
    torch.manual_seed(0)
    model = small_cnn(batch_norm, widths=(4, 8)).double()
    model.train()
    for _ in range(3):  # give the running statistics non-trivial values
        model(torch.randn(16, 3, 32, 32, dtype=torch.float64) * 2 + 1)
    model.eval()
    fused = fuse_model(model)
    x = torch.randn(5, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), model(x), **TOL[torch.float64])
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == batch_norm  # the original is untouched
    assert [name for name, _ in fused.named_children()] == [name for name, _ in model.named_children()]


def test_fuse_model_finds_pairs_in_nested_sequentials_and_skips_lone_batchnorms():
    model = nn.Sequential(nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3)), nn.ReLU(), nn.BatchNorm2d(3)).eval()
    fused = fuse_model(model)
    assert isinstance(fused[0][1], nn.Identity) and isinstance(fused[2], nn.BatchNorm2d)


@pytest.mark.parametrize("make,match", [
    (lambda: (nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3)), "training mode"),
    (lambda: (nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3, track_running_stats=False).eval()), "no running statistics"),
    (lambda: (nn.Conv2d(2, 3, 1), nn.BatchNorm2d(4).eval()), "3 output channels.*normalizes 4"),
    (lambda: (nn.Linear(2, 3), nn.BatchNorm2d(3).eval()), "expected an nn.Conv2d"),
    (lambda: (nn.Conv2d(2, 3, 1), nn.BatchNorm1d(3).eval()), "expected an nn.BatchNorm2d"),
])
def test_fuse_conv_bn_errors(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        fuse_conv_bn(*make())


def test_fuse_model_errors():
    with pytest.raises(ValueError, match="call model.eval"):
        fuse_model(small_cnn(True, widths=(2,)))
    with pytest.raises(TypeError, match="expected an nn.Module"):
        fuse_model("model")
