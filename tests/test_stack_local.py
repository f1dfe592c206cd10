"""The local stack, through the real ``seghw`` command: real Redis, real rq workers, real VisualDL."""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from pathlib import Path

import psutil
import pytest
import redis

from stack_helpers import LocalStack, alive, cmdline, port_free, read_stats, wait_until


@pytest.fixture
def stack(tmp_path):
    s = LocalStack(tmp_path)
    yield s
    s.cleanup()


def _roles(procs: list[psutil.Process]) -> dict[str, psutil.Process]:
    """Role processes: the supervisor starts each Procfile line in its own session."""
    found: dict[str, psutil.Process] = {}
    for p in procs:
        if os.getsid(p.pid) != p.pid:
            continue
        cmd = " ".join(cmdline(p))
        for role, needle in (("redis", "redis-server"), ("trainer", "serve trainer"),
                             ("visualdl", "visualdl --logdir"), ("monitor", "serve monitor")):
            if needle in cmd:
                found.setdefault(role, p)
    return found


def _listen_addrs(procs: list[psutil.Process], port: int) -> set[str]:
    addrs = set()
    for p in procs:
        try:
            for c in p.net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN and c.laddr.port == port:
                    addrs.add(c.laddr.ip)
        except psutil.Error:
            pass
    return addrs


def test_local_stack_up_twice_port_taken_and_down(stack: LocalStack, tmp_path: Path):
    up = stack.seghw("stack", "up", check=True)
    assert f"VisualDL http://127.0.0.1:{stack.visualdl_port}" in up.stdout

    state = stack.state()
    procs = stack.processes()
    roles = _roles(procs)
    assert set(roles) == {"redis", "trainer", "visualdl", "monitor"}, [p.cmdline() for p in procs]

    # Redis answers with the password in the state file, and refuses a client without it.
    url = state["redis_url"]
    assert f"127.0.0.1:{stack.redis_port}" in url
    conn = redis.Redis.from_url(url)
    assert conn.ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=stack.redis_port).ping()
    # The trainer's rq worker listens on queue "train" with a short TTL.
    from rq import Queue, Worker

    workers = Worker.all(queue=Queue("train", connection=conn))
    assert [w.hostname for w in workers] == [socket.gethostname()]
    check = stack.seghw("serve", "trainer", "--check", env={"REDIS_URL": url})
    assert check.returncode == 0, check.stdout + check.stderr

    # VisualDL: /alive gives 204, bound to 127.0.0.1 only, telemetry off.
    with urllib.request.urlopen(stack.visualdl_url() + "/alive", timeout=5) as resp:
        assert resp.status == 204
    assert _listen_addrs(procs, stack.visualdl_port) == {"127.0.0.1"}
    assert "--disable-telemetry" in roles["visualdl"].cmdline()
    assert _listen_addrs(procs, stack.redis_port) == {"127.0.0.1"}

    # Up again: says so, starts nothing.
    again = stack.seghw("stack", "up", check=True)
    assert "already up" in again.stdout
    assert stack.state()["pid"] == state["pid"]
    assert {p.pid for p in stack.processes()} == {p.pid for p in procs}

    # Status of the stack names every role.
    status = stack.seghw("stack", "status")
    assert "local stack: up" in status.stderr and "DOWN" not in status.stderr, status.stderr

    # A second stack on the same VisualDL port: one clear line naming the port and the variable.
    other = LocalStack(tmp_path / "other")
    other.env["VISUALDL_PORT"] = str(stack.visualdl_port)
    taken = other.seghw("stack", "up")
    assert taken.returncode == 2
    lines = taken.stderr.strip().splitlines()
    assert len(lines) == 1, taken.stderr
    assert str(stack.visualdl_port) in lines[0] and "VISUALDL_PORT" in lines[0] and "in use" in lines[0]
    assert not other.state_file.exists()
    # ... and on the Redis port.
    other.env["VISUALDL_PORT"] = str(other.visualdl_port)
    other.env["REDIS_PORT"] = str(stack.redis_port)
    taken = other.seghw("stack", "up")
    assert taken.returncode == 2
    assert str(stack.redis_port) in taken.stderr and "REDIS_PORT" in taken.stderr
    assert "Traceback" not in taken.stderr
    assert not other.state_file.exists()

    # Down: every process it started is gone, both ports are free, nothing else was touched.
    everything = stack.processes()
    down = stack.seghw("stack", "down", check=True)
    assert "stopped the local stack" in down.stdout
    assert alive(everything) == []
    assert port_free(stack.visualdl_port) and port_free(stack.redis_port)
    assert not stack.state_file.exists()
    assert psutil.Process().is_running()

    # Down again, status when down: calm answers.
    assert "not running" in stack.seghw("stack", "down", check=True).stdout
    assert "local stack: down" in stack.seghw("stack", "status").stderr


