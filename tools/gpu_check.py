#!/usr/bin/env python3
"""`make gpu`: the book's checks on a CUDA GPU, when this machine has one.

On a machine without a CUDA device it says so and exits 0: nothing is pretended to have run.
With one, it prints torch/CUDA/cuDNN versions, the GPU's name and its TF32 defaults, then

1. runs every chapter with nbval in lax mode: each cell runs on the GPU (the chapters pick
   ``device = "cuda"``), every assert and check cell must hold, printed digits are not compared
   (they were stored on a CPU);
2. runs the two-process SyncBatchNorm check (``python -m normbook.checks.sync_batchnorm``: gloo on CPU,
   gloo on CUDA tensors, and NCCL with ``nn.SyncBatchNorm`` on two GPUs), which prints each case's measured
   error next to its tolerance.

Exits non-zero when a part fails. Usage: ``python tools/gpu_check.py [NOTEBOOK ...]`` (default: every chapter).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def describe(torch) -> list[str]:
    """What the GPU run ran on: versions, device, and the TF32 defaults that change float32 results."""
    props = torch.cuda.get_device_properties(0)
    return [f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}",
            f"GPU 0 of {torch.cuda.device_count()}: {props.name}, compute capability {props.major}.{props.minor}, "
            f"{props.total_memory / 2**30:.0f} GiB",
            f"TF32 by default: cuDNN convolutions {torch.backends.cudnn.allow_tf32}, "
            f"matmul {torch.backends.cuda.matmul.allow_tf32} (TF32 exists from compute capability 8.0 on)"]


def main(argv: list[str]) -> int:
    import torch

    if not torch.cuda.is_available():
        print(f"make gpu: no CUDA device here (torch {torch.__version__}, built for CUDA {torch.version.cuda}); "
              "nothing was run on a GPU.")
        return 0
    print("\n".join(describe(torch)), flush=True)
    notebooks = argv or sorted(str(p.relative_to(ROOT)) for p in (ROOT / "chapters").glob("*.ipynb"))
    steps = {
        "chapters on the GPU (nbval --nbval-lax: every assert, not the CPU's digits)":
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
             "--nbval-cell-timeout=900", *notebooks],
        "two-process SyncBatchNorm check (errors against tolerances)":
            [sys.executable, "-m", "normbook.checks.sync_batchnorm"],
    }
    failed = []
    for title, command in steps.items():
        print(f"\n== {title}", flush=True)
        if subprocess.run(command, cwd=ROOT).returncode != 0:
            failed.append(title)
    print("\nmake gpu:", "FAILED: " + "; ".join(failed) if failed else "passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
