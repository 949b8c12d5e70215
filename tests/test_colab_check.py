"""tools/colab_check.py's reading of the origin report that its added cell prints in each Colab-style kernel."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from colab_check import REPORT_TAG, read_report  # noqa: E402

ORIGIN = '{"normbook": "/venv/normbook/__init__.py", "torch": "2.14.1+cu130", "torchvision": "0.29.1"}'


def stdout(*texts: str) -> list[dict]:
    """Stream outputs of a cell, one per message the kernel sent."""
    return [{"output_type": "stream", "name": "stdout", "text": text} for text in texts]


def test_a_report_in_one_message_is_read():
    assert read_report(stdout(f"{REPORT_TAG} {ORIGIN}\n"))["torch"] == "2.14.1+cu130"


def test_a_report_split_over_several_messages_is_read():
    """What broke a run on torch 2.14.1: the tag and the JSON arrived as separate stream messages."""
    split = stdout("other output\n", REPORT_TAG, " ", ORIGIN[:20], ORIGIN[20:] + "\n")
    assert read_report(split)["torchvision"] == "0.29.1"


def test_no_report_or_two_reports_or_stderr_only_is_none():
    assert read_report(stdout("nothing here\n")) is None
    assert read_report(stdout(f"{REPORT_TAG} {ORIGIN}\n", f"{REPORT_TAG} {ORIGIN}\n")) is None
    assert read_report([{"output_type": "stream", "name": "stderr", "text": f"{REPORT_TAG} {ORIGIN}\n"}]) is None
