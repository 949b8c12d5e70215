"""`make gpu` (tools/gpu_check.py) on a machine without a GPU says so and exits 0, running nothing."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: `make gpu` runs the real check")
def test_without_a_gpu_it_says_so_and_runs_nothing():
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "gpu_check.py")], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert "no CUDA device here" in run.stdout and "nothing was run on a GPU" in run.stdout
    assert "==" not in run.stdout, "no step may start without a GPU"
