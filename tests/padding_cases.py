"""The padding layers, input sizes and paddings that the padding tests run over (plotting and backward)."""

from torch import nn

CLASSES = [nn.ReflectionPad2d, nn.ReplicationPad2d, nn.CircularPad2d, nn.ZeroPad2d]
SIZES = [(1, 1), (3, 3), (2, 5), (4, 3), (6, 6)]
PADDINGS = [0, 1, 2, (1, 0, 2, 0), (0, 3, 1, 2), (2, 1, 0, 1)]


def pad4(padding):
    return (padding,) * 4 if isinstance(padding, int) else padding


def torch_accepts(cls, hw, padding):
    """Reflection needs padding < size; circular padding may wrap at most once (padding <= size)."""
    (h, w), (left, right, top, bottom) = hw, pad4(padding)
    if cls is nn.ReflectionPad2d:
        return max(left, right) < w and max(top, bottom) < h
    if cls is nn.CircularPad2d:
        return max(left, right) <= w and max(top, bottom) <= h
    return True