def test_commands_without_a_stack_say_how_to_start_it(stack: LocalStack):
    for args in (("stack", "submit", "--epochs", "1"), ("stack", "stop", "latest")):
        proc = stack.seghw(*args)
        assert proc.returncode == 2, proc
        assert "not running" in proc.stderr and "make up" in proc.stderr
        assert "Traceback" not in proc.stderr
    forced = stack.seghw("stack", "up", env={"STACK": "compose", "PATH": "/nonexistent"})
    assert forced.returncode == 2 and "no Docker engine answers" in forced.stderr
    wrong = stack.seghw("stack", "up", env={"STACK": "kubernetes"})
    assert wrong.returncode == 2 and "STACK='kubernetes'" in wrong.stderr
    assert not stack.state_file.exists()


LONG = ["--preset", "cpu-demo", "--synthetic", "16", "--image-size", "32", "--batch-size", "4", "--epochs", "500",
        "--num-workers", "0"]


def _submit_and_wait_for_steps(stack: LocalStack) -> Path:
    sub = stack.seghw("stack", "submit", *LONG, check=True)
    run_dir = Path(sub.stdout.split("folder:")[1].split()[0])
    assert run_dir.parent == stack.log_root
    queued = read_stats(run_dir)
    assert queued is not None and queued["status"] in ("queued", "running")
    wait_until(lambda: (read_stats(run_dir) or {}).get("global_step", 0) >= 3, 120,
               what=f"training steps in {run_dir}\n{stack.log_tail()}")
    return run_dir


def _assert_stopped_with_checkpoint(run_dir: Path) -> None:
    doc = read_stats(run_dir)
    assert doc["status"] == "stopped", json.dumps(doc, indent=1)[:2000]
    assert doc["last_checkpoint"] is not None
    assert doc["global_step"] < doc["total_steps"]


def test_stop_and_down_let_the_running_training_checkpoint_and_end_stopped(stack: LocalStack):
    """``stack stop RUN`` (the Redis stop key) and SIGTERM to the trainer role (``stack down``) both
    reach the training child: it checkpoints and ends 'stopped', and its rq job ends too."""
    stack.seghw("stack", "up", check=True)

    first = _submit_and_wait_for_steps(stack)
    stop = stack.seghw("stack", "stop", first.name, check=True)
    assert f"asked {first.name} to stop" in stop.stdout
    wait_until(lambda: (read_stats(first) or {}).get("status") == "stopped", 60,
               what=f"{first.name} to stop\n{stack.log_tail()}")
    _assert_stopped_with_checkpoint(first)

    second = _submit_and_wait_for_steps(stack)
    procs = stack.processes()
    assert len([p for p in procs if "seghw.cli train" in " ".join(cmdline(p))]) == 1
    down = stack.seghw("stack", "down", check=True, timeout=150)
    assert "killed" not in down.stdout, down.stdout  # everything stopped on its own
    _assert_stopped_with_checkpoint(second)
    assert alive(procs) == []
    log = (stack.dir / "stack.log").read_text()
    assert "stop requested (seghw stop)" in log
    assert "asking the running training to checkpoint and stop" in log


def test_trainer_health_check_fails_without_a_worker(stack: LocalStack, redis_server):
    """The trainer's container health check: exit 1 and say why when no worker of this host listens."""
    proc = stack.seghw("serve", "trainer", "--check", env={"REDIS_URL": redis_server.url})
    assert proc.returncode == 1, proc
    assert "no trainer worker" in proc.stdout
    # Redis gone is unhealthy too, exit 1 (Docker reserves 2), in one line naming where it looked.
    redis_server.stop()
    proc = stack.seghw("serve", "trainer", "--check", env={"REDIS_URL": redis_server.url})
    assert proc.returncode == 1, proc
    assert proc.stdout.startswith("Redis unreachable at") and "Traceback" not in proc.stderr, proc


def test_down_after_the_supervisor_was_killed_still_stops_every_role(stack: LocalStack):
    stack.seghw("stack", "up", check=True)
    procs = stack.processes()
    supervisor = procs[0]
    supervisor.kill()
    supervisor.wait(10)
    orphans = alive(procs)
    assert len(orphans) >= 4  # the roles run on without it
    assert "supervisor" in stack.seghw("stack", "status").stderr
    down = stack.seghw("stack", "down", check=True)
    assert "stopped the local stack" in down.stdout
    assert alive(procs) == []
    assert port_free(stack.visualdl_port) and port_free(stack.redis_port)
    # and the next up starts afresh
    assert "local stack up" in stack.seghw("stack", "up", check=True).stdout


