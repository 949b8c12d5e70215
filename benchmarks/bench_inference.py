"""Time inference: the chapter-7 CNN unfused vs with BatchNorm folded into its convolutions, and
normbook.reference.batch_norm vs torch's batch norm. One run, each pair printed as a ratio.

    python benchmarks/bench_inference.py [--device cpu|cuda] [--batch 256] [--threads N]

Not a test: timings depend on the machine and its load, so they are printed, never stored.
Each pair is timed interleaved (A, B, A, B, ...) with torch.utils.benchmark, and the ratio of the
medians is reported, so a change in load during the run affects both sides alike.
"""

from __future__ import annotations

import argparse
import sys

import torch
import torch.nn.functional as F
from torch.utils import benchmark

from normbook import reference
from normbook.fuse import fuse_model
from normbook.training import small_cnn


def _median_pair(a, b, rounds: int, min_run_time: float) -> tuple[float, float]:
    """Median seconds per call of a() and b(), measured alternately in ``rounds`` rounds."""
    ta, tb = [], []
    for _ in range(rounds):
        for fn, out in ((a, ta), (b, tb)):
            out.append(benchmark.Timer(stmt="fn()", globals={"fn": fn}).blocked_autorange(min_run_time=min_run_time).median)
    ta.sort()
    tb.sort()
    return ta[len(ta) // 2], tb[len(tb) // 2]


def _report(name_a: str, name_b: str, ta: float, tb: float) -> None:
    print(f"{name_a:<34} {ta * 1e3:9.3f} ms")
    print(f"{name_b:<34} {tb * 1e3:9.3f} ms")
    print(f"  ratio {name_a} / {name_b}: {ta / tb:.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--min-run-time", type=float, default=0.2)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)

    model = small_cnn(batch_norm=True).to(device)
    with torch.no_grad():  # non-trivial running statistics, as after training
        for _ in range(5):
            model(torch.randn(64, 3, 32, 32, device=device) * 2 + 0.5)
    model.eval()
    fused = fuse_model(model)
    x = torch.randn(args.batch, 3, 32, 32, device=device)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), model(x), atol=1e-4, rtol=1e-4)

    def run(m):
        def fn():
            with torch.no_grad():
                m(x)
            sync()
        return fn

    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads, batch {args.batch}")
    print("-- inference of the chapter's CNN (eval mode)")
    _report("unfused (conv -> BatchNorm2d)", "fused (BatchNorm folded into conv)",
            *_median_pair(run(model), run(fused), args.rounds, args.min_run_time))

    c = 32
    z = torch.randn(args.batch, c, 16, 16, device=device)
    rm, rv = torch.randn(c, device=device), torch.rand(c, device=device) + 0.5
    w, b = torch.randn(c, device=device), torch.randn(c, device=device)
    for training in (False, True):
        mode = "training" if training else "eval"

        def ours():
            with torch.no_grad():
                reference.batch_norm(z, rm.clone(), rv.clone(), w, b, training=training)
            sync()

        def theirs():
            with torch.no_grad():
                F.batch_norm(z, rm.clone(), rv.clone(), w, b, training=training)
            sync()

        print(f"-- batch norm forward, {mode} mode, input {tuple(z.shape)}")
        _report("normbook.reference.batch_norm", "torch.nn.functional.batch_norm",
                *_median_pair(ours, theirs, args.rounds, args.min_run_time))
    return 0


if __name__ == "__main__":
    sys.exit(main())
