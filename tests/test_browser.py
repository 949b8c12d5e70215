"""The built book in a real browser, as a reader sees it: Chromium, driven by Playwright, offline.

The book (built once per run, tests/conftest.py) is served from a local HTTP server on 127.0.0.1;
every request to any other host is refused and reported. Every page of the book is opened at a
desktop viewport (1280 px wide) and a phone viewport (390 px wide) and checked:

- no JavaScript error, nothing loaded from the network, no missing file;
- every image loaded; every formula typeset by MathJax (no raw TeX left in the text);
- no progress bar, warning or stderr output on the page;
- the exercise solutions start hidden, each toggle names the exercise its cell solves, and opens;
- the Colab launch button and badge open this notebook's own path in the repository;
- the page does not scroll sideways (wide code and tables scroll in their own box);
- figures are shown at full size on the desktop (their text stays >= 8 pt; see normbook.plotting),
  and stay readable (light background) in the theme's dark mode;
- the book's search finds `running_var` and lists the running-statistics chapter.

A screenshot of every page at both sizes is saved under _build/screenshots/. The browser is
Debian's Chromium (/usr/bin/chromium, or NORMBOOK_CHROMIUM); without it these tests fail and say
how to install it.
"""

from __future__ import annotations

import dataclasses
import functools
import http.server
import io
import os
import re
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
PAGES = [TOC["root"]] + [entry["file"] for part in TOC["parts"] for entry in part["chapters"]]
CHAPTERS = [page for page in PAGES if page.startswith("chapters/")]
SCREENSHOTS = ROOT / "_build" / "screenshots"
RUNNING_STATS = "chapters/05_running_stats"  # the chapter a search for running_var must list

CHROMIUM = os.environ.get("NORMBOOK_CHROMIUM", "/usr/bin/chromium")
HOW_TO_GET_CHROMIUM = ("install Debian's Chromium and CJK fonts as root: `apt-get update && apt-get install -y "
                       "chromium fonts-noto-cjk` (.ci/run does this when they are missing), or point "
                       "NORMBOOK_CHROMIUM at a Chromium or Chrome executable")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}
TIMEOUT_MS = 30_000


def colab_url(page: str) -> str:
    """Where Colab opens a chapter: its notebook's path in the repository named in _config.yml."""
    repo = CONFIG["repository"]
    path = "/".join(p for p in (repo.get("path_to_book", "").strip("/"), f"{page}.ipynb") if p)
    github = repo["url"].removeprefix("https://github.com/").strip("/")
    return f"https://colab.research.google.com/github/{github}/blob/{repo.get('branch', 'main')}/{path}"


def _id(page: str) -> str:
    return Path(page).name


# --------------------------------------------------------------------------- the site and the browser


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="session")
def site(built_book):
    """The built HTML served on 127.0.0.1 (an ephemeral port) from a thread; yields its base URL."""
    if not (built_book.html / "index.html").is_file():
        pytest.fail("the book did not build, so there is nothing to open:\n" + built_book.log[-3000:], pytrace=False)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(built_book.html)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: the browser tests need it; {HOW_TO_GET_CHROMIUM}", pytrace=False)
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except PlaywrightError as error:
            pytest.fail(f"Chromium at {CHROMIUM} did not start ({error}); {HOW_TO_GET_CHROMIUM}", pytrace=False)
        yield chromium
        chromium.close()


@dataclasses.dataclass
class Visit:
    """What one page showed at one viewport."""

    errors: list = dataclasses.field(default_factory=list)      # console errors and uncaught exceptions
    offsite: list = dataclasses.field(default_factory=list)     # requests to any host but the local server
    missing: list = dataclasses.field(default_factory=list)     # local requests that failed or got HTTP >= 400
    facts: dict = dataclasses.field(default_factory=dict)       # what the page's DOM says (see _FACTS)
    toggles: list = dataclasses.field(default_factory=list)     # each hidden solution, before and after a click


