#!/usr/bin/env python3
"""The Colab check: run every chapter as a reader who opens it on Colab would.

What a Colab reader has: a Python with some torch/torchvision release (not this
repository's pins), ``normbook`` installed as a package, and the notebook file
alone in a folder, with nothing else of the repository around it. This script
rebuilds exactly that, then executes each notebook there:

1. creates (or reuses) a separate virtual environment, ``.venv-colab`` by default;
2. builds a wheel of normbook from this checkout (``pip wheel --no-deps``);
3. installs into that environment the requested torch/torchvision (``--torch``;
   "torch torchvision" means the newest), what executing a notebook needs
   (nbclient, ipykernel) and the wheel with its own dependencies;
4. copies each notebook ALONE into a fresh temporary folder outside the checkout
   and executes it there with nbclient, that folder being the kernel's working
   directory, with ``PYTHONPATH`` unset and ``NORMBOOK_DATA`` passed through when
   set (offline: a folder holding CIFAR-10; online, unset: the notebook downloads
   the data into its own folder, as on Colab);
5. runs one more cell in the same kernel that asserts where ``normbook`` came
   from: the environment's site-packages, installed from the very wheel built in
   step 2 (same SHA-256), with no folder of the checkout on ``sys.path``.

It stops at the first failing notebook, naming it, and exits non-zero. The wheel is built
from a copy of ``pyproject.toml``, ``README.md`` and ``src/`` in a temporary folder,
so nothing is written into the checkout but the environment folder. Usage (``make colab`` calls it)::

    python3 tools/colab_check.py [--venv .venv-colab] [--torch "torch==2.14.1 torchvision==0.29.1"] NOTEBOOK...

The same file, started with ``--execute`` by the environment's own Python, is the
part that runs the notebooks (it needs nbclient, which only that environment has).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CELL_TIMEOUT = 900  # seconds per cell, as `make notebooks` and nbval use
REPORT_TAG = "normbook-colab-check:"

# Executed in the notebook's own kernel after its last cell; {expected} is filled in with json.dumps.
KERNEL_CHECK = '''\
# Added by tools/colab_check.py (not part of the chapter): where did normbook come from?
import importlib.metadata, json, os, sys, sysconfig
from pathlib import Path
import normbook, torch, torchvision
_expected = json.loads({expected!r})
_site = Path(sysconfig.get_paths()["purelib"]).resolve()
_module = Path(normbook.__file__).resolve()
_checkout = Path(_expected["checkout"]).resolve()
assert Path(sys.prefix).resolve() == Path(_expected["venv"]).resolve(), f"kernel runs in {{sys.prefix}}, not the Colab venv"
assert _module.is_relative_to(_site), f"normbook imported from {{_module}}, not from {{_site}}"
assert _site.is_relative_to(Path(_expected["venv"]).resolve()), f"site-packages {{_site}} is not the Colab venv's"
# The venv may live inside the checkout (.venv-colab): any other folder of the checkout on sys.path is the repository.
_on_path = [p for p in sys.path if Path(p or ".").resolve().is_relative_to(_checkout)
            and not Path(p or ".").resolve().is_relative_to(Path(_expected["venv"]).resolve())]
assert not _on_path, f"the checkout is on sys.path: {{_on_path}}"
assert "PYTHONPATH" not in os.environ, "PYTHONPATH is set in the kernel"
assert Path.cwd().resolve() == Path(_expected["folder"]).resolve(), f"kernel runs in {{Path.cwd()}}"
_url = json.loads(importlib.metadata.distribution("normbook").read_text("direct_url.json") or "{{}}")
_hash = _url.get("archive_info", {{}}).get("hashes", {{}}).get("sha256") or _url.get("archive_info", {{}}).get("hash", "").removeprefix("sha256=")
assert _hash == _expected["sha256"], f"normbook was not installed from the wheel just built: {{_url}}"
print({tag!r} + " " + json.dumps({{"normbook": str(_module), "torch": torch.__version__, "torchvision": torchvision.__version__}}))
'''


# The torch releases the book supports, oldest first: one patch release of each minor, with its torchvision.
# pyproject.toml declares the oldest (torch>=2.6); requirements.txt pins the newest. `--range` checks them all;
# the nightly workflow runs one job per row (`--matrix` prints them as JSON).
RELEASES = [
    ("2.6.0", "0.21.0"), ("2.7.1", "0.22.1"), ("2.8.0", "0.23.0"), ("2.9.1", "0.24.1"), ("2.10.0", "0.25.0"),
    ("2.11.0", "0.26.0"), ("2.12.1", "0.27.1"), ("2.13.0", "0.28.0"), ("2.14.1", "0.29.1"), ("2.15.0", "0.29.2"),
]


def requirement(torch: str, torchvision: str) -> str:
    return f"torch=={torch} torchvision=={torchvision}"


def check_range(args: argparse.Namespace) -> int:
    """Every release of RELEASES (but those in --skip, which are reported as not checked), each in a fresh venv
    that is removed afterwards; goes on after a failure and prints a table. Non-zero when any release failed."""
    results = []
    for torch, vision in RELEASES:
        if torch in args.skip:
            results.append((torch, vision, "NOT CHECKED (--skip)", 0.0))
            continue
        venv = Path(f"{args.venv}-{torch}")
        venv = venv if venv.is_absolute() else ROOT / venv
        started = time.monotonic()
        print(f"\n===== torch {torch}, torchvision {vision}", flush=True)
        code = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--venv", str(venv),
                               "--torch", requirement(torch, vision), "--timeout", str(args.timeout),
                               *args.notebooks]).returncode
        results.append((torch, vision, "passed" if code == 0 else "FAILED", time.monotonic() - started))
        if not args.keep_venvs:
            shutil.rmtree(venv, ignore_errors=True)
    print("\ncolab check over the supported range:")
    for torch, vision, verdict, seconds in results:
        print(f"  torch {torch:7} torchvision {vision:7} {verdict} ({seconds:.0f} s)")
    return 1 if any(v == "FAILED" for *_, v, _ in results) else 0


def run(cmd: list[str], **kwargs) -> None:
    """Run a command, echoing it; stop the whole check when it fails."""
    print("+", " ".join(cmd), flush=True)
    done = subprocess.run(cmd, **kwargs)
    if done.returncode != 0:
        sys.exit(f"colab check: command failed with exit code {done.returncode}: {' '.join(cmd)}")


def clean_env() -> dict[str, str]:
    """This process's environment without PYTHONPATH/PYTHONHOME (a Colab reader has neither)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    if env.get("NORMBOOK_DATA"):
        env["NORMBOOK_DATA"] = str(Path(env["NORMBOOK_DATA"]).expanduser().resolve())
    return env


