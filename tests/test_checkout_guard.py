"""The checkout guard (tests/checkout_guard/sitecustomize.py) catches a read beside the checkout, in a child
Python too, and lets reads inside the checkout, of NORMBOOK_DATA and of hidden folders pass."""

import os
import subprocess
import sys
from pathlib import Path

GUARD = Path(__file__).with_name("checkout_guard")


def _run(tmp_path: Path, code: str, data: str = "") -> list[str]:
    root, beside = tmp_path / "clone", tmp_path / "shared"
    for folder in (root, beside / "seeds", beside / "data", tmp_path / ".cache", tmp_path / ".tmp"):
        folder.mkdir(parents=True, exist_ok=True)
    for f in (root / "inside.txt", beside / "seeds" / "note.txt", beside / "data" / "d.txt", tmp_path / ".cache" / "c"):
        f.write_text("x")
    log = tmp_path / "guard.log"
    env = dict(os.environ, NORMBOOK_CHECKOUT_LOG=str(log), NORMBOOK_CHECKOUT_ROOT=str(root),
               NORMBOOK_DATA=str(beside / "data") if data else "", PYTHONPATH=str(GUARD),
               TMPDIR=str(tmp_path / ".tmp"))
    # the child runs from the clone, as a test would, and reads with relative paths
    subprocess.run([sys.executable, "-c", code], cwd=root, env=env, check=True)
    return log.read_text().splitlines() if log.exists() else []


def test_a_child_python_reading_beside_the_checkout_is_recorded(tmp_path):
    seen = _run(tmp_path, "open('../shared/seeds/note.txt').read(); import os; os.listdir('../shared')")
    assert any(line.startswith(str(tmp_path / "shared" / "seeds" / "note.txt")) for line in seen), seen
    assert any(line.startswith(str(tmp_path / "shared") + "  (os.listdir") for line in seen), seen


def test_reads_inside_the_checkout_the_data_folder_and_hidden_folders_pass(tmp_path):
    seen = _run(tmp_path, "open('inside.txt').read(); open('../shared/data/d.txt').read(); "
                          "open('../.cache/c').read()", data="yes")
    assert seen == []


def test_the_data_folder_is_allowed_only_when_named(tmp_path):
    seen = _run(tmp_path, "open('../shared/data/d.txt').read()")
    assert len(seen) == 1 and "shared/data/d.txt" in seen[0]
