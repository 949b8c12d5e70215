"""The book as a whole: every chapter is listed, executed, portable and Colab-ready; the HTML builds with no warning."""

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPO_URL = CONFIG["repository"]["url"]
REPO_PATH = REPO_URL.removeprefix("https://github.com/")
TOC_FILES = [entry["file"] for part in yaml.safe_load((ROOT / "_toc.yml").read_text())["parts"]
             for entry in part["chapters"]]
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))
# What must never reach a stored output: absolute paths, memory addresses, wall-clock times.
UNPORTABLE = re.compile(r"(/work/|/home/|/tmp/|/root/|/content/|\bat 0x[0-9a-f]+|\d{4}-\d\d-\d\d[ T]\d\d:\d\d)")


def _cells(nb_path: Path) -> list[dict]:
    return json.loads(nb_path.read_text())["cells"]


def _text(cell: dict) -> str:
    return "".join(cell["source"])


def test_every_chapter_is_in_the_toc_and_every_toc_entry_exists():
    assert sorted(f"chapters/{p.stem}" for p in NOTEBOOKS) == sorted(f for f in TOC_FILES if f.startswith("chapters/"))
    assert all((ROOT / f).with_suffix(".ipynb").is_file() or (ROOT / f).with_suffix(".md").is_file() for f in TOC_FILES)


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_opens_with_title_badge_and_setup_cell(nb):
    cells = _cells(nb)
    intro, setup = _text(cells[0]), _text(cells[1])
    assert cells[0]["cell_type"] == "markdown" and intro.startswith("# ")
    badge = f"https://colab.research.google.com/github/{REPO_PATH}/blob/main/chapters/{nb.name}"
    assert badge in intro, f"the Colab badge must link to {badge}"
    assert cells[1]["cell_type"] == "code"
    assert f'%pip install --quiet "normbook @ git+{REPO_URL}"' in setup
    assert "except ImportError:" in setup and "normbook.setup(seed=0)" in setup
    headings = [line for c in cells if c["cell_type"] == "markdown" for line in _text(c).splitlines()
                if line.startswith("# ")]
    assert len(headings) == 1, f"one H1 per chapter, found {headings}"
    assert any(line.strip() == "## Exercises" for c in cells if c["cell_type"] == "markdown"
               for line in _text(c).splitlines()), "end with an Exercises section"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_is_stored_executed_in_order_and_portable(nb):
    code = [c for c in _cells(nb) if c["cell_type"] == "code"]
    counts = [c["execution_count"] for c in code]
    assert counts == list(range(1, len(code) + 1)), "store the notebook executed top to bottom from a fresh kernel"
    for cell in code:
        for out in cell["outputs"]:
            assert out["output_type"] != "error", f"stored error output in cell: {_text(cell)[:80]}"
            text = "".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))
            assert not UNPORTABLE.search(text), f"unportable output {UNPORTABLE.search(text).group(0)!r}"
    assert nb.stat().st_size < 1_000_000, "keep figures small (about 100 dpi)"


def test_book_builds_without_warnings(built_book):
    """`jupyter-book build -W -n`: any warning (broken link, bad heading, missing file, a stderr output) fails the build.

    The build (tests/conftest.py) is shared with the browser tests (tests/test_browser.py).
    """
    assert built_book.returncode == 0, "\n".join(built_book.warnings()[:40]) or built_book.log[-4000:]
    html = built_book.html
    for entry in (f for f in TOC_FILES if f.startswith("chapters/")):
        page = (html / entry).with_suffix(".html").read_text()
        launch = f'href="https://colab.research.google.com/github/{REPO_PATH}/blob/main/{entry}.ipynb"'
        assert launch in page and 'title="Launch on Colab"' in page, f"{entry}: no Colab launch button"
        assert "tag_hide-cell" in page, f"{entry}: exercise solutions should be hidden behind a toggle"
    assert any((html / "_images").glob("*.png")), "the chapters' figures are in the book"
