"""normbook.sync_batchnorm: one process against nn.BatchNorm over many cases, shifted inputs against a float64
ground truth, 2 gloo processes (shifted and empty batches), and the check program normbook.checks.sync_batchnorm."""

import itertools
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from normbook import sync_batchnorm as S
from normbook.checks import sync_batchnorm as CHK
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


@pytest.mark.parametrize("built,flipped", [(True, False), (False, True)])
def test_track_running_stats_changed_after_construction_behaves_like_nn_batchnorm(built, flipped):
    """torch looks at the buffers: True -> False keeps (and in eval uses) them, False -> True has none to update."""
    g = torch.Generator().manual_seed(8)
    ref, ours = nn.BatchNorm2d(3, track_running_stats=built), S.SyncBatchNorm(3, track_running_stats=built)
    for m in (ref, ours):
        m.track_running_stats = flipped
    for _ in range(2):
        x = torch.randn(4, 3, 2, 2, generator=g) * 2 + 3
        torch.testing.assert_close(ours(x), ref(x))
    if built:
        torch.testing.assert_close((ours.running_mean, ours.running_var), (torch.zeros(3), torch.ones(3)))
        assert int(ours.num_batches_tracked) == int(ref.num_batches_tracked) == 0
    else:
        assert ours.running_mean is None and ours.num_batches_tracked is None
    ref.eval(), ours.eval()
    x = torch.randn(4, 3, 2, 2, generator=g) * 2 + 3
    torch.testing.assert_close(ours(x), ref(x))


def test_convert_sync_batchnorm_asks_for_a_dry_run_of_lazy_layers():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.LazyBatchNorm2d())
    with pytest.raises(ValueError, match=r"uninitialized LazyBatchNorm2d: run one forward pass \(a dry run\)"):
        S.convert_sync_batchnorm(model)
    x = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(9))
    want = model(x)  # the dry run initializes it (and updates its running statistics once)
    converted = S.convert_sync_batchnorm(model)
    assert isinstance(converted[1], S.SyncBatchNorm) and converted[1].num_features == 4
    torch.testing.assert_close(converted(x), want)
    lazy_linear = S.convert_sync_batchnorm(nn.Sequential(nn.BatchNorm1d(3), nn.LazyLinear(2)))  # not a batch norm
    assert isinstance(lazy_linear[0], S.SyncBatchNorm) and isinstance(lazy_linear[1], nn.LazyLinear)


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
    case = CHK.CASES[0]
    good = {"normbook/output": 1e-7, "plain/output": 0.3}
    assert CHK.failures(case, good) == []
    assert "normbook/output" in CHK.failures(case, {**good, "normbook/output": 1e-3})[0]
    assert "should differ" in CHK.failures(case, {**good, "plain/output": 0.0})[0]
    assert CHK.failures(case, {**good, "normbook/input grad": float("nan")})


def test_check_cases_include_large_offsets_with_tolerances_that_still_catch_cancellation():
    shifted = {c.dtype: c for c in CHK.CASES if c.offset}
    assert shifted[torch.float32].offset >= 1e3 and shifted[torch.float64].offset >= 1e6
    for case in shifted.values():
        assert "offset=" in case.label()
        assert case.tolerance() < 1e-3  # the one-pass formula is off by more than 1e-3 there (see the tests below)
    assert CHK.CASES[0].tolerance() == CHK.TOL[torch.float32]


