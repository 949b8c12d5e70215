"""normbook.tensorboard: write with torch's SummaryWriter, read back, compare; run folders; activation hooks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter

from normbook import tensorboard as tb


def expected_grid(images: torch.Tensor) -> np.ndarray:
    """What add_images stores for (N, C, H, W) images: an 8-wide grid, uint8 (rows*H, cols*W, 3)."""
    if images.dtype == torch.uint8:
        u8 = images.numpy()
    else:
        u8 = (images.numpy().astype(np.float32) * 255).clip(0, 255).astype(np.uint8)
    if u8.shape[1] == 1:
        u8 = np.repeat(u8, 3, axis=1)
    n, _, h, w = u8.shape
    cols = min(n, 8)
    rows = math.ceil(n / cols)
    grid = np.zeros((rows * h, cols * w, 3), dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = u8[i].transpose(1, 2, 0)
    return grid


# ---------------------------------------------------------------- new_run_dir

def test_new_run_dir_numbers_folders_and_never_reuses(tmp_path):
    made = [tb.new_run_dir("sigmoid", root=tmp_path) for _ in range(3)]
    assert [p.name for p in made] == ["sigmoid-000", "sigmoid-001", "sigmoid-002"]
    assert all(p.is_dir() and not any(p.iterdir()) for p in made)
    assert tb.new_run_dir("other", root=tmp_path).name == "other-000"


def test_new_run_dir_keeps_existing_folders_and_files(tmp_path):
    old = tmp_path / "net-000"
    old.mkdir()
    (old / "keep.txt").write_text("earlier run")
    (tmp_path / "net-001").write_text("a file with a run's name")
    new = tb.new_run_dir("net", root=tmp_path)
    assert new.name == "net-002"
    assert (old / "keep.txt").read_text() == "earlier run"
    assert (tmp_path / "net-001").read_text() == "a file with a run's name"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net-000", "net-001", "net-002"]


def test_new_run_dir_creates_missing_root(tmp_path):
    root = tmp_path / "a" / "runs"
    assert tb.new_run_dir("x", root=str(root)) == root / "x-000"


def test_new_run_dir_defaults_to_book_root_runs(tmp_path, monkeypatch):
    (tmp_path / "_config.yml").write_text("")
    (tmp_path / "_toc.yml").write_text("")
    (tmp_path / "chapters").mkdir()
    monkeypatch.chdir(tmp_path / "chapters")
    assert tb.new_run_dir("demo") == tmp_path.resolve() / "runs" / "demo-000"


def test_new_run_dir_full(tmp_path):
    for i in range(1000):
        (tmp_path / f"r-{i:03d}").mkdir()
    with pytest.raises(FileExistsError, match="r-000 ... r-999 already exist"):
        tb.new_run_dir("r", root=tmp_path)


@pytest.mark.parametrize("bad", ["", ".", "..", "../up", "a/b", "a\\b", "-x", "sp ace", "x.", 3, None])
def test_new_run_dir_rejects_bad_names(tmp_path, bad):
    with pytest.raises(ValueError, match="expected a run name"):
        tb.new_run_dir(bad, root=tmp_path)
    assert not any(tmp_path.iterdir())


def test_new_run_dir_root_is_a_file(tmp_path):
    (tmp_path / "runs").write_text("")
    with pytest.raises(NotADirectoryError, match="is a file"):
        tb.new_run_dir("x", root=tmp_path / "runs")


# ---------------------------------------------------------------- reading back

def test_read_scalars_values_tags_and_sorted_steps(tmp_path):
    # values exact in float32 (TensorBoard stores scalars as float32)
    written = {"loss/train": {3: 0.25, 0: 2.5, 1: 1.0, 2: 0.5}, "lr": {0: 0.125, 10: 0.0078125}, "acc": {5: -3.75}}
    with SummaryWriter(tmp_path) as w:
        for tag, points in written.items():
            for step, value in points.items():
                w.add_scalar(tag, value, step)
    got = tb.read_scalars(tmp_path)
    assert set(got) == set(written)
    for tag, points in written.items():
        assert got[tag] == sorted(points.items())
        assert all(isinstance(s, int) and isinstance(v, float) for s, v in got[tag])


def test_read_scalars_float32_precision(tmp_path):
    values = torch.randn(20, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with SummaryWriter(tmp_path) as w:
        for step, v in enumerate(values):
            w.add_scalar("v", v.item(), step)
    got = tb.read_scalars(tmp_path)["v"]
    assert [s for s, _ in got] == list(range(20))
    np.testing.assert_array_equal([v for _, v in got], values.float().double().numpy())


@pytest.mark.parametrize("n", [1, 3, 8, 9, 17])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.uint8])
def test_read_images_grid_matches_add_images(tmp_path, n, channels, dtype):
    g = torch.Generator().manual_seed(n * 10 + channels)
    steps = {}
    with SummaryWriter(tmp_path) as w:
        for step in (2, 0, 1):
            if dtype == torch.uint8:
                x = torch.randint(0, 256, (n, channels, 5, 7), generator=g, dtype=torch.uint8)
            else:
                x = (torch.rand(n, channels, 5, 7, generator=g) * 1.2 - 0.1).to(dtype)  # some values clip
            w.add_images("batch", x, step)
            steps[step] = x
    got = tb.read_images(tmp_path)
    assert list(got) == ["batch"]
    assert [s for s, _ in got["batch"]] == [0, 1, 2]
    for step, image in got["batch"]:
        assert image.dtype == np.uint8
        assert image.shape == (math.ceil(n / min(n, 8)) * 5, min(n, 8) * 7, 3)
        np.testing.assert_array_equal(image, expected_grid(steps[step]))


@pytest.mark.parametrize("dataformats", ["CHW", "HWC", "HW"])
def test_read_images_single_image(tmp_path, dataformats):
    x = torch.rand(3, 6, 4, generator=torch.Generator().manual_seed(1))
    shaped = {"CHW": x, "HWC": x.permute(1, 2, 0), "HW": x[0]}[dataformats]
    with SummaryWriter(tmp_path) as w:
        w.add_image("one", shaped, 4, dataformats=dataformats)
    [(step, image)] = tb.read_images(tmp_path)["one"]
    assert step == 4
    expected = expected_grid((x if dataformats != "HW" else x[:1])[None])
    np.testing.assert_array_equal(image, expected)


@pytest.mark.parametrize("shape", [(10,), (4, 5), (2, 3, 4, 5), (64, 16, 8, 8)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64])
def test_read_histograms_counts_sum_to_numel(tmp_path, shape, dtype):
    g = torch.Generator().manual_seed(len(shape))
    values = {step: (torch.randn(shape, generator=g) * 3).to(dtype) for step in (1, 0)}
    with SummaryWriter(tmp_path) as w:
        for step, v in values.items():
            w.add_histogram("acts", v, step)
    got = tb.read_histograms(tmp_path)["acts"]
    assert [s for s, _, _ in got] == [0, 1]
    for step, limits, counts in got:
        assert limits.shape == counts.shape and limits.dtype == counts.dtype == np.float64
        assert counts.sum() == values[step].numel()
        assert np.all(np.diff(limits) > 0)
        assert limits[-1] >= values[step].max().item()


@pytest.mark.parametrize("bins", [1, 5, 12])
def test_read_histograms_matches_numpy_edges_and_counts(tmp_path, bins):
    # Every bucket is non-empty, so TensorBoard keeps all of numpy's edges and
    # adds one empty bucket on the left whose right edge is numpy's first edge.
    v = torch.arange(60, dtype=torch.float64) % 23
    with SummaryWriter(tmp_path) as w:
        w.add_histogram("h", v, 0, bins=bins)
    [(step, limits, counts)] = tb.read_histograms(tmp_path)["h"]
    np_counts, np_edges = np.histogram(v.numpy(), bins=bins)
    assert step == 0
    np.testing.assert_allclose(limits, np_edges)
    np.testing.assert_array_equal(counts, np.concatenate([[0], np_counts]))


def test_readers_separate_kinds(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_scalar("s", 1.0, 0)
        w.add_histogram("h", torch.ones(3), 0)
        w.add_images("i", torch.zeros(2, 3, 2, 2), 0)
    assert list(tb.read_scalars(tmp_path)) == ["s"]
    assert list(tb.read_histograms(tmp_path)) == ["h"]
    assert list(tb.read_images(tmp_path)) == ["i"]


def test_read_two_writers_in_one_folder(tmp_path):
    with SummaryWriter(tmp_path, filename_suffix=".a") as w:
        w.add_scalar("s", 1.0, 0)
    with SummaryWriter(tmp_path, filename_suffix=".b") as w:
        w.add_scalar("s", 2.0, 1)
    assert tb.read_scalars(tmp_path) == {"s": [(0, 1.0), (1, 2.0)]}


@pytest.mark.parametrize("reader", [tb.read_scalars, tb.read_images, tb.read_histograms])
def test_readers_raise_on_folder_without_events(tmp_path, reader):
    empty = tmp_path / "empty-run"
    empty.mkdir()
    (empty / "notes.txt").write_text("")
    with pytest.raises(FileNotFoundError, match="no TensorBoard event files") as info:
        reader(empty)
    assert str(empty) in str(info.value)
    with pytest.raises(FileNotFoundError, match="is not a folder") as info:
        reader(tmp_path / "missing")
    assert str(tmp_path / "missing") in str(info.value)


def test_readers_do_not_descend_into_subfolders(tmp_path):
    with SummaryWriter(tmp_path / "inner") as w:
        w.add_scalar("s", 1.0, 0)
    with pytest.raises(FileNotFoundError, match="subfolders are runs of their own"):
        tb.read_scalars(tmp_path)
    assert tb.read_scalars(tmp_path / "inner") == {"s": [(0, 1.0)]}


# ---------------------------------------------------------------- activation histograms

def small_net(inplace: bool = True) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=inplace),
        nn.Conv2d(4, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(inplace=inplace),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 2),
    )


@pytest.mark.parametrize("inplace", [True, False])
@pytest.mark.parametrize("train", [True, False])
def test_log_activation_histograms_captures_each_layer(tmp_path, inplace, train):
    model = small_net(inplace).train(train)
    x = torch.randn(5, 3, 6, 6, generator=torch.Generator().manual_seed(2))
    reference = small_net(inplace).train(train)
    expected, h = {}, x
    for name, layer in reference.named_children():
        h = layer(h.clone())
        expected[name] = h.detach().clone()
    with SummaryWriter(tmp_path) as w:
        got = tb.log_activation_histograms(w, model, x, step=3)
    assert list(got) == ["0", "1", "2", "3", "4", "5"]
    for name, out in got.items():
        torch.testing.assert_close(out, expected[name])
    assert (got["0"] < 0).any(), "the conv output must be captured before the in-place ReLU changes it"
    assert (got["2"] >= 0).all()
    hists = tb.read_histograms(tmp_path)
    assert set(hists) == {f"activations/{n}" for n in got}
    for name, out in got.items():
        [(step, _, counts)] = hists[f"activations/{name}"]
        assert step == 3 and counts.sum() == out.numel()
    assert all(not m._forward_hooks for m in model.modules())


def test_log_activation_histograms_layer_types_and_root_module(tmp_path):
    model = small_net()
    with SummaryWriter(tmp_path) as w:
        got = tb.log_activation_histograms(w, model, torch.randn(2, 3, 4, 4), 0, layer_types=(nn.BatchNorm2d,))
        assert list(got) == ["1", "4"]
        got = tb.log_activation_histograms(w, nn.ReLU(), torch.randn(2, 3), 1, layer_types=[nn.ReLU])
        assert list(got) == ["ReLU"]
    assert set(tb.read_histograms(tmp_path)) == {"activations/1", "activations/4", "activations/ReLU"}


def model_state(model: nn.Module) -> tuple[dict[str, torch.Tensor], list[bool]]:
    """Everything a forward pass could change: parameters and buffers (cloned), and every module's mode."""
    return ({k: v.detach().clone() for k, v in model.state_dict().items()},
            [m.training for m in model.modules()])


