"""normbook.training: the small CNN, standardization, evaluation and the seeded, logged training loop."""

import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from normbook.tensorboard import read_histograms, read_scalars
from normbook.training import evaluate, freeze_bn_stats, predict, small_cnn, standardize, train


@pytest.mark.parametrize("batch_norm", [True, False])
@pytest.mark.parametrize("widths,size", [((16, 32, 64), 32), ((4,), 8), ((3, 5), 12), ((2, 2, 2, 2), 16)])
def test_small_cnn_shapes_and_layers(batch_norm, widths, size):
    model = small_cnn(batch_norm, widths, num_classes=7)
    assert model(torch.randn(2, 3, size, size)).shape == (2, 7)
    names = [name for name, _ in model.named_children()]
    assert names[:3 + batch_norm] == (["conv1", "bn1", "relu1", "pool1"] if batch_norm else ["conv1", "relu1", "pool1"])
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model) == (len(widths) if batch_norm else 0)
    assert all((m.bias is None) == batch_norm for m in model if isinstance(m, nn.Conv2d))


def test_both_variants_start_from_the_same_weights_without_touching_the_global_rng():
    state = torch.random.get_rng_state()
    a, b = small_cnn(True, seed=3), small_cnn(False, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    for name in ("conv1", "conv2", "conv3", "fc"):
        assert torch.equal(getattr(a, name).weight, getattr(b, name).weight)
    assert not torch.equal(small_cnn(True, seed=4).conv1.weight, a.conv1.weight)


@pytest.mark.parametrize("kwargs,match", [
    (dict(widths=()), "non-empty"), (dict(widths=(4, 0)), "positive widths"), (dict(num_classes=0), "num_classes"),
])
def test_small_cnn_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        small_cnn(True, **kwargs)


@pytest.mark.parametrize("shape", [(10, 3, 4, 4), (7, 1, 5, 3), (3, 2, 1, 6)])
def test_standardize(shape):
    x = torch.rand(shape, dtype=torch.float64) * 5 + 2
    z, mean, std = standardize(x)
    torch.testing.assert_close(z.mean(dim=(0, 2, 3)), torch.zeros(shape[1], dtype=torch.float64))
    torch.testing.assert_close(z.std(dim=(0, 2, 3)), torch.ones(shape[1], dtype=torch.float64))
    z2, mean2, _ = standardize(x[:2], mean, std)  # reuse the training statistics
    assert mean2 is mean
    torch.testing.assert_close(z2, z[:2])
    with pytest.raises(ValueError, match="expected float images"):
        standardize(torch.ones(2, 3, 4, dtype=torch.uint8))


def _toy(n=64, seed=0):
    """A learnable toy task on 8x8 images: the class is which channel is brightest."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.randn(n, 3, 8, 8, generator=g) + 2 * F.one_hot(y, 3).float()[:, :, None, None]
    return x, y


@pytest.mark.parametrize("batch_size", [1, 5, 64, 1000])
def test_predict_in_eval_mode_does_not_depend_on_the_batch_size(batch_size):
    model = small_cnn(True, (4, 8), num_classes=3).eval()
    x, y = _toy()
    torch.testing.assert_close(predict(model, x, batch_size), predict(model, x, len(x)), atol=1e-5, rtol=1e-5)
    loss, acc = evaluate(model, x, y, batch_size)
    logits = model(x).detach()
    assert acc == pytest.approx(float((logits.argmax(1) == y).float().mean()))
    assert loss == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-5)


def test_predict_keeps_the_mode_so_training_mode_depends_on_the_batch():
    model = small_cnn(True, (4, 8), num_classes=3).train()
    x, _ = _toy()
    assert not torch.allclose(predict(model, x, 4), predict(model, x, 64), atol=1e-3)
    assert model.training and int(model.bn1.num_batches_tracked) == 17  # 16 batches of 4, then one of 64


@pytest.mark.parametrize("call,match", [
    (lambda m, x, y: evaluate(m, x, y[:5]), "labels"),
    (lambda m, x, y: predict(m, x, 0), "batch_size"),
    (lambda m, x, y: train(m, (x, y), (x, y), epochs=0), "epochs >= 1"),
    (lambda m, x, y: train(m, (x, y), (x[:3], y), epochs=1), "labels"),
])
def test_errors(call, match):
    x, y = _toy(8)
    with pytest.raises(ValueError, match=match):
        call(small_cnn(True, (2,), num_classes=3), x, y)


def test_train_is_seeded_learns_and_logs_every_epoch(tmp_path):
    data, test = _toy(96, seed=0), _toy(48, seed=1)
    runs = []
    for run in ("a", "b"):
        model = small_cnn(True, (4, 8), num_classes=3, seed=0)
        history = train(model, data, test, epochs=3, batch_size=16, lr=0.05, seed=5, logdir=tmp_path / run,
                        hist_images=test[0][:8])
        runs.append((model, history))
    (m1, h1), (m2, h2) = runs
    assert h1 == h2 and all(torch.equal(p, q) for p, q in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert h1[-1]["loss/train"] < h1[0]["loss/train"] and h1[-1]["accuracy/test"] > 0.6
    assert m1.training
    scalars = read_scalars(tmp_path / "a")
    assert sorted(scalars) == ["accuracy/test", "accuracy/train", "loss/test", "loss/train"]
    assert [step for step, _ in scalars["loss/train"]] == [1, 2, 3]
    assert [v for _, v in scalars["accuracy/test"]] == pytest.approx([h["accuracy/test"] for h in h1])
    hists = read_histograms(tmp_path / "a")
    assert sorted(hists) == sorted(f"activations/{n}" for n in ("conv1", "bn1", "relu1", "conv2", "bn2", "relu2"))
    for events in hists.values():
        assert [step for step, _, _ in events] == [0, 1, 2, 3]
        assert all(counts.sum() == 8 * 4 * 8 * 8 or counts.sum() == 8 * 8 * 4 * 4 for _, _, counts in events)


def test_a_different_seed_gives_a_different_run():
    data = _toy(64)
    h = [train(small_cnn(False, (4,), num_classes=3), data, data, epochs=1, batch_size=16, seed=s) for s in (0, 1)]
    assert h[0] != h[1]


def test_freeze_bn_stats_keeps_statistics_and_gradients():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Sequential(nn.Conv2d(4, 2, 1), nn.LazyBatchNorm2d(), nn.InstanceNorm2d(2)),
                          nn.Flatten(), nn.Linear(2 * 6 * 6, 2), nn.BatchNorm1d(2))
    model(torch.randn(4, 3, 8, 8))  # fills the statistics (and materializes the lazy layer)
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    model.train()
    assert freeze_bn_stats(model) == ["1", "3.1", "6"]
    assert model.training and model[0].training and model[3][2].training
    assert not any(m.training for m in (model[1], model[3][1], model[6]))
    out = model(torch.randn(4, 3, 8, 8) * 3 + 2)
    out.sum().backward()
    for k, v in model.state_dict().items():
        if "running" in k:
            assert torch.equal(v, before[k]), k
    assert model[0].weight.grad.abs().sum() > 0 and model[1].weight.grad.abs().sum() > 0
    model.train()  # undoes the freeze: the caller must freeze again after every train()
    assert model[1].training


def test_freeze_bn_stats_rejects_non_modules():
    with pytest.raises(TypeError, match="expected an nn.Module, got list"):
        freeze_bn_stats([nn.BatchNorm2d(3)])


_TOY_RUN = """
import torch
from normbook.training import small_cnn, train
g = torch.Generator().manual_seed(0)
x, y = torch.randn(32, 3, 8, 8, generator=g), torch.randint(0, 3, (32,), generator=g)
train(small_cnn(True, (2,), num_classes=3), (x, y), (x, y), epochs=1, batch_size=16, desc="toy run")
print("trained")
"""


@pytest.mark.parametrize("disable", ["1", None])
def test_the_progress_bar_is_for_live_readers_and_tqdm_disable_silences_it(disable):
    """The Makefile exports TQDM_DISABLE=1 for stored outputs and nbval; a reader running train() sees the bar.

    tqdm reads TQDM_* variables when it is imported, hence a fresh process for each case.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("TQDM_")}
    if disable is not None:
        env["TQDM_DISABLE"] = disable
    run = subprocess.run([sys.executable, "-c", _TOY_RUN], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0 and run.stdout == "trained\n", run.stdout + run.stderr
    shows_bar = "toy run" in run.stderr and "2/2" in run.stderr
    assert shows_bar == (disable is None), run.stderr
    if disable is not None:
        assert run.stderr == ""
