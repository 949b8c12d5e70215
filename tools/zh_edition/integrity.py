"""Integrity checks of a translation: what it must keep of the English (math, inline code, link targets, the
number of comment lines), and what must hold of its Chinese (there is some; no line break between Chinese
characters; emphasis that renders)."""

from __future__ import annotations

import re
from typing import Protocol

from .markdown import CODE_SPAN, DISPLAY_MATH, INLINE_MATH, LINK, strip_fenced
from .units import Unit

CJK = re.compile(r"[\u3400-\u9fff]")
# A soft line break between two Chinese characters (or full-width punctuation) is rendered as a space.
CJK_BREAK = re.compile(r"[\u3400-\u9fff\u3000-\u303f\uff00-\uffef]\n[ \t]*[\u3400-\u9fff\u3000-\u303f\uff00-\uffef]")
TEXT_IN_MATH = re.compile(r"\\text\{(?:[^{}]|\{[^{}]*\})*\}")


class Localizer(Protocol):
    """How the Chinese edition rewrites links (the Book does): a Colab link opens the Chinese notebook."""

    def localize(self, text: str) -> str:
        """A Markdown text with its links rewritten."""

    def localize_url(self, url: str) -> str:
        """One link target rewritten."""


def math_spans(text: str) -> list[str]:
    """The formulas of a Markdown text, display then inline, as written (not in code or fenced blocks)."""
    rest = CODE_SPAN.sub(" ", strip_fenced(text))
    display = [m.group(0) for m in DISPLAY_MATH.finditer(rest)]
    return display + [m.group(0) for m in INLINE_MATH.finditer(DISPLAY_MATH.sub(" ", rest))]


def protected(text: str) -> dict[str, list[str]]:
    """The inline code, math and link targets of a Markdown text (fenced code blocks are not looked at).

    Words in a formula's \\text{...} are prose, which a translation says in Chinese: they are masked."""
    text = strip_fenced(text)
    code = [m.group(0) for m in CODE_SPAN.finditer(text)]
    math = [TEXT_IN_MATH.sub(r"\\text{}", m) for m in math_spans(text)]
    return {"inline code": code, "math": math, "link": [m.group(1) for m in LINK.finditer(text)]}


def broken_emphasis(text: str) -> list[str]:
    """The `**bold**` / `*italic*` spans of a Markdown text that a CommonMark renderer does not render as such.
    Next to full-width punctuation the markers often do not pair up (`**标题。**然后` is not bold), and then
    they are printed, or pair with other markers."""
    from markdown_it import MarkdownIt  # noqa: PLC0415 (comes with myst-parser)

    text = INLINE_MATH.sub("MATH", DISPLAY_MATH.sub("MATH", CODE_SPAN.sub("CODE", strip_fenced(text))))
    wanted = re.findall(r"(?<!\*)\*\*(?!\*)(.+?)(?<!\*)\*\*(?!\*)", text)
    wanted += re.findall(r"(?<![*\w])\*(?![*\s])([^*]+?)(?<![*\s])\*(?!\*)", re.sub(r"\*\*", "", text))
    rendered, open_spans = [], []
    for token in MarkdownIt("commonmark").enable("table").parse(text):
        for child in token.children or []:
            if child.type in ("strong_open", "em_open"):
                open_spans.append("")
            elif child.type in ("strong_close", "em_close"):
                rendered.append(open_spans.pop())
            elif open_spans:
                content = " " if child.type in ("softbreak", "hardbreak") else child.content
                open_spans[:] = [s + content for s in open_spans]
    rendered = [" ".join(r.split()) for r in rendered]
    return [w for w in wanted if " ".join(w.split()) not in rendered]


def translation_problems(unit: Unit, translation: str, links: Localizer) -> list[str]:
    """What a translation lost: math, inline code or links of the English, or any Chinese at all."""
    problems = []
    if unit.key.endswith(".comments") and len(translation.split("\n")) != len(unit.english.split("\n")):
        problems.append(f"the cell has {len(unit.english.split(chr(10)))} comment lines, the translation "
                        f"{len(translation.split(chr(10)))}: one line per comment, in order")
    if not translation.strip():
        problems.append("the translation is empty (use the flag `same` for a cell kept in English)")
    elif not CJK.search(translation):
        problems.append("the translation has no Chinese (use the flag `same` for a cell kept in English)")
    if unit.prose and CJK_BREAK.search(strip_fenced(translation)):
        at = CJK_BREAK.search(strip_fenced(translation)).start()
        problems.append(f"a line break between Chinese characters shows as a space on the page; join the lines "
                        f"(one paragraph per line): …{strip_fenced(translation)[max(0, at - 10):at + 3]}…")
    if unit.prose and broken_emphasis(translation):
        problems.append(f"emphasis that does not render: {broken_emphasis(translation)}; next to full-width "
                        f"punctuation put the punctuation outside the markers, e.g. **标题**。 not **标题。**")
    if unit.prose:
        english, chinese = protected(unit.english), protected(links.localize(translation))
        for kind in english:
            lost = [x for x in dict.fromkeys(english[kind]) if x not in chinese[kind]]
            lost = [x for x in lost if links.localize_url(x) not in chinese[kind]]
            if lost:
                problems.append(f"{kind} of the English missing from the translation: {', '.join(lost)}")
    return problems
