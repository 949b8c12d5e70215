"""Interface and display strings: the Chinese text the generator itself adds to the edition, the theme's and
Sphinx's interface strings, and the display strings in a code cell's metadata (toggle labels, captions, alt)."""

from __future__ import annotations

# Shown at the top of a chapter whose translation is incomplete (its untranslated cells are in English).
INCOMPLETE_NOTE = (":::{note}\n本章的中文翻译尚未完成：还没有译文（或英文原文改动后译文尚未更新）的段落暂以英文显示；"
                   "代码和输出与英文版完全相同。\n:::")
GLOSSARY_TITLE = "术语对照表"
GLOSSARY_INTRO = ("本书中文版统一使用下表中的译名；主要术语在每一章第一次出现时，会在括号中注明英文。"
                  "PyTorch 的类名、参数名和函数名（如 `nn.BatchNorm2d`、`track_running_stats`）保留英文原样。")
APPENDIX_CAPTION = "附录"
# The Chinese labels myst-nb puts on hidden code cells that have no label of their own.
CODE_PROMPTS = {"nb_code_prompt_show": "显示代码单元", "nb_code_prompt_hide": "隐藏代码单元"}

# The interface strings that the theme (pydata-sphinx-theme, sphinx-book-theme) and Sphinx leave in English, or in
# Traditional Chinese, in a zh_CN book: written into zh/_config.yml as `normbook_interface_strings`, which
# _ext/normbook_site.py applies to every page of the Chinese edition (whole attribute values and text nodes; code and
# formulas untouched) and adds to the search page's message catalog. tests/test_browser.py checks that no English
# interface string is left on a Chinese page.
INTERFACE_STRINGS = {
    "Color mode": "颜色模式", "Light": "浅色", "Dark": "深色", "System Settings": "跟随系统设置",
    "Search": "搜索", "Search this book...": "搜索本书……", "Hide Search Matches": "隐藏搜索匹配",
    "Launch interactive content": "启动交互式内容", "Launch on Colab": "在 Colab 中打开", "Colab logo": "Colab 标志",
    "Source repositories": "源代码仓库", "Source repository": "源代码仓库", "Repository": "仓库",
    "Open an issue": "提交问题", "Open issue": "提交问题",
    "Download this page": "下载本页", "Download source file": "下载源文件",
    "Print to PDF": "打印为 PDF", "列印成 PDF": "打印为 PDF", "Fullscreen mode": "全屏模式",
    "Toggle primary sidebar": "切换左侧目录栏", "Toggle secondary sidebar": "切换右侧本页目录栏",
    "Site navigation": "站点导航", "On this page": "本页内容", "Contents": "目录", "Main": "本书目录", "Page": "本页",
    "Back to top": "返回顶部", "Skip to main content": "跳到正文", "Version warning": "版本提示",
    "Previous": "上一页", "Next": "下一页", "previous page": "上一页", "next page": "下一页",
    "Link to this heading": "链接到此标题", "Link to this image": "链接到此图片", "Link to this equation": "链接到此公式",
    "Link to this table": "链接到此表格", "Link to this code": "链接到此代码", "Link to this definition": "链接到此定义",
    "Copy": "复制", "Copied!": "已复制！", "Failed to copy": "复制失败",
    "Click to show": "点击显示", "Click to hide": "点击隐藏",
}
# The toggle hints of sphinx-togglebutton (its own settings, not the theme's strings).
TOGGLE_HINTS = {"togglebutton_hint": "点击显示", "togglebutton_hint_hide": "点击隐藏"}


# A code cell's display strings, at these places in its metadata: toggle labels, a figure's caption and alt text.
CELL_STRINGS = {"prompt_show": ("mystnb", "code_prompt_show"), "prompt_hide": ("mystnb", "code_prompt_hide"),
                "caption": ("mystnb", "figure", "caption"), "alt": ("mystnb", "image", "alt")}


def cell_strings(cell: dict) -> list[tuple[str, str]]:
    """(field, text) for each display string in a code cell's metadata (see CELL_STRINGS)."""
    found = []
    for field, path in CELL_STRINGS.items():
        value = cell.get("metadata", {})
        for key in path:
            value = value.get(key, {}) if isinstance(value, dict) else None
        if isinstance(value, str):
            found.append((field, value))
    return found


def set_cell_string(cell: dict, field: str, text: str) -> None:
    """Put a display string back at its place in a code cell's metadata."""
    *parents, last = CELL_STRINGS[field]
    node = cell["metadata"]
    for key in parents:
        node = node[key]
    node[last] = text