def prepare(args: argparse.Namespace) -> int:
    """Steps 1-3 in the current Python, then step 4-5 in the environment's Python."""
    notebooks = [Path(nb).resolve() for nb in args.notebooks]
    missing = [str(nb) for nb in notebooks if not nb.is_file()]
    if missing or not notebooks:
        sys.exit(f"colab check: expected notebook files, got {args.notebooks or 'none'} (missing: {missing})")
    venv = Path(args.venv)
    venv = venv if venv.is_absolute() else ROOT / venv
    py = venv / "bin" / "python"
    env = clean_env()
    started = time.monotonic()
    if not py.exists():
        run([sys.executable, "-m", "venv", str(venv)])
    run([str(py), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], env=env)
    with tempfile.TemporaryDirectory(prefix="normbook-colab-wheel-") as dist:
        # Build from a copy of the package's files, so that setuptools' build/ and *.egg-info stay out of the checkout.
        source = Path(dist) / "source"
        shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        for name in ["pyproject.toml", "README.md", *(p.name for p in ROOT.glob("LICEN[CS]E*"))]:
            shutil.copy2(ROOT / name, source / name)
        run([str(py), "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", dist, str(source)], env=env, cwd=dist)
        wheels = list(Path(dist).glob("normbook-*.whl"))
        if len(wheels) != 1:
            sys.exit(f"colab check: expected one normbook wheel in {dist}, found {[w.name for w in wheels]}")
        wheel = wheels[0]
        sha256 = hashlib.sha256(wheel.read_bytes()).hexdigest()
        torch_spec = args.torch.split()
        run([str(py), "-m", "pip", "install", "--quiet", "--upgrade", *torch_spec, "nbclient", "ipykernel", str(wheel)],
            env=env, cwd=dist)
        # The same version may already be installed from an earlier run: replace it with this very wheel.
        run([str(py), "-m", "pip", "install", "--quiet", "--force-reinstall", "--no-deps", str(wheel)], env=env, cwd=dist)
    run([str(py), "-m", "pip", "check"], env=env, cwd=tempfile.gettempdir())
    print(f"colab check: environment ready in {time.monotonic() - started:.0f} s ({venv}, {args.torch})", flush=True)
    job = {"notebooks": [str(nb) for nb in notebooks], "venv": str(venv), "sha256": sha256,
           "checkout": str(ROOT), "timeout": args.timeout, "torch": torch_spec}
    # -I: the executor itself sees neither PYTHON* variables nor this script's folder on its path.
    done = subprocess.run([str(py), "-I", str(Path(__file__).resolve()), "--execute", json.dumps(job)],
                          env=env, cwd=tempfile.gettempdir())
    print(f"colab check: total {time.monotonic() - started:.0f} s", flush=True)
    return done.returncode


