"""The checkout guard: record every file a Python process opens or lists beside the checkout.

`make test` must need nothing but the checkout (and the CIFAR-10 folder that NORMBOOK_DATA names): a test
or build step that reads ``../shared/...`` passes on the machine it was written on and fails in every clone.
tests/conftest.py installs :func:`install` in the pytest process and puts this folder first on PYTHONPATH,
so that every Python started below it (the book build, nbval's kernels, spawned workers) runs this file as
its ``sitecustomize`` and installs the same audit hook. Each process appends what it saw to the file named by
NORMBOOK_CHECKOUT_LOG; the pytest session fails when that file is not empty.

Watched: paths under the checkout's parent folder but outside the checkout, except the CIFAR-10 folder
(NORMBOOK_DATA), hidden folders (caches, tool stores), the temporary folder and the Python installation.
"""

from __future__ import annotations

import os
import sys
import tempfile

WATCHED_EVENTS = {"open", "os.listdir", "os.scandir", "glob.glob"}


def outside(path: str, root: str, allowed: tuple[str, ...]) -> bool:
    """Whether an absolute path lies beside the checkout ``root``: under its parent, not under it or ``allowed``."""
    parent = os.path.dirname(root)
    if parent == os.path.dirname(parent):  # the checkout sits at the file system's root: nothing is beside it
        return False
    within = lambda base: path == base or path.startswith(base.rstrip(os.sep) + os.sep)  # noqa: E731
    if not within(parent) or within(root) or any(within(a) for a in allowed):
        return False
    return not path[len(parent):].lstrip(os.sep).startswith(".")


def install(root: str, log: str) -> None:
    """Add the audit hook to this process: outside paths are appended to ``log``, one per line."""
    log = os.path.abspath(log)
    places = (os.environ.get("NORMBOOK_DATA") or "", tempfile.gettempdir(), sys.prefix, sys.base_prefix)
    # A folder that holds the checkout (a clone under /tmp, say) would hide everything beside it: not allowed.
    allowed = tuple(p for p in map(os.path.abspath, filter(None, places)) if not root.startswith(p.rstrip(os.sep) + os.sep))

    def hook(event: str, args: tuple) -> None:
        if event not in WATCHED_EVENTS or not args or not isinstance(args[0], (str, bytes, os.PathLike)):
            return
        path = os.fsdecode(args[0]) if args[0] else "."
        path = os.path.abspath(path)
        if path != log and outside(path, root, allowed):
            with open(log, "a", encoding="utf-8") as f:
                f.write(f"{path}  ({event} in {os.path.basename(sys.argv[0] or sys.executable)})\n")

    sys.addaudithook(hook)


if os.environ.get("NORMBOOK_CHECKOUT_LOG") and os.environ.get("NORMBOOK_CHECKOUT_ROOT"):
    install(os.environ["NORMBOOK_CHECKOUT_ROOT"], os.environ["NORMBOOK_CHECKOUT_LOG"])
