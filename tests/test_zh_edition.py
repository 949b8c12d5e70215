"""The Chinese edition (zh/, README.zh.md): generated from the current English sources and the translations in
i18n/zh/, complete, faithful to the English code and outputs, and true to the terminology table.

How a change reaches the Chinese edition: edit an English chapter -> `python tools/i18n.py build` (the tests
below fail until zh/ is regenerated) -> any Markdown cell whose English changed is listed as stale by
`python tools/i18n.py status chapters/NN_name.ipynb` (and by these tests) until its translation is updated.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import zh_edition as i18n  # noqa: E402 (the generator, tools/zh_edition/; its command line is tools/i18n.py)
from zh_edition.comments import without_comments  # noqa: E402

GEN = i18n.Generator(ROOT)
SOURCES = list(GEN.reports)
NOTEBOOKS = [s for s in SOURCES if s.endswith(".ipynb") and not s.startswith(i18n.COMMENTS)]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
REPO_URL = CONFIG["repository"]["url"]
REPO_PATH = REPO_URL.removeprefix("https://github.com/")
NOTES = ROOT / "notes" / "text"  # the five source notes, whole and unchanged (the book's appendix)
QUOTE = re.compile(r"「([^」]*)」")


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _translated(source: str) -> list[tuple[i18n.Unit, str]]:
    report = GEN.reports[source]
    return [(u, report.translated[u.key]) for u in report.units if u.key in report.translated]


# ---------------------------------------------------------------------------------------------------------------
# Generated, complete, current


def test_zh_is_regenerated_from_the_current_sources():
    """zh/ and README.zh.md are exactly what `python tools/i18n.py build` makes of today's English sources."""
    stale = GEN.out_of_date()
    assert not stale, "zh/ is out of date; run: python tools/i18n.py build\n" + "\n".join(stale)


@pytest.mark.parametrize("source", SOURCES)
def test_every_unit_has_a_current_translation(source):
    """Every Markdown cell (page section, caption) has a translation made from its current English text."""
    report = GEN.reports[source]
    lines = [f"missing  {u.key}: {u.english.strip().splitlines()[0][:80]}" for u in report.missing]
    lines += [f"stale    {u.key} (the English changed): {u.english.strip().splitlines()[0][:80]}"
              for u, _ in report.stale]
    lines += [f"orphan   {e.key}: no such cell/section in {source} any more" for e in report.orphans]
    assert not lines, (f"{len(report.missing)} missing, {len(report.stale)} stale translations in "
                       f"{GEN.book.translations_path(source)}; run: python tools/i18n.py status {source}\n"
                       + "\n".join(lines))


@pytest.mark.parametrize("source", SOURCES)
def test_translations_keep_math_code_and_links(source):
    """Every formula, inline code span and link target of the English is in its translation; every label of a
    hidden solution is in the phrase table; translations are Chinese, one paragraph per line."""
    problems = GEN.reports[source].problems
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------------------------------------
# Terminology and quotations of the notes


def test_terminology_table_is_consistent():
    terms, phrases = i18n.terminology(ROOT)
    chinese = {t.english: t.chinese for t in terms}
    for english, term in {"batch normalization": "批归一化", "instance normalization": "实例归一化",
                          "layer normalization": "层归一化", "group normalization": "组归一化",
                          "running mean": "运行均值", "running variance": "运行方差",
                          "unbiased variance": "无偏方差", "momentum": "动量", "affine parameters": "仿射参数",
                          "lazy module": "惰性模块"}.items():
        assert chinese.get(english) == term, f"the table must translate {english!r} as {term}"
    assert len({t.chinese for t in terms}) == len(terms), "one row per Chinese term"
    for term in terms:
        for variant in term.avoid:
            clashes = [t.chinese for t in terms if variant in t.chinese]
            assert not clashes, f"avoided variant {variant!r} is part of the preferred term(s) {clashes}"
    assert i18n.translate_phrase("Show the solution to exercise 12", phrases) == "显示练习 12 的参考答案"


@pytest.mark.parametrize("source", SOURCES)
def test_translation_follows_the_terminology(source):
    """No avoided variant (outside note quotations 「」); in a complete document, each annotated term's first
    use in running text carries its English in brackets."""
    problems = GEN.term_problems(source)
    assert not problems, f"{GEN.book.translations_path(source)} vs {i18n.TERMINOLOGY}:\n" + "\n".join(problems)