def assert_same_state(before, after) -> None:
    (tensors, modes), (tensors_after, modes_after) = before, after
    assert modes_after == modes
    assert list(tensors_after) == list(tensors)
    for key, value in tensors.items():
        assert torch.equal(tensors_after[key], value), key


@pytest.mark.parametrize("mode", ["train", "eval", "mixed"])
def test_log_activation_histograms_leaves_the_model_unchanged(tmp_path, mode):
    model = small_net()
    for _ in range(2):  # running statistics away from their initial values
        model(torch.randn(4, 3, 6, 6, generator=torch.Generator().manual_seed(_)))
    model.train(mode != "eval")
    if mode == "mixed":
        model[1].eval()  # one BatchNorm frozen, the other one training
    before = model_state(model)
    assert int(model[1].num_batches_tracked) == 2
    x = torch.randn(5, 3, 6, 6, generator=torch.Generator().manual_seed(3))
    with SummaryWriter(tmp_path) as w:
        for step in range(3):
            got = tb.log_activation_histograms(w, model, x, step)
    assert_same_state(before, model_state(model))  # running stats, num_batches_tracked, weights, modes
    assert all(not m._forward_hooks for m in model.modules())

    # The logged outputs are what the model computes in its mode: the same forward pass on a
    # copy of the model, run by hand ...
    expected, h = {}, x
    reference = small_net()
    reference.load_state_dict(before[0])
    for module, training in zip(reference.modules(), before[1]):
        module.train(training)
    for name, layer in list(reference.named_children())[:6]:
        h = layer(h.clone())
        expected[name] = h.detach().clone()
    for name, out in got.items():
        torch.testing.assert_close(out, expected[name])
    # ... and that pass, on the model itself, is what logging must not do: in training mode it
    # moves the running statistics, even under no_grad (so the check above can fail).
    with torch.no_grad():
        model(x)
    moved = not torch.equal(model[4].running_mean, before[0]["4.running_mean"])
    assert moved == (mode != "eval")
    assert int(model[4].num_batches_tracked) == 2 + (mode != "eval")


