"""Where the Chinese edition's inputs and outputs are: paths relative to the repository root, and the names of
the two sources that are not files of the English book."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository root (tools/zh_edition/ is two levels down)
I18N = Path("i18n/zh")  # translations, relative to ROOT
OUT = Path("zh")  # the generated Chinese book, relative to ROOT
README_OUT = Path("README.zh.md")
TERMINOLOGY = I18N / "terminology.md"
GLOSSARY = Path("glossary")  # the glossary page of the Chinese book (zh/glossary.md), generated from TERMINOLOGY
BOOK = "book"  # the pseudo-source of title, author and part captions: translations in i18n/zh/book.md
# A chapter's code comments are a source of their own, "comments:chapters/NN_name.ipynb", translated in
# i18n/zh/comments/NN_name.md (one unit per code cell: see comments.py). A chapter takes part once that file exists
# (`init comments:chapters/NN_name.ipynb` creates it); tests/test_zh_edition.py requires it for all.
COMMENTS = "comments:"
# Folders copied into zh/ unchanged: static files (badge, CSS) and the source notes' text, which the
# appendix pages include (notes/text/noteN.txt, shown whole in the original Chinese).
COPIED = ("_static", "notes/text")