def _notes_text() -> str:
    notes = sorted(NOTES.glob("note*.txt"))
    assert len(notes) == 5, f"the five source notes are in {NOTES}: found {[p.name for p in notes]}"
    return re.sub(r"\s+", " ", " ".join(p.read_text(encoding="utf-8") for p in notes))


LINK_TO_ZH = re.compile(r"\[[^\]]*\]\((?:README\.zh\.md|zh/[^)]*)\)")


@pytest.mark.parametrize("source", SOURCES)
def test_note_quotations_stay_in_the_original_chinese(source):
    """Chinese quoted in the English text (the source notes' words) is quoted verbatim, in 「」, in the translation;
    and every 「」 quotation is found in a note (notes/text/)."""
    notes = _notes_text()
    problems = []
    for unit, text in _translated(source):
        quotes = QUOTE.findall(text)
        for quote in quotes:
            if re.sub(r"\s+", " ", quote) not in notes:
                problems.append(f"{unit.key}: 「{quote}」 is not in any source note")
        english = LINK_TO_ZH.sub("", i18n.strip_fenced(unit.english))  # "中文版" labelling a link is no quotation
        for run in re.findall(r"[\u3400-\u9fff]+", english):
            if not any(run in q for q in quotes):
                problems.append(f"{unit.key}: the English quotes {run!r}; quote it in 「」 in the translation")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------------------------------------
# The Chinese notebooks: the English code and outputs, a working Colab badge


def _without_prompts(cell: dict) -> dict:
    """A code cell without what is translated: its display strings (toggle labels, figure caption, alt text) and
    its comments (the source becomes its code tokens, compared token by token)."""
    cell = json.loads(json.dumps(cell))
    for field in i18n.CELL_STRINGS:
        if any(f == field for f, _ in i18n.cell_strings(cell)):
            i18n.set_cell_string(cell, field, "")
    cell["source"] = without_comments("".join(cell["source"]))
    return cell


@pytest.mark.parametrize("source", NOTEBOOKS, ids=lambda s: Path(s).stem)
def test_code_cells_and_outputs_are_the_english_ones(source):
    """Same cells in the same order; every code cell (source, outputs, execution count, tags) identical to the
    English one, so nbval on the English notebook covers the Chinese one. Only display strings and comments are
    translated: the code is the same token for token."""
    english, chinese = _cells(ROOT / source), _cells(ROOT / i18n.OUT / source)
    assert [(c["cell_type"], c["id"]) for c in chinese] == [(c["cell_type"], c["id"]) for c in english]
    for en, zh in zip(english, chinese):
        if en["cell_type"] == "code":
            assert json.dumps(_without_prompts(zh), sort_keys=True) == json.dumps(_without_prompts(en),
                                                                                 sort_keys=True), en["id"]
        else:
            assert zh.get("attachments") == en.get("attachments") and zh["metadata"] == en["metadata"], en["id"]
    en_nb, zh_nb = (json.loads(p.read_text(encoding="utf-8")) for p in (ROOT / source, ROOT / i18n.OUT / source))
    assert zh_nb["metadata"] == en_nb["metadata"] and zh_nb["nbformat"] == en_nb["nbformat"]


@pytest.mark.parametrize("source", NOTEBOOKS, ids=lambda s: Path(s).stem)
def test_colab_badge_opens_the_chinese_notebook(source):
    cells = _cells(ROOT / i18n.OUT / source)
    intro, setup = "".join(cells[0]["source"]), "".join(cells[1]["source"])
    zh_badge = f"https://colab.research.google.com/github/{REPO_PATH}/blob/main/{i18n.OUT}/{source}"
    assert zh_badge in intro, f"the first cell's Colab badge must open {zh_badge}"
    assert f"/blob/main/{source}" not in intro, "no link to the English notebook's Colab page"
    assert f'%pip install --quiet "normbook @ git+{REPO_URL}"' in setup


def test_chinese_config_is_derived_from_the_english_one():
    zh = yaml.safe_load((ROOT / i18n.OUT / "_config.yml").read_text(encoding="utf-8"))
    assert zh["repository"]["url"] == REPO_URL and zh["repository"]["path_to_book"] == "zh"
    assert zh["sphinx"]["config"]["language"] == "zh_CN"
    extensions = zh["sphinx"]["local_extensions"]
    assert "language_switch" in extensions and "normbook_site" in extensions
    for name, path in extensions.items():
        assert (ROOT / i18n.OUT / path / f"{name}.py").is_file(), f"{name}: no {path}{name}.py"
    generator = [ROOT / "tools" / "i18n.py", *sorted((ROOT / "tools" / "zh_edition").glob("*.py"))]
    assert not [p for p in generator if REPO_PATH in p.read_text()], "the address is written only in _config.yml"


