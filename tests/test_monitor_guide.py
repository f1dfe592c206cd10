"""The guide's monitor script, ``python monitor_training.py`` (and ``seghw monitor``), with its flags:
straight from the stats files, no Redis needed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stack_helpers import SEGHW, ctrl_c_works

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "services" / "monitor" / "monitor_training.py"
# No Redis anywhere: the script must not need one.
NO_REDIS = {"REDIS_URL": "redis://127.0.0.1:9/0", "COLUMNS": "200"}


def script(*args: str, cwd: Path, env: dict | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **NO_REDIS, **(env or {})})


@pytest.fixture
def two_runs(write_run):
    now = time.time()
    write_run("logs_11270700", status="finished", epochs_done=10, now=now - 600)
    write_run("logs_11270745", now=now)
    return write_run.root


def test_no_flag_quick_status_of_every_run(two_runs):
    # Run from the script's own folder, the log root from the environment as in the containers.
    res = script(cwd=SCRIPT.parent, env={"SEGHW_LOG_ROOT": str(two_runs)})
    assert res.returncode == 0, res.stderr
    assert "logs_11270700" in res.stdout and "logs_11270745 *" in res.stdout
    assert "finished" in res.stdout and "running" in res.stdout
    assert "logs_11270745: last epochs" in res.stdout  # the newest run's epochs


def test_default_log_root_is_models_in_the_working_directory(two_runs, tmp_path):
    # The monitor image runs it from its working directory, where ./models is the log root.
    app = tmp_path / "app"
    app.mkdir()
    shutil.copy(SCRIPT, app / "monitor_training.py")
    shutil.copytree(two_runs, app / "models")
    res = subprocess.run([sys.executable, "monitor_training.py"], cwd=app, capture_output=True, text=True,
                         timeout=30, env={**os.environ, **NO_REDIS, "SEGHW_LOG_ROOT": ""})
    assert res.returncode == 0, res.stderr
    assert "logs_11270745" in res.stdout and "logs_11270700" in res.stdout


@pytest.mark.parametrize("flag", ["--log_dir", "--log-dir"])
def test_log_dir_selects_one_run(two_runs, flag):
    res = script(flag, str(two_runs / "logs_11270700"), cwd=SCRIPT.parent)
    assert res.returncode == 0, res.stderr
    assert "logs_11270700" in res.stdout and "logs_11270745" not in res.stdout


def test_log_dir_given_a_log_root_picks_the_newest_run(two_runs):
    res = script("--log_dir", str(two_runs), cwd=SCRIPT.parent)
    assert res.returncode == 0, res.stderr
    assert "logs_11270745" in res.stdout and "logs_11270700" not in res.stdout


def test_unhealthy_run_and_missing_folder_exit_codes(write_run, tmp_path):
    write_run(status="failed", error={"type": "MemoryError", "message": "out of memory"})
    res = script("--log_dir", str(write_run.root), cwd=SCRIPT.parent)
    assert res.returncode == 1 and "out of memory" in res.stdout
    missing = script("--log_dir", str(tmp_path / "nope"), cwd=SCRIPT.parent)
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"monitor_training.py: error: log directory {tmp_path / 'nope'} does not exist"
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = script("--log_dir", str(empty), cwd=SCRIPT.parent)
    assert nothing.returncode == 2 and "no training_stats.json found" in nothing.stdout


def test_corrupt_stats_file_is_reported_not_fatal(two_runs):
    (two_runs / "logs_11270700" / "training_stats.json").write_text("{")
    res = script(cwd=SCRIPT.parent, env={"SEGHW_LOG_ROOT": str(two_runs)})
    assert res.returncode == 0, res.stderr
    assert "logs_11270700: training_stats.json corrupt JSON" in res.stdout


def test_monitor_mode_keeps_printing_until_ctrl_c(two_runs):
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "--monitor", "--interval", "0.3"], cwd=SCRIPT.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **NO_REDIS, "SEGHW_LOG_ROOT": str(two_runs)},
                            preexec_fn=ctrl_c_works)
    # Stopped once it has printed three times, however long a busy machine takes to start it.
    seen, deadline = [], time.monotonic() + 60
    while sum("logs_11270745 *" in line for line in seen) < 3 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=20)
    out = "".join(seen) + rest
    assert proc.returncode == 0, err
    assert out.count("logs_11270745 *") >= 3  # printed again and again
    assert out.rstrip().endswith("stopped") and "Traceback" not in err


def test_monitor_mode_stopped_by_timeout_exits_with_the_status(two_runs):
    # Watching for a fixed time with `timeout -s INT`: it signals the monitor and then its whole
    # process group, so the stop arrives twice; the second must not turn the exit code into 130.
    # 4 s: a busy machine may take 2 to start Python and the monitor, and a stop before that is not this test's.
    res = subprocess.run(["timeout", "--preserve-status", "-s", "INT", "4", sys.executable, str(SCRIPT),
                          "--monitor", "--interval", "0.3"], cwd=SCRIPT.parent, capture_output=True,
                         text=True, timeout=30, env={**os.environ, **NO_REDIS, "SEGHW_LOG_ROOT": str(two_runs)},
                         preexec_fn=ctrl_c_works)
    assert res.returncode == 0, (res.returncode, res.stdout[-500:], res.stderr[-2000:])
    assert res.stdout.rstrip().endswith("stopped") and "Traceback" not in res.stderr


CTRL_C_WHILE_IMPORTING = """
import os, runpy, signal, sys

class CtrlC:  # pressed while the script imports the project, before its watch loop has started
    def find_spec(self, name, path=None, target=None):
        if name == "seghw.cli.monitor":
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, CtrlC())
sys.argv = [sys.argv[1], "--monitor"]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_ctrl_c_before_the_watch_starts_exits_130_without_a_traceback(two_runs):
    res = subprocess.run([sys.executable, "-c", CTRL_C_WHILE_IMPORTING, str(SCRIPT)], cwd=SCRIPT.parent,
                         capture_output=True, text=True, timeout=30, preexec_fn=ctrl_c_works,
                         env={**os.environ, **NO_REDIS, "SEGHW_LOG_ROOT": str(two_runs)})
    assert (res.returncode, res.stdout, res.stderr) == (130, "", "")


def test_seghw_monitor_is_the_same_command(two_runs):
    res = subprocess.run([SEGHW, "monitor", "--log-dir", str(two_runs / "logs_11270745")], capture_output=True,
                         text=True, timeout=30, env={**os.environ, **NO_REDIS})
    assert res.returncode == 0, res.stderr
    assert "logs_11270745" in res.stdout and "logs_11270700" not in res.stdout
