"""Build both editions of the book into one site: English at _build/html/, Chinese at _build/html/zh/.

    python tools/build_book.py [--path-output DIR] [jupyter-book build options, e.g. -W -n --keep-going]

Runs `jupyter-book build` on the English book (this folder) and on the Chinese edition (zh/, generated
by `python tools/i18n.py build`), each with the options given, then puts the Chinese HTML under the
English site's zh/. With --path-output DIR the site is DIR/_build/html (as for jupyter-book itself);
the Chinese edition's own build files are in DIR/_build/zh. Exits non-zero when either build fails;
says so (without failing) when zh/ is not up to date with the English sources.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ZH = "zh"


def jupyter_book() -> str:
    """The jupyter-book next to this Python (the project's venv), else the one on PATH."""
    beside = Path(sys.executable).with_name("jupyter-book")
    return str(beside) if beside.exists() else (shutil.which("jupyter-book") or "jupyter-book")


def zh_up_to_date() -> list[str]:
    sys.path.insert(0, str(ROOT / "tools"))
    import i18n  # noqa: PLC0415 (tools/ is not a package)

    return i18n.Generator(ROOT).out_of_date()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path-output", type=Path, default=ROOT, help="where _build/ goes (default: this folder)")
    args, options = parser.parse_known_args(argv)
    out = args.path_output.resolve()
    site, zh_build = out / "_build" / "html", out / "_build" / ZH

    stale = zh_up_to_date()
    if stale:
        print(f"NOTE: zh/ is not up to date with the English sources ({len(stale)} files, e.g. {stale[0]}); "
              "the Chinese edition is built as committed. Regenerate it: python tools/i18n.py build")

    jb = jupyter_book()
    print(f"== English edition -> {site}", flush=True)
    english = subprocess.run([jb, "build", str(ROOT), "--path-output", str(out), *options]).returncode
    print(f"== Chinese edition -> {site / ZH}", flush=True)
    chinese = subprocess.run([jb, "build", str(ROOT / ZH), "--path-output", str(zh_build), *options]).returncode

    built = zh_build / "_build" / "html"
    if built.is_dir() and site.is_dir():
        shutil.rmtree(site / ZH, ignore_errors=True)
        shutil.copytree(built, site / ZH)
    failed = [name for name, code in (("English", english), ("Chinese", chinese)) if code != 0]
    if failed:
        print(f"the {' and '.join(failed)} build failed (see above)")
        return 1
    print(f"The book is built: open {site / 'index.html'} (中文版: {site / ZH / 'index.html'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