# ---------------------------------------------------------------------------------------------------------------
# The checks above can fail: a miniature book whose English changes under its translations


def test_a_changed_english_cell_is_reported_stale_and_zh_out_of_date(tmp_path):
    for rel in ("_config.yml", "_toc.yml", "README.md", str(i18n.TERMINOLOGY)):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\nparts:\n- caption: The layers\n"
                                       "  chapters:\n  - file: chapters/01_x\n")
    (tmp_path / "intro.md").write_text("# Intro\n\nBatch norm.\n")
    badge = f"https://colab.research.google.com/github/{REPO_PATH}/blob/main/chapters/01_x.ipynb"
    nb = {"cells": [{"cell_type": "markdown", "id": "a1", "metadata": {}, "source": [f"# X\n\n[b]({badge})"]},
                    {"cell_type": "code", "id": "c1", "metadata": {}, "execution_count": 1,
                     "outputs": [{"name": "stdout", "output_type": "stream", "text": ["1\n"]}], "source": ["1"]},
                    {"cell_type": "markdown", "id": "a2", "metadata": {}, "source": ["The mean $\\mu$ of `x`."]}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "chapters").mkdir()
    (tmp_path / "chapters" / "01_x.ipynb").write_text(json.dumps(nb))
    english = {"a1": f"# X\n\n[b]({badge})", "a2": "The mean $\\mu$ of `x`."}
    translations = tmp_path / i18n.I18N / "chapters" / "01_x.md"
    translations.parent.mkdir(parents=True)
    translations.write_text(f"<!-- i18n a1 {i18n.digest(english['a1'])} -->\n# 某章\n\n[徽章]({badge})\n\n"
                            f"<!-- i18n a2 {i18n.digest(english['a2'])} -->\n`x` 的均值 $\\mu$，用批量归一化。\n")
    gen = i18n.Generator(tmp_path)
    report = gen.reports["chapters/01_x.ipynb"]
    assert report.complete and not report.problems
    assert any("批量归一化" in p for p in gen.term_problems("chapters/01_x.ipynb")), "an avoided variant is found"
    i18n.write(gen.files(), tmp_path)
    zh = json.loads((tmp_path / "zh" / "chapters" / "01_x.ipynb").read_text())
    assert f"/blob/main/zh/chapters/01_x.ipynb" in "".join(zh["cells"][0]["source"])
    assert zh["cells"][1] == nb["cells"][1] and i18n.Generator(tmp_path).out_of_date() == []

    nb["cells"][2]["source"] = ["The mean $\\mu$ of `x`, per channel."]  # the English changes
    (tmp_path / "chapters" / "01_x.ipynb").write_text(json.dumps(nb))
    gen = i18n.Generator(tmp_path)
    assert [u.key for u, _ in gen.reports["chapters/01_x.ipynb"].stale] == ["a2"]
    assert "zh/chapters/01_x.ipynb: differs" in gen.out_of_date()
    assert "per channel" in "".join(json.loads(gen.files()["zh/chapters/01_x.ipynb"])["cells"][2]["source"]), \
        "a stale cell is shown in English"

    new = "".join(nb["cells"][2]["source"])  # the translation updated, but a formula lost in translation
    translations.write_text(translations.read_text().replace(i18n.digest(english["a2"]), i18n.digest(new))
                            .replace("$\\mu$", "μ"))
    problems = i18n.Generator(tmp_path).reports["chapters/01_x.ipynb"].problems
    assert any("math" in p and "$\\mu$" in p for p in problems), problems


def test_translation_format_checks_can_fail():
    unit = i18n.Unit("k", "**Exercise.** The mean $\\mu$ of `x`.\nSee [chapter 1](01_batchnorm2d.ipynb).")
    good = "**练习**。`x` 的均值 $\\mu$，见[第 1 章](01_batchnorm2d.ipynb)。"
    assert GEN.book.integrity(unit, good) == []
    for bad, why in [("**练习。**`x` 的均值 $\\mu$，见[第 1 章](01_batchnorm2d.ipynb)。", "emphasis"),
                     ("**练习**。`x` 的均值，\n见[第 1 章](01_batchnorm2d.ipynb)。", "line break"),
                     ("**练习**。`x` 的均值 $\\mu$，见第 1 章。", "link"),
                     ("**Exercise.** The mean $\\mu$ of `x`. [1](01_batchnorm2d.ipynb)", "no Chinese")]:
        assert any(why in p for p in GEN.book.integrity(unit, bad)), (why, GEN.book.integrity(unit, bad))


def test_first_use_of_a_term_needs_its_english():
    terms = [i18n.Term("instance normalization", "实例归一化", True, ("实例标准化",))]
    assert i18n.terminology_problems(["实例归一化（instance normalization）很简单。实例归一化……"], terms, True) == []
    assert i18n.terminology_problems(["## 实例归一化\n\n实例归一化层（instance normalization layer）"], terms, True) == []
    assert len(i18n.terminology_problems(["实例归一化很简单。实例归一化（instance normalization）"], terms, True)) == 1
    assert len(i18n.terminology_problems(["原笔记说「实例标准化」，但实例标准化不对。"], terms, False)) == 1
    assert i18n.terminology_problems(["原笔记说「实例标准化」。"], terms, False) == []


# ---------------------------------------------------------------------------------------------------------------
# The site: both editions, warning-free, linked to each other, Colab buttons opening the Chinese notebooks


@pytest.fixture(scope="session")
def built_site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, Path]:
    """Both editions built with `tools/build_book.py -W -n --keep-going`: (exit code, log, site folder).

    Reuses the session's `built_book` (tests/conftest.py) when that build already made both editions
    (conftest calling tools/build_book.py), so the suite builds the site once; else builds it here."""
    try:
        shared = request.getfixturevalue("built_book")
        if (shared.html / "zh" / "index.html").is_file():
            return shared.returncode, shared.log, shared.html
    except pytest.FixtureLookupError:
        pass
    out = tmp_path_factory.mktemp("site")
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "build_book.py"), "--path-output", str(out),
                          "-W", "-n", "--keep-going"], capture_output=True, text=True)
    return run.returncode, run.stdout + run.stderr, out / "_build" / "html"


