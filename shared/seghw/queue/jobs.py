"""The training job that the trainer role's rq worker runs: ``seghw train`` as a supervised child.

The job runs in rq's work horse. A stop request reaches the child as SIGTERM (the trainer then
checkpoints and ends ``stopped``) from two sources: the worker's own SIGTERM (forwarded to the horse,
see ``seghw.roles.trainer``) and the Redis key ``seghw:stop:<run_id>`` that ``seghw stop`` sets.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from seghw.stack.settings import stop_key
from seghw.stats import FINAL_STATUSES

POLL_SECONDS = 1.0


class TrainingFailed(RuntimeError):
    """``seghw train`` ended with an error; rq records the job as failed."""


class _Supervisor:
    """Stop state of the work horse: set from a signal handler, read by the job loop."""

    def __init__(self) -> None:
        self.stop_reason: str | None = None
        self.child: subprocess.Popen | None = None
        self.signalled = False

    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self.forward()

    def forward(self) -> None:
        child = self.child
        if child is not None and not self.signalled and child.poll() is None:
            self.signalled = True
            try:
                child.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass


SUPERVISOR = _Supervisor()


def on_sigterm(signum: int, frame: Any) -> None:
    """The work horse's SIGTERM handler (installed right after the fork)."""
    SUPERVISOR.request_stop("the trainer role is shutting down")


def _log(run_id: str, message: str) -> None:
    print(f"[seghw trainer] {run_id}: {message}", flush=True)


def _stop_requested(conn: Any, run_id: str, first: bool = False) -> bool:
    """Whether ``seghw stop`` asked for this run; also tells the monitor that its trainer lives."""
    import redis

    from seghw.monitor import store

    try:
        store.mark_trainer_alive(conn, run_id, socket.gethostname(), first=first)
        return bool(conn.exists(stop_key(run_id)))
    except (redis.RedisError, OSError):
        # Redis restarting must not end a training run: check again on the next tick.
        return False


def _trainer_gone(conn: Any, run_id: str) -> None:
    import redis

    from seghw.monitor import store

    try:
        conn.delete(store.trainer_key(run_id))
    except (redis.RedisError, OSError):
        pass


def train_command(run_dir: str, train_args: list[str]) -> list[str]:
    return [sys.executable, "-m", "seghw.cli", "train", *train_args, "--run-dir", run_dir]


def run_training(run_id: str, run_dir: str, train_args: list[str]) -> dict[str, Any]:
    """rq job: run ``seghw train ARGS --run-dir RUN_DIR`` until it ends; forward stop requests."""
    from rq import get_current_job

    job = get_current_job()
    conn = job.connection if job is not None else None
    sup = SUPERVISOR
    if conn is not None and _stop_requested(conn, run_id, first=True):
        sup.request_stop("stop requested before the run started")
    if sup.stop_reason is not None:
        _log(run_id, f"not started: {sup.stop_reason}")
        status = _settle(Path(run_dir), None, stopped=True)
        return {"run_id": run_id, "exit_code": None, "status": status}

    cmd = train_command(run_dir, train_args)
    # The child stays in the horse's process group: a cold shutdown (second SIGTERM) kills both.
    sup.child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    _log(run_id, f"started seghw train (pid {sup.child.pid}) in {run_dir}")
    if sup.stop_reason is not None:  # a signal arrived between the check above and the spawn
        sup.forward()
    while True:
        try:
            rc = sup.child.wait(timeout=POLL_SECONDS)
            break
        except subprocess.TimeoutExpired:
            pass
        if conn is not None and _stop_requested(conn, run_id) and not sup.signalled:
            _log(run_id, "stop requested (seghw stop): sending SIGTERM to the trainer")
            sup.request_stop("stop requested")
    if conn is not None:
        _trainer_gone(conn, run_id)
    stopped = sup.signalled
    _log(run_id, f"seghw train ended: {describe_exit(rc)}")
    status = _settle(Path(run_dir), rc, stopped=stopped)
    result = {"run_id": run_id, "exit_code": rc, "status": status}
    if rc != 0 and not (stopped and status == "stopped"):
        raise TrainingFailed(f"run {run_id}: seghw train {describe_exit(rc)} (status {status})")
    return result


def describe_exit(rc: int | None) -> str:
    if rc is None:
        return "did not start"
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exited with code {rc}"


def _settle(run_dir: Path, rc: int | None, stopped: bool) -> str | None:
    """Give the run a final status when the trainer could not write one itself (killed, crashed
    before its first snapshot, stopped while queued). The child has ended: nobody else writes."""
    from seghw.stats import now_iso, read_stats, write_stats

    try:
        doc = read_stats(run_dir)
    except (OSError, ValueError):
        return None
    status = doc.get("status")
    if status in FINAL_STATUSES:
        return status
    if stopped and rc in (None, 0, -signal.SIGTERM, 128 + signal.SIGTERM):
        doc["status"] = "stopped"
        doc["error"] = None
    else:
        doc["status"] = "failed"
        doc["error"] = {
            "type": "TrainerExited",
            "message": f"seghw train {describe_exit(rc)} before writing a final status; "
            f"resume with: seghw submit --resume {run_dir}",
            "at": now_iso(),
        }
    doc["updated_at"] = now_iso()
    write_stats(run_dir, doc)
    return doc["status"]


def child_pid() -> int | None:
    child = SUPERVISOR.child
    return child.pid if child is not None else None

