"""Translation units and the translations file format.

A unit is a piece of English text translated as a whole (a Markdown cell, a page section, a caption, a code
cell's comments), keyed and tied by a hash to the English it was translated from. A translations file holds one
entry per unit, each under a marker line ``<!-- i18n KEY HASH [todo|same|omit] -->``. A Report says what a
source's translations file holds for each of its units."""

from __future__ import annotations

import dataclasses
import hashlib
import re

from .markdown import FENCE, HEADING

MARKER = re.compile(r"^<!-- i18n (?P<key>\S+) (?P<digest>[0-9a-f]{12})(?: (?P<flag>todo|same|omit))? -->[ \t]*$",
                    re.MULTILINE)


def digest(text: str) -> str:
    """The hash that ties a translation to the English text it translates (12 hex digits of SHA-256)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def slug(text: str) -> str:
    """A key for a Markdown section: its heading in lower case, words joined by '-', at most 48 characters."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    return "-".join(words)[:48].strip("-") or "section"


def unique(key: str, seen: set[str]) -> str:
    """``key``, or ``key-2``, ``key-3``, ... if already in ``seen``; the key returned is added to ``seen``."""
    candidate, n = key, 2
    while candidate in seen:
        candidate, n = f"{key}-{n}", n + 1
    seen.add(candidate)
    return candidate


@dataclasses.dataclass(frozen=True)
class Unit:
    """One piece of English text that is translated as a whole: a Markdown cell, a page section, a caption."""

    key: str
    english: str
    prose: bool = True  # Markdown prose: math, inline code and links must survive translation

    @property
    def digest(self) -> str:
        """The hash of the English text (see digest())."""
        return digest(self.english)


@dataclasses.dataclass(frozen=True)
class Entry:
    """One entry of a translations file."""

    key: str
    digest: str
    flag: str | None  # None (translated), "todo", "same" or "omit"
    text: str
    line: int


def marker_line(key: str, hash_: str, flag: str | None = None) -> str:
    """The marker line that starts an entry of a translations file."""
    return f"<!-- i18n {key} {hash_}{' ' + flag if flag else ''} -->"


def marker(unit: Unit, flag: str | None = None) -> str:
    """The marker line of an entry translating ``unit`` as its English is now."""
    return marker_line(unit.key, unit.digest, flag)


def parse_translations(text: str) -> tuple[list[Entry], list[str]]:
    """The entries of a translations file, and its problems (duplicate keys). Text before the first marker is a
    free comment."""
    entries, problems, seen = [], [], set()
    matches = list(MARKER.finditer(text))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = text[m.end():end]
        body = re.sub(r"\A[ \t]*\n", "", body).rstrip()  # the marker's own line end; blank lines at the end
        body = re.sub(r"\A(\s*\n)+", "", body)
        line = text.count("\n", 0, m.start()) + 1
        if m["key"] in seen:
            problems.append(f"line {line}: a second entry for {m['key']}")
        seen.add(m["key"])
        entries.append(Entry(m["key"], m["digest"], m["flag"], body, line))
    return entries, problems


def markdown_sections(text: str) -> list[tuple[str, str]]:
    """A Markdown page cut into sections, one per heading (code fences respected): (key, text) pairs."""
    sections: list[list[str]] = [[]]
    fence = None
    for line in text.rstrip("\n").split("\n"):
        if fence:
            fence = None if line.startswith(fence) else fence
        elif FENCE.match(line):
            fence = FENCE.match(line).group(1)
        elif HEADING.match(line) and any(x.strip() for x in sections[-1]):
            sections.append([])
        sections[-1].append(line)
    seen: set[str] = set()
    result = []
    for lines in sections:
        body = "\n".join(lines).strip("\n")
        if not body:
            continue
        heading = HEADING.match(lines[0])
        result.append((unique("#" + (slug(heading.group(2)) if heading else "top"), seen), body))
    return result


@dataclasses.dataclass
class Report:
    """What a source's translations file holds for each of its units."""

    source: str
    units: list[Unit]
    translated: dict[str, str]  # key -> text to use (translation, or the English for `same`), current only
    omitted: set[str]
    missing: list[Unit]  # no entry, or a `todo` entry
    stale: list[tuple[Unit, Entry]]  # translated from an English text that has changed since
    orphans: list[Entry]  # entries whose key is no longer in the English source
    problems: list[str]  # format and integrity problems (math, code, links, duplicates)

    @property
    def complete(self) -> bool:
        """Every unit has a current translation (or is deliberately kept in English, or omitted)."""
        return not (self.missing or self.stale)

    @property
    def clean(self) -> bool:
        """Complete, and without orphan entries or problems."""
        return self.complete and not self.orphans and not self.problems

    def text(self, unit: Unit) -> str:
        """The text the Chinese edition shows for a unit: its current translation, else the English."""
        return self.translated.get(unit.key, unit.english)
