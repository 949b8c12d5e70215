"""CIFAR-10 for the book: the official dataset, or the offline sample, found in a fixed order.

Where the images come from, in order:

1. the folder given as ``root=`` or, when no argument is given, named by the
   ``NORMBOOK_DATA`` environment variable;
2. the book's ``data/`` folder (the repository root's ``data/`` when run inside a
   checkout, else ``./data``);
3. the official download through ``torchvision.datasets.CIFAR10`` into that
   ``data/`` folder (online machines, Colab).

A folder qualifies when it, or its ``cifar-10-batches-py`` / ``cifar-10-sample``
subfolder, holds the python-layout batches with the right MD5 sums: torchvision's
own sums for the official files, the sums in the sample's README for the sample.

The book's images are the sample's: the first 932 images of each training batch
(4,660) and the first 846 test images. :func:`load_cifar10` returns exactly those
from either copy, so a reader who downloads the official dataset gets the numbers
the book shows; ``full=True`` asks for every image of the official dataset instead.

Nothing here deletes or overwrites a file: a download that would replace a file
already in ``data/`` is refused with a message saying what to move aside.
"""

from __future__ import annotations

import hashlib
import numbers
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from . import book_root

__all__ = ["DATA_ENV", "BOOK_TRAIN_PER_BATCH", "BOOK_TEST", "CifarFolder", "Cifar10", "CifarNotFoundError", "default_data_dir", "locate_cifar10", "load_cifar10"]

DATA_ENV = "NORMBOOK_DATA"
OFFICIAL = "cifar-10-batches-py"
SAMPLE = "cifar-10-sample"
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILES = ["test_batch"]
META_FILE = "batches.meta"
# The book's images (those of the sample): the first 932 of each training batch, the first 846 test images.
BOOK_TRAIN_PER_BATCH = 932
BOOK_TEST = 846
# MD5 sums of the offline sample, as published in its README.
SAMPLE_MD5 = {
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
    "data_batch_1": "cd8b9095cd00c759d645cdff0777d5cd",
    "data_batch_2": "4286b743de0da0546032faa668def39a",
    "data_batch_3": "363f727a2d36bf9eeafc51c40a461fdb",
    "data_batch_4": "61bf9677e26344e9430de113f01b435c",
    "data_batch_5": "68945a2064a88de7ff4e61376a250509",
    "test_batch": "f98214b85f51ac9cdafe70958660a874",
}
_HOW_TO_FIX = (
    "How to fix: go online and call load_cifar10() again (it downloads the official CIFAR-10 into data/), "
    f"or point the {DATA_ENV} environment variable (or root=) at a folder holding '{OFFICIAL}' "
    f"(the official python version) or '{SAMPLE}' (the offline sample)."
)

PathLike = Union[str, "os.PathLike[str]"]


class CifarNotFoundError(FileNotFoundError):
    """No usable CIFAR-10 copy was found; the message lists every place looked at and why each failed."""


@dataclass(frozen=True)
class CifarFolder:
    """A verified folder of CIFAR-10 python-layout batches; ``kind`` is "official" or "sample"."""

    path: Path
    kind: str


def official_md5() -> dict[str, str]:
    """The official files' MD5 sums, taken from torchvision's own CIFAR10 class."""
    from torchvision.datasets import CIFAR10

    sums = {name: md5 for name, md5 in CIFAR10.train_list + CIFAR10.test_list}
    sums[CIFAR10.meta["filename"]] = CIFAR10.meta["md5"]
    return sums


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def default_data_dir() -> Path:
    """The book's ``data/`` folder: ``<repository root>/data`` inside a checkout, else ``./data``."""
    return book_root() / "data"


def _check_folder(folder: Path) -> tuple[Optional[CifarFolder], str]:
    """Return (the verified folder, "") or (None, why it does not qualify)."""
    if not folder.is_dir():
        return None, "no such folder"
    names = TRAIN_FILES + TEST_FILES + [META_FILE]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        return None, f"missing {', '.join(missing)}"
    for kind, sums in (("official", official_md5()), ("sample", SAMPLE_MD5)):
        if all(_md5(folder / n) == sums[n] for n in names):
            return CifarFolder(folder, kind), ""
    wrong = [n for n in names if _md5(folder / n) not in (official_md5()[n], SAMPLE_MD5[n])]
    return None, (
        f"corrupt or unknown files (MD5 matches neither the official CIFAR-10 nor the sample): {', '.join(wrong)}; "
        "replace them with fresh copies"
    )


def _candidates(root: Optional[PathLike]) -> list[tuple[str, Path]]:
    """The folders to look in, in order, each with where its name came from."""
    places: list[tuple[str, Path]] = []
    if root is not None:
        places.append(("root argument", Path(root).expanduser().resolve()))
    elif os.environ.get(DATA_ENV):  # a relative path is taken from the current folder (a notebook's: chapters/)
        places.append((f"${DATA_ENV}", Path(os.environ[DATA_ENV]).expanduser().resolve()))
    places.append(("data/ folder", default_data_dir()))
    return places


def locate_cifar10(root: Optional[PathLike] = None) -> tuple[Optional[CifarFolder], list[str]]:
    """Look for a verified CIFAR-10 copy without downloading.

    Returns ``(folder or None, report)``: ``report`` has one line per place looked at
    and why it did not qualify.
    """
    report: list[str] = []
    for origin, base in _candidates(root):
        for folder in (base / OFFICIAL, base / SAMPLE, base):
            found, why = _check_folder(folder)
            if found:
                return found, report
            report.append(f"{folder} ({origin}): {why}")
    return None, report


