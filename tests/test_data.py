"""normbook.data: finding, verifying and reading CIFAR-10 (official layout and the offline sample)."""

import os
import shutil
from pathlib import Path

import pytest
import torch

from normbook import data as D

SAMPLE_ROOT = Path(os.environ.get(D.DATA_ENV) or Path(__file__).resolve().parents[2] / "shared" / "data").absolute()
SAMPLE = SAMPLE_ROOT / D.SAMPLE
FIRST_TEST_LABELS = [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]  # from the sample's README

pytestmark = pytest.mark.skipif(not SAMPLE.is_dir(), reason=f"the CIFAR-10 sample is not at {SAMPLE}")


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Run from an empty book checkout in tmp_path with no NORMBOOK_DATA and downloads failing offline."""
    book = tmp_path / "book"
    (book / "chapters").mkdir(parents=True)
    (book / "_config.yml").write_text("title: t\n")
    (book / "_toc.yml").write_text("root: intro\n")
    monkeypatch.chdir(book / "chapters")
    monkeypatch.delenv(D.DATA_ENV, raising=False)
    calls = []
    from torchvision.datasets import CIFAR10

    class Offline(CIFAR10):  # keeps torchvision's file names and sums; the download fails as offline
        def __init__(self, root, train=True, download=False, **kwargs):
            calls.append(root)
            raise RuntimeError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr("torchvision.datasets.CIFAR10", Offline)
    return book, calls


def _copy_sample(dest: Path) -> Path:
    shutil.copytree(SAMPLE, dest)
    for f in dest.iterdir():
        f.chmod(0o644)
    return dest


def test_reads_the_sample_from_the_environment_variable(monkeypatch):
    monkeypatch.setenv(D.DATA_ENV, str(SAMPLE_ROOT))
    test = D.load_cifar10(train=False, download=False)
    assert test.source.kind == "sample" and len(test) == 846
    assert test.targets[:10].tolist() == FIRST_TEST_LABELS
    assert test.classes[3] == "cat" and test.classes[8] == "ship"
    image, label = test[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32 and label == 3
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    train = D.load_cifar10(train=True, download=False)
    assert len(train) == 5 * 932 and train.data.dtype == torch.uint8


def test_first_n_and_too_many(monkeypatch):
    monkeypatch.setenv(D.DATA_ENV, str(SAMPLE_ROOT))
    five = D.load_cifar10(n=5, download=False)
    assert len(five) == 5 and torch.equal(five.images(), D.load_cifar10(download=False).images()[:5])
    with pytest.raises(ValueError, match=r"n must be in 1\.\.846: the sample copy .* has 846 test images, got n=1000"):
        D.load_cifar10(n=1000, download=False)


@pytest.mark.parametrize("n", [2.0, True, "5"])
def test_n_must_be_an_int(monkeypatch, n):
    monkeypatch.setenv(D.DATA_ENV, str(SAMPLE_ROOT))
    with pytest.raises(TypeError, match=r"n must be a whole number of images \(an int\) or None"):
        D.load_cifar10(n=n, download=False)


def test_a_relative_environment_path_is_taken_from_the_current_folder(isolated, monkeypatch):
    book, _ = isolated  # the current folder is book/chapters, as for a notebook's kernel
    _copy_sample(book / "elsewhere" / D.SAMPLE)
    monkeypatch.setenv(D.DATA_ENV, "../elsewhere")
    assert D.load_cifar10(n=2, download=False).source.path == book / "elsewhere" / D.SAMPLE
    monkeypatch.setenv(D.DATA_ENV, "../nowhere")
    with pytest.raises(D.CifarNotFoundError) as err:
        D.load_cifar10(n=2, download=False)
    assert f"{book / 'nowhere' / D.OFFICIAL} ($NORMBOOK_DATA): no such folder" in str(err.value)


def test_argument_beats_environment_and_data_dir_is_searched(isolated, monkeypatch):
    book, _ = isolated
    monkeypatch.setenv(D.DATA_ENV, str(book / "nowhere"))
    assert D.load_cifar10(n=3, root=SAMPLE_ROOT, download=False).source.path == SAMPLE
    _copy_sample(book / "data" / D.SAMPLE)
    monkeypatch.delenv(D.DATA_ENV)
    found = D.load_cifar10(n=3, download=False)
    assert found.source.path == book / "data" / D.SAMPLE and found.targets.tolist() == FIRST_TEST_LABELS[:3]


def test_official_layout_gives_the_same_first_images(isolated, monkeypatch):
    """The official code path (torchvision's MD5 list) reads the same pixels as the sample.

    The full dataset cannot be downloaded here, so torchvision's official sums are
    replaced by the sample's for this test: what is exercised is the official folder
    name, the torchvision-sourced check and the reading, not the sums themselves.
    """
    book, _ = isolated
    official = _copy_sample(book / "data" / D.OFFICIAL)
    monkeypatch.setattr(D, "official_md5", lambda: dict(D.SAMPLE_MD5))
    from_official = D.load_cifar10(n=20, download=False)
    assert from_official.source == D.CifarFolder(official, "official")
    from_sample = D.load_cifar10(n=20, root=SAMPLE_ROOT, download=False)
    assert torch.equal(from_official.data, from_sample.data)
    assert torch.equal(from_official.targets, from_sample.targets)


def test_official_md5_comes_from_torchvision():
    from torchvision.datasets import CIFAR10

    sums = D.official_md5()
    assert sums["test_batch"] == CIFAR10.test_list[0][1]
    assert set(sums) == set(D.SAMPLE_MD5)


def test_missing_everywhere_lists_every_place_and_the_fix(isolated, monkeypatch):
    book, calls = isolated
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
    _, calls = isolated
    with pytest.raises(D.CifarNotFoundError, match="download: not attempted"):
        D.load_cifar10(download=False)
    assert calls == []


def test_corrupt_file_is_reported_and_left_alone(isolated):
    book, _ = isolated
    copy = _copy_sample(book / "data" / D.SAMPLE)
    batch = copy / "test_batch"
    raw = bytearray(batch.read_bytes())
    raw[-10] ^= 0xFF
    batch.write_bytes(bytes(raw))
    with pytest.raises(D.CifarNotFoundError, match=r"corrupt or unknown files .*: test_batch"):
        D.load_cifar10(download=False)
    assert batch.read_bytes() == bytes(raw)  # nothing repaired, replaced or deleted


def test_download_never_overwrites_files_in_data(isolated):
    book, calls = isolated
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
