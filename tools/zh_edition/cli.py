"""The command line: status, init, build and check (run as `python tools/i18n.py COMMAND`; see __init__.py)."""

from __future__ import annotations

import argparse
import difflib
import json
import subprocess
from pathlib import Path

from .generator import Generator, write
from .paths import BOOK, COMMENTS, TERMINOLOGY
from .units import MARKER, Entry, Unit, digest, marker, marker_line, markdown_sections, parse_translations


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
    """Print what is missing, stale, orphaned or broken, per source (all, or those named; with `full`, the
    English text of each). Returns how many sources are not complete."""
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
                blocks.append(f"{marker_line(e.key, e.digest, e.flag)}\n{e.text}")
        for e in by_key.values():
            blocks.append(f"{marker_line(e.key, e.digest, e.flag)}\n{e.text}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(head.rstrip("\n") + "\n\n" + "\n\n".join(blocks) + "\n", encoding="utf-8")
        print(f"wrote {path.relative_to(gen.root)}")


def main(argv: list[str] | None = None) -> int:
    """Run a command (argv: the command line's arguments, default sys.argv[1:]); returns the exit status."""
    from . import __doc__ as package_doc  # noqa: PLC0415 (the package imports this module)

    parser = argparse.ArgumentParser(description=package_doc.split("\n\n")[0])
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
