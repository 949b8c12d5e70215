"""Build both editions of the book into one site: English at _build/html/, Chinese at _build/html/zh/.

    python tools/build_book.py [--path-output DIR] [jupyter-book build options, e.g. -W -n --keep-going]

Runs `jupyter-book build` on the English book (this folder) and on the Chinese edition (zh/, generated
by `python tools/i18n.py build`), each with the options given, then puts the Chinese HTML under the
English site's zh/. With --path-output DIR the site is DIR/_build/html (as for jupyter-book itself);
the Chinese edition's own build files are in DIR/_build/zh. Exits non-zero when either build fails;
says so (without failing) when zh/ is not up to date with the English sources.

Then it finishes the site as one:
* the Chinese edition's static files and figures that are the same bytes as the English edition's
  (the theme, its scripts and styles, the figures, which the two editions share) are not copied twice:
  the Chinese pages point at the English copies (``zh/_static/x`` -> ``_static/x``);
* ``index.html`` of each edition (Jupyter Book writes a bare redirect) is a valid HTML page with a title,
  language, description and a link, which sends the reader on to the first page;
* ``favicon.ico`` is at the site's root, for the browsers and tools that ask for ``/favicon.ico``.
"""

from __future__ import annotations

import argparse
import filecmp
import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
ZH = "zh"


def jupyter_book() -> str:
    """The jupyter-book next to this Python (the project's venv), else the one on PATH."""
    beside = Path(sys.executable).with_name("jupyter-book")
    return str(beside) if beside.exists() else (shutil.which("jupyter-book") or "jupyter-book")


def zh_up_to_date() -> list[str]:
    sys.path.insert(0, str(ROOT / "tools"))
    import zh_edition  # noqa: PLC0415 (the generator of the Chinese edition, a package in tools/)

    return zh_edition.Generator(ROOT).out_of_date()


SHARED = ("_static", "_images")  # folders whose identical files the Chinese edition takes from the English one
URL_ATTRIBUTE = re.compile(r'\b(href|src)="([^":#?]+)([?#][^"]*)?"')


def share_static_files(site: Path, zh: Path) -> int:
    """Remove the Chinese edition's copies of files the English edition has with the same bytes, and point the
    Chinese pages at the English ones. Returns how many bytes that saves."""
    shared, saved = set(), 0
    for folder in SHARED:
        for f in sorted((zh / folder).rglob("*")) if (zh / folder).is_dir() else []:
            english = site / f.relative_to(zh)
            if f.is_file() and english.is_file() and filecmp.cmp(f, english, shallow=False):
                shared.add(f.relative_to(site).as_posix())
    for page in zh.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        folder = page.parent.relative_to(site).as_posix()

        def point(m: re.Match) -> str:
            target = os.path.normpath(os.path.join(folder, m.group(2))).replace(os.sep, "/")
            if target not in shared:
                return m.group(0)
            english = target.removeprefix(f"{zh.relative_to(site).as_posix()}/")
            return f'{m.group(1)}="{os.path.relpath(english, folder).replace(os.sep, "/")}{m.group(3) or ""}"'

        new = URL_ATTRIBUTE.sub(point, text)
        if new != text:
            page.write_text(new, encoding="utf-8")
    for rel in shared:
        saved += (site / rel).stat().st_size
        (site / rel).unlink()
    for folder in SHARED:  # folders left empty
        for d in sorted((zh / folder).rglob("*"), reverse=True) if (zh / folder).is_dir() else []:
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()
    return saved


LANDING = """<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8" />
<meta name="viewport" content="width=device-width, initial-scale=1" />
<title>{title}</title>
<meta name="description" content="{description}" />
<link rel="canonical" href="{canonical}" />
<link rel="icon" href="{favicon}" />
<meta http-equiv="refresh" content="0; url={first_page}" />
</head>
<body>
<main>
<h1>{title}</h1>
<p><a href="{first_page}">{go_on}</a></p>
</main>
</body>
</html>
"""


def write_landing_page(folder: Path, first_page: str, lang: str, title: str, canonical: str | None,
                       favicon: str) -> None:
    """Replace Jupyter Book's bare redirect at ``folder/index.html`` by a valid page that leads to the first page."""
    chinese = lang.startswith("zh")
    go_on = "开始阅读" if chinese else "Start reading"
    description = ("本书讲解 PyTorch 的归一化层，并亲手把每一层算一遍。" if chinese else
                   "An executable book that teaches PyTorch's normalization layers by computing each one by hand.")
    (folder / "index.html").write_text(LANDING.format(
        lang=lang, title=html.escape(title), description=html.escape(description, quote=True),
        canonical=html.escape(canonical or first_page, quote=True), favicon=favicon,
        first_page=html.escape(first_page, quote=True), go_on=go_on), encoding="utf-8")


def first_page_of(built: Path) -> str | None:
    """Where Jupyter Book's redirect at ``built/index.html`` points (e.g. intro.html)."""
    index = built / "index.html"
    found = re.search(r'url=([^"\s>]+)', index.read_text(encoding="utf-8")) if index.is_file() else None
    return found.group(1) if found else None


def site_address() -> str | None:
    """The site's address, from the repository in _config.yml (as _ext/language_switch.py derives it)."""
    sys.path.insert(0, str(ROOT / "_ext"))
    import language_switch  # noqa: PLC0415 (_ext/ is not a package)

    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    return language_switch.github_pages_url((config.get("repository") or {}).get("url", ""))


def finish_site(site: Path) -> None:
    english = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    chinese = yaml.safe_load((ROOT / ZH / "_config.yml").read_text(encoding="utf-8")) \
        if (ROOT / ZH / "_config.yml").is_file() else {}
    address = site_address()
    favicon = (english.get("html") or {}).get("favicon")
    for folder, config, lang, base in ((site, english, "en", address),
                                       (site / ZH, chinese, "zh-CN", address and f"{address}{ZH}/")):
        first = first_page_of(folder)
        if first and (folder / first).is_file():
            write_landing_page(folder, first, lang, config.get("title", "normbook"), base and base + first,
                               os.path.relpath(site / "_static" / Path(favicon).name, folder).replace(os.sep, "/")
                               if favicon else "favicon.ico")
    if favicon and (ROOT / favicon).is_file():
        shutil.copy2(ROOT / favicon, site / "favicon.ico")
    if (site / ZH).is_dir():
        saved = share_static_files(site, site / ZH)
        print(f"zh/ shares the English edition's static files and figures ({saved / 2**20:.1f} MB not copied twice)")


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
    if site.is_dir():
        finish_site(site)
    failed = [name for name, code in (("English", english), ("Chinese", chinese)) if code != 0]
    if failed:
        print(f"the {' and '.join(failed)} build failed (see above)")
        return 1
    print(f"The book is built: open {site / 'index.html'} (中文版: {site / ZH / 'index.html'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
