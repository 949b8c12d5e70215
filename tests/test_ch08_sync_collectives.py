"""Chapter 8 counts the collectives of normbook's SyncBatchNorm with ``unittest.mock``: one
``all_reduce`` per layer in a training-mode forward pass, one in the backward pass, none in eval
mode. These tests check that property of the helper over input shapes and flags, and that no
other ``torch.distributed`` collective is ever called (the chapter only counts ``all_reduce``).
"""

import contextlib
from unittest import mock

import pytest
import torch
import torch.distributed as dist

from normbook.sync_batchnorm import SyncBatchNorm

COLLECTIVES = [
    "all_reduce", "all_gather", "all_gather_into_tensor", "all_gather_object", "reduce_scatter",
    "reduce_scatter_tensor", "broadcast", "all_to_all", "all_to_all_single", "reduce", "gather", "scatter",
    "barrier",
]
SHAPES = [(6, 3), (4, 3, 5), (4, 3, 2, 5), (2, 3, 2, 2, 3)]


@contextlib.contextmanager
def one_process_group():
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


@contextlib.contextmanager
def counted():
    """Wrap every collective of torch.distributed; yields a function returning {name: calls so far}."""
    with contextlib.ExitStack() as stack:
        spies = {name: stack.enter_context(mock.patch.object(dist, name, wraps=getattr(dist, name)))
                 for name in COLLECTIVES if hasattr(dist, name)}
        yield lambda: {name: spy.call_count for name, spy in spies.items() if spy.call_count}


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s)}d")
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("affine", [True, False])
def test_one_all_reduce_per_pass_and_none_in_eval(shape, momentum, affine):
    torch.manual_seed(0)
    layer = SyncBatchNorm(shape[1], momentum=momentum, affine=affine)
    x = (torch.randn(*shape) * 2 + 1).requires_grad_(True)
    with one_process_group(), counted() as calls:
        y = layer(x)
        assert calls() == {"all_reduce": 1}
        (y * torch.randn_like(y)).sum().backward()
        assert calls() == {"all_reduce": 2}
        layer.eval()
        with torch.no_grad():
            layer(x)
        assert calls() == {"all_reduce": 2}
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_layers_add_up_and_outputs_match_batch_norm():
    """Three layers: 3 calls forward, 3 backward (the chapter's numbers); the output is plain batch norm."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), SyncBatchNorm(8), torch.nn.ReLU(),
                              torch.nn.Conv2d(8, 8, 3), SyncBatchNorm(8), torch.nn.Flatten(),
                              torch.nn.Linear(8 * 2 * 2, 10), SyncBatchNorm(10))
    x = torch.randn(4, 3, 6, 6)
    with one_process_group(), counted() as calls:
        out = net(x)
        assert calls() == {"all_reduce": 3}
        out.sum().backward()
        assert calls() == {"all_reduce": 6}
    plain = torch.nn.BatchNorm1d(10)
    plain.load_state_dict(net[7].state_dict())
    torch.testing.assert_close(net[7](net[:7](x)), plain(net[:7](x)), rtol=1e-5, atol=1e-5)


def test_no_collective_without_a_process_group():
    layer = SyncBatchNorm(3)
    assert not dist.is_initialized()
    with counted() as calls:
        layer(torch.randn(4, 3, 2, 2)).sum().backward()
    assert calls() == {}