def test_a_role_that_fails_at_start_is_named_with_the_log(stack: LocalStack):
    proc = stack.seghw("stack", "up", env={"MONITOR_INTERVAL": "abc"})
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert "monitor exited with code" in last and str(stack.dir / "stack.log") in last, proc.stderr
    assert "MONITOR_INTERVAL" in proc.stderr  # the tail of the log shows the role's own error
    assert not stack.state_file.exists()
    assert port_free(stack.visualdl_port) and port_free(stack.redis_port)


def test_plain_seghw_commands_find_the_local_stack_without_redis_url(tmp_path: Path):
    """After ``make up``, ``seghw status``, ``seghw submit`` and ``seghw stop`` reach the stack's
    password-protected Redis with nothing set, and never print the password."""
    stack = LocalStack(tmp_path)
    stack.dir = tmp_path / ".stack"  # where make up keeps it: .stack in the project folder
    del stack.env["SEGHW_STACK_DIR"]
    try:
        stack.seghw("stack", "up", check=True)
        password = stack.state()["redis_url"].split(":")[2].split("@")[0]
        assert len(password) >= 16

        empty = stack.seghw("status")
        assert "no run health in Redis" in empty.stderr, empty.stderr
        assert f"127.0.0.1:{stack.redis_port}" in empty.stderr

        sub = stack.seghw("submit", *LONG, check=True)
        run_dir = Path(sub.stdout.split("folder:")[1].split()[0])
        wait_until(lambda: (read_stats(run_dir) or {}).get("global_step", 0) >= 2, 120,
                   what=f"training steps in {run_dir}\n{stack.log_tail()}")
        stop = stack.seghw("stop", run_dir.name, check=True)
        assert f"asked {run_dir.name} to stop" in stop.stdout
        wait_until(lambda: (read_stats(run_dir) or {}).get("status") == "stopped", 60,
                   what=f"{run_dir.name} to stop\n{stack.log_tail()}")

        def status_shows_the_run():
            proc = stack.seghw("status", "--json")
            return proc if run_dir.name in proc.stdout else None

        shown = wait_until(status_shows_the_run, 30, what="the run in seghw status")
        assert json.loads(shown.stdout)["exit_code"] in (0, 1)
        outputs = [empty.stdout, empty.stderr, sub.stdout, sub.stderr, stop.stdout, stop.stderr,
                   shown.stdout, shown.stderr, (stack.dir / "stack.log").read_text()]
        assert not [o for o in outputs if password in o]
    finally:
        stack.cleanup()


def test_roles_stop_without_a_traceback_when_redis_went_first(stack: LocalStack):
    """``make down`` can see Redis exit before the rq workers unregister: one line, no traceback."""
    stack.seghw("stack", "up", check=True)
    procs = stack.processes()
    roles = _roles(procs)
    roles["redis"].terminate()  # the supervisor then stops the other roles while Redis is gone
    wait_until(lambda: not alive(procs), 60, what="every role to stop")
    log = (stack.dir / "stack.log").read_text()
    assert "Traceback" not in log, log[-4000:]
    assert log.count("Redis went away before the worker could unregister") == 2  # trainer and monitor
    for role in ("trainer", "monitor"):
        assert f"{role}.1 stopped (rc=0)" in log, log[-3000:]


def test_demo_starts_the_stack_trains_and_shows_the_finished_run(stack: LocalStack):
    demo = stack.seghw("stack", "demo", "--epochs", "2", "--synthetic", "16", "--image-size", "32",
                       "--batch-size", "4", timeout=600, check=True)
    assert "started the local stack" in demo.stdout
    run_id = demo.stdout.split("queued ", 1)[1].split()[0]
    assert read_stats(stack.log_root / run_id)["status"] == "finished"
    status_lines = [line for line in demo.stdout.splitlines() if line.startswith(run_id)]
    assert any("finished" in line and "2/2" in line for line in status_lines), demo.stdout
    assert f"Open {stack.visualdl_url()} in a browser" in demo.stdout and "Traceback" not in demo.stderr
    again = stack.seghw("stack", "demo", "--epochs", "1", "--synthetic", "16", "--image-size", "32",
                        "--batch-size", "4", timeout=600, check=True)
    assert "the local stack is already up" in again.stdout