def test_two_gloo_processes_match_one_batchnorm_over_the_concatenated_batch():
    """The real thing: `python -m normbook.checks.sync_batchnorm` spawns 2 CPU processes and checks every case."""
    run = subprocess.run([sys.executable, "-m", "normbook.checks.sync_batchnorm"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[-1] == "PASS"
    cpu = [line for line in lines if line.startswith("[gloo/cpu]")]
    assert len(cpu) == len(CHK.CASES) and all("normbook == one BatchNorm" in line for line in cpu)
    assert sum("offset=" in line for line in cpu) == 2
    assert sum("DDP-averaged param grads" in line for line in cpu) == sum(c.affine for c in CHK.CASES)
    gpus = torch.cuda.device_count()
    if gpus < 2:
        assert f"[nccl/cuda] skipped: needs 2 CUDA devices, found {gpus}" in lines
    if gpus < 1:
        assert "[gloo/cuda] skipped: needs 1 CUDA device, found 0" in lines


def test_main_rejects_arguments(capsys):
    assert CHK.main(["--bogus"]) == 2
    assert "usage" in capsys.readouterr().err


def test_main_exits_non_zero_when_a_check_fails_or_a_worker_dies(monkeypatch, capsys):
    monkeypatch.setattr(CHK, "_run_all", lambda: (["[gloo/cpu] ...: FAIL normbook/output: error 0.1 > tolerance 2e-05"], False))
    assert CHK.main([]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "FAIL"

    def dies():
        raise RuntimeError("process 1 terminated with exit code 1")

    monkeypatch.setattr(CHK, "_run_all", dies)
    assert CHK.main([]) == 1
    assert "FAIL: RuntimeError: process 1 terminated" in capsys.readouterr().out


# --- Inputs whose channel means are large compared with their spread (issue 15) -------------------------------
# The one-pass formula var = E[x^2] - E[x]^2 cancels catastrophically there. The ground truth subtracts the known
# offset first: for x within a factor 2 of the offset, x - offset is exact in float64, so the statistics of the
# small remainders, computed in float64, are those of x to about 1e-15.

SHIFTED = [(torch.float32, 1e3), (torch.float32, 1e4), (torch.float64, 1e6), (torch.float64, 1e8)]


def _truth(x, offset):
    """float64 mean, biased variance and batch-norm output (eps 1e-5, no affine) of x (N, C, *), exact to ~1e-15."""
    dims = [0] + list(range(2, x.dim()))
    s = x.double() - offset  # exact
    shape = (1, x.shape[1]) + (1,) * (x.dim() - 2)
    mean_s, var = s.mean(dims), s.var(dims, unbiased=False)
    return offset + mean_s, var, (s - mean_s.reshape(shape)) / torch.sqrt(var.reshape(shape) + 1e-5)


def _shifted_tol(dtype, offset, spread=1.0):
    """What two correct implementations may differ by: a few roundings of the offset (inputs are rounded by about
    eps * offset themselves), per unit of spread, on top of the usual tolerance."""
    return TOL[dtype]["atol"] + 8 * torch.finfo(dtype).eps * offset / spread


@pytest.mark.parametrize("grouped", [False, True], ids=["no group", "gloo world of 1"])
@pytest.mark.parametrize("dtype,offset", SHIFTED)
def test_shifted_inputs_give_the_statistics_of_a_float64_ground_truth(request, grouped, dtype, offset):
    if grouped:
        request.getfixturevalue("world_of_one")
    g = torch.Generator().manual_seed(int(offset) % 1000 + 15)
    x = (torch.randn(32, 4, 8, 8, generator=g, dtype=torch.float64) + offset).to(dtype)
    mean, var, n = S.global_batch_stats(x)
    want_mean, want_var, _ = _truth(x, offset)
    assert n == 32 * 64 and mean.dtype == var.dtype == dtype
    torch.testing.assert_close(mean.double(), want_mean, rtol=0, atol=4 * torch.finfo(dtype).eps * offset)
    torch.testing.assert_close(var.double(), want_var, rtol={torch.float32: 1e-5, torch.float64: 1e-9}[dtype], atol=0)


@pytest.mark.parametrize("dtype,offset", SHIFTED)
def test_shifted_inputs_match_nn_batchnorm_and_the_ground_truth(dtype, offset):
    """Output, input gradient and running statistics of the module, as one nn.BatchNorm2d gives them."""
    g = torch.Generator().manual_seed(int(offset) % 1000 + 17)
    x = (torch.randn(16, 3, 6, 6, generator=g, dtype=torch.float64) + offset).to(dtype)
    up = torch.randn(x.shape, generator=g, dtype=dtype)
    ref, ours = nn.BatchNorm2d(3, dtype=dtype), S.SyncBatchNorm(3, dtype=dtype)
    xr, xo = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    yr, yo = ref(xr), ours(xo)
    (yr * up).sum().backward()
    (yo * up).sum().backward()
    tol = _shifted_tol(dtype, offset)
    torch.testing.assert_close(yo.double(), _truth(x, offset)[2], rtol=0, atol=tol)
    torch.testing.assert_close(yo, yr, rtol=0, atol=tol)
    torch.testing.assert_close(xo.grad, xr.grad, rtol=0, atol=tol)
    torch.testing.assert_close(ours.running_mean, ref.running_mean, rtol=0, atol=tol * 0.1 * offset)
    torch.testing.assert_close(ours.running_var, ref.running_var, rtol=0, atol=tol)


def test_local_and_combined_stats_of_uneven_and_empty_slices_equal_the_whole_batch():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(13, 5, 4, generator=g, dtype=torch.float64) * 3 + 1e6
    parts = [x[:0], x[:4], x[4:5], x[5:]]  # an empty slice, uneven sizes
    stats = [S.local_stats(p) for p in parts]
    assert [s[0] for s in stats] == [0, 16, 4, 32]
    torch.testing.assert_close(stats[0][1], torch.zeros(5, dtype=torch.float64))  # empty: zeros, not NaN
    torch.testing.assert_close(stats[0][2], torch.zeros(5, dtype=torch.float64))
    counts = torch.tensor([float(s[0]) for s in stats], dtype=torch.float64)
    n, mean, var = S.combine_stats(counts, torch.stack([s[1] for s in stats]), torch.stack([s[2] for s in stats]))
    want_mean, want_var, _ = _truth(x, 1e6)
    assert n == 52
    torch.testing.assert_close(mean, want_mean, rtol=0, atol=1e-9)
    torch.testing.assert_close(var, want_var, rtol=1e-10, atol=0)
    # each part's M2 is its own sum of squared deviations
    torch.testing.assert_close(stats[3][2], (parts[3] - 1e6).var((0, 2), unbiased=False) * 32, rtol=1e-12, atol=0)


def test_local_and_combined_stats_are_differentiable_like_var_mean():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(6, 3, 5, generator=g, dtype=torch.float64) + 2
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    stats = [S.local_stats(p) for p in (xa[:2], xa[2:])]
    counts = torch.tensor([float(s[0]) for s in stats], dtype=torch.float64)
    _, mean, var = S.combine_stats(counts, torch.stack([s[1] for s in stats]), torch.stack([s[2] for s in stats]))
    var_b, mean_b = torch.var_mean(xb, dim=(0, 2), correction=0)
    w = torch.randn(2, 3, generator=g, dtype=torch.float64)
    (w[0] * mean + w[1] * var).sum().backward()
    (w[0] * mean_b + w[1] * var_b).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: S.combine_stats(torch.tensor([0.0, 0.0]), torch.zeros(2, 3), torch.zeros(2, 3)), ValueError, "total count 0"),
    (lambda: S.combine_stats(torch.tensor([1.0]), torch.zeros(2, 3), torch.zeros(2, 3)), ValueError, "same P and C"),
    (lambda: S.combine_stats(torch.tensor([1.0, 1.0]), torch.zeros(2, 3), torch.zeros(2, 4)), ValueError, "same P and C"),
    (lambda: S.combine_stats([1, 1], torch.zeros(2, 3), torch.zeros(2, 3)), ValueError, r"counts as a 1D tensor \(P\), got list"),
    (lambda: S.combine_stats(torch.ones(2), torch.zeros(3), torch.zeros(2, 3)), ValueError, r"means as a 2D tensor \(P, C\), got 1D"),
    (lambda: S.local_stats(torch.randn(3)), ValueError, "expected 2D"),
    (lambda: S.all_gather(torch.zeros(2, 2)), ValueError, r"expected a 1D tensor \(K,\), got 2D"),
])
def test_stats_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_all_gather_without_a_process_group_is_one_row():
    t = torch.arange(4.0)
    torch.testing.assert_close(S.all_gather(t), t.unsqueeze(0))


