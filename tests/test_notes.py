"""The five source notes: in the repository, shown whole on their appendix pages, cited as "note N" with links.

The notes' text lives in notes/text/noteN.txt (the blog notes the book grew from, byte for byte as they were
handed over: the SHA-256 prefixes below were taken from those originals). Each appendix page notes/noteN.md
shows the note with ``literalinclude`` blocks whose line ranges, in order, cover every line exactly once.
"""

import hashlib
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ORIGINAL_SHA256 = {0: "008a43f038b646e3", 1: "58f91696656488ff", 2: "53e24ef32994d6f2", 3: "846bf68f5a134e98",
                   4: "9ffc7125cb285119"}
NOTES = sorted(ORIGINAL_SHA256)
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
INCLUDE = re.compile(r"```\{literalinclude\} (\S+)\n(?::[a-z]+:.*\n)*?:lines: (\d+)-(\d+)\n")
# "seed" for a source note: the old wording. Random seeds ("seed 0", "five seeds") are not matched.
NOTE_AS_SEED = re.compile(r"\b[Ss]eeds? (?:00[0-4]|notes?)\b|\b[Tt]he seed(?:'s)? (?:note|says|said|example|author|"
                          r"writes|wrote|quotes|lists|credits|prints|printed|copies|shows|calls|describes|explains|"
                          r"flags|warns|collects|builds|checks|motivates)\b|\b[Tt]he seed's (?:example|input|batch|"
                          r"check|computation|channel|printed|first|rule|claim|text)\b")


def _markdown(nb: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(nb.read_text(encoding="utf-8"))["cells"]
            if c["cell_type"] == "markdown"]


def _comments(nb: Path) -> list[str]:
    return [line for c in json.loads(nb.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"
            for line in "".join(c["source"]).splitlines() if "#" in line]


@pytest.mark.parametrize("n", NOTES)
def test_the_note_is_in_the_repository_unchanged(n):
    data = (ROOT / "notes" / "text" / f"note{n}.txt").read_bytes()
    assert hashlib.sha256(data).hexdigest().startswith(ORIGINAL_SHA256[n])


@pytest.mark.parametrize("n", NOTES)
def test_the_appendix_page_shows_the_whole_note(n):
    page = (ROOT / "notes" / f"note{n}.md").read_text(encoding="utf-8")
    lines = (ROOT / "notes" / "text" / f"note{n}.txt").read_text(encoding="utf-8").split("\n")
    lines = lines[:-1] if lines[-1] == "" else lines
    blocks = INCLUDE.findall(page)
    assert blocks and all(path == f"text/note{n}.txt" for path, _, _ in blocks)
    ranges = [(int(a), int(b)) for _, a, b in blocks]
    assert ranges[0][0] == 1 and ranges[-1][1] == len(lines), f"from line 1 to {len(lines)}: {ranges}"
    assert all(b + 1 == c for (_, b), (c, _) in zip(ranges, ranges[1:])), f"contiguous, in order: {ranges}"
    title = re.search(rf"^# Note {n}: (.+)$", page, re.M)
    assert title and title.group(1) in lines, "the page's title is the note's own (a line of it)"
    assert page.startswith(f"(note{n})=\n"), "a label that chapters link to"


@pytest.mark.parametrize("n", NOTES)
def test_used_in_lists_the_chapters_that_cite_the_note(n):
    page = (ROOT / "notes" / f"note{n}.md").read_text(encoding="utf-8")
    listed = re.findall(r"\]\(\.\./chapters/([^)]+)\.ipynb\)", re.search(r"^Used in: .*$", page, re.M).group(0))
    citing = [nb.stem for nb in CHAPTERS if any(re.search(rf"\]\(#note{n}(?:-s[0-9-]+)?\)", md)
                                                for md in _markdown(nb))]
    assert listed == citing, f"note {n} is linked from {citing}, the page lists {listed}"


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.stem)
def test_chapters_call_a_note_a_note_and_link_it(nb):
    problems = [f"'seed' for a note: …{m.group(0)}…" for text in _markdown(nb) + _comments(nb)
                for m in NOTE_AS_SEED.finditer(text)]
    for md in _markdown(nb):
        for n in sorted(set(re.findall(r"\b[Nn]otes? ([0-4])\b", md))):
            if not re.search(rf"\]\(#note{n}(?:-s[0-9-]+)?\)", md):
                problems.append(f"a cell cites note {n} without a link to it ([note {n}](#note{n})): {md[:70]!r}")
    assert not problems, "\n".join(problems)


def test_other_pages_call_a_note_a_note():
    texts = {p: p.read_text(encoding="utf-8") for p in [ROOT / "intro.md", ROOT / "README.md",
                                                        *sorted((ROOT / "notes").glob("*.md"))]}
    found = [f"{p.name}: …{m.group(0)}…" for p, t in texts.items() for m in NOTE_AS_SEED.finditer(t)]
    assert not found, "\n".join(found)


def test_the_seed_pattern_matches_the_old_wording_only():
    for old in ["Seed 000 builds", "seed 002's three cats", "The seed's example, exactly", "the seed says",
                "the seed note", "the seed's check would pass"]:
        assert NOTE_AS_SEED.search(old), old
    for fine in ["five seeds each", "(seed 0)", "every seed trains", "a seed sets the initial weights",
                 "torch.manual_seed(0)", "for seed in SEEDS"]:
        assert not NOTE_AS_SEED.search(fine), fine
