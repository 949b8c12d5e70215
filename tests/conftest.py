"""Fixtures shared by the tests: the HTML book, built once per test run."""

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


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
    """
    out = tmp_path_factory.mktemp("book")
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "build_book.py"), "--path-output", str(out),
                          "-W", "-n", "--keep-going"], capture_output=True, text=True)
    return BookBuild(run.returncode, run.stdout + run.stderr, out / "_build" / "html")