def test_log_activation_histograms_restores_the_random_state(tmp_path):
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5)).train()
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(1)
    untouched = torch.rand(5)
    torch.manual_seed(1)
    with SummaryWriter(tmp_path) as w:
        got = tb.log_activation_histograms(w, model, x, 0, layer_types=(nn.ReLU, nn.Dropout))
    assert torch.equal(torch.rand(5), untouched)  # a training run draws the same numbers with or without logging
    kept = got["2"] != 0
    assert 0 < kept.float().mean() < 1  # the dropout in the copy did draw random numbers
    torch.testing.assert_close(got["2"][kept], 2 * got["1"][kept])


def test_log_activation_histograms_refuses_an_uninitialized_lazy_model(tmp_path):
    model = nn.Sequential(nn.LazyConv2d(4, 3), nn.LazyBatchNorm2d(), nn.ReLU())
    x = torch.randn(2, 3, 5, 5)
    with SummaryWriter(tmp_path) as w:
        with pytest.raises(ValueError, match="uninitialized lazy modules.*'0', '1'.*dry run"):
            tb.log_activation_histograms(w, model, x, 0)
        assert model[0].has_uninitialized_params() and model[1].has_uninitialized_params()  # still lazy
        model.eval()(x)  # the dry run (in eval mode: no running statistics move)
        got = tb.log_activation_histograms(w, model, x, 0, layer_types=(nn.BatchNorm2d,))
    assert got["1"].shape == (2, 4, 3, 3)