def _download(data_dir: Path) -> str:
    """Download the official CIFAR-10 into ``data_dir`` with torchvision; return "" or why it failed.

    Refuses, rather than overwriting, when ``data_dir`` already holds a
    ``cifar-10-batches-py`` folder (it failed verification) or an archive that does
    not verify.
    """
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import check_integrity

    extracted, archive = data_dir / OFFICIAL, data_dir / CIFAR10.filename
    if extracted.exists():
        return f"not downloading: {extracted} exists but failed verification; move it aside (nothing is deleted for you)"
    if archive.exists() and not check_integrity(str(archive), CIFAR10.tgz_md5):
        return f"not downloading: {archive} exists but is corrupt; move it aside (nothing is deleted for you)"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        CIFAR10(root=str(data_dir), train=False, download=True)
    except Exception as err:  # offline, proxy, disk full: all reported the same way
        return f"download into {data_dir} failed: {type(err).__name__}: {err}"
    return ""


def _read_batch(path: Path) -> tuple[np.ndarray, list[int]]:
    with open(path, "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    return entry["data"], list(entry["labels"])


class Cifar10(Dataset):
    """CIFAR-10 images and labels in memory; item ``i`` is ``(image (3, 32, 32) float in [0, 1], label)``.

    ``data`` is the uint8 tensor (n, 3, 32, 32), ``targets`` the int64 labels (n,),
    ``classes`` the ten class names, ``source`` the folder they were read from.
    """

    def __init__(self, data: Tensor, targets: Tensor, classes: list[str], source: CifarFolder) -> None:
        self.data, self.targets, self.classes, self.source = data, targets, classes, source

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.data[index].float() / 255, int(self.targets[index])

    def images(self) -> Tensor:
        """All images as one float tensor (n, 3, 32, 32) in [0, 1], as ``ToTensor()`` would give."""
        return self.data.float() / 255


def load_cifar10(
    train: bool = False,
    n: Optional[int] = None,
    root: Optional[PathLike] = None,
    download: bool = True,
    full: bool = False,
) -> Cifar10:
    """Load the book's CIFAR-10 test images (or training images), optionally only the first ``n``.

    The book's images are the same from the official dataset and from the offline sample:
    the first 846 test images, or the first 932 images of each of the five training batches
    in order (4,660). With ``full=True`` every image of the official dataset is returned
    (10,000 test or 50,000 training images); the sample cannot provide that.

    Looks in ``root`` (or ``$NORMBOOK_DATA``), then ``data/``, then downloads the official
    dataset into ``data/`` when ``download`` is True.

    Raises ``CifarNotFoundError`` listing every place looked at and how to fix it,
    ``TypeError`` when ``n`` or ``full`` has the wrong type, and ``ValueError`` when ``n``
    asks for more images than there are or ``full=True`` finds only the sample. A relative
    ``root`` or ``$NORMBOOK_DATA`` is taken from the current folder (in a notebook, its own
    folder ``chapters/``).
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, numbers.Integral)):
        raise TypeError(f"n must be a whole number of images (an int) or None for all of them, got {n!r} ({type(n).__name__})")
    if not isinstance(full, bool):
        raise TypeError(f"full must be True (every image of the official dataset) or False (the book's images), got {full!r}")
    folder, report = locate_cifar10(root)
    if folder is None and download:
        why = _download(default_data_dir())
        if why:
            report.append(why)
        else:
            folder, more = locate_cifar10(root)
            report += more
    if folder is None:
        lines = "\n".join(f"  - {line}" for line in report)
        tried = "" if download else "\n  - download: not attempted (download=False)"
        raise CifarNotFoundError(f"CIFAR-10 not found. Looked in:\n{lines}{tried}\n{_HOW_TO_FIX}")
    if full and folder.kind != "official":
        raise ValueError(
            f"full=True needs the official CIFAR-10, but the copy found is the {folder.kind} at {folder.path}; "
            f"go online (load_cifar10 then downloads it into data/) or point {DATA_ENV} at a folder holding '{OFFICIAL}', "
            "or use full=False for the book's images"
        )
    with open(folder.path / META_FILE, "rb") as f:
        classes = list(pickle.load(f, encoding="latin1")["label_names"])
    keep = None if full else (BOOK_TRAIN_PER_BATCH if train else BOOK_TEST)  # images kept from each batch
    parts = [_read_batch(folder.path / name) for name in (TRAIN_FILES if train else TEST_FILES)]
    pixels = np.concatenate([p[0][:keep] for p in parts])
    labels = [label for p in parts for label in p[1][:keep]]
    if n is not None:
        if not 0 < n <= len(labels):
            which = ("all the " if full else "the book's ") + ("training" if train else "test")
            raise ValueError(f"n must be in 1..{len(labels)}: there are {len(labels)} of {which} images "
                             f"(in the {folder.kind} copy at {folder.path}), got n={n}")
        pixels, labels = pixels[:n], labels[:n]
    data = torch.from_numpy(pixels.reshape(-1, 3, 32, 32).copy())
    return Cifar10(data, torch.tensor(labels, dtype=torch.int64), classes, folder)
