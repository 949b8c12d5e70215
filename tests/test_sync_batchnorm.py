"""normbook.sync_batchnorm: one process against nn.BatchNorm over many cases, and the 2-process gloo check."""

import itertools
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from normbook import sync_batchnorm as S
from normbook.training import small_cnn

SHAPES = [(4, 3), (5, 2, 7), (3, 4, 5, 5), (2, 3, 2, 3, 4), (1, 2, 3, 3)]
DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: dict(atol=2e-5, rtol=1e-4), torch.float64: dict(atol=1e-10, rtol=1e-9)}


def _bn(dims, **kw):
    return (nn.BatchNorm1d if dims < 4 else nn.BatchNorm2d if dims == 4 else nn.BatchNorm3d)(**kw)


@pytest.fixture
def world_of_one():
    """A real gloo process group with one process, so the collectives run (and are differentiated)."""
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    yield
    dist.destroy_process_group()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum,affine,tracked", [(0.1, True, True), (None, True, True), (0.3, False, True), (0.1, True, False)])
def test_module_matches_nn_batchnorm_over_steps_and_in_eval(shape, dtype, momentum, affine, tracked):
    g = torch.Generator().manual_seed(len(shape) * 100 + shape[0])
    c = shape[1]
    kw = dict(num_features=c, momentum=momentum, affine=affine, track_running_stats=tracked, dtype=dtype)
    ref, ours = _bn(len(shape), **kw), S.SyncBatchNorm(**kw)
    if affine:
        with torch.no_grad():
            for m in (ref, ours):
                m.weight.copy_(torch.linspace(0.5, 2.0, c, dtype=dtype))
                m.bias.copy_(torch.linspace(-1.0, 1.0, c, dtype=dtype))
    for _ in range(3):
        x = torch.randn(shape, generator=g, dtype=dtype) * 3 + 1
        up = torch.randn(shape, generator=g, dtype=dtype)
        xr, xo = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        yr, yo = ref(xr), ours(xo)
        (yr * up).sum().backward()
        (yo * up).sum().backward()
        torch.testing.assert_close(yo, yr, **TOL[dtype])
        torch.testing.assert_close(xo.grad, xr.grad, **TOL[dtype])
    if affine:
        torch.testing.assert_close(ours.weight.grad, ref.weight.grad, **TOL[dtype])
        torch.testing.assert_close(ours.bias.grad, ref.bias.grad, **TOL[dtype])
    if tracked:
        torch.testing.assert_close(ours.running_mean, ref.running_mean, **TOL[dtype])
        torch.testing.assert_close(ours.running_var, ref.running_var, **TOL[dtype])
        assert int(ours.num_batches_tracked) == int(ref.num_batches_tracked) == 3
    ref.eval(), ours.eval()
    x = torch.randn(shape, generator=g, dtype=dtype)
    torch.testing.assert_close(ours(x), ref(x), **TOL[dtype])


@pytest.mark.parametrize("shape,dtype", list(itertools.product(SHAPES[:3], DTYPES)))
def test_function_in_a_process_group_of_one_matches_f_batch_norm(world_of_one, shape, dtype):
    g = torch.Generator().manual_seed(7)
    c = shape[1]
    x = torch.randn(shape, generator=g, dtype=dtype) * 2 - 1
    w, b = torch.rand(c, generator=g, dtype=dtype) + 0.5, torch.randn(c, generator=g, dtype=dtype)
    rm1, rv1 = torch.zeros(c, dtype=dtype), torch.ones(c, dtype=dtype)
    rm2, rv2 = rm1.clone(), rv1.clone()
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ya = S.sync_batch_norm(xa, rm1, rv1, w, b, momentum=0.2, eps=1e-3)
    yb = F.batch_norm(xb, rm2, rv2, w, b, training=True, momentum=0.2, eps=1e-3)
    ya.pow(2).sum().backward()
    yb.pow(2).sum().backward()
    for got, want in ((ya, yb), (xa.grad, xb.grad), (rm1, rm2), (rv1, rv2)):
        torch.testing.assert_close(got, want, **TOL[dtype])


def test_global_batch_stats_are_the_mean_and_biased_variance():
    x = torch.arange(24, dtype=torch.float64).reshape(2, 3, 4)
    mean, var, n = S.global_batch_stats(x)
    torch.testing.assert_close(mean, x.transpose(0, 1).reshape(3, -1).mean(1))
    torch.testing.assert_close(var, x.transpose(0, 1).reshape(3, -1).var(1, unbiased=False))
    assert n == 8 and mean.dtype == torch.float64
    half = torch.randn(4, 2, dtype=torch.float16)
    assert S.global_batch_stats(half)[0].dtype == torch.float32  # statistics accumulate in at least float32


def test_all_reduce_sum_is_identity_without_a_process_group():
    t = torch.randn(3)
    assert S.all_reduce_sum(t) is t
    with pytest.raises(TypeError, match="expected a torch.Tensor"):
        S.all_reduce_sum([1.0])


