"""Tests for normbook.lazy: tensor states of lazy modules and the side-effect-free dry run, against torch."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from normbook.lazy import describe_tensors, dry_run, size_mismatches, tensor_states, uninitialized

# (lazy factory, eager factory with the inferred size, input shape); C is the inferred size.
C = 5
CASES = {
    "bn1d_2d": (lambda **k: nn.LazyBatchNorm1d(**k), lambda **k: nn.BatchNorm1d(C, **k), (4, C)),
    "bn1d_3d": (lambda **k: nn.LazyBatchNorm1d(**k), lambda **k: nn.BatchNorm1d(C, **k), (3, C, 7)),
    "bn2d": (lambda **k: nn.LazyBatchNorm2d(**k), lambda **k: nn.BatchNorm2d(C, **k), (2, C, 4, 3)),
    "bn3d": (lambda **k: nn.LazyBatchNorm3d(**k), lambda **k: nn.BatchNorm3d(C, **k), (2, C, 2, 3, 2)),
    "in2d": (lambda **k: nn.LazyInstanceNorm2d(**k), lambda **k: nn.InstanceNorm2d(C, **k), (2, C, 4, 4)),
}
FLAGS = [dict(affine=a, track_running_stats=t) for a, t in itertools.product((True, False), repeat=2)]


def _states_like_torch(module: nn.Module) -> list[tuple[str, str, tuple[int, ...]]]:
    return [(n, "parameter", tuple(p.shape)) for n, p in module.named_parameters()] + [
        (n, "buffer", tuple(b.shape)) for n, b in module.named_buffers()
    ]


@pytest.mark.filterwarnings("ignore:input's size at dim=1 does not match num_features")  # InstanceNorm, no affine
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("flags", FLAGS, ids=lambda f: f"affine={f['affine']}-track={f['track_running_stats']}")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("train", [False, True])
def test_norm_layers_match_eager_after_dry_run(case, flags, dtype, train):
    lazy_f, eager_f, shape = CASES[case]
    lazy, eager = lazy_f(dtype=dtype, **flags), eager_f(dtype=dtype, **flags)
    before = tensor_states(lazy)
    assert [n for n, *_ in before] == [n for n, _, _ in _states_like_torch(eager)]
    for name, kind, cls, state_shape in before:
        if name == "num_batches_tracked":
            assert (cls, state_shape) == ("Tensor", ())
        else:
            assert state_shape is None
            assert cls == ("UninitializedParameter" if kind == "parameter" else "UninitializedBuffer")
    assert uninitialized(lazy) == [n for n, *_ in before if n != "num_batches_tracked"]

    x = torch.randn(shape, dtype=dtype, generator=torch.Generator().manual_seed(0))
    lazy.train(not train)
    assert dry_run(lazy, x, train=train) is lazy
    assert type(lazy) is type(eager)  # cls_to_become
    assert lazy.training is (not train)  # mode restored
    assert [(n, k, s) for n, k, _, s in tensor_states(lazy)] == _states_like_torch(eager)
    assert uninitialized(lazy) == []
    for (_, p), (_, q) in zip(lazy.named_parameters(), eager.named_parameters()):
        torch.testing.assert_close(p, q)
        assert p.dtype == dtype
    if flags["track_running_stats"]:
        if train:  # the dummy batch counted as one training batch, like a plain forward pass
            ref = eager.train()
            ref(x)
        torch.testing.assert_close(lazy.running_mean, eager.running_mean)
        torch.testing.assert_close(lazy.running_var, eager.running_var)
        assert int(lazy.num_batches_tracked) == int(eager.num_batches_tracked)
        assert int(lazy.num_batches_tracked) == (int(train) if case.startswith("bn") else 0)  # InstanceNorm never counts


@pytest.mark.parametrize("in_ch,out_ch,k", [(1, 2, 1), (3, 4, 3), (6, 1, 2)])
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_conv_shapes_and_class(in_ch, out_ch, k, dims):
    lazy = getattr(nn, f"LazyConv{dims}d")(out_ch, k)
    eager = getattr(nn, f"Conv{dims}d")(in_ch, out_ch, k)
    assert uninitialized(lazy) == ["weight", "bias"]
    dry_run(lazy, torch.zeros((2, in_ch) + (k + 2,) * dims))
    assert type(lazy) is type(eager)
    assert lazy.in_channels == in_ch
    assert [(n, k_, s) for n, k_, _, s in tensor_states(lazy)] == _states_like_torch(eager)


def test_mixed_modes_restored_and_several_inputs():
    class Two(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.LazyLinear(3), nn.LazyBatchNorm1d()

        def forward(self, x, z):
            return self.a(x) + self.b(z)

    model = Two()
    model.a.eval()  # training flags differ between submodules
    dry_run(model, torch.ones(4, 7), torch.ones(4, 3))
    assert (model.training, model.a.training, model.b.training) == (True, False, True)
    assert model.a.weight.shape == (3, 7) and model.b.weight.shape == (3,)
    assert int(model.b.num_batches_tracked) == 0
    torch.testing.assert_close(model.b.running_var, torch.ones(3))


def test_describe_tensors_text():
    text = describe_tensors(nn.LazyBatchNorm2d())
    assert text.splitlines()[0] == "LazyBatchNorm2d: 5 tensors"
    assert "weight" in text and "UninitializedParameter" in text and "uninitialized" in text
    bn = nn.BatchNorm2d(3)
    lines = describe_tensors(bn).splitlines()
    assert lines[0] == "BatchNorm2d: 5 tensors"
    assert lines[1].split() == ["weight", "parameter", "Parameter", "(3,)"]
    assert lines[-1].split() == ["num_batches_tracked", "buffer", "Tensor", "()"]
    assert describe_tensors(nn.ReLU()) == "ReLU: 0 tensors"


def test_initialized_model_states_match_torch():
    model = nn.Sequential(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(12, 2))
    assert [(n, k, s) for n, k, _, s in tensor_states(model)] == _states_like_torch(model)
    assert uninitialized(model) == []


def test_errors():
    with pytest.raises(TypeError, match="expected a torch.nn.Module, got Tensor"):
        tensor_states(torch.ones(2))
    with pytest.raises(TypeError, match="expected one or more example input tensors, got nothing"):
        dry_run(nn.LazyLinear(2))
    with pytest.raises(TypeError, match="got list"):
        dry_run(nn.LazyLinear(2), [1.0, 2.0])

    class Branches(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used, self.unused = nn.LazyLinear(2), nn.LazyLinear(2)

        def forward(self, x):
            return self.used(x)

    model = Branches()
    with pytest.raises(RuntimeError, match=r"left 2 tensors uninitialized: unused.weight, unused.bias"):
        dry_run(model, torch.ones(3, 4))
    assert model.training  # restored even though the check failed
    with pytest.raises(RuntimeError, match="running_mean should contain 4 elements not 3"):
        dry_run(dry_run(nn.LazyBatchNorm2d(), torch.ones(2, 3, 2, 2)), torch.ones(2, 4, 2, 2))


# (lazy factory, eager module with the sizes a checkpoint carries, attribute, input for a forward pass)
LOAD_CASES = {
    "linear": (lambda: nn.LazyLinear(4), lambda: nn.Linear(6, 4), "in_features", (2, 6)),
    "conv1d": (lambda: nn.LazyConv1d(4, 3), lambda: nn.Conv1d(6, 4, 3), "in_channels", (2, 6, 5)),
    "conv2d_groups": (lambda: nn.LazyConv2d(4, 3, groups=2), lambda: nn.Conv2d(6, 4, 3, groups=2), "in_channels", (2, 6, 5, 5)),
    "conv3d": (lambda: nn.LazyConv3d(2, 1), lambda: nn.Conv3d(3, 2, 1), "in_channels", (1, 3, 2, 2, 2)),
    "convT2d_groups": (
        lambda: nn.LazyConvTranspose2d(4, 3, groups=2), lambda: nn.ConvTranspose2d(6, 4, 3, groups=2), "in_channels", (2, 6, 3, 3),
    ),
    "bn1d": (lambda: nn.LazyBatchNorm1d(), lambda: nn.BatchNorm1d(6), "num_features", (4, 6)),
    "bn2d": (lambda: nn.LazyBatchNorm2d(), lambda: nn.BatchNorm2d(6), "num_features", (2, 6, 3, 3)),
    "bn2d_no_affine": (
        lambda: nn.LazyBatchNorm2d(affine=False), lambda: nn.BatchNorm2d(6, affine=False), "num_features", (2, 6, 3, 3),
    ),
    "bn3d": (lambda: nn.LazyBatchNorm3d(), lambda: nn.BatchNorm3d(6), "num_features", (2, 6, 2, 2, 2)),
    "in2d_affine": (
        lambda: nn.LazyInstanceNorm2d(affine=True, track_running_stats=False),
        lambda: nn.InstanceNorm2d(6, affine=True, track_running_stats=False), "num_features", (2, 6, 3, 3),
    ),
}


@pytest.mark.parametrize("case", sorted(LOAD_CASES))
def test_size_mismatches_after_loading_into_lazy(case):
    lazy_f, eager_f, attribute, shape = LOAD_CASES[case]
    torch.manual_seed(0)
    eager = eager_f()
    expected = getattr(eager, attribute)
    assert size_mismatches(eager) == []  # torch's own layers are consistent
    fresh = lazy_f()
    assert size_mismatches(fresh) == []  # uninitialized tensors are skipped
    module = lazy_f()
    module.load_state_dict(eager.state_dict())
    # Whatever this torch leaves in the attribute, the helper reports exactly the disagreement with the tensors.
    stored = getattr(module, attribute)
    assert size_mismatches(module) == ([] if stored == expected else [("", attribute, stored, expected)])
    for name, attr, _, size in size_mismatches(module):  # the repair the book shows
        setattr(module.get_submodule(name), attr, size)
    assert getattr(module, attribute) == expected and size_mismatches(module) == []
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    module.eval(), eager.eval()
    torch.testing.assert_close(module(x), eager(x))


def test_size_mismatches_names_and_wrong_attributes():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Sequential(nn.BatchNorm2d(8), nn.Flatten()), nn.LazyLinear(2))
    assert size_mismatches(model) == []
    model[0].in_channels = 5
    model[1][0].num_features = 0
    assert size_mismatches(model) == [("0", "in_channels", 5, 3), ("1.0", "num_features", 0, 8)]
    no_tensors = nn.BatchNorm1d(4, affine=False, track_running_stats=False)
    no_tensors.num_features = 7  # nothing to compare it with
    assert size_mismatches(no_tensors) == []
    with pytest.raises(TypeError, match="expected a torch.nn.Module, got int"):
        size_mismatches(3)
