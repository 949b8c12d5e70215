"""What a reader meets in each chapter, counted: the limits of "A chapter for the reader".

- at most 15 visible assert lines (``assert`` statements and ``assert_close``-style calls) per chapter;
  every other check sits in a collapsed check cell;
- every code line at most 79 characters (the page's code box shows about 78), and the notebooks as
  ``ruff format`` writes them (the line length is set in pyproject.toml);
- at most 3,500 words of prose;
- at least two figures, each with a caption and alt text that describes it (not a file name);
- a check cell starts with ``# Check: <what it checks>``, is collapsed in the book (tag ``hide-input``)
  and in Jupyter/Colab (``source_hidden``), and its toggle says what it checks.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))
HIDDEN_TAGS = {"hide-input", "hide-cell", "remove-input", "remove-cell"}
ASSERT_LINE = re.compile(r"\s*(assert\b|(torch\.testing\.|np\.testing\.|numpy\.testing\.)?assert_[a-z_]*\()")
MAX_ASSERTS, MAX_LINE, MAX_WORDS, MIN_FIGURES = 15, 79, 3500, 2
CHECK_HEADER = re.compile(r"# Check: \S")


def _cells(nb: Path) -> list[dict]:
    return json.loads(nb.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def _hidden(cell: dict) -> bool:
    meta = cell.get("metadata", {})
    return bool(set(meta.get("tags", [])) & HIDDEN_TAGS or meta.get("jupyter", {}).get("source_hidden"))


def visible_assert_lines(cells: list[dict]) -> int:
    """Lines a reader sees that start an assert statement or an assert_*() call."""
    return sum(bool(ASSERT_LINE.match(line)) for c in cells if c["cell_type"] == "code" and not _hidden(c)
               for line in _source(c).splitlines())


def prose_words(cells: list[dict]) -> int:
    """Words of the Markdown cells, without fenced code, math and link targets."""
    text = "\n".join(_source(c) for c in cells if c["cell_type"] == "markdown")
    text = re.sub(r"^(```|~~~|:::).*?^\1", " ", text, flags=re.MULTILINE | re.DOTALL)
    text = re.sub(r"\$\$.*?\$\$|\$[^$\n]+\$", " ", text, flags=re.DOTALL)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return len(re.findall(r"[A-Za-z0-9][A-Za-z0-9'_.-]*", text))


def figures(cells: list[dict]) -> list[dict]:
    """The code cells whose outputs hold an image."""
    return [c for c in cells if c["cell_type"] == "code"
            and any(k.startswith("image/") for o in c.get("outputs", []) for k in o.get("data", {}))]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_at_most_15_visible_assert_lines(nb):
    count = visible_assert_lines(_cells(nb))
    assert count <= MAX_ASSERTS, (f"{count} visible assert lines: keep the one or two that state each claim and "
                                  f"move the rest into collapsed check cells (# Check: ...)")


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_fits_the_page(nb):
    long = [f"cell {i}: {line[:60]}…" for i, c in enumerate(_cells(nb)) if c["cell_type"] == "code"
            for line in _source(c).splitlines() if len(line) > MAX_LINE]
    assert not long, f"{len(long)} code lines longer than {MAX_LINE} characters:\n" + "\n".join(long[:20])


def test_notebooks_are_formatted_and_lint_clean():
    """`ruff format --check` and `ruff check` on the chapters (line length 79, from pyproject.toml)."""
    for command in (["format", "--check"], ["check"]):
        run = subprocess.run([sys.executable, "-m", "ruff", *command, "chapters"], cwd=ROOT,
                             capture_output=True, text=True)
        assert run.returncode == 0, f"ruff {' '.join(command)} chapters:\n{run.stdout[-3000:]}{run.stderr[-1000:]}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_at_most_3500_words_of_prose(nb):
    words = prose_words(_cells(nb))
    assert words <= MAX_WORDS, f"{words} words of prose: teach each idea once, cut, or split the chapter"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_figures_have_captions_and_alt_text(nb):
    found = figures(_cells(nb))
    assert len(found) >= MIN_FIGURES, f"{len(found)} figures; a chapter has at least {MIN_FIGURES}"
    for cell in found:
        mystnb = cell.get("metadata", {}).get("mystnb", {})
        caption = mystnb.get("figure", {}).get("caption", "")
        alt = mystnb.get("image", {}).get("alt", "")
        where = _source(cell)[:60]
        assert len(caption.split()) >= 4, f"{where}: a caption (mystnb.figure.caption) says what to look at"
        assert len(alt.split()) >= 6, f"{where}: alt text (mystnb.image.alt) describes the figure"
        assert not re.search(r"\.(png|svg|jpe?g)\b|_images/|^\S+$", alt), f"{where}: alt text is not a file name"
        assert mystnb.get("figure", {}).get("name"), f"{where}: a figure name (mystnb.figure.name) to link to"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_check_cells_are_collapsed_and_labelled(nb):
    for cell in _cells(nb):
        if cell["cell_type"] != "code" or not _source(cell).startswith("# Check"):
            continue
        first = _source(cell).splitlines()[0]
        meta = cell.get("metadata", {})
        assert CHECK_HEADER.match(first), f"a check cell starts with '# Check: <what it checks>': {first!r}"
        assert "hide-input" in meta.get("tags", []), f"{first}: tag hide-input (collapsed in the book)"
        assert meta.get("jupyter", {}).get("source_hidden") is True, f"{first}: jupyter.source_hidden (Colab)"
        label = meta.get("mystnb", {}).get("code_prompt_show", "")
        what = first.removeprefix("# Check:").strip().rstrip(".")
        assert label == f"Show the check: {what}", f"{first}: code_prompt_show should be 'Show the check: {what}'"
        assert meta.get("mystnb", {}).get("code_prompt_hide") == "Hide the check", f"{first}: code_prompt_hide"


def test_the_counters_count():
    """The counting rules on made-up cells, so that a limit test cannot pass by counting nothing."""
    code = {"cell_type": "code", "metadata": {}, "outputs": [],
            "source": ["x = 1\n", "assert x == 1\n", "torch.testing.assert_close(a, b)\n", "  assert y\n"]}
    hidden = dict(code, metadata={"tags": ["hide-input"], "jupyter": {"source_hidden": True}})
    assert visible_assert_lines([code, hidden]) == 3
    md = {"cell_type": "markdown", "source": ["Two words $x+y$ and [a link](http://x.y/z).\n", "```\nnot counted\n```\n"]}
    assert prose_words([md]) == 5  # Two, words, and, a, link: not the math, the URL or the fenced code