@pytest.mark.parametrize("call,exc,match", [
    (lambda: S.SyncBatchNorm(3)(torch.randn(2, 4, 5)), ValueError, "expected 3 channels"),
    (lambda: S.SyncBatchNorm(3)(torch.randn(3)), ValueError, "expected 2D"),
    (lambda: S.SyncBatchNorm(3)(torch.ones(2, 3, dtype=torch.long)), TypeError, "floating point"),
    (lambda: S.SyncBatchNorm(3)(torch.randn(1, 3)), ValueError, "more than 1 value per channel"),
    (lambda: S.sync_batch_norm(torch.randn(2, 3), torch.zeros(3), None), ValueError, "give both"),
    (lambda: S.sync_batch_norm(torch.randn(2, 3), weight=torch.ones(4)), ValueError, r"weight of shape \(3,\)"),
    (lambda: S.global_batch_stats(torch.randn(0, 3)), ValueError, "empty batch"),
])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("tracked", [True, False])
def test_eval_mode_never_communicates(world_of_one, monkeypatch, tracked):
    """Like nn.SyncBatchNorm: training all-reduces; eval does not, even without running stats (local batch stats)."""
    calls = []
    real = dist.all_reduce
    monkeypatch.setattr(S.dist, "all_reduce", lambda *a, **k: calls.append(1) or real(*a, **k))
    m = S.SyncBatchNorm(3, track_running_stats=tracked)
    x = torch.randn(4, 3, 5, generator=torch.Generator().manual_seed(5))
    m(x)
    assert calls, "training mode must all-reduce the statistics"
    calls.clear()
    y = m.eval()(x)
    assert not calls, "eval mode must not communicate"
    if tracked:
        want = F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, training=False, eps=m.eps)
    else:
        want = F.batch_norm(x, None, None, m.weight, m.bias, training=True, eps=m.eps)
    torch.testing.assert_close(y, want)


def test_bias_false_has_a_weight_but_no_bias_and_matches_torch():
    m = S.SyncBatchNorm(3, bias=False)
    assert m.bias is None and m.weight is not None and "bias" not in dict(m.named_parameters())
    x = torch.randn(4, 3, 2, 2, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        m.weight.copy_(torch.tensor([0.5, 1.0, 2.0]))
    want = F.batch_norm(x, None, None, m.weight, None, training=True, eps=m.eps)
    torch.testing.assert_close(m(x), want)
    assert S.convert_sync_batchnorm(nn.BatchNorm2d(3, bias=False)).bias is None


def test_batch_of_one_works_in_eval_mode():
    m = S.SyncBatchNorm(3).eval()
    assert m(torch.randn(1, 3)).shape == (1, 3)


def test_convert_sync_batchnorm_shares_parameters_and_keeps_modes():
    model = small_cnn(True, widths=(4, 8)).eval()
    weight, running_var = model.bn2.weight, model.bn2.running_var
    converted = S.convert_sync_batchnorm(model)
    kinds = [type(m).__name__ for m in converted.modules()]
    assert kinds.count("SyncBatchNorm") == 2 and "BatchNorm2d" not in kinds
    assert converted is model and converted.bn2.weight is weight and converted.bn2.running_var is running_var
    assert not converted.bn1.training
    bn = nn.BatchNorm1d(5, momentum=None, affine=False)
    single = S.convert_sync_batchnorm(bn)
    assert isinstance(single, S.SyncBatchNorm) and single.momentum is None and not single.affine
    assert single.running_mean is bn.running_mean and single.training
    x = torch.randn(6, 5)
    torch.testing.assert_close(single(x), F.batch_norm(x, None, None, training=True))
    with pytest.raises(TypeError, match="expected an nn.Module"):
        S.convert_sync_batchnorm(3)


def test_failures_reports_errors_and_a_per_process_batchnorm_that_matches():
    case = S.CASES[0]
    good = {"normbook/output": 1e-7, "plain/output": 0.3}
    assert S.failures(case, good) == []
    assert "normbook/output" in S.failures(case, {**good, "normbook/output": 1e-3})[0]
    assert "should differ" in S.failures(case, {**good, "plain/output": 0.0})[0]
    assert S.failures(case, {**good, "normbook/input grad": float("nan")})


def test_two_gloo_processes_match_one_batchnorm_over_the_concatenated_batch():
    """The real thing: `python -m normbook.sync_batchnorm` spawns 2 CPU processes and checks every case."""
    run = subprocess.run([sys.executable, "-m", "normbook.sync_batchnorm"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[-1] == "PASS"
    cpu = [line for line in lines if line.startswith("[gloo/cpu]")]
    assert len(cpu) == len(S.CASES) and all("normbook == one BatchNorm" in line for line in cpu)
    gpus = torch.cuda.device_count()
    if gpus < 2:
        assert f"[nccl/cuda] skipped: needs 2 CUDA devices, found {gpus}" in lines
    if gpus < 1:
        assert "[gloo/cuda] skipped: needs 1 CUDA device, found 0" in lines


def test_main_rejects_arguments(capsys):
    assert S.main(["--bogus"]) == 2
    assert "usage" in capsys.readouterr().err


def test_main_exits_non_zero_when_a_check_fails_or_a_worker_dies(monkeypatch, capsys):
    monkeypatch.setattr(S, "_run_all", lambda: (["[gloo/cpu] ...: FAIL normbook/output: error 0.1 > tolerance 2e-05"], False))
    assert S.main([]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "FAIL"

    def dies():
        raise RuntimeError("process 1 terminated with exit code 1")

    monkeypatch.setattr(S, "_run_all", dies)
    assert S.main([]) == 1
    assert "FAIL: RuntimeError: process 1 terminated" in capsys.readouterr().out
