"""A trainer killed together with its rq worker (a killed container, ``kill -9``, a crash) leaves its
job "started" in Redis. When the trainer role comes back it queues that run again with ``--resume``:
the run goes on by itself from its last checkpoint, one continuous series in VisualDL."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import psutil
import pytest

from stack_helpers import LocalStack, read_stats, wait_until
from trainer_helpers import vdl_steps

pytestmark = pytest.mark.slow


@pytest.fixture
def stack(tmp_path):
    s = LocalStack(tmp_path, MONITOR_INTERVAL="1")
    yield s
    s.cleanup()


def _trainer_role(stack: LocalStack) -> psutil.Process:
    for p in stack.processes():
        if os.getsid(p.pid) == p.pid and "serve trainer" in " ".join(p.cmdline()):
            return p
    raise AssertionError("no trainer role")


def test_a_run_whose_trainer_was_killed_resumes_by_itself(stack: LocalStack, tmp_path: Path):
    stack.seghw("stack", "up", check=True)
    fast = tmp_path / "fast.json"
    fast.write_text(json.dumps({"stats_seconds": 0.05}))
    sub = stack.seghw("stack", "submit", "--preset", "cpu-demo", "--synthetic", "48", "--image-size", "32",
                      "--batch-size", "4", "--epochs", "8", "--log-every-steps", "1", "--config", str(fast),
                      check=True)
    run_dir = Path(sub.stdout.split("folder:")[1].split()[0])

    def mid_epoch_after_a_checkpoint():
        s = read_stats(run_dir) or {}
        if s.get("status") not in (None, "queued", "running"):
            raise AssertionError(f"{run_dir.name} ended {s['status']} before the kill\n{stack.log_tail()}")
        return (s.get("status") == "running" and s.get("last_checkpoint") and s.get("steps_per_epoch")
                and s["global_step"] % s["steps_per_epoch"] >= 2)

    wait_until(mid_epoch_after_a_checkpoint, 180, every=0.05, what=f"{run_dir.name} mid-epoch")
    killed_at = read_stats(run_dir)["global_step"]
    role = _trainer_role(stack)
    group = [role, *role.children(recursive=True)]
    for p in group:  # the worker, its work horse and the training, at once
        p.send_signal(signal.SIGKILL)
    psutil.wait_procs(group, timeout=30)
    assert (read_stats(run_dir) or {}).get("status") == "running"  # nobody could write anything else

    # The supervisor stops the other roles when one dies; the next `up` brings the trainer back.
    wait_until(lambda: not stack.seghw("stack", "status").stderr.startswith("local stack: up"), 60,
               what="the stack to go down after its trainer died")
    stack.seghw("stack", "up", check=True)
    log = wait_until(lambda: (t := (stack.dir / "stack.log").read_text()) and "queued again to resume" in t
                     and t, 60, what=f"the trainer to resume {run_dir.name}\n{stack.log_tail()}")
    assert f"{run_dir.name} was running when its trainer died" in log

    wait_until(lambda: (read_stats(run_dir) or {}).get("status") == "finished", 240,
               what=f"{run_dir.name} to finish\n{stack.log_tail()}")
    resumed = re.search(r"resumed from \S+ \(epoch (\d+), step (\d+)\)", (stack.dir / "stack.log").read_text())
    assert resumed and 0 < int(resumed.group(2)) <= killed_at, stack.log_tail()
    steps = vdl_steps(run_dir)  # one records file
    assert steps["Loss/Train"] == list(range(1, 9))
    iters = steps["Iter/Loss"]
    assert iters == sorted(set(iters)), "per-step points repeat after the resume"
    assert len(list(stack.log_root.glob("logs_*"))) == 1
