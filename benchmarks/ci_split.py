"""Where the CI's time goes: run `.ci/run` on a fresh clone in an empty folder and print the split.

    NORMBOOK_DATA=/path/to/cifar-10-folder python benchmarks/ci_split.py [--keep]

Clones this repository's HEAD into a new temporary folder (nothing beside the clone, as a fresh machine
has), runs `bash .ci/run` there with pytest's per-test durations switched on, and prints

* each step of .ci/run (install, make test, make portability) and the total, against the 10-minute budget;
* inside each pytest run, the summed test time per group: the book build, the browser tests, the other
  unit tests, and nbval per notebook (make test has two workers and make portability runs its two
  simulated machines at once, so these sums exceed the wall time).

Not a test: timings depend on the machine and its load. Exits with .ci/run's exit code.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 600
STEP = re.compile(r"^== ci step: (.+) took (\d+) s$")
DURATION = re.compile(r"^\s*([\d.]+)s (call|setup|teardown)\s+(\S+)")


def group(test_id: str) -> str:
    """The part of the suite a test id belongs to."""
    path = test_id.split("::")[0]
    if path.startswith("chapters/"):
        return f"nbval {Path(path).stem}"
    if path == "tests/test_browser.py":
        return "browser tests"
    return "unit and book tests"


def split(log: str) -> tuple[list[tuple[str, int]], list[tuple[str, dict[str, float]]]]:
    """The .ci/run steps and, per pytest run (a line 'slowest durations' starts one), its title and seconds per
    group. A run is titled by the last '== nbval TARGET with ...' line before it (make portability), else 'make test'."""
    steps, runs, title = [], [], "make test"
    for line in log.splitlines():
        if m := STEP.match(line):
            steps.append((m.group(1), int(m.group(2))))
        elif line.startswith("== nbval "):  # "== nbval TARGET with SETTING: NOTEBOOKS"
            title = "make " + line.split()[2]
        elif "slowest durations" in line:
            runs.append((title, collections.defaultdict(float)))
        elif (m := DURATION.match(line)) and runs:
            seconds, phase, test_id = float(m.group(1)), m.group(2), m.group(3)
            name = "book build (fixture)" if phase == "setup" and seconds > 5 and "chapters/" not in test_id \
                else group(test_id)
            runs[-1][1][name] += seconds
    return steps, runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the clone (its path is printed)")
    args = parser.parse_args()
    if not os.environ.get("NORMBOOK_DATA"):
        sys.exit("set NORMBOOK_DATA to a folder holding CIFAR-10 (cifar-10-batches-py or cifar-10-sample)")
    parent = Path(tempfile.mkdtemp(prefix="normbook-ci-"))
    clone = parent / "normbook"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], check=True)
    env = dict(os.environ, CI="true", NORMBOOK_DATA=str(Path(os.environ["NORMBOOK_DATA"]).resolve()),
               PYTEST_ADDOPTS="--durations=0 --durations-min=0.05")
    started = time.monotonic()
    run = subprocess.run(["bash", ".ci/run"], cwd=clone, env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    log = run.stdout + run.stderr
    (parent / "ci.log").write_text(log)
    steps, runs = split(log)
    print(f".ci/run on a fresh clone in {parent} (exit {run.returncode}), wall {wall:.0f} s "
          f"= {wall / BUDGET_S:.2f} x the {BUDGET_S} s budget")
    for name, seconds in steps:
        print(f"  {name:20} {seconds:5d} s")
    for title, groups in runs:
        print(f"  {title}: summed test time per group")
        for name, seconds in sorted(groups.items(), key=lambda kv: -kv[1]):
            print(f"    {name:34} {seconds:6.1f} s")
    tail = [line for line in log.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    print("  pytest:", " | ".join(tail))
    if not args.keep:
        shutil.rmtree(parent, ignore_errors=True)
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