def _open(context, url: str, visit: Visit, base: str):
    """A new page of ``context`` at ``url``, with MathJax done and every image settled, recording problems."""
    def route(r):
        if r.request.url.startswith(base):
            r.continue_()
        else:
            visit.offsite.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("console", lambda m: visit.errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: visit.errors.append(f"uncaught: {e}"))
    page.on("requestfailed", lambda r: visit.missing.append(f"{r.url} ({r.failure})")
            if r.url.startswith(base) else None)
    page.on("response", lambda r: visit.missing.append(f"{r.url} (HTTP {r.status})") if r.status >= 400 else None)
    response = page.goto(url, wait_until="load")
    if response is None or response.status != 200:
        visit.missing.append(f"{url} (HTTP {response.status if response else 'no response'})")
    try:  # MathJax defines MathJax.startup once its script has run; if it never does, the math checks say so
        page.wait_for_function("() => !document.querySelector('.math') || "
                               "(window.MathJax && MathJax.startup && MathJax.startup.promise)", timeout=10_000)
    except PlaywrightTimeout:
        pass
    page.evaluate("""async () => {
        if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
        await Promise.all([...document.images].map(i => i.complete ? null :
            new Promise(done => { i.addEventListener('load', done); i.addEventListener('error', done); })));
        await document.fonts.ready;
    }""")
    return page


# Everything about a page the tests read from its DOM, gathered in one pass.
_FACTS = r"""() => {
    const article = document.querySelector('article.bd-article') || document.body;
    const shown = el => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
    const images = [...document.images].map(i => ({
        src: i.getAttribute('src'), url: i.currentSrc || i.src, alt: i.alt || '',
        loaded: i.complete && i.naturalWidth > 0, natural: i.naturalWidth,
        width: i.getBoundingClientRect().width, shown: shown(i),
        figure: !!i.closest('.cell_output, figure') && !/colab/i.test(i.alt || ''),
    }));
    const prose = article.cloneNode(true);
    prose.querySelectorAll('pre, code, script, style, mjx-container, .cell_output, textarea').forEach(e => e.remove());
    const text = prose.textContent;
    const rawTex = [...text.matchAll(/\\[\[\]()]|\$\$|\\[A-Za-z]+|\$[^\s$][^$\n]{0,60}\$/g)]
        .map(m => text.slice(Math.max(0, m.index - 30), m.index + 40).replace(/\s+/g, ' '));
    const maths = [...article.querySelectorAll('.math')];
    const outputs = [...article.querySelectorAll('.cell_output')].map(o => o.textContent).join('\n');
    const noise = [...outputs.matchAll(/\d+%\|[^\n]{0,40}|\d+(\.\d+)?\s?(it\/s|s\/it)|\r|\S+\.py:\d+: \w*Warning:[^\n]*/g)]
        .map(m => m[0]);
    const links = [...document.querySelectorAll('a[href*="colab.research.google.com"]')].map(a => ({
        href: a.href, title: a.getAttribute('data-bs-original-title') || a.title || '',  // Bootstrap moves a tooltip's title
        badge: a.querySelector('img') ? a.querySelector('img').currentSrc : null,
        badgeLoaded: a.querySelector('img') ? a.querySelector('img').naturalWidth > 0 : null,
    }));
    const de = document.documentElement;
    // If the page is wider than the window, find the smallest elements whose hiding makes it fit.
    const tooWide = () => de.scrollWidth > de.clientWidth;
    const wide = [];
    const dig = (el, depth) => {
        for (const child of el.children) {
            const display = child.style.display;
            child.style.display = 'none';
            const culprit = !tooWide();
            child.style.display = display;
            if (culprit) {
                const before = wide.length;
                if (depth < 30) dig(child, depth + 1);
                if (wide.length === before) wide.push(child.outerHTML.slice(0, 160).replace(/\s+/g, ' '));
                return;
            }
        }
    };
    if (tooWide()) dig(document.body, 0);
    window.scrollTo(10000, window.scrollY);
    const scrolledX = window.scrollX;
    window.scrollTo(0, 0);
    return {
        images, rawTex, noise, links, wide, scrolledX,
        stderr: article.querySelectorAll('.output.stderr').length,
        maths: maths.length, typeset: maths.filter(m => m.querySelector('mjx-container')).length,
        mathErrors: [...article.querySelectorAll('mjx-merror')].map(e => e.getAttribute('data-mjx-error') || e.textContent),
        scrollWidth: de.scrollWidth, clientWidth: de.clientWidth,
    };
}"""


