"""normbook.checks.processes: local process groups for the checks, each process leaving without teardown."""

import subprocess
import sys

import pytest
import torch.multiprocessing as mp

from normbook.checks.processes import spawn

LEAVE = """
import atexit
from normbook.checks.processes import leave
atexit.register(lambda: print("teardown ran"))
print("work done", end="")  # unflushed: leave() must flush it
leave()
print("after leave")
"""


def test_leave_exits_zero_after_flushing_and_skips_the_teardown():
    run = subprocess.run([sys.executable, "-c", LEAVE], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0
    assert run.stdout == "work done"  # flushed; neither the atexit handler nor the next line ran


def _sum_ranks(rank, init, queue, world):
    """Worker: each rank all-reduces its rank; rank 0 sends the sum and its init method's scheme."""
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        t = torch.tensor([float(rank)])
        dist.all_reduce(t)
        if rank == 0:
            queue.put((t.item(), init.split(":")[0]))
    finally:
        dist.destroy_process_group()


def _fail_on_rank_1(rank, init, queue):
    if rank == 1:
        raise ValueError("rank 1 failed on purpose")


def _send_nothing(rank, init, queue):
    pass


def test_spawn_runs_every_rank_and_returns_what_rank_0_sent():
    assert spawn(_sum_ranks, 3, 3) == (0.0 + 1.0 + 2.0, "file")


def test_a_failing_rank_raises_its_error():
    with pytest.raises(mp.ProcessRaisedException, match="rank 1 failed on purpose"):
        spawn(_fail_on_rank_1, 2)


def test_no_results_and_a_bad_world_are_errors():
    with pytest.raises(RuntimeError, match="none sent results"):
        spawn(_send_nothing, 2)
    with pytest.raises(ValueError, match="world >= 1"):
        spawn(_send_nothing, 0)