class Twice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.relu(x) - 1)


def test_log_activation_histograms_errors_and_hooks_removed(tmp_path):
    model = small_net()
    with SummaryWriter(tmp_path) as w:
        with pytest.raises(ValueError, match="no module of the types"):
            tb.log_activation_histograms(w, model, torch.randn(1, 3, 4, 4), 0, layer_types=(nn.LayerNorm,))
        with pytest.raises(ValueError, match="non-negative int"):
            tb.log_activation_histograms(w, model, torch.randn(1, 3, 4, 4), -1)
        with pytest.raises(TypeError, match="nn.Module classes"):
            tb.log_activation_histograms(w, model, torch.randn(1, 3, 4, 4), 0, layer_types=())
        with pytest.raises(TypeError, match="expected x to be a Tensor"):
            tb.log_activation_histograms(w, model, [1.0], 0)
        with pytest.raises(TypeError, match="expected model"):
            tb.log_activation_histograms(w, "net", torch.randn(1, 3, 4, 4), 0)
        with pytest.raises(RuntimeError):  # wrong channel count: the forward pass fails
            tb.log_activation_histograms(w, model, torch.randn(2, 5, 4, 4), 0)
        assert all(not m._forward_hooks for m in model.modules())
        twice = Twice()
        with pytest.raises(ValueError, match="ran more than once"):
            tb.log_activation_histograms(w, twice, torch.randn(2, 3), 0)
        assert not twice.relu._forward_hooks
    with pytest.raises(TypeError, match="expected a SummaryWriter"):
        tb.log_activation_histograms(object(), model, torch.randn(1, 3, 4, 4), 0)


