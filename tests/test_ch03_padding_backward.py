"""Chapter 3's claims about the backward pass of padding layers, over many shapes, not only the book's 3 x 3 example.

- the gradient a padding layer sends back is a scatter-add of the upstream gradient into the source cells that
  ``normbook.plotting.padding_source_index`` finds (constant cells send nothing back);
- on the CPU, the backward of the copying pads runs under ``torch.use_deterministic_algorithms(True)`` and gives the
  same gradient bit for bit, whatever the number of threads.

That ``ReflectionPad2d``'s CUDA backward is refused in deterministic mode is asserted by the chapter's own cell
where CUDA is present (``make gpu``), not here: a test of it could only be skipped in CI.
"""

import pytest
import torch
from torch import nn

from normbook.plotting import padding_source_index

from padding_cases import CLASSES, PADDINGS, SIZES, torch_accepts  # a tests/ helper

CASES = [(cls, hw, p) for cls in CLASSES for hw in SIZES for p in PADDINGS if torch_accepts(cls, hw, p)]
CASES += [(lambda p: nn.ConstantPad2d(p, -1.5), (3, 4), (2, 0, 1, 3))]


@pytest.mark.parametrize("make,hw,padding", CASES)
def test_backward_is_a_scatter_add_into_the_source_cells(make, hw, padding):
    h, w = hw
    pad = make(padding)
    gen = torch.Generator().manual_seed(h * 100 + w)
    x = torch.randn(2, 3, h, w, generator=gen, requires_grad=True)
    out = pad(x)
    # small integers: every sum is exact, so the comparison can be exact
    upstream = torch.randint(-5, 6, out.shape, generator=gen).to(out.dtype)
    out.backward(upstream)
    src = padding_source_index(pad, h, w).flatten()
    kept = src >= 0
    by_hand = torch.zeros(2, 3, h * w).index_add_(2, src[kept], upstream.flatten(2)[..., kept])
    torch.testing.assert_close(x.grad, by_hand.reshape(2, 3, h, w), rtol=0, atol=0)


@pytest.mark.parametrize("cls", [nn.ReflectionPad2d, nn.ReplicationPad2d, nn.CircularPad2d])
@pytest.mark.parametrize("threads", [1, 4])
def test_cpu_backward_runs_in_deterministic_mode_and_repeats_bit_for_bit(cls, threads):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 8, 33, 17, generator=gen, requires_grad=True)
    upstream = torch.randn(4, 8, 33 + 6, 17 + 4, generator=gen)
    was, old_threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)
    try:
        grads = []
        for _ in range(3):
            x.grad = None
            cls((2, 2, 3, 3))(x).backward(upstream)
            grads.append(x.grad)
    finally:
        torch.use_deterministic_algorithms(was)
        torch.set_num_threads(old_threads)
    assert all(torch.equal(grads[0], g) for g in grads[1:])
