"""House style of the Chinese edition (issue 26), checked on every translations file i18n/zh/**/*.md, whoever
translated it:

* emphasis in Chinese text is bold: `*中文*` or `_中文_` would set the characters in a slanted (fake italic) CJK face;
* no English words inside `\\text{...}` of a formula (`\\text{for}`, `\\text{initially}`): write Chinese there, or
  restructure. Code names (`\\text{running\\_mean}`, `\\text{momentum}`) are not English words. A formula copied
  verbatim from the English unit is reported apart, as an expected failure: tools/i18n.py requires every formula
  of the English in its translation, so such a formula can only change in the English source;
* no nested full-width brackets `（…（…）…）` and no two bracketed asides back to back `）（`;
* the preface's reading order lists (links) every document of _toc.yml: each chapter and each appendix note.

That 「」 holds only quotations found in a source note is checked by tests/test_zh_edition.py
(test_note_quotations_stay_in_the_original_chinese), not repeated here.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import zh_edition as i18n  # noqa: E402 (the generator, tools/zh_edition/)

GEN = i18n.Generator(ROOT)
FILES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / i18n.I18N).rglob("*.md"))
CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def _english_units() -> dict[str, dict[str, i18n.Unit]]:
    """translations file -> {key: English unit}, for every source of the book."""
    found = {}
    for source, report in GEN.reports.items():
        found[GEN.book.translations_path(source).as_posix()] = {u.key: u for u in report.units}
    return found


UNITS = _english_units()


def _texts(rel: str) -> list[tuple[str, str]]:
    """(key, Chinese text) of a translations file: each translated entry (not `todo`, `same` or `omit`, which hold
    English); a file without entries (terminology.md) is one text."""
    text = (ROOT / rel).read_text(encoding="utf-8")
    entries, _ = i18n.parse_translations(text)
    if not entries:
        return [("(whole file)", text)]
    return [(e.key, e.text) for e in entries if e.flag is None]


def _masked(text: str) -> str:
    """A Markdown text without what is not prose: fenced blocks, HTML comments, inline code, math, link targets."""
    text = HTML_COMMENT.sub(" ", i18n.strip_fenced(text))
    text = i18n.CODE_SPAN.sub("CODE", text)
    text = i18n.DISPLAY_MATH.sub("MATH", text)
    text = i18n.INLINE_MATH.sub("MATH", text)
    return i18n.LINK.sub("](URL)", text)


# ---------------------------------------------------------------------------------------------------------------
# The checks, as functions of a text (tested on small examples below)


def italic_chinese(text: str) -> list[str]:
    """Chinese set in italics: `*…*` spans that a CommonMark renderer makes <em> (also inside bold), and
    `_…_` around Chinese, which renders as italics or as stray underscores."""
    from markdown_it import MarkdownIt  # noqa: PLC0415 (comes with myst-parser)

    masked = _masked(text)
    found, open_spans = [], []
    for token in MarkdownIt("commonmark").enable("table").parse(masked):
        for child in token.children or []:
            if child.type == "em_open":
                open_spans.append("")
            elif child.type == "em_close":
                span = open_spans.pop()
                if re.search(f"[{CJK}]", span):
                    found.append(span)
            elif open_spans:
                open_spans[:] = [s + (child.content or " ") for s in open_spans]
    underscores = re.findall(rf"(?<![A-Za-z0-9_\\])_(?!_)([^_\n]*[{CJK}][^_\n]*?)(?<!_)_(?![A-Za-z0-9_])", masked)
    return found + [u for u in underscores if u not in found]


TEXT_COMMAND = re.compile(r"\\(?:text|textrm|textit|textbf|textsf|texttt|textnormal|mbox)\s*\{([^{}]*)\}")


def code_names(texts: list[str]) -> set[str]:
    """Names written as a whole inline code span somewhere (`momentum`, `running_mean`): code, not English."""
    names = set()
    for text in texts:
        for m in i18n.CODE_SPAN.finditer(text):
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", m.group(2).strip()):
                names.add(m.group(2).strip())
    return names


def english_in_text(formula: str, allowed: set[str] = frozenset()) -> list[str]:
    """English words inside `\\text{}` (and its kin, `\\textrm{}`, `\\mbox{}`…; `\\mathrm{}` is for upright symbols
    such as Var and is not looked at): words of two or more letters, except code names (with `_`, or in `allowed`)
    and abbreviations in capitals (BN, LN)."""
    words = []
    for m in TEXT_COMMAND.finditer(formula):
        content = m.group(1).replace(r"\_", "_")
        for word in re.findall(r"[A-Za-z][A-Za-z_]*", content):
            if len(word) < 2 or "_" in word or word in allowed or word.isupper():
                continue
            words.append(word)
    return words


FULL_BRACKETS = re.compile(r"（([^（）]*)）")


def bracket_problems(text: str) -> list[str]:
    """Nested full-width brackets （…（…）…）, and two asides back to back ）（ (ASCII brackets in code and math
    are masked out)."""
    masked = _masked(text)
    problems = [f"back to back: …{masked[max(0, m.start() - 20): m.end() + 20]}…"
                for m in re.finditer(r"）\s*（", masked)]
    depth, start, reported = 0, 0, False
    for i, ch in enumerate(masked):
        if ch == "（":
            depth += 1
            if depth == 1:
                start, reported = i, False
            elif not reported:
                end = masked.find("\n", i)
                problems.append(f"nested: …{masked[start: (end if end >= 0 else len(masked))][:90]}…")
                reported = True
        elif ch == "）":
            depth = max(0, depth - 1)
        elif ch == "\n":
            depth = 0
    return problems


def unlisted_documents(preface: str, docnames: list[str]) -> list[str]:
    """The documents of the toc (other than the preface itself) that the preface does not link: a chapter by its
    file (`chapters/01_x.ipynb`), an appendix page by its file or its label (`#note0`)."""
    targets = [m.group(1) for m in i18n.LINK.finditer(preface)]
    missing = []
    for doc in docnames:
        stem = Path(doc).name
        if not any(re.sub(r"\.(ipynb|md)$", "", t) == doc or t == f"#{stem}" for t in targets):
            missing.append(doc)
    return missing


# ---------------------------------------------------------------------------------------------------------------
# On the book


@pytest.mark.parametrize("rel", FILES)
def test_no_italic_chinese(rel):
    problems = [f"{key}: *{span}*" for key, text in _texts(rel) for span in italic_chinese(text)]
    assert not problems, (f"{rel}: emphasis in Chinese is bold (**…**), not italics (slanted CJK):\n"
                          + "\n".join(problems))


@pytest.mark.parametrize("rel", FILES)
def test_no_english_words_in_formula_text(rel):
    units = UNITS.get(rel, {})
    allowed = code_names([t for f in FILES for _, t in _texts(f)])
    found = []
    for key, text in _texts(rel):
        for formula in i18n.math_spans(text):
            words = english_in_text(formula, allowed)
            if words:
                found.append(f"{key}: {', '.join(words)} in {formula[:100]}")
    assert not found, (f"{rel}: English words in \\text{{}} of formulas; say them in Chinese (the i18n check "
                       f"compares formulas with \\text{{}} masked) or restructure:\n" + "\n".join(found))


@pytest.mark.parametrize("rel", FILES)
def test_no_nested_or_back_to_back_brackets(rel):
    problems = [f"{key}: {p}" for key, text in _texts(rel) for p in bracket_problems(text)]
    assert not problems, f"{rel}: split the sentence instead of nesting brackets:\n" + "\n".join(problems)


def test_preface_lists_every_document_of_the_toc():
    report = GEN.reports["intro.md"]
    preface = "\n\n".join(report.translated.get(u.key, "") for u in report.units)
    docnames = [d for d in GEN.book.docnames() if d != GEN.book.toc["root"]]
    assert len(docnames) >= 11, docnames
    missing = unlisted_documents(preface, docnames)
    assert not missing, f"{i18n.I18N}/intro.md does not list (link) these documents of _toc.yml: {missing}"


# ---------------------------------------------------------------------------------------------------------------
# The checks can fail


def test_style_checks_find_what_they_should():
    assert italic_chinese("这是*强调*的写法。") == ["强调"]
    assert italic_chinese("**粗体里的*斜体*也算**。") == ["斜体"]
    assert italic_chinese("这是_强调_的写法。") == ["强调"]
    assert italic_chinese("**粗体**、`a*b*c`、$a * b * c$、[链接](01_x_y.ipynb)、*English*、running_mean_x") == []
    assert english_in_text(r"\gamma_c = 1 \text{ initially}") == ["initially"]
    assert english_in_text(r"y = x \quad \text{for } (N, C)") == ["for"]
    assert english_in_text(r"\text{running\_mean}_c \leftarrow (1-m)\,\text{momentum}", {"momentum"}) == []
    assert english_in_text(r"\text{对于 } (N, C),\ \mathrm{Var}[x],\ \text{BN}") == []
    assert english_in_text(r"\mbox{new} + \textrm{old}") == ["new", "old"]
    assert bracket_problems("动量（momentum）（即 `m`）") and bracket_problems("外（内（注）外）")
    assert bracket_problems("动量（momentum），即 `momentum=(0.1)`，见 $f(x)$（第 5 章）") == []
    toc = ["chapters/01_x", "chapters/04b_y", "notes/note0"]
    assert unlisted_documents("[第 1 章](chapters/01_x.ipynb)、[原笔记 0](#note0)", toc) == ["chapters/04b_y"]
    assert unlisted_documents("[a](chapters/01_x.ipynb) [b](chapters/04b_y.ipynb) [c](notes/note0.md)", toc) == []
