"""``seghw status`` as a user runs it: a subprocess reading a real Redis."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seghw import connection
from seghw.monitor import collect, store
from seghw.monitor.health import HealthConfig
from seghw.monitor.status_view import JSON_RUN_KEYS

SEGHW = str(Path(sys.executable).parent / "seghw")
CFG = HealthConfig(interval=1)


def status(*args: str, env: dict | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([SEGHW, "status", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


@pytest.fixture
def collected(redis_server, write_run):
    """Collect the runs written so far: ``collected()``."""
    conn = connection.connect()

    def run() -> None:
        collect.collect_once(conn, write_run.root, CFG)

    yield run
    conn.close()


def test_json_contents_and_exit_0_when_healthy(collected, write_run):
    write_run("logs_11270700", status="finished", epochs_done=10)
    write_run("logs_11270745", now=time.time() + 60)
    collected()
    res = status("--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["schema"] == "seghw.status/1" and doc["exit_code"] == 0
    assert doc["latest"] == "logs_11270745" and doc["monitor"]["stale"] is False
    assert "s3cret-pw" not in res.stdout and doc["source"].startswith("redis://127.0.0.1:")
    runs = {r["run_id"]: r for r in doc["runs"]}
    assert set(runs) == {"logs_11270700", "logs_11270745"}
    for r in doc["runs"]:
        assert tuple(r) == JSON_RUN_KEYS  # stable keys, stable order
    live = runs["logs_11270745"]
    assert (live["state"], live["health"], live["level"], live["epoch"], live["total_epochs"]) == (
        "running", "ok", "ok", 2, 10)
    assert live["train_loss"] == pytest.approx(0.5) and live["eta_s"] == pytest.approx(40.0)
    assert live["progress"] == pytest.approx(0.2) and 0 <= live["age_s"] < 30
    assert live["loss_history"] == [[1, 1.0, 1.1], [2, 0.5, 0.55]]


def test_table_shows_every_column(collected, write_run):
    write_run()
    collected()
    res = status()
    assert res.returncode == 0, res.stderr
    for column in ("run", "state", "health", "epoch", "step", "train loss", "val loss", "lr", "grad norm",
                   "epoch time", "img/s", "ETA", "updated", "loss"):
        assert column in res.stdout
    assert "logs_11270745 *" in res.stdout and "2/10" in res.stdout and "20/100" in res.stdout
    assert "█" in res.stdout  # the loss sparkline


def test_exit_1_on_a_warning(collected, write_run):
    flat = [{"epoch": e, "global_step": e * 10, "train_loss": 1.0, "val_loss": 1.0} for e in range(1, 9)]
    write_run(history=flat)
    collected()
    res = status("--json")
    assert res.returncode == 1
    assert json.loads(res.stdout)["runs"][0]["health"] == "plateau"


def test_exit_1_on_an_unhealthy_run(collected, write_run):
    write_run("logs_11270700", status="finished", epochs_done=10)
    write_run("logs_11270745", status="failed", error={"type": "MemoryError", "message": "out of memory"})
    collected()
    res = status()
    assert res.returncode == 1
    assert "failed" in res.stdout and "out of memory" in res.stdout


def test_run_selection(collected, write_run):
    write_run("logs_11270700", status="failed", error={"type": "E", "message": "boom"})
    write_run("logs_11270745", now=time.time() + 60)
    collected()
    latest = status("--run", "latest", "--json")
    assert latest.returncode == 0  # the failed older run is not part of it
    assert [r["run_id"] for r in json.loads(latest.stdout)["runs"]] == ["logs_11270745"]
    one = status("--run", "logs_11270700", "--json")
    assert one.returncode == 1 and [r["run_id"] for r in json.loads(one.stdout)["runs"]] == ["logs_11270700"]
    unknown = status("--run", "logs_01010000")
    assert unknown.returncode == 2 and "no run 'logs_01010000'" in unknown.stdout


def test_exit_2_without_data(redis_server):
    res = status()
    assert res.returncode == 2
    assert "no run health in Redis" in res.stderr and "seghw serve monitor" in res.stderr


def test_stale_monitor_is_a_warning(collected, write_run, redis_server):
    write_run()
    collected()
    redis_server.client().delete(store.COLLECT)  # as if the monitor stopped collecting long ago
    res = status()
    assert res.returncode == 1 and "monitor is not collecting" in res.stdout


def test_exit_2_when_redis_unreachable_one_line_no_password(redis_server):
    port = redis_server.port
    redis_server.stop()
    res = status(env={"REDIS_URL": f"redis://:hunter2-secret@127.0.0.1:{port}/0"})
    assert res.returncode == 2
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "REDIS_URL" in lines[0]
    assert "hunter2" not in res.stderr and "Traceback" not in res.stderr
    as_json = status("--json", env={"REDIS_URL": f"redis://:hunter2-secret@127.0.0.1:{port}/0"})
    assert as_json.returncode == 2 and json.loads(as_json.stdout)["exit_code"] == 2
    assert "hunter2" not in as_json.stdout + as_json.stderr


def test_exit_2_on_a_wrong_password(redis_server):
    res = status(env={"REDIS_URL": f"redis://:not-the-password@127.0.0.1:{redis_server.port}/0"})
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and "not-the-password" not in res.stderr


def test_answers_without_importing_anything_heavy(collected, write_run):
    # How fast it answers is measured by `make bench` (section status); what keeps it fast is that
    # this path imports neither typer nor pydantic nor anything that training needs.
    write_run()
    collected()
    res = subprocess.run([sys.executable, "-X", "importtime", "-m", "seghw.cli", "status"], capture_output=True,
                         text=True, timeout=30, env={**os.environ})
    assert res.returncode == 0, res.stderr[-2000:]
    assert "logs_11270745" in res.stdout
    modules = {line.split("|")[-1].strip().split(".")[0] for line in res.stderr.splitlines() if "|" in line}
    assert "seghw" in modules, "importtime lists the modules"
    heavy = {"paddle", "rq", "numpy", "visualdl", "cv2", "PIL", "psutil", "requests", "typer", "pydantic"}
    assert not modules & heavy, modules & heavy


def test_watch_refreshes_in_place_until_ctrl_c(collected, write_run):
    write_run()
    collected()
    pid, fd = pty.fork()
    if pid == 0:  # the child: seghw status --watch on a terminal
        os.environ["COLUMNS"] = "200"
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # not ignored, as under a backgrounded runner
        os.execv(SEGHW, [SEGHW, "status", "--watch", "--every", "0.3"])
    out = b""
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline and out.count(b"logs_11270745") < 3:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    out += os.read(fd, 65536)
                except OSError:
                    break
        os.kill(pid, signal.SIGINT)
        _, wait_status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    assert out.count(b"logs_11270745") >= 3  # redrawn again and again...
    assert b"\x1b[" in out and b"A" in out  # ...in place (cursor moves up over the old table)
    assert os.waitstatus_to_exitcode(wait_status) == 0


def test_malformed_redis_url_is_one_line_without_the_password():
    res = status(env={"REDIS_URL": "http://:hunter2@example:6379/0"})
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and "REDIS_URL" in res.stderr
    assert "hunter2" not in res.stderr and "Traceback" not in res.stderr
