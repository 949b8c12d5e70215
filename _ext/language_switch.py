"""A link on every page of the book to the same page in its other language edition.

The English book is built at the site root and the Chinese edition (generated into ``zh/`` by
``tools/i18n.py``) under ``zh/`` of the same site (``tools/build_book.py`` builds both). Both
configurations load this extension. Each page gets, above its title, a link to the page with the same
name in the other edition (``chapters/04_instancenorm.html`` <-> ``zh/chapters/04_instancenorm.html``),
or to the other edition's first page when it has no such page (e.g. the Chinese glossary), plus
``<link rel="alternate" hreflang=...>`` links in the page head to both editions' pages at their absolute
addresses (search engines ignore relative ones) and ``html_baseurl`` (Sphinx's canonical link).

The site's address is derived from the repository named in ``_config.yml`` (``repository.url``, which Jupyter
Book passes on as the theme's ``repository_url``): ``https://github.com/OWNER/REPO`` is published by GitHub
Pages at ``https://OWNER.github.io/REPO/``; ``language_switch_site_url`` (or ``html_baseurl`` in the English
book) overrides it. The English book is at that address, the Chinese edition under ``zh/``.

Which pages the other edition has is read from its ``_toc.yml``. Settings (all optional; the defaults,
chosen by the book's ``language``, fit this book):

* ``language_switch_root``: the other edition's folder, relative to this site's root
  (English: ``"zh/"``; Chinese: ``"../"``).
* ``language_switch_toc``: the other edition's ``_toc.yml``, relative to this book's folder
  (English: ``"zh/_toc.yml"``; Chinese: ``"../_toc.yml"``).
* ``language_switch_label`` and ``language_switch_hreflang``: the link's text and language
  (English: ``"中文"``, ``"zh-CN"``; Chinese: ``"English"``, ``"en"``).
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import urljoin, urlparse

import yaml
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

SPECIAL_PAGES = {"search", "genindex"}  # pages every Sphinx HTML build has
EDITIONS = {  # this book's language -> the other edition, seen from it
    "zh": {"root": "../", "toc": "../_toc.yml", "label": "English", "hreflang": "en",
           "title": "Read this page in English"},
    "en": {"root": "zh/", "toc": "zh/_toc.yml", "label": "中文", "hreflang": "zh-CN", "title": "阅读本页的中文版"},
}


def github_pages_url(repository_url: str) -> str | None:
    """Where GitHub Pages publishes a repository's site: https://github.com/OWNER/REPO -> https://OWNER.github.io/REPO/."""
    parts = urlparse(repository_url or "")
    path = [p for p in parts.path.split("/") if p]
    if parts.netloc != "github.com" or len(path) < 2:
        return None
    owner, repo = path[0], path[1].removesuffix(".git")
    if repo.lower() == f"{owner.lower()}.github.io":
        return f"https://{repo.lower()}/"
    return f"https://{owner.lower()}.github.io/{repo}/"


def site_urls(app: Sphinx) -> tuple[str, str] | None:
    """The absolute addresses of this edition's root and the other edition's root."""
    settings = other_edition(app)
    english_site = app.config.language_switch_site_url or github_pages_url(
        (app.config.html_theme_options or {}).get("repository_url", ""))
    if not english_site:
        return None
    english_site = english_site.rstrip("/") + "/"
    this = english_site + ZH_FOLDER if is_chinese(app) else english_site
    return this, urljoin(this, settings["root"])


def set_base_url(app: Sphinx, config) -> None:
    """Sphinx's canonical link (html_baseurl): this edition's absolute address."""
    urls = site_urls(app)
    if urls and not (config.html_baseurl and not is_chinese(app)):
        config.html_baseurl = urls[0]


