"""The command line of the Chinese edition's generator, the package tools/zh_edition/ (its docstring explains
the files, the translations format and the commands):

    python tools/i18n.py status [SOURCE ...]   what is missing or stale; with SOURCE, the English text of each
    python tools/i18n.py init SOURCE ...       create/update the translations file: a `todo` entry per new unit
    python tools/i18n.py build                 regenerate zh/ and README.zh.md
    python tools/i18n.py check                 exit 1 if zh/ is out of date or a translation is missing,
                                               stale, or breaks math/code/links/terminology
"""

import sys

from zh_edition.cli import main  # tools/, this script's folder, is on sys.path

if __name__ == "__main__":
    sys.exit(main())