# --- 2 gloo processes: shifted inputs and a process with an empty batch, in one spawn -------------------------

SPLITS = [  # (dtype, offset, samples per process)
    (torch.float32, 1e3, (5, 3)),
    (torch.float64, 1e6, (2, 7)),
    (torch.float32, 1e3, (0, 6)),  # process 0 holds an empty batch
    (torch.float64, 0.0, (4, 0)),  # process 1 holds an empty batch
]


def _two_process_worker(rank, world, init):
    """Each split: normbook's SyncBatchNorm on this process's slice vs nn.BatchNorm1d and the float64 truth on the
    concatenated batch: global statistics, output, input gradient, running statistics. Raises on any mismatch."""
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world, timeout=timedelta(seconds=60))
    try:
        for i, (dtype, offset, batches) in enumerate(SPLITS):
            g = torch.Generator().manual_seed(100 + i)  # the same numbers in every process
            x = (torch.randn(sum(batches), 3, 10, generator=g, dtype=torch.float64) + offset).to(dtype)
            x[batches[0]:] += 0.5
            up = torch.randn(x.shape, generator=g, dtype=dtype)
            lo, hi = sum(batches[:rank]), sum(batches[:rank + 1])
            tol = _shifted_tol(dtype, offset)
            mean, var, n = S.global_batch_stats(x[lo:hi])
            want_mean, want_var, want_y = _truth(x, offset)
            assert n == sum(batches) * 10, (i, n)
            torch.testing.assert_close(mean.double(), want_mean, rtol=0, atol=4 * torch.finfo(dtype).eps * max(offset, 1))
            torch.testing.assert_close(var.double(), want_var, rtol={torch.float32: 1e-5, torch.float64: 1e-9}[dtype], atol=0)
            ref, ours = nn.BatchNorm1d(3, dtype=dtype), S.SyncBatchNorm(3, dtype=dtype)
            xr, xs = x.clone().requires_grad_(True), x[lo:hi].clone().requires_grad_(True)
            yr, ys = ref(xr), ours(xs)
            (yr * up).sum().backward()
            (ys * up[lo:hi]).sum().backward()
            assert ys.shape == (hi - lo, 3, 10) and xs.grad.shape == ys.shape
            torch.testing.assert_close(ys.double(), want_y[lo:hi], rtol=0, atol=tol)
            torch.testing.assert_close(ys, yr[lo:hi], rtol=0, atol=tol)
            torch.testing.assert_close(xs.grad, xr.grad[lo:hi], rtol=0, atol=tol)
            torch.testing.assert_close(ours.running_mean, ref.running_mean, rtol=0, atol=tol * 0.1 * max(offset, 1))
            torch.testing.assert_close(ours.running_var, ref.running_var, rtol=0, atol=tol)
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_shifted_inputs_and_an_empty_batch():
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_two_process_worker, args=(2, Path(tmp, "rendezvous").as_uri()), nprocs=2, join=True)