def _toggles(page) -> list[dict]:
    """Each hidden-cell toggle (MyST-NB's <details class="hide">): its state and label before and after a click."""
    found = []
    toggles = page.locator("article details.hide")
    for i in range(toggles.count()):
        toggle = toggles.nth(i)
        summary, body = toggle.locator("summary"), toggle.locator(".cell_input")
        before = {"open": toggle.evaluate("d => d.open"), "body_shown": body.first.is_visible(),
                  "label": summary.inner_text().strip(),
                  "first_line": body.first.evaluate("b => (b.querySelector('pre') || b).textContent.split('\\n')[0]")}
        summary.click()
        after = {"open": toggle.evaluate("d => d.open"), "body_shown": body.first.is_visible()}
        found.append({**before, "after": after})
    return found


@pytest.fixture(scope="session")
def visit(site, browser):
    """visit(page, viewport): open the page once per run, take its screenshot, and return what it showed."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    @functools.cache
    def run(page_name: str, viewport: str) -> Visit:
        found = Visit()
        context = browser.new_context(color_scheme="light", **VIEWPORTS[viewport])
        try:
            page = _open(context, f"{site}{page_name}.html", found, site)
            page.screenshot(path=str(SCREENSHOTS / f"{_id(page_name)}-{viewport}.png"), full_page=True)
            found.facts = page.evaluate(_FACTS)
            found.toggles = _toggles(page)
        finally:
            context.close()
        return found

    return run


PAGE_VIEWPORTS = [pytest.param(p, v, id=f"{_id(p)}-{v}") for p in PAGES for v in VIEWPORTS]
CHAPTER_VIEWPORTS = [pytest.param(p, v, id=f"{_id(p)}-{v}") for p in CHAPTERS for v in VIEWPORTS]


# --------------------------------------------------------------------------- the checks


@pytest.mark.parametrize("page, viewport", PAGE_VIEWPORTS)
def test_no_javascript_error_and_nothing_from_the_network(visit, page, viewport):
    found = visit(page, viewport)
    assert not found.missing, f"missing files: {found.missing}"
    assert not found.offsite, f"the page asks the network for {sorted(set(found.offsite))}: serve it from the site"
    assert not found.errors, f"JavaScript errors: {found.errors}"


@pytest.mark.parametrize("page, viewport", PAGE_VIEWPORTS)
def test_every_image_loads(visit, page, viewport):
    images = visit(page, viewport).facts["images"]
    broken = [i["src"] for i in images if not i["loaded"]]
    assert not broken, f"images that did not load: {broken}"


@pytest.mark.parametrize("page, viewport", PAGE_VIEWPORTS)
def test_every_formula_is_typeset(visit, page, viewport):
    facts = visit(page, viewport).facts
    assert facts["typeset"] == facts["maths"], f"MathJax typeset {facts['typeset']} of {facts['maths']} formulas"
    assert not facts["mathErrors"], f"formulas MathJax could not read: {facts['mathErrors']}"
    assert not facts["rawTex"], f"raw TeX in the text: {facts['rawTex'][:5]}"


@pytest.mark.parametrize("page", [pytest.param(p, id=_id(p)) for p in PAGES])
def test_outputs_show_no_progress_bar_warning_or_stderr(visit, page):
    facts = visit(page, "desktop").facts
    assert facts["stderr"] == 0, f"{facts['stderr']} stderr outputs on the page: re-execute the notebook without them"
    assert not facts["noise"], f"progress bars or warnings in the outputs: {facts['noise'][:5]}"


@pytest.mark.parametrize("page, viewport", PAGE_VIEWPORTS)
def test_solutions_start_hidden_name_their_exercise_and_open(visit, page, viewport):
    toggles = visit(page, viewport).toggles
    if page in CHAPTERS:
        assert toggles, "a chapter ends with exercise solutions behind toggles (cells tagged hide-cell)"
    for t in toggles:
        where = f"toggle {t['label']!r} (solution starting {t['first_line']!r})"
        assert not t["open"] and not t["body_shown"], f"{where} starts open"
        named = re.search(r"\bexercise\s+(\d+)\b", t["label"], re.IGNORECASE)
        assert named, (f"{where} does not name its exercise: set the cell's metadata "
                       '"mystnb": {"code_prompt_show": "Show the solution to exercise N", '
                       '"code_prompt_hide": "Hide the solution to exercise N"}')
        solves = re.search(r"\b(?:exercise|solution)\s+(\d+)\b", t["first_line"], re.IGNORECASE)
        assert solves, f"{where}: the solution's first line names no exercise (e.g. '# Solution to exercise 2: ...')"
        assert named.group(1) == solves.group(1), f"{where} names exercise {named.group(1)}, its cell solves {solves.group(1)}"
        assert t["after"] == {"open": True, "body_shown": True}, f"{where} did not open when clicked: {t['after']}"


@pytest.mark.parametrize("page, viewport", CHAPTER_VIEWPORTS)
def test_colab_button_and_badge_open_this_notebook(visit, page, viewport):
    links = visit(page, viewport).facts["links"]
    expected = colab_url(page)
    assert (ROOT / f"{page}.ipynb").is_file(), f"{page}.ipynb is not in the checkout"
    assert any(link["title"] == "Launch on Colab" for link in links), "no Colab launch button"
    badges = [link for link in links if link["badge"]]
    assert badges, "no Open in Colab badge"
    assert all(link["href"] == expected for link in links), f"Colab links {[l['href'] for l in links]} != {expected}"
    for badge in badges:
        assert badge["badgeLoaded"] and badge["badge"].startswith("http://127.0.0.1:"), \
            f"the badge image must come from the site, not {badge['badge']}"


@pytest.mark.parametrize("page, viewport", PAGE_VIEWPORTS)
def test_page_does_not_scroll_sideways(visit, page, viewport):
    facts = visit(page, viewport).facts
    assert facts["scrolledX"] == 0 and facts["scrollWidth"] <= facts["clientWidth"], (
        f"the page is {facts['scrollWidth']} px wide in a {facts['clientWidth']} px window and scrolls "
        f"{facts['scrolledX']} px sideways; hiding this makes it fit: {facts['wide'] or 'no single element'}")


@pytest.mark.parametrize("page", [pytest.param(p, id=_id(p)) for p in PAGES])
def test_figures_are_shown_at_full_size_on_the_desktop(visit, page):
    """A figure the page shrinks shrinks its text below normbook.plotting.MIN_FONT_PT: keep figures within PAGE_WIDTH_IN."""
    images = visit(page, "desktop").facts["images"]
    shrunk = [(i["src"].rsplit("/", 1)[-1], i["natural"], round(i["width"])) for i in images
              if i["figure"] and i["shown"] and i["width"] < i["natural"] - 1]
    assert not shrunk, ("figures shrunk to fit the page, their text below 8 pt (file, stored px, shown px): "
                        f"{shrunk}; draw them at most normbook.plotting.PAGE_WIDTH_IN inches wide and re-execute")


@pytest.mark.parametrize("page", [pytest.param(p, id=_id(p)) for p in PAGES])
def test_figures_stay_readable_in_dark_mode(site, browser, page):
    """With the reader's system in dark mode (the theme follows it), each figure keeps a light background."""
    found = Visit()
    context = browser.new_context(color_scheme="dark", **VIEWPORTS["desktop"])
    try:
        tab = _open(context, f"{site}{page}.html", found, site)
        assert tab.evaluate("document.documentElement.dataset.theme") == "dark", "the theme did not switch to dark"
        figures = tab.locator("article .cell_output img, article figure img")
        dark = []
        for i in range(figures.count()):
            figure = figures.nth(i)
            if not figure.is_visible():
                continue  # inside a closed solution toggle
            if i == 0:
                figure.scroll_into_view_if_needed()
                tab.screenshot(path=str(SCREENSHOTS / f"{_id(page)}-desktop-dark.png"))
            pad = figure.evaluate("i => parseFloat(getComputedStyle(i).paddingLeft) + parseFloat(getComputedStyle(i).borderLeftWidth)")
            shot = np.asarray(Image.open(io.BytesIO(figure.screenshot())).convert("L"), dtype=float)
            inset = int(np.ceil(pad)) + 1
            inner = shot[inset:-inset or None, inset:-inset or None]
            band = np.concatenate([inner[:3].ravel(), inner[-3:].ravel(), inner[:, :3].ravel(), inner[:, -3:].ravel()])
            if np.median(band) < 150:
                dark.append((figure.get_attribute("src").rsplit("/", 1)[-1], round(float(np.median(band)))))
        assert not dark, f"figures with a dark background in dark mode (file, median edge brightness 0-255): {dark}"
    finally:
        context.close()
    assert not found.errors, f"JavaScript errors in dark mode: {found.errors}"


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_search_finds_running_var_in_the_running_statistics_chapter(site, browser, viewport):
    found = Visit()
    context = browser.new_context(**VIEWPORTS[viewport])
    try:
        tab = _open(context, f"{site}{PAGES[0]}.html", found, site)
        tab.locator("button.search-button__button:visible").first.click()
        box = tab.locator("#pst-search-dialog input[type=search]")
        box.fill("running_var")
        box.press("Enter")
        tab.wait_for_url(re.compile(r"search\.html\?q=running_var"))
        tab.wait_for_function("() => /found|did not match/i.test("
                              "(document.querySelector('#search-results .search-summary') || {}).textContent || '')")
        hits = tab.locator("#search-results ul.search li a").evaluate_all("links => links.map(a => a.href)")
        tab.screenshot(path=str(SCREENSHOTS / f"search-running_var-{viewport}.png"))
    finally:
        context.close()
    assert RUNNING_STATS in PAGES
    assert any(f"{RUNNING_STATS}.html" in hit for hit in hits), f"search results for running_var: {hits}"
    assert not found.errors, f"JavaScript errors while searching: {found.errors}"