def read_report(outputs: list[dict]) -> dict | None:
    """The origin report that the added cell printed (a line ``REPORT_TAG {json}``), decoded; None unless there is
    exactly one. The cell's stdout is joined first: the kernel may send one printed line in several messages."""
    stdout = "".join(out.get("text", "") for out in outputs if out.get("name") == "stdout")
    report = [line for line in stdout.splitlines() if line.startswith(REPORT_TAG)]
    return json.loads(report[0].removeprefix(REPORT_TAG)) if len(report) == 1 else None


def execute(job: dict) -> int:
    """Steps 4-5, inside the Colab environment: each notebook alone in a fresh folder, stop at the first error."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    venv_python = Path(job["venv"]) / "bin" / "python"
    # A kernel spec of our own, first on JUPYTER_PATH, so no user- or system-wide "python3" spec picks another Python.
    jupyter_dir = Path(tempfile.mkdtemp(prefix="normbook-colab-jupyter-"))
    spec = jupyter_dir / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(venv_python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (normbook Colab check)", "language": "python"}))
    os.environ["JUPYTER_PATH"] = str(jupyter_dir)
    os.environ["IPYTHONDIR"] = str(jupyter_dir / "ipython")  # no profile or startup files of this machine
    print(f"colab check: NORMBOOK_DATA={os.environ.get('NORMBOOK_DATA') or '(unset: the notebooks download CIFAR-10)'}",
          flush=True)
    times = []
    for source in map(Path, job["notebooks"]):
        folder = Path(tempfile.mkdtemp(prefix=f"normbook-colab-{source.stem}-"))
        target = folder / source.name
        shutil.copyfile(source, target)
        nb = nbformat.read(target, as_version=4)
        expected = json.dumps({"venv": job["venv"], "checkout": job["checkout"], "folder": str(folder),
                               "sha256": job["sha256"]})
        nb.cells.append(nbformat.v4.new_code_cell(KERNEL_CHECK.format(expected=expected, tag=REPORT_TAG)))
        client = NotebookClient(nb, timeout=job["timeout"], kernel_name="python3",
                                resources={"metadata": {"path": str(folder)}})
        print(f"== {source.name}: executing in {folder}", flush=True)
        started = time.monotonic()
        try:
            client.execute()
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as err:
            print(f"\ncolab check FAILED: {source} (run alone in {folder}, kept for inspection)\n{err}", flush=True)
            return 1
        seconds = time.monotonic() - started
        origin = read_report(nb.cells[-1].outputs)
        if origin is None:
            print(f"\ncolab check FAILED: {source}: the origin check printed no report", flush=True)
            return 1
        pinned = {name: version for name, _, version in (s.partition("==") for s in job["torch"]) if version}
        wrong = {name: origin[name] for name, version in pinned.items()
                 if name in origin and origin[name].split("+")[0] != version}
        if wrong:
            print(f"\ncolab check FAILED: {source} ran with {wrong}, not the requested {pinned}", flush=True)
            return 1
        times.append((source.name, seconds))
        print(f"   ok in {seconds:.0f} s: torch {origin['torch']}, torchvision {origin['torchvision']}, "
              f"normbook from {origin['normbook']}", flush=True)
        shutil.rmtree(folder)
    shutil.rmtree(jupyter_dir)
    print("colab check passed:", ", ".join(f"{name} {s:.0f} s" for name, s in times), flush=True)
    return 0


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--execute":
        return execute(json.loads(sys.argv[2]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", default=".venv-colab", help="the separate environment (relative to the checkout)")
    parser.add_argument("--torch", default=requirement(*RELEASES[-2]),
                        help='torch/torchvision requirements, space-separated; "torch torchvision" for the newest')
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT, help="seconds allowed per cell")
    parser.add_argument("--range", action="store_true",
                        help="check every supported release (RELEASES), each in its own venv VENV-<torch>")
    parser.add_argument("--skip", nargs="*", default=[], metavar="TORCH",
                        help="with --range: releases not to check (reported as NOT CHECKED)")
    parser.add_argument("--keep-venvs", action="store_true", help="with --range: keep each venv (about 6 GB each)")
    parser.add_argument("--matrix", action="store_true", help="print the supported releases as JSON and exit")
    parser.add_argument("notebooks", nargs="*", help="notebooks to execute (default: chapters/*.ipynb)")
    args = parser.parse_args()
    if args.matrix:
        print(json.dumps([{"torch": t, "torchvision": v} for t, v in RELEASES]))
        return 0
    args.notebooks = args.notebooks or sorted(str(p) for p in (ROOT / "chapters").glob("*.ipynb"))
    return check_range(args) if args.range else prepare(args)


if __name__ == "__main__":
    sys.exit(main())
