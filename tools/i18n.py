"""The Chinese edition of the book (zh/), generated from the English book and the translations in i18n/zh/.

One idea: the Chinese edition is a function of two inputs, the English sources and the translations of
their prose. Nothing in zh/ (nor README.zh.md) is edited by hand:

* A Chinese notebook is a copy of the English one whose Markdown cells are replaced by their translations.
  Code cells, their stored outputs and execution counts are the English ones, so nbval on the English
  notebooks covers the Chinese ones. (The only thing changed in a code cell is the label of the
  "show the solution" toggle, a display string in the cell metadata, translated by the phrase table.)
* Each translation is keyed by its English unit: a Markdown cell's id, or a section (heading) of a
  Markdown page, with a hash of the English text it was translated from. When the English text changes,
  the hash no longer matches and the translation is *stale*: the build shows the English text instead,
  and `status` / the tests list it until someone updates it.
* Chapters not fully translated are in the Chinese edition all the same (so every cross-link and every
  language-switch link resolves): their untranslated or stale cells are shown in English, under a note.

Files (English source -> translations -> generated):
    chapters/NN_name.ipynb  ->  i18n/zh/chapters/NN_name.md  ->  zh/chapters/NN_name.ipynb
    intro.md (any .md page)  ->  i18n/zh/intro.md            ->  zh/intro.md
    README.md               ->  i18n/zh/README.md           ->  README.zh.md (the reader-facing sections)
    _config.yml, _toc.yml   ->  i18n/zh/book.md (title, author, part captions)  ->  zh/_config.yml, zh/_toc.yml
    i18n/zh/terminology.md  ->  the terms every translation follows (checked) and the zh glossary page
    _static/                ->  zh/_static/ (a copy: the badge image and any other static file the pages use)

A translations file is Markdown; each entry starts with a marker line, then the translation:
    <!-- i18n KEY HASH -->            translated from the English text whose hash is HASH
    <!-- i18n KEY HASH todo -->       not translated yet (the text below is the English, for reference)
    <!-- i18n KEY HASH same -->       deliberately the English text (e.g. a cell that is only a formula)
    <!-- i18n KEY HASH omit -->       (README only) a section left out of the Chinese README (hash not checked)

Commands (from the repository root):
    python tools/i18n.py status [SOURCE ...]   what is missing or stale; with SOURCE, the English text of each
    python tools/i18n.py init SOURCE ...       create/update the translations file: a `todo` entry per new unit
    python tools/i18n.py build                 regenerate zh/ and README.zh.md
    python tools/i18n.py check                 exit 1 if zh/ is out of date or a translation is missing,
                                               stale, or breaks math/code/links/terminology
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import difflib
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from i18n_comments import comment_text, with_comments

ROOT = Path(__file__).resolve().parents[1]
I18N = Path("i18n/zh")  # translations, relative to ROOT
OUT = Path("zh")  # the generated Chinese book, relative to ROOT
README_OUT = Path("README.zh.md")
TERMINOLOGY = I18N / "terminology.md"
GLOSSARY = Path("glossary")  # the glossary page of the Chinese book (zh/glossary.md), generated from TERMINOLOGY
BOOK = "book"  # the pseudo-source of title, author and part captions: translations in i18n/zh/book.md
# A chapter's code comments are a source of their own, "comments:chapters/NN_name.ipynb", translated in
# i18n/zh/comments/NN_name.md (one unit per code cell: see tools/i18n_comments.py). A chapter takes part once that
# file exists (`init comments:chapters/NN_name.ipynb` creates it); tests/test_zh_edition.py requires it for all.
COMMENTS = "comments:"

MARKER = re.compile(r"^<!-- i18n (?P<key>\S+) (?P<digest>[0-9a-f]{12})(?: (?P<flag>todo|same|omit))? -->[ \t]*$",
                    re.MULTILINE)
FENCE = re.compile(r"^(`{3,}|~{3,})")
HEADING = re.compile(r"^(#{1,6}) +(.*)$")
CJK = re.compile(r"[\u3400-\u9fff]")
# A soft line break between two Chinese characters (or full-width punctuation) is rendered as a space.
CJK_BREAK = re.compile(r"[\u3400-\u9fff\u3000-\u303f\uff00-\uffef]\n[ \t]*[\u3400-\u9fff\u3000-\u303f\uff00-\uffef]")
COLAB = "https://colab.research.google.com/github/"

# Shown at the top of a chapter whose translation is incomplete (its untranslated cells are in English).
INCOMPLETE_NOTE = (":::{note}\n本章的中文翻译尚未完成：还没有译文（或英文原文改动后译文尚未更新）的段落暂以英文显示；"
                   "代码和输出与英文版完全相同。\n:::")
GLOSSARY_TITLE = "术语对照表"
GLOSSARY_INTRO = ("本书中文版统一使用下表中的译名；主要术语在每一章第一次出现时，会在括号中注明英文。"
                  "PyTorch 的类名、参数名和函数名（如 `nn.BatchNorm2d`、`track_running_stats`）保留英文原样。")
APPENDIX_CAPTION = "附录"
# Folders copied into zh/ unchanged: static files (badge, CSS) and the source notes' text, which the
# appendix pages include (notes/text/noteN.txt, shown whole in the original Chinese).
COPIED = ("_static", "notes/text")
# The Chinese labels myst-nb puts on hidden code cells that have no label of their own.
CODE_PROMPTS = {"nb_code_prompt_show": "显示代码单元", "nb_code_prompt_hide": "隐藏代码单元"}


# The interface strings that the theme (pydata-sphinx-theme, sphinx-book-theme) and Sphinx leave in English, or in
# Traditional Chinese, in a zh_CN book: written into zh/_config.yml as `normbook_interface_strings`, which
# _ext/normbook_site.py applies to every page of the Chinese edition (whole attribute values and text nodes; code and
# formulas untouched) and adds to the search page's message catalog. tests/test_browser.py checks that no English
# interface string is left on a Chinese page.
INTERFACE_STRINGS = {
    "Color mode": "颜色模式", "Light": "浅色", "Dark": "深色", "System Settings": "跟随系统设置",
    "Search": "搜索", "Search this book...": "搜索本书……", "Hide Search Matches": "隐藏搜索匹配",
    "Launch interactive content": "启动交互式内容", "Launch on Colab": "在 Colab 中打开", "Colab logo": "Colab 标志",
    "Source repositories": "源代码仓库", "Source repository": "源代码仓库", "Repository": "仓库",
    "Open an issue": "提交问题", "Open issue": "提交问题",
    "Download this page": "下载本页", "Download source file": "下载源文件",
    "Print to PDF": "打印为 PDF", "列印成 PDF": "打印为 PDF", "Fullscreen mode": "全屏模式",
    "Toggle primary sidebar": "切换左侧目录栏", "Toggle secondary sidebar": "切换右侧本页目录栏",
    "Site navigation": "站点导航", "On this page": "本页内容", "Contents": "目录", "Main": "本书目录", "Page": "本页",
    "Back to top": "返回顶部", "Skip to main content": "跳到正文", "Version warning": "版本提示",
    "Previous": "上一页", "Next": "下一页", "previous page": "上一页", "next page": "下一页",
    "Link to this heading": "链接到此标题", "Link to this image": "链接到此图片", "Link to this equation": "链接到此公式",
    "Link to this table": "链接到此表格", "Link to this code": "链接到此代码", "Link to this definition": "链接到此定义",
    "Copy": "复制", "Copied!": "已复制！", "Failed to copy": "复制失败",
    "Click to show": "点击显示", "Click to hide": "点击隐藏",
}
# The toggle hints of sphinx-togglebutton (its own settings, not the theme's strings).
TOGGLE_HINTS = {"togglebutton_hint": "点击显示", "togglebutton_hint_hide": "点击隐藏"}


# A code cell's display strings, at these places in its metadata: toggle labels, a figure's caption and alt text.
CELL_STRINGS = {"prompt_show": ("mystnb", "code_prompt_show"), "prompt_hide": ("mystnb", "code_prompt_hide"),
                "caption": ("mystnb", "figure", "caption"), "alt": ("mystnb", "image", "alt")}


def cell_strings(cell: dict) -> list[tuple[str, str]]:
    """(field, text) for each display string in a code cell's metadata (see CELL_STRINGS)."""
    found = []
    for field, path in CELL_STRINGS.items():
        value = cell.get("metadata", {})
        for key in path:
            value = value.get(key, {}) if isinstance(value, dict) else None
        if isinstance(value, str):
            found.append((field, value))
    return found


