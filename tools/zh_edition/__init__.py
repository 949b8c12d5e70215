"""The Chinese edition of the book (zh/), generated from the English book and the translations in i18n/zh/.

One idea: the Chinese edition is a function of two inputs, the English sources and the translations of
their prose. Nothing in zh/ (nor README.zh.md) is edited by hand:

* A Chinese notebook is a copy of the English one whose Markdown cells are replaced by their translations.
  Code cells, their stored outputs and execution counts are the English ones, so nbval on the English
  notebooks covers the Chinese ones. (What changes in a code cell: its comments, once the chapter's comments
  are translated (comments.py), and display strings in its metadata, such as the label of the "show the
  solution" toggle, translated by the phrase table.)
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

The generator is this package; tools/i18n.py is its command line. One idea a module:
    paths.py         where the inputs and outputs are (i18n/zh/, zh/, README.zh.md, the glossary, copied folders)
    markdown.py      the Markdown syntax read: fenced blocks, headings, inline code, math, links
    units.py         translation units, the translations file format (markers, parse, digest), Report
    terminology.py   the terms and phrase tables of i18n/zh/terminology.md; phrase translation; terminology check
    comments.py      a code cell's comments as one unit (only comments change in a Chinese notebook's code)
    interface.py     display strings: the theme's interface strings, toggle hints, code prompts, cell metadata
    integrity.py     what a translation must keep (math, code, links, comment lines) and emphasis that renders
    book.py          the English book: config, toc, sources, their units and reports, Chinese links
    generator.py     the build: every file of zh/ and README.zh.md, compared with the disk or written there
    cli.py           the commands status, init, build and check
"""

from __future__ import annotations

from .book import Book
from .cli import main
from .comments import comment_text, with_comments, without_comments
from .generator import Generator, write
from .integrity import broken_emphasis, math_spans, protected
from .interface import CELL_STRINGS, CODE_PROMPTS, INTERFACE_STRINGS, TOGGLE_HINTS, cell_strings, set_cell_string
from .markdown import CODE_SPAN, DISPLAY_MATH, INLINE_MATH, LINK, strip_fenced
from .paths import BOOK, COMMENTS, GLOSSARY, I18N, OUT, README_OUT, ROOT, TERMINOLOGY
from .terminology import Term, terminology, terminology_problems, translate_phrase
from .units import Entry, Report, Unit, digest, marker, parse_translations

__all__ = [
    "BOOK", "CELL_STRINGS", "CODE_PROMPTS", "CODE_SPAN", "COMMENTS", "DISPLAY_MATH", "GLOSSARY", "I18N", "INLINE_MATH",
    "INTERFACE_STRINGS", "LINK", "OUT", "README_OUT", "ROOT", "TERMINOLOGY", "TOGGLE_HINTS", "Book", "Entry",
    "Generator", "Report", "Term", "Unit", "broken_emphasis", "cell_strings", "comment_text", "digest", "main",
    "marker", "math_spans", "parse_translations", "protected", "set_cell_string", "strip_fenced", "terminology",
    "terminology_problems", "translate_phrase", "with_comments", "without_comments", "write",
]
