"""normbook's Sphinx extension for the book as a website: fast on a phone, accessible, offline, from a plain folder.

* Math is typeset at build time: at the end of an HTML build every formula of every page is turned into SVG
  (with its MathML for screen readers) by MathJax 3.2.2 running in Node.js (``_ext/mathjax_svg.js``; MathJax
  is the mathjax-full release that the pinned PyPI package ``django-static-mathjax`` installs). The pages load
  no MathJax script and no math font: a page's glyphs are drawn once, in a hidden SVG, and each formula
  refers to them. A formula MathJax cannot read is a build warning.
* Icons: the theme's ``fontawesome.js`` (1.4 MB, which turns ``<i class="fa-...">`` into SVG in the browser)
  is replaced by the same SVG written into the page at build time, for the icons the pages use.
* Scripts never block the first paint: the theme's search index is loaded by the search page only, and the
  other scripts are deferred.
* Images carry their width and height (no layout shift), the chapters' output figures load lazily.
* Accessibility: the hidden-cell toggles are named by what they show (their ``<summary>`` holds text, not
  paragraphs); the theme's buttons whose visible text is their label lose the aria-label that contradicted it.
* Each page has a meta description (its first paragraph) and the favicon.
* The Chinese edition's interface strings that the theme and Sphinx leave in English (or in Traditional
  Chinese) are translated: ``normbook_interface_strings`` (written into zh/_config.yml by tools/i18n.py).
* The "Open in Colab" badge: every chapter notebook links the remote badge image, which Colab and GitHub
  readers see; in the book that one image address is replaced by the local ``_static/colab-badge.svg``.
* No JavaScript error on the pages: inline scripts that two extensions register twice are written once
  (see :func:`drop_repeated_inline_scripts`).
"""

from __future__ import annotations

import hashlib
import html
import importlib.util
import json
import os
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.transforms import SphinxTransform
from sphinx.util import logging

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
COLAB_BADGE_URL = "https://colab.research.google.com/assets/colab-badge.svg"
# An image URI starting with "/" is relative to the book's source folder: Sphinx copies it like any local image.
COLAB_BADGE_LOCAL = "/_static/colab-badge.svg"
MATHJAX_VERSION = "3.2.2"
DESCRIPTION_CHARS = 160


# --------------------------------------------------------------------------- MathJax at build time


def mathjax_release() -> Path:
    """The installed mathjax-full release (its CommonJS modules in js/), checked to be MATHJAX_VERSION."""
    spec = importlib.util.find_spec("mathjax")
    if spec is None or spec.origin is None:
        raise ExtensionError("normbook_site: MathJax is not installed; it comes with the pinned requirements: "
                             "pip install -r requirements.txt (package django-static-mathjax)")
    root = Path(spec.origin).parent / "static" / "mathjax"
    package = root / "package.json"
    version = json.loads(package.read_text())["version"] if package.is_file() else None
    if version != MATHJAX_VERSION or not (root / "js" / "mathjax.js").is_file():
        raise ExtensionError(f"normbook_site: expected MathJax {MATHJAX_VERSION} in {root}, found {version}; "
                             "install the pinned requirements: pip install -r requirements.txt")
    return root


def node() -> str:
    found = shutil.which("node") or shutil.which("nodejs")
    if found is None:
        raise ExtensionError("normbook_site: the book's formulas are typeset at build time with Node.js, which is "
                             "not installed (Debian/Ubuntu: apt-get install nodejs)")
    return found


# <span class="math notranslate nohighlight">\(x\)</span>, <div class="math notranslate nohighlight">\[...\]</div>
MATH = re.compile(r'<(span|div) class="math notranslate nohighlight"([^>]*)>(.*?)</\1>', re.DOTALL)
EQNO = re.compile(r'^\s*(<span class="eqno">.*?</span>)', re.DOTALL)


def _tex(inner: str) -> tuple[str, str, bool]:
    """(equation number HTML, TeX source, display?) of a math element's content."""
    eqno = EQNO.match(inner)
    prefix = eqno.group(1) if eqno else ""
    tex = html.unescape(inner[eqno.end():] if eqno else inner).strip()
    if tex.startswith(r"\(") and tex.endswith(r"\)"):
        return prefix, tex[2:-2].strip(), False
    if tex.startswith(r"\[") and tex.endswith(r"\]"):
        return prefix, tex[2:-2].strip(), True
    return prefix, tex, True  # an amsmath environment, written without delimiters


