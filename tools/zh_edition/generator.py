"""The build: everything the Chinese edition consists of (zh/ and README.zh.md), as {path: bytes}, made from
the Book and its translations; checked against the files on disk, or written there."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import yaml

from .book import Book
from .comments import with_comments
from .interface import (APPENDIX_CAPTION, CODE_PROMPTS, GLOSSARY_INTRO, GLOSSARY_TITLE, INCOMPLETE_NOTE,
                        INTERFACE_STRINGS, TOGGLE_HINTS, cell_strings, set_cell_string)
from .paths import BOOK, COMMENTS, COPIED, GLOSSARY, OUT, README_OUT, ROOT
from .terminology import terminology, terminology_problems, translate_phrase
from .units import Report, Unit


def notebook_json(nb: dict) -> str:
    """A notebook as nbformat writes it."""
    return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def source_lines(text: str) -> list[str]:
    """A cell's source as a notebook stores it: lines, each with its line end."""
    return text.splitlines(keepends=True)


class Generator:
    """Everything the Chinese edition consists of, as {path relative to the root: bytes}."""

    def __init__(self, root: Path = ROOT) -> None:
        self.book = Book(root)
        self.root = root
        self.terms, self.phrases = terminology(root)
        self.reports = {s: self.book.report(s) for s in self.book.sources()}

    def files(self) -> dict[str, bytes]:
        """Every generated file: {path relative to the root: its bytes}."""
        files: dict[str, bytes] = {}
        for source, report in self.reports.items():
            if source == BOOK:
                files[f"{OUT}/_config.yml"] = self.config(report).encode()
                files[f"{OUT}/_toc.yml"] = self.toc(report).encode()
            elif source == "README.md":
                files[str(README_OUT)] = self.readme(report).encode()
            elif source.startswith(COMMENTS):
                continue  # applied to the chapter's notebook (Generator.notebook)
            elif source.endswith(".ipynb"):
                files[f"{OUT}/{source}"] = self.notebook(source, report).encode()
            else:
                files[f"{OUT}/{source}"] = self.markdown(report).encode()
        files[f"{OUT}/{GLOSSARY}.md"] = self.glossary().encode()
        for folder in COPIED:  # files the pages use as they are: the same bytes in both editions
            if (self.root / folder).is_dir():
                for f in sorted((self.root / folder).rglob("*")):
                    if f.is_file():
                        files[f"{OUT}/{f.relative_to(self.root)}"] = f.read_bytes()
        return files

    def notebook(self, source: str, report: Report) -> str:
        """The Chinese notebook: translated Markdown cells, display strings and code comments; the English
        code and outputs."""
        nb = json.loads((self.root / source).read_text(encoding="utf-8"))
        nb = copy.deepcopy(nb)
        for cell in nb["cells"]:
            if cell["cell_type"] == "markdown":
                unit = Unit(cell["id"], "".join(cell["source"]))
                cell["source"] = source_lines(self.book.localize(report.text(unit)))
            for field, text in cell_strings(cell):
                translated = translate_phrase(text, self.phrases)
                if translated is None:
                    translated = report.text(Unit(f"{cell['id']}.{field}", text, prose=field == "caption"))
                set_cell_string(cell, field, translated)
        comments = self.reports.get(COMMENTS + source)
        for cell in nb["cells"] if comments else []:
            key = f"{cell['id']}.comments"
            if cell["cell_type"] == "code" and key in comments.translated:
                try:
                    cell["source"] = source_lines(with_comments("".join(cell["source"]), comments.translated[key]))
                except ValueError:  # a line count that does not match: reported by integrity(), English kept
                    pass
        if not report.complete:
            first = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
            first["source"] = source_lines("".join(first["source"]).rstrip("\n") + "\n\n" + INCOMPLETE_NOTE)
        return notebook_json(nb)

    def markdown(self, report: Report) -> str:
        """A Chinese Markdown page: its sections' texts, links localized."""
        return "\n\n".join(self.book.localize(report.text(u)) for u in report.units) + "\n"

    def readme(self, report: Report) -> str:
        """README.zh.md: the README's sections that are not omitted, under a header."""
        head = ("<!-- 本文件由 tools/i18n.py 根据 README.md 与 i18n/zh/README.md 生成，请勿直接修改。 -->\n"
                "[English](README.md) | 中文\n\n")
        parts = [report.text(u) for u in report.units if u.key not in report.omitted]
        return head + "\n\n".join(parts) + "\n"

    def config(self, report: Report) -> str:
        """zh/_config.yml: the English config with the translated title and author, the Chinese book's
        paths, language and interface strings."""
        config = copy.deepcopy(self.book.config)
        strings = {u.key: report.text(u) for u in report.units}
        config["title"] = strings["title"]
        if "author" in strings:
            config["author"] = strings["author"]
        config["repository"]["path_to_book"] = self.book.repo_file(str(OUT))
        sphinx = config.setdefault("sphinx", {})
        extensions = {name: Path("..", path).as_posix() + "/"
                      for name, path in (sphinx.get("local_extensions") or {}).items()}
        extensions.setdefault("language_switch", "../_ext/")
        sphinx["local_extensions"] = extensions
        settings = sphinx.setdefault("config", {})
        settings["language"] = "zh_CN"
        settings.update(CODE_PROMPTS)
        settings.update(TOGGLE_HINTS)
        interface = dict(INTERFACE_STRINGS)
        if config.get("copyright"):  # the theme's footer line
            interface[f"© Copyright {config['copyright']}."] = f"© 版权所有 {config['copyright']}。"
        if config.get("author"):
            interface[f"By {config['author']}"] = config["author"]
        settings["normbook_interface_strings"] = interface
        header = ("# The Chinese edition's Jupyter Book config, generated by `python tools/i18n.py build` from\n"
                  "# ../_config.yml (the repository address is written only there) and ../i18n/zh/book.md.\n"
                  "# Do not edit: change those and regenerate.\n")
        return header + yaml.safe_dump(config, allow_unicode=True, sort_keys=False, width=120)

    def toc(self, report: Report) -> str:
        """zh/_toc.yml: the English toc without missing documents, translated captions, and the appendix."""
        toc = copy.deepcopy(self.book.toc)
        captions = {u.english: report.text(u) for u in report.units if u.key.startswith("toc:")}
        missing = set(self.book.missing_docs())

        def drop_missing(node: object) -> None:
            if isinstance(node, dict):
                for key, value in list(node.items()):
                    if isinstance(value, list):
                        node[key] = [x for x in value if not (isinstance(x, dict) and x.get("file") in missing)]
                        drop_missing(node[key])
            elif isinstance(node, list):
                for item in node:
                    drop_missing(item)

        drop_missing(toc)
        for part in toc.get("parts", []):
            if "caption" in part:
                part["caption"] = captions.get(part["caption"], part["caption"])
        toc.setdefault("parts", []).append({"caption": APPENDIX_CAPTION, "chapters": [{"file": str(GLOSSARY)}]})
        header = ("# The Chinese edition's table of contents, generated by `python tools/i18n.py build` from\n"
                  "# ../_toc.yml and ../i18n/zh/book.md. Do not edit.\n")
        return header + yaml.safe_dump(toc, allow_unicode=True, sort_keys=False, width=120)

    def glossary(self) -> str:
        """zh/glossary.md: the terms table as the Chinese book shows it."""
        rows = "\n".join(f"| {t.chinese} | {t.english} | {t.elsewhere} |" for t in self.terms)
        return (f"<!-- Generated by tools/i18n.py from i18n/zh/terminology.md. Do not edit. -->\n"
                f"# {GLOSSARY_TITLE}\n\n{GLOSSARY_INTRO}\n\n| 中文 | English | 其他书中常见的译法 |\n|---|---|---|\n{rows}\n")

    # ---- checks

    def out_of_date(self) -> list[str]:
        """Generated files that differ from what is on disk (or are missing there, or should not be there)."""
        expected = self.files()
        problems = [f"{p}: {'differs' if (self.root / p).exists() else 'missing'}"
                    for p, data in expected.items()
                    if not (self.root / p).is_file() or (self.root / p).read_bytes() != data]
        out = self.root / OUT
        if out.is_dir():
            for f in sorted(out.rglob("*")):
                rel = f.relative_to(self.root).as_posix()
                if f.is_file() and rel not in expected and "_build" not in f.parts and "__pycache__" not in f.parts \
                        and ".ipynb_checkpoints" not in f.parts:
                    problems.append(f"{rel}: not generated (an English source removed?)")
        return problems

    def term_problems(self, source: str) -> list[str]:
        """Where the current translations of a source break the terminology table."""
        report = self.reports[source]
        texts = [report.translated[u.key] for u in report.units
                 if u.key in report.translated and report.translated[u.key] != u.english]
        # Code comments are no running text: a term is not glossed with its English there.
        first_use = report.complete and source != BOOK and not source.startswith(COMMENTS)
        return terminology_problems(texts, self.terms, check_first_use=first_use)


def write(files: dict[str, bytes], root: Path = ROOT) -> list[str]:
    """Write the generated files; remove generated files no longer produced. Returns what changed."""
    changed = []
    for rel, data in files.items():
        path = root / rel
        if not path.is_file() or path.read_bytes() != data:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            changed.append(rel)
    out = root / OUT
    for f in sorted(out.rglob("*")):
        rel = f.relative_to(root).as_posix()
        if f.is_file() and rel not in files and "_build" not in f.parts:
            f.unlink()
            changed.append(f"{rel} (removed)")
    return changed