def set_cell_string(cell: dict, field: str, text: str) -> None:
    """Put a display string back at its place in a code cell's metadata."""
    *parents, last = CELL_STRINGS[field]
    node = cell["metadata"]
    for key in parents:
        node = node[key]
    node[last] = text


def digest(text: str) -> str:
    """The hash that ties a translation to the English text it translates (12 hex digits of SHA-256)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def slug(text: str) -> str:
    """A key for a Markdown section: its heading in lower case, words joined by '-', at most 48 characters."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    return "-".join(words)[:48].strip("-") or "section"


# --------------------------------------------------------------------------------------------------------------
# Units and translations


@dataclasses.dataclass(frozen=True)
class Unit:
    """One piece of English text that is translated as a whole: a Markdown cell, a page section, a caption."""

    key: str
    english: str
    prose: bool = True  # Markdown prose: math, inline code and links must survive translation

    @property
    def digest(self) -> str:
        return digest(self.english)


@dataclasses.dataclass(frozen=True)
class Entry:
    """One entry of a translations file."""

    key: str
    digest: str
    flag: str | None  # None (translated), "todo", "same" or "omit"
    text: str
    line: int


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


def marker(unit: Unit, flag: str | None = None) -> str:
    return f"<!-- i18n {unit.key} {unit.digest}{' ' + flag if flag else ''} -->"


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
        return not (self.missing or self.stale)

    @property
    def clean(self) -> bool:
        return self.complete and not self.orphans and not self.problems

    def text(self, unit: Unit) -> str:
        """The text the Chinese edition shows for a unit: its current translation, else the English."""
        return self.translated.get(unit.key, unit.english)


