"""normbook.checks.processes: local process groups for the checks and for notebook-defined functions, each
process leaving without teardown."""

import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp

from normbook.checks import ddp_running_stats
from normbook.checks.processes import run_in_processes, spawn

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


def _all_reduce_rank(rank, init, offset, label):
    """A self-contained rank function for run_in_processes: its own imports, a gloo group, one all-reduce."""
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=3)
    total = torch.tensor([float(rank)]) + offset
    dist.all_reduce(total)
    dist.destroy_process_group()
    return {"rank": rank, "total": total, "label": label}


def _fails_on_rank_1(rank, init):
    if rank == 1:
        raise RuntimeError("rank 1 says no")
    return rank


def test_run_in_processes_runs_a_function_from_its_source_in_every_rank():
    results = run_in_processes(_all_reduce_rank, 3, torch.tensor([10.0]), "x")
    assert [r["rank"] for r in results] == [0, 1, 2] and [r["label"] for r in results] == ["x"] * 3
    for r in results:  # (0 + 10) + (1 + 10) + (2 + 10)
        torch.testing.assert_close(r["total"], torch.tensor([33.0]))


def test_run_in_processes_reports_a_failing_rank():
    with pytest.raises(RuntimeError, match=r"_fails_on_rank_1 failed in 1 of 2 processes; rank 1 exited(.|\n)*rank 1 says no"):
        run_in_processes(_fails_on_rank_1, 2)


def test_run_in_processes_rejects_what_it_cannot_run():
    with pytest.raises(TypeError, match="defined with def"):
        run_in_processes(lambda rank, init: rank, 2)
    with pytest.raises(ValueError, match="expected world >= 1"):
        run_in_processes(_fails_on_rank_1, 0)
    namespace = {}
    exec("def made_up(rank, init):\n    return rank\n", namespace)
    with pytest.raises(ValueError, match="the source of made_up cannot be read"):
        run_in_processes(namespace["made_up"], 1)


def test_chapter_7_imports_run_in_processes_from_the_ddp_check():
    assert ddp_running_stats.run_in_processes is run_in_processes
