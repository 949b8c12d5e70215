"""The comments of a code cell, as a unit of translation for the Chinese edition.

A Chinese notebook's code is the English code: only its comments are translated, so that nbval on the English
notebooks covers the Chinese ones. A code cell's comments form one unit (key ``<cell id>.comments``): its English
text is the cell's comments, one per line, in order, each without its ``#`` and the space after it; the
translation has the same number of lines. Comments that are instructions to a tool stay as they are and are not
part of the unit: nbval's markers (``# NBVAL_...``, which nbval reads only when exact), ``# noqa``, ``# type:``
and ``# fmt:`` comments, shebang-like ``#!`` lines, and empty comments.

Comments are found with Python's tokenizer, so a ``#`` inside a string is not a comment; IPython lines
(``%pip ...``, ``!ls``) are masked before tokenizing.
"""

from __future__ import annotations

import io
import re
import tokenize

TOOL_COMMENT = re.compile(r"#\s*(NBVAL_\w+|noqa\b|type:|fmt:|!)|#+\s*$")
MAGIC = re.compile(r"^(\s*)([%!].*)$")


def _masked(source: str) -> str:
    """The source with IPython magic and shell lines turned into same-length Python (``pass`` padded)."""
    return "\n".join(MAGIC.sub(lambda m: m.group(1) + "pass" + " " * (len(m.group(2)) - 4)
                               if len(m.group(2)) >= 4 else m.group(1) + "0" * len(m.group(2)), line)
                     for line in source.split("\n"))


def comment_tokens(source: str) -> list[tuple[int, int, str]]:
    """(line index, column, text) of each comment in ``source`` that is prose, not a tool's instruction."""
    found = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(_masked(source)).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return []
    for tok in tokens:
        if tok.type == tokenize.COMMENT and not TOOL_COMMENT.match(tok.string):
            found.append((tok.start[0] - 1, tok.start[1], tok.string))
    return found


def comment_text(source: str) -> str:
    """The unit's English: each prose comment without its leading ``#`` and one space, one per line."""
    return "\n".join(re.sub(r"^#+ ?", "", text) for _, _, text in comment_tokens(source))


def with_comments(source: str, translation: str) -> str:
    """``source`` with its prose comments replaced, in order, by the lines of ``translation``.

    Raises ValueError when the translation has another number of lines than the cell has comments."""
    places = comment_tokens(source)
    lines = translation.split("\n") if translation else []
    if len(lines) != len(places):
        raise ValueError(f"the cell has {len(places)} comments, the translation {len(lines)} lines")
    out = source.split("\n")
    for (row, col, text), new in reversed(list(zip(places, lines))):
        hashes = re.match(r"^#+ ?", text).group(0)
        out[row] = out[row][:col] + hashes + new + out[row][col + len(text):]
    return "\n".join(out)


def without_comments(source: str) -> list[str]:
    """The cell's code tokens and its IPython lines, without comments or layout: identical in both editions."""
    magic = [line.strip() for line in source.split("\n") if MAGIC.match(line)]
    try:
        tokens = tokenize.generate_tokens(io.StringIO(_masked(source)).readline)
        return magic + [t.string for t in tokens if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE,
                                                                    tokenize.INDENT, tokenize.DEDENT,
                                                                    tokenize.ENDMARKER)]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return [source]
