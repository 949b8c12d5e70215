"""normbook.data: finding, verifying and reading CIFAR-10 (official layout and the offline sample)."""

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from normbook import data as D

FIRST_TEST_LABELS = [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]  # from the sample's README
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
# A made-up "official" copy: more images per batch than the book keeps, so the book's subset is a real cut.
FAKE_PER_BATCH, FAKE_TEST = D.BOOK_TRAIN_PER_BATCH + 9, D.BOOK_TEST + 7


def _write_batch(path: Path, pixels: np.ndarray, labels: list[int]) -> None:
    entry = {"batch_label": path.name, "labels": labels, "data": pixels,
             "filenames": [f"{path.name}_{i}.png" for i in range(len(labels))]}
    path.write_bytes(pickle.dumps(entry, protocol=4))


def _write_copy(folder: Path, per_batch: int, n_test: int, test_labels: list[int]) -> dict[str, str]:
    """Write a CIFAR-10 python-layout copy of seeded random images (the first test labels given); return its MD5s.

    A copy with fewer images per batch holds the first images of the bigger one, as the real sample does.
    """
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    (folder / D.META_FILE).write_bytes(pickle.dumps({"label_names": CLASSES, "num_vis": 3072}, protocol=4))
    for name, size in [(f, FAKE_PER_BATCH) for f in D.TRAIN_FILES] + [("test_batch", FAKE_TEST)]:
        pixels = rng.integers(0, 256, (size, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size).tolist()
        if name == "test_batch":
            labels[:len(test_labels)] = test_labels
        keep = n_test if name == "test_batch" else per_batch
        _write_batch(folder / name, pixels[:keep], labels[:keep])
    return {f.name: D._md5(f) for f in folder.iterdir()}


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Run from an empty book checkout in tmp_path with no NORMBOOK_DATA and downloads failing offline.

    Returns (book folder, download calls, a made-up official copy, a made-up sample copy): the MD5 tables
    are those of the made-up copies, which sit outside the book; copy them in with ``_copy``.
    """
    book = tmp_path / "book"
    (book / "chapters").mkdir(parents=True)
    (book / "_config.yml").write_text("title: t\n")
    (book / "_toc.yml").write_text("root: intro\n")
    official, sample = tmp_path / "made-up-official" / D.OFFICIAL, tmp_path / "made-up-sample" / D.SAMPLE
    official_sums = _write_copy(official, FAKE_PER_BATCH, FAKE_TEST, FIRST_TEST_LABELS)
    sample_sums = _write_copy(sample, D.BOOK_TRAIN_PER_BATCH, D.BOOK_TEST, FIRST_TEST_LABELS)
    monkeypatch.setattr(D, "official_md5", lambda: dict(official_sums))
    monkeypatch.setattr(D, "SAMPLE_MD5", sample_sums)
    monkeypatch.chdir(book / "chapters")
    monkeypatch.delenv(D.DATA_ENV, raising=False)
    calls = []
    from torchvision.datasets import CIFAR10

    class Offline(CIFAR10):  # keeps torchvision's file names and sums; the download fails as offline
        def __init__(self, root, train=True, download=False, **kwargs):
            calls.append(root)
            raise RuntimeError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr("torchvision.datasets.CIFAR10", Offline)
    return book, calls, official, sample


def _copy(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest)
    return dest


def test_the_real_copy_gives_the_books_images():
    """The copy `make test` uses (NORMBOOK_DATA, data/, or the download): the book's 846 test and 4,660 training images.

    No copy found is a failure, not a skip: the notebooks need one too.
    """
    test = D.load_cifar10(train=False)
    assert len(test) == D.BOOK_TEST and test.targets[:10].tolist() == FIRST_TEST_LABELS
    assert test.classes == CLASSES
    image, label = test[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32 and label == 3
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    train = D.load_cifar10(train=True)
    assert len(train) == 5 * D.BOOK_TRAIN_PER_BATCH and train.data.dtype == torch.uint8


def test_official_and_sample_give_identical_tensors_for_the_books_images(isolated):
    """The official code path (torchvision's MD5 list, full batches) and the sample give the same tensors."""
    _, _, official, sample = isolated
    for train in (False, True):
        from_official = D.load_cifar10(train=train, root=official.parent, download=False)
        from_sample = D.load_cifar10(train=train, root=sample.parent, download=False)
        assert from_official.source == D.CifarFolder(official, "official")
        assert from_sample.source == D.CifarFolder(sample, "sample")
        assert len(from_official) == (5 * D.BOOK_TRAIN_PER_BATCH if train else D.BOOK_TEST)
        assert torch.equal(from_official.data, from_sample.data)
        assert torch.equal(from_official.targets, from_sample.targets)
    # the training images are the first 932 of each batch, in batch order
    every = D.load_cifar10(train=True, root=official.parent, download=False, full=True)
    book = D.load_cifar10(train=True, root=official.parent, download=False)
    rows = torch.cat([torch.arange(b * FAKE_PER_BATCH, b * FAKE_PER_BATCH + D.BOOK_TRAIN_PER_BATCH) for b in range(5)])
    assert torch.equal(book.data, every.data[rows]) and torch.equal(book.targets, every.targets[rows])


def test_full_gives_every_official_image_and_refuses_the_sample(isolated):
    _, _, official, sample = isolated
    assert len(D.load_cifar10(train=True, root=official.parent, download=False, full=True)) == 5 * FAKE_PER_BATCH
    assert len(D.load_cifar10(train=False, root=official.parent, download=False, full=True)) == FAKE_TEST
    with pytest.raises(ValueError, match=r"full=True needs the official CIFAR-10, but the copy found is the sample at .*use full=False"):
        D.load_cifar10(root=sample.parent, download=False, full=True)
    with pytest.raises(TypeError, match=r"full must be True .* or False"):
        D.load_cifar10(root=official.parent, download=False, full="yes")


def test_reads_the_sample_from_the_environment_variable(isolated, monkeypatch):
    _, _, _, sample = isolated
    monkeypatch.setenv(D.DATA_ENV, str(sample.parent))
    test = D.load_cifar10(train=False, download=False)
    assert test.source == D.CifarFolder(sample, "sample") and len(test) == D.BOOK_TEST
    assert test.targets[:10].tolist() == FIRST_TEST_LABELS and test.classes == CLASSES


def test_first_n_and_too_many(isolated, monkeypatch):
    _, _, official, _ = isolated
    monkeypatch.setenv(D.DATA_ENV, str(official.parent))
    five = D.load_cifar10(n=5, download=False)
    assert len(five) == 5 and torch.equal(five.images(), D.load_cifar10(download=False).images()[:5])
    with pytest.raises(ValueError, match=r"n must be in 1\.\.846: there are 846 of the book's test images \(in the official copy at .*\), got n=847"):
        D.load_cifar10(n=847, download=False)
    assert len(D.load_cifar10(n=847, download=False, full=True)) == 847


@pytest.mark.parametrize("n", [2.0, True, "5"])
def test_n_must_be_an_int(isolated, monkeypatch, n):
    monkeypatch.setenv(D.DATA_ENV, str(isolated[3].parent))
    with pytest.raises(TypeError, match=r"n must be a whole number of images \(an int\) or None"):
        D.load_cifar10(n=n, download=False)


def test_a_relative_environment_path_is_taken_from_the_current_folder(isolated, monkeypatch):
    book, _, _, sample = isolated  # the current folder is book/chapters, as for a notebook's kernel
    _copy(sample, book / "elsewhere" / D.SAMPLE)
    monkeypatch.setenv(D.DATA_ENV, "../elsewhere")
    assert D.load_cifar10(n=2, download=False).source.path == book / "elsewhere" / D.SAMPLE
    monkeypatch.setenv(D.DATA_ENV, "../nowhere")
    with pytest.raises(D.CifarNotFoundError) as err:
        D.load_cifar10(n=2, download=False)
    assert f"{book / 'nowhere' / D.OFFICIAL} ($NORMBOOK_DATA): no such folder" in str(err.value)


def test_argument_beats_environment_and_data_dir_is_searched(isolated, monkeypatch):
    book, _, _, sample = isolated
    monkeypatch.setenv(D.DATA_ENV, str(book / "nowhere"))
    assert D.load_cifar10(n=3, root=sample.parent, download=False).source.path == sample
    _copy(sample, book / "data" / D.SAMPLE)
    monkeypatch.delenv(D.DATA_ENV)
    found = D.load_cifar10(n=3, download=False)
    assert found.source.path == book / "data" / D.SAMPLE and found.targets.tolist() == FIRST_TEST_LABELS[:3]


def test_official_md5_comes_from_torchvision():
    from torchvision.datasets import CIFAR10

    sums = D.official_md5()  # the real one: this test does not use the made-up copies
    assert sums["test_batch"] == CIFAR10.test_list[0][1]
    assert set(sums) == set(D.SAMPLE_MD5)


def test_missing_everywhere_lists_every_place_and_the_fix(isolated, monkeypatch):
    book, calls, _, _ = isolated
    monkeypatch.setenv(D.DATA_ENV, str(book / "offline-copy"))
    with pytest.raises(D.CifarNotFoundError) as info:
        D.load_cifar10()
    message = str(info.value)
    for place in (book / "offline-copy" / D.OFFICIAL, book / "offline-copy" / D.SAMPLE, book / "data" / D.OFFICIAL,
                  book / "data" / D.SAMPLE, book / "data"):
        assert f"{place} (" in message
    assert "$NORMBOOK_DATA" in message and "data/ folder" in message
    assert "download into" in message and "Temporary failure in name resolution" in message
    assert "How to fix" in message and D.DATA_ENV in message
    assert calls == [str(book / "data")]  # the download was tried once, into data/


def test_no_download_when_told_not_to(isolated):
    _, calls, _, _ = isolated
    with pytest.raises(D.CifarNotFoundError, match="download: not attempted"):
        D.load_cifar10(download=False)
    assert calls == []


def test_corrupt_file_is_reported_and_left_alone(isolated):
    book, _, _, sample = isolated
    copy = _copy(sample, book / "data" / D.SAMPLE)
    batch = copy / "test_batch"
    raw = bytearray(batch.read_bytes())
    raw[-10] ^= 0xFF
    batch.write_bytes(bytes(raw))
    with pytest.raises(D.CifarNotFoundError, match=r"corrupt or unknown files .*: test_batch"):
        D.load_cifar10(download=False)
    assert batch.read_bytes() == bytes(raw)  # nothing repaired, replaced or deleted


def test_download_never_overwrites_files_in_data(isolated):
    book, calls, _, _ = isolated
    stale = book / "data" / D.OFFICIAL
    stale.mkdir(parents=True)
    (stale / "data_batch_1").write_bytes(b"user's file")
    with pytest.raises(D.CifarNotFoundError, match="not downloading: .* exists but failed verification; move it aside"):
        D.load_cifar10()
    assert calls == [] and (stale / "data_batch_1").read_bytes() == b"user's file"
    shutil.rmtree(stale)  # the test's own scratch copy
    archive = book / "data" / "cifar-10-python.tar.gz"
    archive.write_bytes(b"half a download")
    with pytest.raises(D.CifarNotFoundError, match="not downloading: .*cifar-10-python.tar.gz exists but is corrupt"):
        D.load_cifar10()
    assert calls == [] and archive.read_bytes() == b"half a download"
