"""Fixtures shared by the tests: the HTML book, built once per test run."""

import dataclasses
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import filelock
import pytest

ROOT = Path(__file__).resolve().parents[1]
GUARD = Path(__file__).with_name("checkout_guard")


def pytest_configure(config: pytest.Config) -> None:
    """The checkout guard (tests/checkout_guard/): this process and every Python it starts record what they
    open beside the checkout; the session fails if anything was."""
    # Loaded from its file: `import sitecustomize` could return a sitecustomize the interpreter already ran.
    spec = importlib.util.spec_from_file_location("normbook_checkout_guard", GUARD / "sitecustomize.py")
    guard = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(guard)

    log = os.environ.get("NORMBOOK_CHECKOUT_LOG") if hasattr(config, "workerinput") else None
    if not log:  # this session's own log; an xdist worker writes to its controller's (inherited in its environment)
        fd, log = tempfile.mkstemp(prefix="normbook-outside-", suffix=".log")
        os.close(fd)
        config.stash[_LOG] = log
    os.environ.update(NORMBOOK_CHECKOUT_LOG=log, NORMBOOK_CHECKOUT_ROOT=str(ROOT),
                      PYTHONPATH=os.pathsep.join(filter(None, [str(GUARD), os.environ.get("PYTHONPATH")])))
    guard.install(str(ROOT), log)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    log = session.config.stash.get(_LOG, None)  # None in an xdist worker: its controller reads the log
    seen = Path(log).read_text(encoding="utf-8").splitlines() if log and Path(log).exists() else []
    if seen:
        paths = sorted(set(seen))
        print(f"\n\nFAILED: the checkout guard saw {len(paths)} paths read beside the checkout {ROOT} "
              f"(a clone has nothing there; put what is needed in the repository):\n  " + "\n  ".join(paths[:30]))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_LOG = pytest.StashKey[str]()


@dataclasses.dataclass(frozen=True)
class BookBuild:
    """The result of `jupyter-book build -W -n --keep-going`: its exit code, its output, and the HTML folder."""

    returncode: int
    log: str
    html: Path

    def __repr__(self) -> str:  # the log is long: a failing assert shows only what matters
        return f"BookBuild(returncode={self.returncode}, html={str(self.html)!r})"

    def warnings(self) -> list[str]:
        """The build's warning and error lines, without terminal colours."""
        plain = re.sub(r"\x1b\[[0-9;]*m", "", self.log)
        return [line for line in plain.splitlines() if "WARNING" in line or "ERROR" in line]


@pytest.fixture(scope="session")
def built_book(tmp_path_factory: pytest.TempPathFactory) -> BookBuild:
    """Build the book, both editions as `make book` does, into a temporary folder, once for every test that reads it.

    -W turns every warning into a failure (reported by tests/test_book.py); --keep-going still
    writes every page, so the browser tests check the pages even when the build has a warning.
    With pytest-xdist the workers share one build: the first to need it builds it under a lock in
    the run's common temporary folder, the others wait for it and read its result.
    """
    if not os.environ.get("PYTEST_XDIST_WORKER"):  # not an xdist worker
        return _build_book(tmp_path_factory.mktemp("book"))
    shared = tmp_path_factory.getbasetemp().parent / "book"
    with filelock.FileLock(str(shared) + ".lock"):
        result = shared / "result.json"
        if not result.is_file():
            build = _build_book(shared)
            result.write_text(json.dumps({"returncode": build.returncode, "log": build.log}), encoding="utf-8")
        done = json.loads(result.read_text(encoding="utf-8"))
    return BookBuild(done["returncode"], done["log"], shared / "_build" / "html")


def _build_book(out: Path) -> BookBuild:
    """`tools/build_book.py -W -n --keep-going` into the folder ``out``."""
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "build_book.py"), "--path-output", str(out),
                          "-W", "-n", "--keep-going"], capture_output=True, text=True)
    return BookBuild(run.returncode, run.stdout + run.stderr, out / "_build" / "html")