def _switch_target(page: Path) -> Path:
    m = re.search(r'<div class="language-switch"[^>]*><a [^>]*href="([^"]+)"', page.read_text(encoding="utf-8"))
    assert m, f"{page}: no language switch link"
    return (page.parent / m.group(1)).resolve()


def test_both_editions_build_warning_free_and_link_to_each_other(built_site):
    code, log, site = built_site
    assert code == 0, log[-6000:]
    zh_toc = i18n.Book(ROOT).docnames()
    zh_pages = [d for d in zh_toc if (ROOT / i18n.OUT / f"{d}.ipynb").is_file() or (ROOT / i18n.OUT / f"{d}.md").is_file()]
    for doc in zh_pages + [str(i18n.GLOSSARY)]:
        page = site / "zh" / f"{doc}.html"
        target = _switch_target(page)
        assert target.is_file(), f"zh/{doc}: the language switch points to a missing page {target}"
        if (ROOT / f"{doc}.ipynb").is_file() or (ROOT / f"{doc}.md").is_file():
            assert target == (site / f"{doc}.html").resolve(), f"zh/{doc}: should link to the English {doc}"
        if (ROOT / i18n.OUT / f"{doc}.ipynb").is_file():
            html = page.read_text(encoding="utf-8")
            launch = f'href="https://colab.research.google.com/github/{REPO_PATH}/blob/main/zh/{doc}.ipynb"'
            assert launch in html, f"zh/{doc}: no Colab launch button for the Chinese notebook"
            assert 'lang="zh-CN"' in html
    assert "language_switch" in (CONFIG.get("sphinx", {}).get("local_extensions") or {}), (
        "the English pages need the language switch: add `language_switch: _ext/` under "
        "sphinx: local_extensions: in _config.yml")
    for doc in zh_pages:
        assert _switch_target(site / f"{doc}.html") == (site / "zh" / f"{doc}.html").resolve(), doc


def test_every_chapter_has_its_code_comments_translated():
    """Each chapter's comments are a source (comments:chapters/NN.ipynb, complete by the tests above): none is
    left out of the Chinese edition by a missing translations file."""
    chapters = [s for s in NOTEBOOKS if s.startswith("chapters/")]
    missing = [s for s in chapters if i18n.COMMENTS + s not in GEN.reports]
    assert not missing, ("no comment translations for " + ", ".join(missing) + "; run: python tools/i18n.py init "
                         + " ".join(i18n.COMMENTS + s for s in missing))
