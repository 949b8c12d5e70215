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


# --------------------------------------------------------------------------- the site as published (issue 25)

SITE_PAGES = ["intro"] + TOC_FILES  # every page of the English edition; the Chinese ones are the same under zh/


def _site_address() -> str:
    """https://OWNER.github.io/REPO/, from the repository named in _config.yml (as _ext/language_switch.py has it)."""
    owner, repo = REPO_PATH.strip("/").split("/")[:2]
    return f"https://{owner.lower()}.github.io/{repo}/"


def _head(page: Path) -> str:
    return page.read_text(encoding="utf-8").partition("</head>")[0]


@pytest.mark.parametrize("edition", ["", "zh/"])
def test_site_pages_have_description_favicon_and_absolute_language_links(built_book, edition):
    html, address = built_book.html, _site_address()
    for name in SITE_PAGES:
        head = _head(html / f"{edition}{name}.html")
        description = re.search(r'<meta name="description" content="([^"]{40,})"', head)
        assert description, f"{edition}{name}: no meta description of 40 characters or more"
        assert re.search(r'<link rel="icon" href="[^"]*favicon\.ico"', head), f"{edition}{name}: no favicon link"
        links = dict(re.findall(r'<link rel="alternate" hreflang="([^"]+)" href="([^"]+)"', head))
        assert set(links) == {"en", "zh-CN", "x-default"}, f"{edition}{name}: hreflang links {links}"
        assert links["en"] == f"{address}{name}.html" and links["zh-CN"] == f"{address}zh/{name}.html", links
        assert links["x-default"] == links["en"]
        canonical = re.search(r'<link rel="canonical" href="([^"]+)"', head)
        assert canonical and canonical.group(1) == f"{address}{edition}{name}.html", f"{edition}{name}: {canonical}"
    assert (html / "favicon.ico").is_file(), "no /favicon.ico at the site's root"


@pytest.mark.parametrize("edition", ["", "zh/"])
def test_site_landing_page_is_a_valid_page(built_book, edition):
    text = (built_book.html / edition / "index.html").read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>"), "index.html has no doctype"
    assert re.search(r'<html lang="(en|zh-CN)">', text), "index.html has no language"
    assert re.search(r"<title>[^<]+</title>", text) and '<meta charset="utf-8" />' in text
    assert 'http-equiv="refresh"' in text and '<a href="intro.html">' in text, "index.html leads to the first page"


def test_site_scripts_never_block_the_first_paint(built_book):
    """No icon or math script; the search index on the search page only; every script but the tiny
    documentation_options.js deferred or async; one stylesheet."""
    for edition in ("", "zh/"):
        for name in SITE_PAGES:
            head = _head(built_book.html / f"{edition}{name}.html")
            assert not re.search(r"fontawesome|mathjax|tex-mml", head, re.IGNORECASE), f"{edition}{name}: icon/math script"
            assert "searchindex.js" not in head, f"{edition}{name}: loads the search index"
            blocking = [src for attrs, src in re.findall(r'<script ([^>]*?)src="([^"]+)"', head)
                        if "defer" not in attrs and "async" not in attrs and "documentation_options.js" not in src]
            assert not blocking, f"{edition}{name}: render-blocking scripts {blocking}"
            sheets = re.findall(r'<link [^>]*rel="stylesheet"', head)
            assert len(sheets) == 1, f"{edition}{name}: {len(sheets)} stylesheets (one bundle expected)"


def test_site_has_no_duplicated_static_tree(built_book):
    """The Chinese edition keeps only the static files and figures that differ from the English edition's."""
    html = built_book.html
    for folder in ("_static", "_images"):
        for f in (html / "zh" / folder).rglob("*") if (html / "zh" / folder).is_dir() else []:
            english = html / f.relative_to(html / "zh")
            assert not (f.is_file() and english.is_file() and f.read_bytes() == english.read_bytes()), \
                f"zh/{f.relative_to(html / 'zh')} duplicates the English copy"
    assert not (html / "_static" / "mathjax").exists(), "MathJax is typeset at build time: no MathJax in the site"
    assert not (html / "_static" / "scripts" / "fontawesome.js").exists()
    size = sum(f.stat().st_size for f in html.rglob("*") if f.is_file())
    assert size < 30 * 2**20, f"the site is {size / 2**20:.0f} MB"
