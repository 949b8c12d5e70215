"""The Markdown syntax the generator reads: fenced blocks, headings, inline code, math and links.

These patterns find the parts of a text that translation must leave intact (integrity.py), that the terminology
check skips (terminology.py), and where a page is cut into sections (units.py)."""

from __future__ import annotations

import re

FENCE = re.compile(r"^(`{3,}|~{3,})")
HEADING = re.compile(r"^(#{1,6}) +(.*)$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.DOTALL)
INLINE_MATH = re.compile(r"(?<![\\$])\$(?!\$)(.+?)(?<![\\$])\$(?!\$)", re.DOTALL)
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def strip_fenced(text: str) -> str:
    """A Markdown text without its fenced code blocks (fences included)."""
    out, fence = [], None
    for line in text.split("\n"):
        if fence:
            if line.startswith(fence):
                fence = None
            continue
        m = FENCE.match(line)
        if m:
            fence = m.group(1)
            continue
        out.append(line)
    return "\n".join(out)
