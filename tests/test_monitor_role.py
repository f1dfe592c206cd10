"""``seghw serve monitor`` as a real process (rq worker + scheduler) against a real redis-server,
watching real training runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from seghw.atomic import write_json_atomic

from trainer_helpers import wait_for

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
SEGHW = str(BIN / "seghw")
COLLECT_JOB = "seghw.monitor.collect.collect_job"


class Role:
    """One ``seghw serve monitor`` process, its output in a file."""

    def __init__(self, tmp: Path, log_root: Path, interval: float = 1.0, env: dict | None = None, name="role"):
        self.logfile = tmp / f"{name}.log"
        self.proc = subprocess.Popen(
            [SEGHW, "serve", "monitor", "--log-root", str(log_root), "--interval", str(interval)],
            stdout=open(self.logfile, "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
            env={**os.environ, **(env or {})},
        )

    def log(self) -> str:
        return self.logfile.read_text(errors="replace")

    def children(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children()

    def stop(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        for p in [*self.children(), psutil.Process(self.proc.pid)]:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        self.proc.wait()


@pytest.fixture
def roles(tmp_path):
    started: list[Role] = []

    def start(log_root: Path, **kwargs) -> Role:
        role = Role(tmp_path, log_root, name=f"role{len(started)}", **kwargs)
        started.append(role)
        return role

    yield start
    for role in started:
        if role.proc.poll() is None:
            role.kill()


def cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([SEGHW, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200"})


def status_json() -> dict:
    res = cli("status", "--json")
    return json.loads(res.stdout) if res.stdout else {"runs": [], "exit_code": res.returncode}


def run_state(run_id: str) -> dict | None:
    return next((r for r in status_json()["runs"] if r["run_id"] == run_id), None)


def train(log_root: Path, epochs: int) -> subprocess.Popen:
    return subprocess.Popen(
        [SEGHW, "train", "--preset", "cpu-demo", "--synthetic", "16", "--image-size", "32",
         "--epochs", str(epochs), "--log-root", str(log_root)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def first_run_dir(trainer: subprocess.Popen) -> Path:
    line = trainer.stdout.readline()  # "run folder: <path>" comes first
    assert line.startswith("run folder:"), line
    return Path(line.split(":", 1)[1].strip())


def test_role_collects_a_real_training_run(redis_server, roles, tmp_path):
    log_root = tmp_path / "models"
    log_root.mkdir()
    role = roles(log_root)
    wait_for(lambda: cli("health").returncode == 0, 20, "seghw health to report the role alive")

    info = subprocess.run([str(BIN / "rq"), "info", "--url", redis_server.url], capture_output=True, text=True,
                          timeout=30)
    assert info.returncode == 0, info.stderr
    assert "monitor" in info.stdout and "1 workers" in info.stdout, info.stdout

    trainer = train(log_root, epochs=2)
    run_dir = first_run_dir(trainer)
    out, _ = trainer.communicate(timeout=120)
    assert trainer.returncode == 0, out
    done = wait_for(lambda: (r := run_state(run_dir.name)) and r["state"] == "finished" and r, 10,
                    "the finished run in seghw status")
    assert (done["health"], done["epoch"], done["total_epochs"]) == ("finished", 2, 2)
    assert done["train_loss"] is not None and done["psnr"] is not None
    assert cli("status").returncode == 0

    conn = redis_server.client()
    events = [e for _, e in conn.xrange("seghw:events") if e["run_id"] == run_dir.name]
    assert events[-1]["state"] == "finished" and len({e["state"] for e in events}) == len(events)

    # SIGTERM stops worker and scheduler cleanly.
    workers_before = [c.pid for c in role.children()]
    assert role.stop() == 0
    assert not [p for p in workers_before if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert "monitor role: stopped" in role.log()
    assert conn.scard("rq:workers:monitor") == 0 and not conn.exists("seghw:monitor:scheduler")
    health = cli("health")
    assert health.returncode == 1 and "unhealthy" in health.stderr


def test_stalled_then_dead_when_the_trainer_stops_updating(redis_server, roles, tmp_path):
    log_root = tmp_path / "models"
    log_root.mkdir()
    roles(log_root, env={"MONITOR_STALL_MIN_S": "4"})
    trainer = train(log_root, epochs=500)
    try:
        run_dir = first_run_dir(trainer)
        running = wait_for(lambda: (r := run_state(run_dir.name)) and r["state"] == "running" and r, 60,
                           "the run to show as running")
        assert running["health"] == "ok" and running["pid"] == trainer.pid
        trainer.send_signal(signal.SIGSTOP)  # frozen: no more updates
        stalled = wait_for(lambda: (r := run_state(run_dir.name)) and r["health"] == "stalled" and r, 15,
                           "the run to turn stalled")
        assert stalled["level"] == "error" and "no update" in stalled["message"]
        assert cli("status").returncode == 1
        trainer.kill()  # the process is gone while its stats still say running
        trainer.wait()
        dead = wait_for(lambda: (r := run_state(run_dir.name)) and r["health"] == "dead" and r, 10,
                        "the run to turn dead")
        assert f"process {trainer.pid}" in dead["message"]
    finally:
        if trainer.poll() is None:
            trainer.kill()
            trainer.wait()
        trainer.stdout.close()


def _write_running(log_root: Path, name: str, **changes) -> None:
    from datetime import datetime, timezone

    run_dir = log_root / name
    run_dir.mkdir(exist_ok=True)
    now = datetime.now(timezone.utc).isoformat()
    doc = {"schema_version": 1, "run_id": name, "run_dir": str(run_dir), "status": "running", "pid": None,
           "host": "elsewhere", "device": "cpu", "started_at": now, "updated_at": now, "epoch": 1,
           "total_epochs": 5, "global_step": 10, "total_steps": 50, "steps_per_epoch": 10, "config": {},
           "total_parameters": 1, "latest": {"train_loss": 0.5}, "history": [], "best_checkpoint": None,
           "last_checkpoint": None, "data": {"train_images": 1, "val_images": 1, "skipped": 0}, "error": None}
    doc.update(changes)
    write_json_atomic(run_dir / "training_stats.json", doc)


def test_two_roles_do_not_double_the_work_or_the_alerts(redis_server, roles, tmp_path, webhook):
    from rq.cron import get_cron_job_ids

    log_root = tmp_path / "models"
    log_root.mkdir()
    _write_running(log_root, "logs_11270745")
    env = {"ALERT_WEBHOOK_URL": webhook.url}
    a, b = roles(log_root, env=env), roles(log_root, env=env)
    wait_for(lambda: webhook.received, 20, "the first alert")
    conn = redis_server.client()
    raw = redis_server.client(decode=False)
    wait_for(lambda: len(conn.smembers("rq:workers:monitor")) == 2, 20, "both workers")

    t0 = time.time()
    time.sleep(5)
    enqueued = [s for _, s in raw.zrange(f"rq:cron_job:{COLLECT_JOB}:jobs", 0, -1, withscores=True)
                if s >= t0]
    assert 3 <= len(enqueued) <= 7, enqueued  # one scheduler at 1 s, not two
    assert len(get_cron_job_ids(COLLECT_JOB, raw)) >= len(enqueued)

    _write_running(log_root, "logs_11270745", status="finished", epoch=5, global_step=50)
    wait_for(lambda: len(webhook.received) >= 2, 15, "the 'finished' alert")
    time.sleep(3)
    assert [(m["kind"], m["state"]) for m in webhook.received] == [("discovered", "running"),
                                                                  ("transition", "finished")]

    # Stop the leading role: the other one takes over the schedule.
    leader = conn.get("seghw:monitor:scheduler")
    leader_pid = int(leader.split(":")[1])
    lead_role = a if leader_pid in [c.pid for c in a.children()] else b
    other = b if lead_role is a else a
    assert leader_pid in [c.pid for c in lead_role.children()]
    assert lead_role.stop() == 0
    new_leader = wait_for(lambda: (n := conn.get("seghw:monitor:scheduler")) and n != leader and n, 15,
                          "the standby scheduler to take the lead")
    assert int(new_leader.split(":")[1]) in [c.pid for c in other.children()]
    _write_running(log_root, "logs_11270800")
    wait_for(lambda: len(webhook.received) >= 3, 15, "an alert from the remaining role")
    assert other.proc.poll() is None


def test_redis_restart_in_the_middle(redis_server, roles, tmp_path):
    interval = 2.0
    log_root = tmp_path / "models"
    log_root.mkdir()
    _write_running(log_root, "logs_11270745")
    role = roles(log_root, interval=interval)
    wait_for(lambda: run_state("logs_11270745"), 20, "the run in seghw status")
    wait_for(lambda: cli("health").returncode == 0, 20, "a healthy monitor")

    old_pid = redis_server.proc.pid
    redis_server.restart(down_for=3.0)  # comes back empty: no persistence
    back = time.monotonic()
    assert redis_server.proc.pid != old_pid
    wait_for(lambda: run_state("logs_11270745"), 2 * interval + 2, "the status to recover")
    recovered = time.monotonic() - back
    wait_for(lambda: cli("health").returncode == 0, 3 * interval + 5, "the monitor to be healthy again")
    info = subprocess.run([str(BIN / "rq"), "info", "--url", redis_server.url], capture_output=True, text=True,
                          timeout=30)
    assert "1 workers" in info.stdout, info.stdout  # the worker registered itself again

    assert role.proc.poll() is None
    restarts = role.log().count("restarting in")
    assert restarts <= 2, role.log()  # at most a restart per child, no crash loop
    print(f"status recovered {recovered:.1f} s after Redis came back; {restarts} child restart(s)")
    assert role.stop() == 0


def test_health_and_serve_fail_in_one_line(redis_server, tmp_path):
    port = redis_server.port
    redis_server.stop()
    env = {**os.environ, "REDIS_URL": f"redis://:hunter2@127.0.0.1:{port}/0"}
    health = subprocess.run([SEGHW, "health"], capture_output=True, text=True, timeout=30, env=env)
    assert health.returncode == 1 and len(health.stderr.strip().splitlines()) == 1
    assert f"127.0.0.1:{port}" in health.stderr and "hunter2" not in health.stderr
    bad = subprocess.run([SEGHW, "serve", "monitor", "--log-root", str(tmp_path)], capture_output=True, text=True,
                         timeout=30, env={**env, "REDIS_URL": "http://:hunter2@example/0"})
    assert bad.returncode == 2 and "REDIS_URL" in bad.stderr and "hunter2" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
