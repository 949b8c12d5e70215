"""The English book as the generator reads it: config, table of contents, the sources to translate, the units
of each source, what their translations files hold (Report), and how links change in the Chinese edition."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from .comments import comment_text
from .integrity import translation_problems
from .interface import cell_strings
from .markdown import LINK
from .paths import BOOK, COMMENTS, I18N, OUT, ROOT
from .terminology import terminology, translate_phrase
from .units import Report, Unit, markdown_sections, parse_translations, slug, unique

COLAB = "https://colab.research.google.com/github/"


class Book:
    """The English book as the generator reads it: config, toc, and the sources to translate."""

    def __init__(self, root: Path = ROOT) -> None:
        self.root = root
        self.config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
        self.toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
        repo = self.config["repository"]
        self.repo_url = repo["url"].rstrip("/")
        self.repo_path = self.repo_url.removeprefix("https://github.com/")
        self.branch = repo.get("branch") or "main"
        self.book_path = (repo.get("path_to_book") or "").strip("/")  # the book's folder in the repository
        self.phrases = terminology(root)[1]  # display strings translated by the phrase table, not per cell

    def docnames(self) -> list[str]:
        """Every document of the English toc, in reading order (root first)."""
        names = [self.toc["root"]]

        def walk(node: object) -> None:
            if isinstance(node, dict):
                if "file" in node:
                    names.append(node["file"])
                for value in node.values():
                    if isinstance(value, (list, dict)):
                        walk(value)
            elif isinstance(node, list):
                for item in node:
                    walk(item)

        walk({k: v for k, v in self.toc.items() if k != "root"})
        return [re.sub(r"\.(ipynb|md)$", "", n) for n in names]

    def source_file(self, docname: str) -> Path | None:
        """The file of a toc document (.ipynb before .md), relative to the root; None if there is none."""
        for suffix in (".ipynb", ".md"):
            if (self.root / (docname + suffix)).is_file():
                return Path(docname + suffix)
        return None

    def sources(self) -> list[str]:
        """Every translatable source, as a path relative to the root: the toc's documents that exist, the
        README, and the book's own strings (title, captions)."""
        found = [str(p) for p in (self.source_file(d) for d in self.docnames()) if p is not None]
        comments = [COMMENTS + s for s in found if s.endswith(".ipynb")
                    and (self.root / self.translations_path(COMMENTS + s)).is_file()]
        return found + ["README.md", BOOK] + comments

    def missing_docs(self) -> list[str]:
        """The toc's documents that have no file."""
        return [d for d in self.docnames() if self.source_file(d) is None]

    def repo_file(self, path: str) -> str:
        """A book file's path in the repository."""
        return f"{self.book_path}/{path}" if self.book_path else path

    # ---- units of each kind of source

    def units(self, source: str) -> list[Unit]:
        """The units of a source, in reading order: the book's strings, a chapter's code comments (one unit a
        code cell), a notebook's Markdown cells and untranslated display strings, or a page's sections."""
        path = self.root / source
        if source == BOOK:
            units = [Unit("title", self.config["title"], prose=False)]
            if self.config.get("author"):
                units.append(Unit("author", self.config["author"], prose=False))
            seen: set[str] = set()
            for part in self.toc.get("parts", []):
                if "caption" in part:
                    key = unique(f"toc:{slug(part['caption'])}", seen)
                    units.append(Unit(key, part["caption"], prose=False))
            return units
        if source.startswith(COMMENTS):
            cells = json.loads((self.root / source.removeprefix(COMMENTS)).read_text(encoding="utf-8"))["cells"]
            return [Unit(f"{cell['id']}.comments", text, prose=False) for cell in cells
                    if cell["cell_type"] == "code" and (text := comment_text("".join(cell["source"])))]
        if source.endswith(".ipynb"):
            units = []
            for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
                if cell["cell_type"] == "markdown":
                    units.append(Unit(cell["id"], "".join(cell["source"])))
                for field, text in cell_strings(cell):
                    if translate_phrase(text, self.phrases) is None:
                        units.append(Unit(f"{cell['id']}.{field}", text, prose=field == "caption"))
            return units
        return [Unit(key, text) for key, text in markdown_sections(path.read_text(encoding="utf-8"))]

    def translations_path(self, source: str) -> Path:
        """The translations file of a source, relative to the root."""
        if source == BOOK:
            return I18N / "book.md"
        if source.startswith(COMMENTS):
            return I18N / "comments" / Path(source.removeprefix(COMMENTS)).with_suffix(".md").name
        return I18N / Path(source).with_suffix(".md")

    def report(self, source: str) -> Report:
        """What the translations file of a source holds for each of its units, with the problems found."""
        units = self.units(source)
        file = self.root / self.translations_path(source)
        entries, problems = parse_translations(file.read_text(encoding="utf-8")) if file.is_file() else ([], [])
        by_key = {e.key: e for e in entries}
        report = Report(source, units, {}, set(), [], [], [], list(problems))
        keys = {u.key for u in units}
        for unit in units:
            entry = by_key.get(unit.key)
            if entry is None or entry.flag == "todo":
                report.missing.append(unit)
            elif entry.flag == "omit":  # left out whatever the English says: its hash is not checked
                if source != "README.md":
                    report.problems.append(f"{unit.key}: `omit` is only for README sections")
                report.omitted.add(unit.key)
            elif entry.digest != unit.digest:
                report.stale.append((unit, entry))
            elif entry.flag == "same":
                report.translated[unit.key] = unit.english
            else:
                report.translated[unit.key] = entry.text
                report.problems += [f"{unit.key}: {p}" for p in self.integrity(unit, entry.text)]
        report.orphans = [e for e in entries if e.key not in keys]
        return report

    def integrity(self, unit: Unit, translation: str) -> list[str]:
        """What a translation lost: math, inline code or links of the English, or any Chinese at all."""
        return translation_problems(unit, translation, self)

    # ---- links in the Chinese edition

    def localize_url(self, url: str) -> str:
        """A Colab link to an English notebook, made to open the Chinese one."""
        prefix = f"{COLAB}{self.repo_path}/blob/{self.branch}/"
        if url.startswith(prefix):
            path = url[len(prefix):]
            book = f"{self.book_path}/" if self.book_path else ""
            if path.startswith(book) and not path[len(book):].startswith(f"{OUT}/"):
                return f"{prefix}{book}{OUT}/{path[len(book):]}"
        return url

    def localize(self, text: str) -> str:
        """A Markdown text with every link target localized (see localize_url)."""
        return LINK.sub(lambda m: m.group(0).replace(m.group(1), self.localize_url(m.group(1))), text)
