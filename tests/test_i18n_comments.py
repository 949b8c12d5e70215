"""tools/zh_edition/comments.py: a code cell's comments as one translation unit; the code stays token for token."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from zh_edition.comments import comment_text, comment_tokens, with_comments, without_comments  # noqa: E402

CELL = """# Setup: a comment line
x = "# not a comment"  # a trailing comment
%pip install --quiet normbook  # stays: an IPython line
# NBVAL_IGNORE_OUTPUT
# Why: timings differ
#
def f():
    # indented
    return 1
"""


def test_prose_comments_in_order_without_tool_comments():
    assert comment_text(CELL).split("\n") == ["Setup: a comment line", "a trailing comment", "Why: timings differ",
                                              "indented"]
    assert [row for row, _, _ in comment_tokens(CELL)] == [0, 1, 4, 7]


def test_translated_comments_replace_the_english_and_keep_the_code():
    zh = with_comments(CELL, "设置：一行注释\n行尾注释\nWhy：计时各不相同\n缩进的注释")
    assert zh.splitlines()[0] == "# 设置：一行注释"
    assert zh.splitlines()[1] == 'x = "# not a comment"  # 行尾注释'
    assert "# NBVAL_IGNORE_OUTPUT" in zh.splitlines() and "    # 缩进的注释" in zh.splitlines()
    assert without_comments(zh) == without_comments(CELL)


def test_a_translation_with_another_number_of_lines_is_refused():
    with pytest.raises(ValueError, match="4 comments, the translation 3 lines"):
        with_comments(CELL, "一\n二\n三")


def test_changed_code_or_magic_lines_are_seen():
    assert without_comments(CELL.replace('x = "', 'y = "')) != without_comments(CELL)
    assert without_comments(CELL.replace("--quiet", "-q")) != without_comments(CELL)
