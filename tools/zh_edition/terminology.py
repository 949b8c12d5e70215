"""Terminology: the terms and phrase tables of i18n/zh/terminology.md, phrase translation, and the check that
translations follow the terms table."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from .markdown import CODE_SPAN, DISPLAY_MATH, HEADING, INLINE_MATH, LINK, strip_fenced
from .paths import ROOT, TERMINOLOGY


@dataclasses.dataclass(frozen=True)
class Term:
    """A row of the terms table."""

    english: str
    chinese: str
    annotate: bool  # give the English in brackets on first use in each chapter
    avoid: tuple[str, ...]
    elsewhere: str = ""  # renderings other books use (column 其他常见译法), shown in the glossary


def markdown_tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """Every pipe table of a Markdown text: (header, rows)."""
    tables, lines = [], text.split("\n")
    i = 0
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and re.match(r"^\|[\s:|-]+\|$", lines[i + 1].strip()):
            header = [c.strip() for c in lines[i].strip().strip("|").split("|")]
            rows, i = [], i + 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            tables.append((header, rows))
        else:
            i += 1
    return tables


def terminology(root: Path = ROOT) -> tuple[list[Term], dict[str, str]]:
    """The terms table and the phrase table (English display strings, `{n}` standing for a number) of
    i18n/zh/terminology.md."""
    terms, phrases = [], {}
    for header, rows in markdown_tables((root / TERMINOLOGY).read_text(encoding="utf-8")):
        if header[:4] == ["English", "中文", "首次注英文", "避免使用"]:
            for row in rows:
                avoid = tuple(x.strip() for x in re.split(r"[、,，]", row[3]) if x.strip())
                elsewhere = row[header.index("其他常见译法")] if "其他常见译法" in header else ""
                terms.append(Term(row[0], row[1], row[2] == "是", avoid, elsewhere.strip()))
        elif header[:2] == ["English 短语", "中文"]:
            phrases.update({row[0]: row[1] for row in rows})
    return terms, phrases


def translate_phrase(text: str, phrases: dict[str, str]) -> str | None:
    """The phrase table's Chinese for a whole display string (its number put in for `{n}`), or None."""
    for english, chinese in phrases.items():
        m = re.fullmatch(re.escape(english).replace(r"\{n\}", r"(\d+)"), text)
        if m:
            return chinese.replace("{n}", m.group(1)) if m.groups() else chinese
    return None


def prose_only(text: str) -> str:
    """The words of a Markdown text that a terminology check reads: without code, math, link targets, HTML
    comments and seed quotations in 「」."""
    text = strip_fenced(text)
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.DOTALL)
    text = CODE_SPAN.sub(" ", text)
    text = DISPLAY_MATH.sub(" ", text)
    text = INLINE_MATH.sub(" ", text)
    text = LINK.sub("]", text).replace("*", "")  # emphasis markers: **风格迁移**（style transfer）
    return re.sub(r"「[^」]*」", "「」", text)


def terminology_problems(texts: list[str], terms: list[Term], check_first_use: bool) -> list[str]:
    """Where translated texts (one document, in reading order) break the terminology table: a variant to avoid
    (outside seed quotations 「」), or a term whose first use in running text lacks its English in brackets."""
    problems = []
    prose = [prose_only(t) for t in texts]
    for term in terms:
        for variant in term.avoid:
            for i, text in enumerate(prose):
                if variant in text:
                    context = text[max(0, text.index(variant) - 12): text.index(variant) + len(variant) + 12]
                    problems.append(f"unit {i + 1}: 「{variant}」 (use 「{term.chinese}」): …{context.strip()}…")
        if check_first_use and term.annotate:
            body = "\n".join(line for t in prose for line in t.split("\n") if not HEADING.match(line))
            at = body.find(term.chinese)
            if at >= 0:
                after = body[at + len(term.chinese):]
                m = re.match(r"[\u3400-\u9fff]{0,4}[（(]([^）)]*)[）)]", after)
                if not (m and term.english.lower() in m.group(1).lower()):
                    problems.append(f"first use of 「{term.chinese}」 needs its English in brackets: "
                                    f"…{body[max(0, at - 12): at + len(term.chinese) + 16].strip()}… "
                                    f"→ {term.chinese}（{term.english}）")
    return problems
