"""Chapter 3's claims about TensorBoard that need a second process, so the notebook states them and this file checks.

- Two runs written into one folder are one run. TensorBoard's Python reader (``EventAccumulator``, what
  ``normbook.tensorboard.read_scalars`` uses) keeps both values at every step; the TensorBoard app's default fast
  loader, the Rust data server, drops every value at step s or later when a value for step s arrives, so the second
  run's step 0 wipes out the first run (the data server comes with the pinned tensorboard).
- ``SummaryWriter`` writes through a queue served by a daemon thread: a script that ends without ``close()`` may lose
  the events still queued; the same script with ``close()`` keeps every event. Whether a fast disk wins the race
  depends on the machine, so the test makes the disk slow (0.2 s per event): the loss is then certain.
"""

import subprocess
import sys
import time

import pytest

from normbook import tensorboard as tb

WRITE_TWO_RUNS = """
import sys
from torch.utils.tensorboard import SummaryWriter
for run in (0, 1):
    with SummaryWriter(sys.argv[1]) as writer:
        for step in range(3):
            writer.add_scalar("run", run, step)
"""


def test_two_runs_in_one_folder(tmp_path):
    folder = tmp_path / "logs" / "one-folder"
    # a separate process, like the note's script run twice
    subprocess.run([sys.executable, "-c", WRITE_TWO_RUNS, str(folder)], check=True, timeout=120)
    assert len(list(folder.iterdir())) == 2, "one event file per writer"
    # the Python reader: two values at every step
    assert tb.read_scalars(folder)["run"] == [(0, 0.0), (0, 1.0), (1, 0.0), (1, 1.0), (2, 0.0), (2, 1.0)]
    # the app's default fast loader: the second run alone
    assert _fast_loader_scalars(folder.parent, run="one-folder", tag="run") == [(0, 1.0), (1, 1.0), (2, 1.0)]


def _fast_loader_scalars(logdir, run, tag):
    """(step, value) of one time series as TensorBoard's Rust data server loads it (``--load_fast``)."""
    import grpc  # a dependency of tensorboard, in the pins
    from tensorboard.data import grpc_provider, server_ingester
    from tensorboard.data.proto import data_provider_pb2

    try:
        binary = server_ingester.get_server_binary()
    except server_ingester.NoDataServerError as err:  # tensorboard-data-server is in the pins: a broken install
        pytest.fail(f"no TensorBoard data server here ({err}): install requirements.txt")
    port_file = logdir / "port"
    server = subprocess.Popen([binary.path, f"--logdir={logdir}", "--reload=once", "--port=0",
                               f"--port-file={port_file}", "--die-after-stdin"], stdin=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().endswith("\n")):
            assert server.poll() is None and time.monotonic() < deadline, "the data server did not start"
            time.sleep(0.1)
        stub = grpc_provider.make_stub(grpc.insecure_channel(f"localhost:{int(port_file.read_text())}"))
        request = data_provider_pb2.ReadScalarsRequest()
        request.plugin_filter.plugin_name = "scalars"
        request.run_tag_filter.runs.names.append(run)
        request.run_tag_filter.tags.names.append(tag)
        request.downsample.num_points = 1000
        while True:  # --reload=once: empty until its one load has finished
            response = stub.ReadScalars(request, timeout=10)
            points = [(step, value) for r in response.runs if r.run_name == run for t in r.tags if t.tag_name == tag
                      for step, value in zip(t.data.step, t.data.value)]
            if points or time.monotonic() > deadline:
                return points
            time.sleep(0.2)
    finally:
        server.stdin.close()
        server.terminate()
        server.wait(timeout=30)


WRITE_IMAGES = """
import sys
import time
import torch
from torch.utils.tensorboard import SummaryWriter
from tensorboard.summary.writer.record_writer import RecordWriter
gen = torch.Generator().manual_seed(0)
write = RecordWriter.write
for folder in sys.argv[1:]:
    if not folder.endswith("closed"):  # a slow disk (0.2 s per event): the writer thread falls behind
        RecordWriter.write = lambda self, data: (time.sleep(0.2), write(self, data))[1]
    writer = SummaryWriter(folder)
    for step in range(25):
        writer.add_images("input", torch.rand(16, 3, 32, 32, generator=gen), step)
    if folder.endswith("closed"):
        writer.close()
# the script ends with the last writer still open
"""


def test_a_script_that_ends_without_close_may_lose_queued_events(tmp_path):
    closed, left_open = tmp_path / "closed", tmp_path / "left-open"
    subprocess.run([sys.executable, "-c", WRITE_IMAGES, str(closed), str(left_open)], check=True, timeout=300)
    assert [step for step, _ in tb.read_images(closed)["input"]] == list(range(25))
    stored = [step for step, _ in tb.read_images(left_open)["input"]]
    # the first steps made it; the queued ones (max_queue=10, plus one being written) died with the daemon thread
    # (all of them unless the interpreter's exit took as long as writing 11 events, 2.2 s)
    assert stored == list(range(len(stored))) and 25 - 11 <= len(stored) < 25
