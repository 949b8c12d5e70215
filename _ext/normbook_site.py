"""normbook's Sphinx extension for the book as a website: it works from a plain folder, offline.

* Math: MathJax 3 is served by the site itself. At the end of an HTML build the MathJax
  release that the pinned PyPI package ``django-static-mathjax`` ships (MathJax 3.2.2, the
  files the default CDN address ``mathjax@3`` serves; importable as ``mathjax``, it needs no
  Django) is copied into ``_build/html/_static/mathjax/``, and ``mathjax_path`` points there.
* The "Open in Colab" badge: every chapter notebook links the remote badge image, which
  Colab and GitHub readers see; in the book that one image address is replaced by the local
  ``_static/colab-badge.svg``, so no page loads an image from the network.
* No JavaScript error on the pages: inline scripts that two extensions register twice are
  written once (see :func:`drop_repeated_inline_scripts`).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.transforms import SphinxTransform
from sphinx.util import logging

logger = logging.getLogger(__name__)

COLAB_BADGE_URL = "https://colab.research.google.com/assets/colab-badge.svg"
# An image URI starting with "/" is relative to the book's source folder: Sphinx copies it like any local image.
COLAB_BADGE_LOCAL = "/_static/colab-badge.svg"
MATHJAX_VERSION = "3.2.2"
MATHJAX_ENTRY = "tex-mml-chtml.js"
# What tex-mml-chtml.js loads on demand (TeX extensions, fonts, menu, accessibility); the other
# top-level bundles of the release are alternatives to it and are not copied.
MATHJAX_PARTS = ("a11y", "adaptors", "input", "output", "sre", "ui")


def mathjax_release() -> Path:
    """The ``es5`` folder of the installed MathJax release, checked to be MATHJAX_VERSION."""
    spec = importlib.util.find_spec("mathjax")
    if spec is None or spec.origin is None:
        raise ExtensionError("normbook_site: MathJax is not installed; it comes with the pinned requirements: "
                             "pip install -r requirements.txt (package django-static-mathjax)")
    root = Path(spec.origin).parent / "static" / "mathjax"
    package = root / "package.json"
    version = json.loads(package.read_text())["version"] if package.is_file() else None
    if version != MATHJAX_VERSION or not (root / "es5" / MATHJAX_ENTRY).is_file():
        raise ExtensionError(f"normbook_site: expected MathJax {MATHJAX_VERSION} in {root}, found {version}; "
                             "install the pinned requirements: pip install -r requirements.txt")
    return root / "es5"


class LocalColabBadge(SphinxTransform):
    """Point the "Open in Colab" badge image at the book's own copy."""

    default_priority = 500

    def apply(self, **kwargs) -> None:
        for image in self.document.findall(nodes.image):
            if image["uri"] == COLAB_BADGE_URL:
                image["uri"] = COLAB_BADGE_LOCAL


def use_local_mathjax(app: Sphinx, config) -> None:
    mathjax_release()  # fail at the start of the build, not at its end
    config.mathjax_path = f"mathjax/{MATHJAX_ENTRY}"


def copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    release, target = mathjax_release(), Path(app.outdir) / "_static" / "mathjax"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(release / MATHJAX_ENTRY, target / MATHJAX_ENTRY)
    for part in MATHJAX_PARTS:
        shutil.copytree(release / part, target / part, dirs_exist_ok=True)
    shutil.copy2(release.parent / "LICENSE", target / "LICENSE")
    logger.info(f"normbook_site: MathJax {MATHJAX_VERSION} copied to {target}")


def drop_repeated_inline_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Write each inline script once.

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
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique  # the builder's own list: Sphinx restores it after each page


def setup(app: Sphinx) -> dict:
    app.add_transform(LocalColabBadge)
    app.connect("config-inited", use_local_mathjax)
    app.connect("build-finished", copy_mathjax)
    app.connect("html-page-context", drop_repeated_inline_scripts, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}