def toc_docnames(toc_file: Path) -> tuple[str, set[str]]:
    """The root document and every document of a Jupyter Book ``_toc.yml``."""
    toc = yaml.safe_load(toc_file.read_text(encoding="utf-8"))
    names: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            for key in ("file", "root"):
                if isinstance(node.get(key), str):
                    names.add(re.sub(r"\.(ipynb|md|rst)$", "", node[key]))
            for value in node.values():
                if isinstance(value, (dict, list)):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return re.sub(r"\.(ipynb|md|rst)$", "", toc["root"]), names


ZH_FOLDER = "zh/"  # the Chinese edition's folder in the site


def is_chinese(app: Sphinx) -> bool:
    return (app.config.language or "en").lower().startswith("zh")


def other_edition(app: Sphinx) -> dict[str, str]:
    """The settings for this build: the defaults for its language, overridden by the config."""
    language = "zh" if is_chinese(app) else "en"
    settings = dict(EDITIONS[language])
    for key in ("root", "toc", "label", "hreflang"):
        value = getattr(app.config, f"language_switch_{key}")
        if value:
            settings[key] = value
    return settings


def read_other_toc(app: Sphinx) -> None:
    settings = other_edition(app)
    toc_file = Path(app.confdir) / settings["toc"]
    if not toc_file.is_file():
        logger.warning(f"language_switch: the other edition's table of contents {toc_file} does not exist "
                       "(generate the Chinese edition: python tools/i18n.py build); no language links are added")
        app.env.language_switch = None  # type: ignore[attr-defined]
        return
    root, names = toc_docnames(toc_file)
    app.env.language_switch = {**settings, "other_root_doc": root, "other_docs": sorted(names)}  # type: ignore[attr-defined]


def switch_target(app: Sphinx, pagename: str) -> str | None:
    """The other edition's page for this page: the same page, or its first page."""
    settings = getattr(app.env, "language_switch", None)
    if not settings:
        return None
    return pagename if pagename in settings["other_docs"] or pagename in SPECIAL_PAGES else settings[
        "other_root_doc"]


def switch_url(app: Sphinx, pagename: str) -> str | None:
    """The relative URL of the same page in the other edition (or of its first page)."""
    target = switch_target(app, pagename)
    if target is None:
        return None
    settings = app.env.language_switch  # type: ignore[attr-defined]
    up = "../" * pagename.count("/")
    return f"{up}{settings['root']}{app.builder.get_target_uri(target)}"


def add_switch(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    url = switch_url(app, pagename)
    if url is None or app.builder.format != "html":
        return
    settings = app.env.language_switch  # type: ignore[attr-defined]
    href, lang = html.escape(url, quote=True), html.escape(settings["hreflang"], quote=True)
    urls = site_urls(app)
    if urls:  # both editions, absolute; x-default is the English page
        this_url, other_url = urls
        own = urljoin(this_url, app.builder.get_target_uri(pagename))
        other = urljoin(other_url, app.builder.get_target_uri(switch_target(app, pagename)))
        own_lang = "zh-CN" if is_chinese(app) else "en"
        english = other if is_chinese(app) else own
        links = [(own_lang, own), (settings["hreflang"], other), ("x-default", english)]
        context["metatags"] = context.get("metatags", "") + "".join(
            f'\n<link rel="alternate" hreflang="{html.escape(code, quote=True)}" href="{html.escape(link, quote=True)}" />'
            for code, link in links)
    if "body" in context:
        context["body"] = (
            f'<div class="language-switch" style="text-align: right; font-size: 0.9em; margin-bottom: 0.5em;">'
            f'<a class="reference external" href="{href}" hreflang="{lang}" lang="{lang}" '
            f'title="{html.escape(settings["title"], quote=True)}">'
            f'<i class="fa-solid fa-language" aria-hidden="true"></i> {html.escape(settings["label"])}</a></div>\n'
            + context["body"])


def setup(app: Sphinx) -> dict:
    for key in ("root", "toc", "label", "hreflang", "site_url"):
        app.add_config_value(f"language_switch_{key}", None, "html", [str])
    app.connect("config-inited", set_base_url)
    app.connect("builder-inited", read_other_toc)
    app.connect("html-page-context", add_switch)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
