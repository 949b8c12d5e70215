"""normbook: the helpers behind the normbook tutorial on PyTorch's normalization layers.

Modules: ``reference`` (from-scratch layers checked against torch), ``data``
(CIFAR-10, online or offline), ``plotting`` (the book's figures),
``tensorboard`` (write and read back TensorBoard event files), ``lazy``
(inspecting lazy modules), ``training`` (the small CIFAR-10 training loop),
``fuse`` (folding BatchNorm into the convolution before it) and
``sync_batchnorm`` (synchronized batch norm with torch.distributed collectives).
The subpackage ``checks`` holds runnable multi-process checks the chapters run
(``python -m normbook.checks.sync_batchnorm``).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

__version__ = "0.1.0"
__all__ = ["book_root", "setup", "__version__"]


def setup(seed: int = 0) -> torch.device:
    """Seed Python, NumPy and torch with ``seed`` and return the device to use: cuda when available, else cpu."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds every CUDA device too
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def book_root() -> Path:
    """The folder the book's files live in: the nearest folder, from the working directory up,
    holding ``_config.yml`` and ``_toc.yml`` (notebooks run from ``chapters/``); else the working
    directory itself (a notebook opened alone, e.g. on Colab)."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "_config.yml").is_file() and (folder / "_toc.yml").is_file():
            return folder
    return here
