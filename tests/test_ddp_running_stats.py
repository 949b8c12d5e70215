"""normbook.checks.ddp_running_stats: the references against float64 arithmetic, and the real 2- and 3-process runs."""

import copy
import subprocess
import sys

import pytest
import torch

from normbook.checks import ddp_running_stats as D


def _batch_stats64(x):
    """Mean and unbiased variance per feature of x (N, C), in float64."""
    x = x.double()
    return x.mean(0), x.var(0, unbiased=True)


@pytest.mark.parametrize("config", [D.Config(), D.Config(slices=(3, 5, 4), steps=3, shift=-2.0, seed=7)])
def test_references_with_a_cumulative_average_are_plain_averages_of_the_batch_statistics(config):
    batches, refs = D.make_batches(config), D.references(config)
    world = len(config.slices)
    per_step = [_batch_stats64(x) for x in batches]
    torch.testing.assert_close(refs["whole"][0].double(), torch.stack([m for m, _ in per_step]).mean(0), atol=1e-5, rtol=1e-5)
    # momentum=None: running_var is the average of the unbiased batch variances, starting from none (not from 1)
    torch.testing.assert_close(refs["whole"][1].double(), torch.stack([v for _, v in per_step]).mean(0), atol=1e-5, rtol=1e-5)
    bounds = [sum(config.slices[:r]) for r in range(world + 1)]
    for r in range(world):
        own = [_batch_stats64(x[bounds[r]:bounds[r + 1]]) for x in batches]
        torch.testing.assert_close(refs["own"][r].double(), torch.stack([torch.stack(s) for s in own]).mean(0), atol=1e-5, rtol=1e-5)
        # rank r after training under DDP's buffer broadcast: rank 0's first steps - 1 batches, then its own last one
        mixed = [_batch_stats64(x[bounds[0]:bounds[1]]) for x in batches[:-1]] + [own[-1]]
        torch.testing.assert_close(refs["rank0_then_own"][r].double(), torch.stack([torch.stack(s) for s in mixed]).mean(0),
                                   atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(refs["rank0_then_own"][0], refs["own"][0])
    # gradients of sum(y * up) for y = gamma * xhat + beta: d/dbeta = sum(up), d/dgamma = sum(up * xhat)
    ups = D._upstream(config)[-1].double()
    x = batches[-1].double()
    xhat = (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + 1e-5)
    torch.testing.assert_close(refs["whole_sum_grads"].double(), torch.stack([(ups * xhat).sum(0), ups.sum(0)]), atol=1e-4, rtol=1e-4)
    for r in range(world):
        xr, ur = x[bounds[r]:bounds[r + 1]], ups[bounds[r]:bounds[r + 1]]
        xh = (xr - xr.mean(0)) / torch.sqrt(xr.var(0, unbiased=False) + 1e-5)
        torch.testing.assert_close(refs["local_grads"][r].double(), torch.stack([(ur * xh).sum(0), ur.sum(0)]), atol=1e-4, rtol=1e-4)


def test_make_batches_is_seeded_and_shifts_each_process():
    config = D.Config(slices=(2, 3), steps=2, shift=100.0)
    a, b = D.make_batches(config), D.make_batches(config)
    assert all(torch.equal(p, q) for p, q in zip(a, b)) and a[0].shape == (5, 3)
    assert (a[0][:2].abs() < 10).all() and (a[0][2:] > 90).all()
    assert not torch.equal(D.make_batches(D.Config(slices=(2, 3), steps=2, shift=100.0, seed=1))[0], a[0])


@pytest.mark.parametrize("kwargs,match", [
    (dict(slices=(4,)), "at least 2 processes"), (dict(slices=(4, 1)), "at least 2 samples"),
    (dict(channels=0), "channels >= 1"), (dict(steps=1), "steps >= 2"),
])
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        D.Config(**kwargs)


def test_run_check_rejects_what_is_not_a_config():
    with pytest.raises(TypeError, match="expected a normbook.checks.ddp_running_stats.Config, got dict"):
        D.run_check({"slices": (2, 2)})


@pytest.fixture(scope="module")
def report():
    return D.run_check()


def test_two_processes_show_what_ddp_does(report):
    """The real thing: 2 gloo processes, DDP with and without buffer sync, and with SyncBatchNorm."""
    assert D.failures(report) == []
    refs, b = report.refs, report.stats["buffers broadcast"]
    torch.testing.assert_close(b["after training"][0], refs["own"][0])
    torch.testing.assert_close(b["after one more forward"][1], refs["own"][0])  # rank 1 holds rank 0's statistics
    assert not torch.allclose(b["after training"][1], refs["own"][1], atol=0.1)  # not those of its own slices
    assert not torch.allclose(refs["own"][0], refs["whole"], atol=0.5)  # and rank 0's are not the whole batch's
    local = report.stats["buffers local"]["after one more forward"]
    torch.testing.assert_close(local, refs["own"])
    for s in report.stats["SyncBatchNorm"].values():
        torch.testing.assert_close(s, torch.stack([refs["whole"]] * 2))
    torch.testing.assert_close(report.grads["buffers broadcast"], torch.stack([refs["local_grads"].mean(0)] * 2))
    torch.testing.assert_close(report.grads["SyncBatchNorm"], torch.stack([refs["whole_sum_grads"] / 2] * 2))
    lines = D.summary(report)
    assert lines[0].startswith("normbook.checks.ddp_running_stats: 2 processes (gloo, CPU)")
    assert sum(line.startswith("[buffers broadcast]") for line in lines) == 2


@pytest.mark.parametrize("tamper,expected", [
    (lambda r: r.stats["buffers broadcast"]["after one more forward"].__setitem__(1, r.refs["own"][1]), "after one more forward"),
    (lambda r: r.stats["buffers local"]["after training"].__setitem__(0, r.refs["whole"]), "its own slices"),
    (lambda r: r.stats["SyncBatchNorm"]["after training"].__setitem__(1, r.refs["own"][1]), "whole batches"),
    (lambda r: r.grads["buffers broadcast"].mul_(2), "mean of the per-process gradients"),
    (lambda r: r.grads["SyncBatchNorm"].mul_(2), "sum of the per-process losses"),
])
def test_failures_catches_each_wrong_result(report, tamper, expected):
    bad = copy.deepcopy(report)
    tamper(bad)
    found = D.failures(bad)
    assert len(found) == 1 and expected in found[0], found


def test_three_uneven_processes_with_momentum():
    report = D.run_check(D.Config(slices=(3, 5, 4), steps=3, momentum=0.1, seed=3))
    assert D.failures(report) == []
    assert report.stats["buffers broadcast"]["after training"].shape == (3, 2, 3)


def test_module_entry_point_prints_pass():
    run = subprocess.run([sys.executable, "-m", "normbook.checks.ddp_running_stats"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and run.stdout.splitlines()[-1] == "PASS", run.stdout + run.stderr
    assert run.stderr == ""


def test_main_rejects_arguments_and_reports_a_failure(monkeypatch, capsys, report):
    assert D.main(["--bogus"]) == 2
    broken = copy.deepcopy(report)
    broken.grads["SyncBatchNorm"].mul_(3)
    monkeypatch.setattr(D, "run_check", lambda: broken)
    assert D.main([]) == 1
    assert capsys.readouterr().out.splitlines()[-1].startswith("FAIL: SyncBatchNorm")

    def dies():
        raise RuntimeError("worker died")

    monkeypatch.setattr(D, "run_check", dies)
    assert D.main([]) == 1
    assert "FAIL: RuntimeError: worker died" in capsys.readouterr().out