# --------------------------------------------------------------------------------------------------------------
# Markdown helpers: the parts of a text that translation must leave intact


def strip_fenced(text: str) -> str:
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


CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.DOTALL)
INLINE_MATH = re.compile(r"(?<![\\$])\$(?!\$)(.+?)(?<![\\$])\$(?!\$)", re.DOTALL)
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


TEXT_IN_MATH = re.compile(r"\\text\{(?:[^{}]|\{[^{}]*\})*\}")


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


# --------------------------------------------------------------------------------------------------------------
# The book: English configuration and sources


class Book:
    """The English book as the generator reads it: config, toc, and the sources to translate."""

    def __init__(self, root: Path = ROOT):
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

        def walk(node):
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
        return [d for d in self.docnames() if self.source_file(d) is None]

    def repo_file(self, path: str) -> str:
        """A book file's path in the repository."""
        return f"{self.book_path}/{path}" if self.book_path else path

    # ---- units of each kind of source

    def units(self, source: str) -> list[Unit]:
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
        if source == BOOK:
            return I18N / "book.md"
        if source.startswith(COMMENTS):
            return I18N / "comments" / Path(source.removeprefix(COMMENTS)).with_suffix(".md").name
        return I18N / Path(source).with_suffix(".md")

    def report(self, source: str) -> Report:
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
            english, chinese = protected(unit.english), protected(self.localize(translation))
            for kind in english:
                lost = [x for x in dict.fromkeys(english[kind]) if x not in chinese[kind]]
                lost = [x for x in lost if self.localize_url(x) not in chinese[kind]]
                if lost:
                    problems.append(f"{kind} of the English missing from the translation: {', '.join(lost)}")
        return problems

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
        return LINK.sub(lambda m: m.group(0).replace(m.group(1), self.localize_url(m.group(1))), text)


def unique(key: str, seen: set[str]) -> str:
    candidate, n = key, 2
    while candidate in seen:
        candidate, n = f"{key}-{n}", n + 1
    seen.add(candidate)
    return candidate


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


