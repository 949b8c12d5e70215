"""nbval markers do what they look like: every NBVAL comment or tag in a chapter is one nbval recognizes,
and every cell whose output nbval ignores or skips says why, in the cell.

nbval recognizes a comment only when the whole comment is the marker (``# NBVAL_IGNORE_OUTPUT``);
``# NBVAL_IGNORE_OUTPUT: reason`` is silently a plain comment, and the cell's output is then compared.
The check below asks nbval's own parser, so it follows whatever nbval recognizes.
"""

import json
import re
from pathlib import Path

import pytest
from nbval.plugin import find_comment_markers, find_metadata_tags, metadata_tags

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))
LOOKS_LIKE_A_MARKER = re.compile(r"#.*\b(NBVAL_|PYTEST_VALIDATE)", re.IGNORECASE)
WHY = re.compile(r"^\s*# Why: \S")
EXEMPT = {"check": False, "skip": True}  # the options under which nbval does not compare a cell's output


def marker_problems(source: str, tags: list[str]) -> list[str]:
    """What is wrong with one cell's nbval markers: unrecognized comments or tags, or an exemption without a why."""
    problems = []
    for line in source.splitlines():
        if LOOKS_LIKE_A_MARKER.search(line) and not dict(find_comment_markers(line)):
            problems.append(f"nbval does not recognize the comment {line.strip()!r} (the marker must be alone on its line)")
    for tag in tags:
        if tag.lower().startswith(("nbval", "raises")) and tag not in metadata_tags:
            problems.append(f"nbval does not recognize the tag {tag!r} (it knows {sorted(metadata_tags)})")
    options = {**dict(find_metadata_tags({"tags": tags})), **dict(find_comment_markers(source))}
    exempt = any(options.get(key) == value for key, value in EXEMPT.items())
    if exempt and not any(WHY.match(line) for line in source.splitlines()):
        problems.append("the cell's output is not checked, but no '# Why: <reason>' line in the cell says why")
    return problems


@pytest.mark.parametrize(
    "source, tags, expected",
    [
        ("# NBVAL_IGNORE_OUTPUT\n# Why: timings\nprint(1)", [], []),
        ("# NBVAL_IGNORE_OUTPUT: timings\nprint(1)", [], ["does not recognize the comment"]),
        ("#NBVAL_SKIP because slow\n", [], ["does not recognize the comment"]),
        ("# nbval_ignore_output\n# Why: x", [], ["does not recognize the comment"]),
        ("print(1)", ["nbval-ignore-output"], ["no '# Why: <reason>' line"]),
        ("# Why: random\nprint(1)", ["nbval-ignore-output"], []),
        ("print(1)", ["nbval_ignore_output"], ["does not recognize the tag"]),
        ("# NBVAL_IGNORE_OUTPUT\nprint(1)", [], ["no '# Why: <reason>' line"]),
        ("# NBVAL_CHECK_OUTPUT\nprint(1)", [], []),
        ("# a comment about nbval in general", [], []),
        ("x = 1  # NBVAL_SKIP", [], ["does not recognize the comment"]),
        ("print('no markers here')", ["hide-cell"], []),
    ],
)
def test_the_checker_finds_what_nbval_would_silently_ignore(source, tags, expected):
    problems = marker_problems(source, tags)
    assert len(problems) == len(expected), problems
    for problem, fragment in zip(problems, expected):
        assert fragment in problem


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_nbval_marker_in_the_chapter_is_recognized_and_explained(nb):
    cells = json.loads(nb.read_text())["cells"]
    found = [f"cell {i}: {problem}" for i, cell in enumerate(cells) if cell["cell_type"] == "code"
             for problem in marker_problems("".join(cell["source"]), cell.get("metadata", {}).get("tags", []))]
    assert not found, "\n".join(found)
