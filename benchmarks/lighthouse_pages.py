"""Lighthouse's performance score of every page of the built site, both editions (not a test: timings).

    python benchmarks/lighthouse_pages.py [--site _build/html] [--runs 3] [--desktop] [--only chapters] [PAGE ...]

Serves the built site (default ``_build/html``, as `make book` writes it) from 127.0.0.1, gzip-compressed as
GitHub Pages serves it (every text response: HTML, CSS, JavaScript, SVG, JSON), and runs Lighthouse 12 on each
page of both editions (the pages of ``_toc.yml`` and ``zh/_toc.yml``) in Debian's Chromium, ``--runs`` times
per page, simulated mobile by default (Lighthouse's default: a mid-range phone, slow 4G, 4x CPU slowdown).
Prints, per page, the median of the runs: performance score, largest contentful paint, total blocking time,
cumulative layout shift, and the bytes the page loaded (before and after compression), with the range of the
scores. Exits 1 when a chapter page's median is below ``--min-score`` (default 90).

Lighthouse is installed with npm into ~/.cache/normbook-lighthouse (or $NORMBOOK_LIGHTHOUSE_DIR) when it is
missing (it says so); the browser is /usr/bin/chromium (or $CHROME_PATH). On a shared machine a single run of a
page moves by several points: compare medians, measured on the same machine.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import http.server
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
LIGHTHOUSE_VERSION = "12.8.2"
LIGHTHOUSE_DIR = Path(os.environ.get("NORMBOOK_LIGHTHOUSE_DIR", Path.home() / ".cache" / "normbook-lighthouse"))
CHROME = os.environ.get("CHROME_PATH", "/usr/bin/chromium")
CHROME_FLAGS = ("--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run "
                "--disable-background-networking --disable-component-update --disable-sync")
TEXT_TYPES = ("text/", "application/javascript", "application/json", "image/svg+xml", "application/xml")


def pages() -> list[str]:
    """Every page of both editions, in the order of their tables of contents."""
    found = []
    for toc_file, prefix in ((ROOT / "_toc.yml", ""), (ROOT / "zh" / "_toc.yml", "zh/")):
        toc = yaml.safe_load(toc_file.read_text(encoding="utf-8"))
        names = [toc["root"]] + [e["file"] for part in toc["parts"] for e in part["chapters"]]
        found += [prefix + Path(name).with_suffix("").as_posix() for name in names]
    return found


def lighthouse() -> list[str]:
    """The Lighthouse command, installed first when missing."""
    cli = LIGHTHOUSE_DIR / "node_modules" / "lighthouse" / "cli" / "index.js"
    if not cli.is_file():
        npm = shutil.which("npm")
        if npm is None:
            sys.exit("Lighthouse needs Node.js and npm (Debian: apt-get install nodejs npm)")
        print(f"installing lighthouse@{LIGHTHOUSE_VERSION} into {LIGHTHOUSE_DIR} (npm, once) ...", flush=True)
        LIGHTHOUSE_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent", f"lighthouse@{LIGHTHOUSE_VERSION}"],
                       cwd=LIGHTHOUSE_DIR, check=True)
    return [shutil.which("node") or "node", str(cli)]


class GzipHandler(http.server.SimpleHTTPRequestHandler):
    """A static file server that gzips text responses, as GitHub Pages does."""

    cache: dict[str, bytes] = {}

    def log_message(self, format, *args):  # noqa: A002
        pass

    def send_head(self):
        path = self.translate_path(self.path)
        if os.path.isdir(path):
            path = os.path.join(path, "index.html")
        ctype = self.guess_type(path)
        if not os.path.isfile(path) or not ctype.startswith(TEXT_TYPES) \
                or "gzip" not in self.headers.get("Accept-Encoding", ""):
            return super().send_head()
        body = self.cache.get(path)
        if body is None:
            body = self.cache[path] = gzip.compress(Path(path).read_bytes(), compresslevel=6)
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Vary", "Accept-Encoding")
        self.end_headers()
        return _Body(body)


class _Body:
    def __init__(self, data: bytes):
        self.data = data

    def read(self, *args):
        data, self.data = self.data, b""
        return data

    def close(self):
        pass


def serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(GzipHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/"


def run_once(cmd: list[str], url: str, desktop: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="normbook-lh-") as tmp:
        out = Path(tmp) / "report.json"
        args = [*cmd, url, "--quiet", "--output=json", f"--output-path={out}", "--only-categories=performance",
                f"--chrome-flags={CHROME_FLAGS} --user-data-dir={tmp}/profile"]
        if desktop:
            args.append("--preset=desktop")
        env = dict(os.environ, CHROME_PATH=CHROME)
        subprocess.run(args, env=env, check=True, capture_output=True, timeout=300)
        report = json.loads(out.read_text())
    audits = report["audits"]
    requests = audits["network-requests"]["details"]["items"]
    return {
        "score": round(100 * (report["categories"]["performance"]["score"] or 0)),
        "lcp": audits["largest-contentful-paint"]["numericValue"] / 1000,
        "fcp": audits["first-contentful-paint"]["numericValue"] / 1000,
        "tbt": audits["total-blocking-time"]["numericValue"] / 1000,
        "cls": audits["cumulative-layout-shift"]["numericValue"],
        "bytes": sum(r.get("resourceSize") or 0 for r in requests),
        "transfer": sum(r.get("transferSize") or 0 for r in requests),
        "requests": len(requests),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="*", help="pages to measure (default: every page of both editions)")
    parser.add_argument("--site", type=Path, default=ROOT / "_build" / "html", help="the built site")
    parser.add_argument("--runs", type=int, default=3, help="runs per page (the median is printed)")
    parser.add_argument("--desktop", action="store_true", help="Lighthouse's desktop preset instead of mobile")
    parser.add_argument("--only", choices=["chapters"], help="measure only the chapter pages")
    parser.add_argument("--min-score", type=int, default=90, help="the least median score a chapter page may have")
    parser.add_argument("--json", type=Path, help="also write every run's figures to this file")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        sys.exit(f"no built site at {args.site}: run `make book` (or pass --site)")
    todo = args.pages or pages()
    if args.only == "chapters":
        todo = [p for p in todo if "/chapters/" in f"/{p}"]
    cmd = lighthouse()
    server, base = serve(args.site)
    mode = "desktop" if args.desktop else "simulated mobile"
    print(f"Lighthouse {LIGHTHOUSE_VERSION}, {mode}, gzip, {args.runs} runs per page, site {args.site}\n")
    header = f"{'page':44} {'score':>5} {'range':>7} {'LCP s':>6} {'FCP s':>6} {'TBT s':>6} {'CLS':>6} " \
             f"{'KB':>6} {'KB gz':>6} {'req':>4}"
    print(header)
    print("-" * len(header))
    results, failing = {}, []
    try:
        for page in todo:
            runs = []
            for _ in range(args.runs):
                try:
                    runs.append(run_once(cmd, f"{base}{page}.html", args.desktop))
                except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
                    stderr = getattr(error, "stderr", b"") or b""
                    print(f"  {page}: a Lighthouse run failed: {error} {stderr.decode(errors='replace')[-300:]}")
            if not runs:
                failing.append(page)
                continue
            results[page] = runs
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            scores = sorted(r["score"] for r in runs)
            print(f"{page:44} {med['score']:5.0f} {scores[0]:3d}-{scores[-1]:<3d} {med['lcp']:6.2f} "
                  f"{med['fcp']:6.2f} {med['tbt']:6.2f} {med['cls']:6.3f} {med['bytes'] / 1024:6.0f} "
                  f"{med['transfer'] / 1024:6.0f} {med['requests']:4.0f}", flush=True)
            if "/chapters/" in f"/{page}" and med["score"] < args.min_score:
                failing.append(page)
    finally:
        server.shutdown()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if failing:
        print(f"\n{len(failing)} chapter pages below {args.min_score} (or not measured): {', '.join(failing)}")
        return 1
    print(f"\nevery chapter page measured has a median score of at least {args.min_score}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