# --------------------------------------------------------------------------------------------------------------
# Terminology


@dataclasses.dataclass(frozen=True)
class Term:
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
    for english, chinese in phrases.items():
        m = re.fullmatch(re.escape(english).replace(r"\{n\}", r"(\d+)"), text)
        if m:
            return chinese.replace("{n}", m.group(1)) if m.groups() else chinese
    return None


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


# --------------------------------------------------------------------------------------------------------------
# Generation


def notebook_json(nb: dict) -> str:
    """A notebook as nbformat writes it."""
    return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def source_lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


class Generator:
    """Everything the Chinese edition consists of, as {path relative to the root: bytes}."""

    def __init__(self, root: Path = ROOT):
        self.book = Book(root)
        self.root = root
        self.terms, self.phrases = terminology(root)
        self.reports = {s: self.book.report(s) for s in self.book.sources()}

    def files(self) -> dict[str, bytes]:
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
        return "\n\n".join(self.book.localize(report.text(u)) for u in report.units) + "\n"

    def readme(self, report: Report) -> str:
        head = ("<!-- 本文件由 tools/i18n.py 根据 README.md 与 i18n/zh/README.md 生成，请勿直接修改。 -->\n"
                "[English](README.md) | 中文\n\n")
        parts = [report.text(u) for u in report.units if u.key not in report.omitted]
        return head + "\n\n".join(parts) + "\n"

    def config(self, report: Report) -> str:
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
        toc = copy.deepcopy(self.book.toc)
        captions = {u.english: report.text(u) for u in report.units if u.key.startswith("toc:")}
        missing = set(self.book.missing_docs())

        def drop_missing(node):
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


# --------------------------------------------------------------------------------------------------------------
# The command line


def old_english(root: Path, source: str, unit: Unit, entry: Entry) -> str | None:
    """The English text a stale translation was made from, found in git history by its hash (best effort)."""
    if source == BOOK:
        return None
    try:
        commits = subprocess.run(["git", "log", "--format=%H", "-n", "40", "--", source], cwd=root,
                                 capture_output=True, text=True, check=True).stdout.split()
        for commit in commits:
            text = subprocess.run(["git", "show", f"{commit}:{source}"], cwd=root, capture_output=True, text=True,
                                  check=True).stdout
            if source.endswith(".ipynb"):
                candidates = [("".join(c["source"])) for c in json.loads(text)["cells"] if c.get("id") == unit.key]
            else:
                candidates = [t for k, t in markdown_sections(text) if k == unit.key]
            for candidate in candidates:
                if digest(candidate) == entry.digest:
                    return candidate
    except (subprocess.CalledProcessError, FileNotFoundError, json.JSONDecodeError, KeyError):
        return None
    return None


def show_status(gen: Generator, sources: list[str], full: bool) -> int:
    book, root = gen.book, gen.root
    bad = 0
    for source, report in gen.reports.items():
        if sources and source not in sources:
            continue
        tfile = book.translations_path(source)
        extra = gen.term_problems(source)
        n, done = len(report.units), len(report.units) - len(report.missing) - len(report.stale)
        state = "complete" if report.clean and not extra else "INCOMPLETE"
        exists = "" if (root / tfile).is_file() else " (no file yet: python tools/i18n.py init " + source + ")"
        print(f"{source} -> {tfile}{exists}: {done}/{n} translated, {state}")
        bad += state != "complete"
        for unit in report.missing:
            first = unit.english.strip().split("\n")[0][:90]
            print(f"  missing  {unit.key}: {first}")
            if full:
                print(f"\n{marker(unit)}\n{unit.english}\n")
        for unit, entry in report.stale:
            first = unit.english.strip().split("\n")[0][:90]
            print(f"  stale    {unit.key} (line {entry.line} of {tfile}): {first}")
            if full:
                before = old_english(root, source, unit, entry)
                print(f"  the English changed; after updating the translation, change its marker to:\n\n"
                      f"{marker(unit)}\n")
                if before is not None:
                    diff = difflib.unified_diff(before.split("\n"), unit.english.split("\n"), "English before",
                                                "English now", lineterm="")
                    print("\n".join(diff) + "\n")
                else:
                    print(f"English now:\n{unit.english}\n")
                print(f"translation now:\n{entry.text}\n")
        for entry in report.orphans:
            hint = [u.key for u in report.missing if u.digest == entry.digest]
            moved = f" (the same English is now cell {hint[0]}: change the key)" if hint else ""
            print(f"  orphan   {entry.key} (line {entry.line}): no such unit in {source} any more{moved}")
        for problem in report.problems + extra:
            print(f"  problem  {problem}")
    missing_docs = gen.book.missing_docs()
    if missing_docs and not sources:
        print(f"_toc.yml lists documents that do not exist (left out of zh/_toc.yml): {', '.join(missing_docs)}")
    return bad