def typeset(pages: list[list[dict]]) -> list[dict]:
    """Each page's formulas as SVG, by one Node.js process for the whole build."""
    run = subprocess.run([node(), str(HERE / "mathjax_svg.js"), str(mathjax_release())],
                         input=json.dumps({"pages": pages}), capture_output=True, text=True, encoding="utf-8")
    if run.returncode != 0:
        raise ExtensionError(f"normbook_site: MathJax in Node.js failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout)["pages"]


# --------------------------------------------------------------------------- icons without fontawesome.js


FA_PREFIX = {"fa-solid": "fas", "fas": "fas", "fa-regular": "far", "far": "far", "fa-brands": "fab", "fab": "fab"}
FA_MODIFIERS = {"fa-lg", "fa-sm", "fa-xs", "fa-2x", "fa-fw", "fa-spin"}
ICON = re.compile(r'<(i|span) class="([^"]*\bfa-[a-z][^"]*)"([^>]*)>\s*</\1>')


@lru_cache(maxsize=1)
def fontawesome_icons() -> dict[tuple[str, str], tuple[int, int, str]]:
    """{(prefix, name): (width, height, path)} of every icon in the theme's fontawesome.js (names and aliases)."""
    import pydata_sphinx_theme  # noqa: PLC0415

    js = (Path(pydata_sphinx_theme.__file__).parent / "theme" / "pydata_sphinx_theme" / "static" / "scripts"
          / "fontawesome.js").read_text(encoding="utf-8")
    ends = [(m.start(), m.group(1)) for m in re.finditer(r'\(function\(\)\{\w+\("(fa[brs])",\w+\)', js)]
    entry = re.compile(r'(?:"([\w-]+)"|\b([a-z][\w-]*)):\[(\d+),(\d+),\[([^\]]*)\],"\w*",("[^"]*"|\[[^\]]*\])\]')
    icons: dict[tuple[str, str], tuple[int, int, str]] = {}
    start = 0
    for end, prefix in ends:
        for m in entry.finditer(js, start, end):
            path = json.loads(m.group(6))
            path = " ".join(path) if isinstance(path, list) else path
            for name in [m.group(1) or m.group(2), *re.findall(r'"([\w-]+)"', m.group(5))]:
                icons.setdefault((prefix, name), (int(m.group(3)), int(m.group(4)), path))
        start = end
    return icons


def _icon(match: re.Match) -> str:
    classes = match.group(2).split()
    prefix = next((FA_PREFIX[c] for c in classes if c in FA_PREFIX), "fas")
    names = [c[3:] for c in classes if c.startswith("fa-") and c not in FA_PREFIX and c not in FA_MODIFIERS]
    found = next(((n, fontawesome_icons()[(prefix, n)]) for n in names if (prefix, n) in fontawesome_icons()), None)
    if found is None:
        return match.group(0)  # left to the icon font
    name, (width, height, path) = found
    keep = [c for c in classes if c in FA_MODIFIERS or not c.startswith("fa") or c == "fa"]
    keep = [c for c in keep if c not in FA_PREFIX and c != "fa"]
    attrs = re.sub(r'\s(title|aria-hidden)="[^"]*"', "", match.group(3))
    return (f'<svg class="svg-inline--fa fa-{name} {" ".join(keep)}"{attrs} aria-hidden="true" focusable="false" '
            f'xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}">'
            f'<path fill="currentColor" d="{path}"></path></svg>')


# --------------------------------------------------------------------------- the page's head: scripts, meta


def drop_repeated_inline_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Write each inline script once, and no MathJax script (the formulas are SVG already).

    sphinx-thebe 0.3.1 and sphinx-togglebutton 0.4.5 add their inline configuration scripts
    once with the file name ``None`` and once with ``""``, which Sphinx 7.4 keeps as two
    scripts: the second ``const THEBE_JS_URL = ...`` is a JavaScript error on every page.
    """
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen, unique = set(), []
    for js in scripts:
        key = (js.filename or "", js.priority, tuple(sorted(js.attributes.items())))
        body = js.attributes.get("body", "")
        if "mathjax" in (js.filename or "").lower() or body.lstrip().startswith("window.MathJax"):
            continue
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique  # the builder's own list: Sphinx restores it after each page


def description(doctree, fallback: str) -> str:
    """The page's first paragraph of prose, shortened to about DESCRIPTION_CHARS characters."""
    for paragraph in doctree.findall(nodes.paragraph) if doctree is not None else []:
        if any(isinstance(p, (nodes.admonition, nodes.caption, nodes.footnote, nodes.citation))
               for p in _ancestors(paragraph)):
            continue
        text = re.sub(r"\s+", " ", paragraph.astext()).strip()
        if len(text) >= 40:
            break
    else:
        text = fallback
    if len(text) > DESCRIPTION_CHARS:
        cut = text[:DESCRIPTION_CHARS]
        text = (cut.rsplit(" ", 1)[0] if " " in cut[DESCRIPTION_CHARS // 2:] else cut).rstrip(",;:") + "…"
    return text


def _ancestors(node):
    while node.parent is not None:
        node = node.parent
        yield node


def add_head_tags(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    if app.builder.format != "html":
        return
    if not hasattr(app, "normbook_written"):
        app.normbook_written = set()  # type: ignore[attr-defined]
    app.normbook_written.add(Path(app.builder.get_outfilename(pagename)))  # type: ignore[attr-defined]
    fallback = str(context.get("docstitle") or app.config.project or "")
    text = html.escape(description(doctree, fallback), quote=True)
    context["metatags"] = context.get("metatags", "") + f'\n<meta name="description" content="{text}" />'


# --------------------------------------------------------------------------- the written pages


def _image_size(file: Path) -> tuple[int, int] | None:
    if file.suffix.lower() == ".svg":
        head = file.read_text(encoding="utf-8", errors="replace")[:2000]
        w, h = re.search(r'<svg[^>]*\bwidth="([\d.]+)', head), re.search(r'<svg[^>]*\bheight="([\d.]+)', head)
        if w and h:
            return round(float(w.group(1))), round(float(h.group(1)))
        box = re.search(r'viewBox="[\d.\s-]*?([\d.]+)\s+([\d.]+)"', head)
        return (round(float(box.group(1))), round(float(box.group(2)))) if box else None
    try:
        import imagesize  # noqa: PLC0415 (a Sphinx dependency)

        size = imagesize.get(str(file))
        return size if size[0] > 0 else None
    except (ImportError, OSError, ValueError):
        return None


IMG = re.compile(r"<img\b([^>]*?)\s*/?>")


def _sized_image(match: re.Match, page: Path) -> str:
    attrs = match.group(1)
    src = re.search(r'\ssrc="([^"]+)"', attrs)
    if not src or re.match(r"[a-z]+:", src.group(1)):
        return match.group(0)
    file = (page.parent / html.unescape(src.group(1)).split("?")[0]).resolve()
    size = _image_size(file) if file.is_file() else None
    if size and " width=" not in attrs and " height=" not in attrs:
        attrs += f' width="{size[0]}" height="{size[1]}"'
    if "/_images/" in f"/{src.group(1)}" and not file.suffix == ".svg":  # an output figure: off screen at first
        attrs += ' loading="lazy" decoding="async"'
        if size:
            attrs += f' style="--nb-figure-width: {size[0]}px"'
    return f"<img{attrs} />"


HEAD_SCRIPT = re.compile(r'<script (?![^>]*\b(?:defer|async)\b)([^>]*\bsrc="[^"]+"[^>]*)></script>')
SEARCH_SCRIPTS = re.compile(r'\s*<script src="[^"]*(?:_static/searchtools\.js|_static/language_data\.js|'
                            r'searchindex\.js)"></script>')
FONTAWESOME_SCRIPT = re.compile(r'\s*<script defer src="[^"]*_static/scripts/fontawesome\.js[^"]*"></script>')


def _defer(match: re.Match) -> str:
    if "documentation_options.js" in match.group(1):  # inline scripts below assign to DOCUMENTATION_OPTIONS
        return match.group(0)
    return f"<script defer {match.group(1)}></script>"


def rewrite_page(text: str, page: Path, interface: dict[str, str], search_page: bool) -> str:
    """Everything normbook changes in one written page, but the math."""
    text = FONTAWESOME_SCRIPT.sub("", text)
    if 'class="sd-' not in text:  # sphinx-design's stylesheet and script, on a page with no sphinx-design element
        text = UNUSED_ASSETS.sub("", text)
    if not search_page:
        text = SEARCH_SCRIPTS.sub("", text)
    head, sep, body = text.partition("</head>")
    if sep:
        # Deferred scripts run in order once the page is parsed: Sphinx's message catalog must come right after
        # doctools.js, before the scripts that look up their strings as soon as they run (sphinx_highlight.js).
        catalog = re.search(r'\s*<script src="[^"]*_static/translations\.js[^"]*"></script>', head)
        doctools = re.search(r'<script src="[^"]*_static/doctools\.js[^"]*"></script>', head)
        if catalog and doctools and catalog.start() > doctools.end():
            head = (head[:doctools.end()] + catalog.group(0) + head[doctools.end():catalog.start()]
                    + head[catalog.end():])
        text = HEAD_SCRIPT.sub(_defer, head) + sep + body
    text = ICON.sub(_icon, text)
    text = SCROLLABLE_BLOCK.sub(lambda m: f'<{m.group(1)} tabindex="0">', text)
    text = IMG.sub(lambda m: _sized_image(m, page), text)
    # MyST-NB's toggles: a <summary> holds phrasing content only, and is named by what it shows.
    text = re.sub(r'<summary aria-label="Toggle hidden content">(.*?)</summary>',
                  lambda m: "<summary>" + re.sub(r"<p( class=\"[^\"]*\")>(.*?)</p>", r"<span\1>\2</span>",
                                                 m.group(1), flags=re.DOTALL) + "</summary>",
                  text, flags=re.DOTALL)
    # The theme's search field: its visible text ("Search Ctrl+K") is its name; the icon-only buttons keep theirs.
    text = re.sub(r'(<button class="btn search-button-field search-button__button[^"]*") title="[^"]*" '
                  r'aria-label="[^"]*"', r"\1", text)
    text = text.replace(' autocorrect="off"', "")  # the theme's search field: not an HTML attribute (Nu checker)
    if interface:
        text = translate_interface(text, interface)
    return text


ATTRIBUTE = re.compile(r'\b(title|aria-label|placeholder|data-bs-title|alt)="([^"]*)"')
TEXT = re.compile(r">([^<>]+)<")
SKIP = re.compile(r"<(pre|code|script|style|math|svg)\b.*?</\1>", re.DOTALL)


def translate_interface(text: str, strings: dict[str, str]) -> str:
    """Replace each interface string (a whole attribute value or a whole text node) by its translation.

    Code, scripts, formulas and SVG are left alone; only exact matches (after trimming) are replaced."""
    escaped = {html.escape(k, quote=True): html.escape(v, quote=True) for k, v in strings.items()}
    plain = {html.escape(k, quote=False): html.escape(v, quote=False) for k, v in strings.items()}

    def attribute(m: re.Match) -> str:
        value = m.group(2).strip()
        return f'{m.group(1)}="{escaped[value]}"' if value in escaped else m.group(0)

    def text_node(m: re.Match) -> str:
        value = m.group(1).strip()
        if value in plain:
            return ">" + m.group(1).replace(value, plain[value]) + "<"
        return m.group(0)

    out, last = [], 0
    for skip in SKIP.finditer(text):
        out.append(TEXT.sub(text_node, ATTRIBUTE.sub(attribute, text[last:skip.start()])))
        out.append(ATTRIBUTE.sub(attribute, text[skip.start():skip.end()]) if skip.group(1) == "svg"
                   else skip.group(0))
        last = skip.end()
    out.append(TEXT.sub(text_node, ATTRIBUTE.sub(attribute, text[last:])))
    return "".join(out)


STYLESHEET = re.compile(r'\s*<link (?=[^>]*rel="stylesheet")[^>]*href="([^"]+)"[^>]*/?>')
BUNDLE = "_static/styles/normbook-site.css"
CSS_URL = re.compile(r'url\(\s*(["\']?)([^"\')]+)\1\s*\)')
CSS_IMPORT = re.compile(r'@import\s+(?:url\()?["\']([^"\']+)["\']\)?\s*;')
FA_ICON_RULE = re.compile(r"\.fa-([a-z0-9-]+):before\{content:\"[^\"]*\"\}")
UNUSED_ASSETS = re.compile(r'\s*<(?:link[^>]*href="[^"]*_static/sphinx-design\.min\.css[^"]*"[^>]*/?>|'
                           r'script[^>]*src="[^"]*_static/design-tabs\.js[^"]*"[^>]*></script>)')


def _css(file: Path, bundle: Path, seen: set[Path]) -> str:
    """A stylesheet with its @imports inlined and its url()s made relative to ``bundle``."""
    if file in seen or not file.is_file():
        return ""
    seen.add(file)
    text = file.read_text(encoding="utf-8")
    text = CSS_IMPORT.sub(lambda m: _css((file.parent / m.group(1)).resolve(), bundle, seen), text)

    def rebase(m: re.Match) -> str:
        url = m.group(2)
        if re.match(r"[a-z]+:|/|#", url):
            return m.group(0)
        target = (file.parent / url.split("?")[0].split("#")[0]).resolve()
        rest = url[len(url.split("?")[0].split("#")[0]):]
        return f'url("{Path(os.path.relpath(target, bundle.parent)).as_posix()}{rest}")'

    return re.sub(r"/\*# sourceMappingURL=[^*]*\*/", "", CSS_URL.sub(rebase, text))


def bundle_stylesheets(outdir: Path, texts: dict[Path, str], used_icons: set[str]) -> None:
    """One render-blocking stylesheet instead of ten: every page's stylesheets, in order, in one file.

    The theme's Font Awesome rules for icons no page shows as a font (they are inline SVG) are left out."""
    lists = {p: STYLESHEET.findall(t.partition("</head>")[0]) for p, t in texts.items()}
    lists = {p: hrefs for p, hrefs in lists.items() if hrefs and not any(BUNDLE in h for h in hrefs)}
    first = next(iter(lists.values()), None)
    if not first:
        return
    targets = [(next(iter(lists)).parent / h.split("?")[0]).resolve() for h in first]
    bundle = outdir / BUNDLE
    css = "\n".join(_css(t, bundle, set()) for t in targets)
    css = FA_ICON_RULE.sub(lambda m: m.group(0) if m.group(1) in used_icons else "", css)
    bundle.write_text(css, encoding="utf-8")
    version = hashlib.sha256(css.encode()).hexdigest()[:10]
    for page, hrefs in lists.items():
        if [(page.parent / h.split("?")[0]).resolve() for h in hrefs] != targets:
            continue  # a page with stylesheets of its own keeps them
        href = Path(os.path.relpath(bundle, page.parent)).as_posix()
        head, sep, body = texts[page].partition("</head>")
        links = iter(range(len(hrefs)))
        head = STYLESHEET.sub(lambda m: f'\n    <link rel="stylesheet" href="{href}?v={version}" />'
                              if next(links) == 0 else "", head)
        texts[page] = head + sep + body


# pydata-sphinx-theme 0.17.1 makes each code block and output that scrolls focusable (tabIndex 0, others -1) at
# load, reading every block's size after writing the previous one's tabIndex: a full layout per block, 0.5 s of a
# phone's main thread on a chapter. The pages are written with tabindex="0" on those blocks (so a scrolling one is
# always reachable by keyboard) and the theme's check runs on each block when it comes into view instead.
PST_SCROLLABLE_OLD = ('e=()=>{document.querySelectorAll(["pre",".nboutput > .output_area",".cell_output > .output",'
                      '".jp-RenderedHTMLCommon",".pst-scrollable-table-container"].join(", ")).forEach(e=>{e.tabIndex='
                      'e.scrollWidth>e.clientWidth||e.scrollHeight>e.clientHeight?0:-1})}')
PST_SCROLLABLE_NEW = ('e=(()=>{const o=new IntersectionObserver(n=>n.forEach(n=>{const e=n.target;n.isIntersecting&&'
                      '(e.tabIndex=e.scrollWidth>e.clientWidth||e.scrollHeight>e.clientHeight?0:-1)}));return()=>{'
                      'document.querySelectorAll(["pre",".nboutput > .output_area",".cell_output > .output",'
                      '".jp-RenderedHTMLCommon",".pst-scrollable-table-container"].join(", ")).forEach(e=>{'
                      'o.unobserve(e),o.observe(e)})}})()')
SCROLLABLE_BLOCK = re.compile(r'<(pre|div class="(?:output|cell_output|pst-scrollable-table-container)[^"]*")>')


def patch_theme_script(outdir: Path) -> None:
    script = outdir / "_static" / "scripts" / "pydata-sphinx-theme.js"
    if not script.is_file():
        return
    text = script.read_text(encoding="utf-8")
    if PST_SCROLLABLE_OLD in text:
        script.write_text(text.replace(PST_SCROLLABLE_OLD, PST_SCROLLABLE_NEW), encoding="utf-8")
    elif PST_SCROLLABLE_NEW not in text:
        logger.warning("normbook_site: pydata-sphinx-theme's script changed; its scrollable-block check is not "
                       "deferred (see PST_SCROLLABLE_OLD)")


def add_script_translations(outdir: Path, strings: dict[str, str]) -> None:
    """The interface strings for Sphinx's scripts too (search results, "Hide Search Matches"), where its catalog
    has none: appended to the message catalog the pages load (``_static/translations.js``)."""
    catalog = outdir / "_static" / "translations.js"
    if not catalog.is_file():
        return
    marker = "/* normbook: interface strings */"
    text = catalog.read_text(encoding="utf-8").split(marker)[0].rstrip()
    extra = json.dumps(strings, ensure_ascii=False, sort_keys=True)
    catalog.write_text(f"{text}\n{marker}\n(() => {{ for (const [k, v] of Object.entries({extra})) "
                       "if (!(k in Documentation.TRANSLATIONS)) Documentation.TRANSLATIONS[k] = v; })();\n",
                       encoding="utf-8")


def finish_pages(app: Sphinx, exception: Exception | None) -> None:
    """Rewrite every written HTML page: math as SVG, icons, scripts, images, toggles, interface strings."""
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    # The pages this build wrote (an incremental build leaves the others as a previous build finished them).
    pages = sorted(p for p in getattr(app, "normbook_written", set()) if p.is_file())
    texts = {p: p.read_text(encoding="utf-8") for p in pages}
    formulas = {p: [_tex(m.group(3)) for m in MATH.finditer(t)] for p, t in texts.items()}
    with_math = [p for p in pages if formulas[p]]
    rendered = dict(zip(with_math, typeset([[{"tex": tex, "display": display} for _, tex, display in formulas[p]]
                                            for p in with_math]))) if with_math else {}
    interface = dict(app.config.normbook_interface_strings or {})
    for page in pages:
        texts[page] = rewrite_page(texts[page], page, interface, search_page=page == outdir / "search.html")
    used_icons = {c[3:] for t in texts.values() for m in ICON.finditer(t) for c in m.group(2).split()
                  if c.startswith("fa-")} | {"xmark"}  # xmark: the theme's script draws it in a banner
    bundle_stylesheets(outdir, texts, used_icons)
    patch_theme_script(outdir)
    if interface:
        add_script_translations(outdir, interface)
    for page in pages:
        text = texts[page]
        if page in rendered:
            result, count = rendered[page], iter(range(len(formulas[page])))
            for problem in result["errors"]:
                logger.warning(f"normbook_site: MathJax cannot read {problem['tex']!r}: {problem['error']}",
                               location=str(page.relative_to(outdir)))

            def svg(m: re.Match) -> str:
                i = next(count)
                eqno = formulas[page][i][0]
                formula = result["formulas"][i]
                if formulas[page][i][2]:  # a display formula scrolls sideways when wider than the page
                    formula = formula.replace("<mjx-container ", '<mjx-container tabindex="0" ', 1)
                return f'<{m.group(1)} class="math notranslate nohighlight"{m.group(2)}>{eqno}{formula}</{m.group(1)}>'

            text = MATH.sub(svg, text)
            defs = (f'<svg class="nb-math-glyphs" xmlns="http://www.w3.org/2000/svg" aria-hidden="true" '
                    f'focusable="false" style="display: none">{result["defs"]}</svg>')
            text = text.replace("</body>", f"{defs}\n</body>", 1)
        page.write_text(text, encoding="utf-8")
    for unused in ("scripts/fontawesome.js", "scripts/fontawesome.js.map", "scripts/fontawesome.js.LICENSE.txt"):
        (outdir / "_static" / unused).unlink(missing_ok=True)
    shutil.rmtree(outdir / "_static" / "mathjax", ignore_errors=True)  # left by an older build
    logger.info(f"normbook_site: {sum(len(f) for f in formulas.values())} formulas on {len(with_math)} pages "
                "typeset as SVG; icons inlined")


class LocalColabBadge(SphinxTransform):
    """Point the "Open in Colab" badge image at the book's own copy."""

    default_priority = 500

    def apply(self, **kwargs) -> None:
        for image in self.document.findall(nodes.image):
            if image["uri"] == COLAB_BADGE_URL:
                image["uri"] = COLAB_BADGE_LOCAL


def check_tools(app: Sphinx, config) -> None:
    """Fail at the start of the build, not at its end, when MathJax or Node.js is missing."""
    mathjax_release()
    node()


def setup(app: Sphinx) -> dict:
    app.add_config_value("normbook_interface_strings", {}, "html", [dict])
    app.add_transform(LocalColabBadge)
    app.connect("config-inited", check_tools)
    app.connect("html-page-context", drop_repeated_inline_scripts, priority=900)
    app.connect("html-page-context", add_head_tags)
    app.connect("build-finished", finish_pages, priority=900)  # after the theme rewrites pygments.css
    return {"version": "2.0", "parallel_read_safe": True, "parallel_write_safe": True}