# ---------------------------------------------------------------- rebinning for drawing

@pytest.mark.parametrize("bins", [3, 7, 20])
def test_rebin_histogram_exact_when_edges_match(tmp_path, bins):
    v = torch.arange(100, dtype=torch.float64) % 37 - 10
    with SummaryWriter(tmp_path) as w:
        w.add_histogram("h", v, 0, bins=bins)
    [(_, limits, counts)] = tb.read_histograms(tmp_path)["h"]
    np_counts, np_edges = np.histogram(v.numpy(), bins=bins)
    np.testing.assert_allclose(tb.rebin_histogram(limits, counts, np_edges), np_counts, atol=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("relu", [False, True])
def test_rebin_histogram_close_to_numpy_on_tensorflow_buckets(tmp_path, seed, relu):
    v = torch.randn(4000, generator=torch.Generator().manual_seed(seed)) * (seed + 1) + seed
    v = v.clamp(min=0) if relu else v
    with SummaryWriter(tmp_path) as w:
        w.add_histogram("h", v, 0)
    [(_, limits, counts)] = tb.read_histograms(tmp_path)["h"]
    edges = np.linspace(limits[0], limits[-1], 21)  # the buckets' span: counts are preserved
    got = tb.rebin_histogram(limits, counts, edges)
    assert got.sum() == pytest.approx(v.numel())
    expected, _ = np.histogram(v.numpy(), bins=edges)
    assert np.abs(got - expected).max() <= 0.03 * v.numel()


def test_rebin_histogram_drops_outside_and_validates():
    limits, counts = np.array([0.0, 1.0, 2.0]), np.array([0.0, 5.0, 5.0])
    np.testing.assert_allclose(tb.rebin_histogram(limits, counts, np.array([0.0, 0.5, 1.0])), [2.5, 2.5])
    np.testing.assert_allclose(tb.rebin_histogram(np.array([3.0]), np.array([4.0]), np.array([0.0, 5.0])), [4.0])
    with pytest.raises(ValueError, match="one shape"):
        tb.rebin_histogram(limits, counts[:2], np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="increasing"):
        tb.rebin_histogram(limits, counts, np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="increasing"):
        tb.rebin_histogram(limits, counts, np.array([1.0]))