def init(gen: Generator, sources: list[str]) -> None:
    """Create or update translations files: entries in the English order, a `todo` entry (with the English text)
    for each unit without one; existing entries are kept as they are, orphans at the end."""
    for source in sources:
        if source not in gen.reports and source.startswith(COMMENTS) and source.removeprefix(COMMENTS) in gen.reports:
            gen.reports[source] = gen.book.report(source)  # a chapter's comments, translated from now on
        if source not in gen.reports:
            raise SystemExit(f"{source} is not a source of the book; the sources are: {', '.join(gen.reports)}")
        path = gen.root / gen.book.translations_path(source)
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        entries, _ = parse_translations(text)
        by_key = {e.key: e for e in entries}
        head = text[:MARKER.search(text).start()] if MARKER.search(text) else (
            f"<!--\n  Chinese translation of {source} (see tools/i18n.py and {TERMINOLOGY}).\n"
            f"  Replace each `todo` entry's English with its translation and delete the word `todo`.\n-->\n\n")
        blocks = []
        for unit in gen.reports[source].units:
            e = by_key.pop(unit.key, None)
            if e is None:
                blocks.append(f"{marker(unit, 'todo')}\n{unit.english}")
            else:
                blocks.append(f"<!-- i18n {e.key} {e.digest}{' ' + e.flag if e.flag else ''} -->\n{e.text}")
        for e in by_key.values():
            blocks.append(f"<!-- i18n {e.key} {e.digest}{' ' + e.flag if e.flag else ''} -->\n{e.text}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(head.rstrip("\n") + "\n\n" + "\n\n".join(blocks) + "\n", encoding="utf-8")
        print(f"wrote {path.relative_to(gen.root)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("status", help="what is missing or stale, per source")
    p.add_argument("sources", nargs="*", help="e.g. chapters/05_running_stats.ipynb; shows the English text")
    p.add_argument("--full", action="store_true", help="show the English text for every source")
    p = sub.add_parser("init", help="create/update translations files with a todo entry per untranslated unit")
    p.add_argument("sources", nargs="+")
    sub.add_parser("build", help="regenerate zh/ and README.zh.md")
    sub.add_parser("check", help="fail if zh/ is out of date or any translation is missing, stale or broken")
    args = parser.parse_args(argv)

    gen = Generator()
    if args.command == "status":
        sources = [Path(s).as_posix() for s in args.sources]
        show_status(gen, sources, full=args.full or bool(sources))
        return 0
    if args.command == "init":
        init(gen, [Path(s).as_posix() for s in args.sources])
        return 0
    if args.command == "build":
        changed = write(gen.files())
        print("\n".join(f"updated {c}" for c in changed) or "zh/ and README.zh.md were up to date")
        incomplete = [s for s, r in gen.reports.items() if not r.complete]
        if incomplete:
            print(f"not fully translated (shown partly in English): {', '.join(incomplete)}; "
                  f"see python tools/i18n.py status")
        return 0
    stale = gen.out_of_date()
    for line in stale:
        print(f"out of date: {line} (run python tools/i18n.py build)")
    bad = show_status(gen, [], full=False)
    return 1 if stale or bad else 0


if __name__ == "__main__":
    sys.exit(main())