@pytest.mark.parametrize("page", [pytest.param(p, id=_id(p)) for p in PAGES])
def test_page_reads_from_the_plain_folder(built_book, browser, page):
    """Opened as a file (file://, no server, no network), the page still typesets its math and shows its images."""
    found = Visit()
    context = browser.new_context(**VIEWPORTS["desktop"])
    try:
        tab = _open(context, (built_book.html / f"{page}.html").as_uri(), found, "file://")
        facts = tab.evaluate(_FACTS)
    finally:
        context.close()
    assert not found.offsite and not found.missing, f"offline from a folder: {found.offsite + found.missing}"
    assert not found.errors, f"JavaScript errors: {found.errors}"
    assert facts["typeset"] == facts["maths"] and all(i["loaded"] for i in facts["images"])


def test_search_from_the_plain_folder_lists_the_chapter(built_book, browser):
    """Search works from a folder too. (Sphinx then cannot fetch the pages for the snippets under each result:
    a browser refuses file:// fetches, which it logs as errors; the list of pages is what matters here.)"""
    found = Visit()
    context = browser.new_context(**VIEWPORTS["desktop"])
    try:
        tab = _open(context, (built_book.html / "search.html").as_uri() + "?q=running_var", found, "file://")
        tab.wait_for_function("() => /found|did not match/i.test("
                              "(document.querySelector('#search-results .search-summary') || {}).textContent || '')")
        hits = tab.locator("#search-results ul.search li a").evaluate_all("links => links.map(a => a.href)")
    finally:
        context.close()
    assert not found.offsite, f"offline from a folder: {found.offsite}"
    assert any(f"{RUNNING_STATS}.html" in hit for hit in hits), f"search results for running_var: {hits}"
