"""End to end, as a user meets the product without Docker: ``seghw stack up`` on free ports, queue
a training run, watch it in ``seghw stack status``, in VisualDL's API and in a real browser, kill a
second run's trainer with SIGKILL, see the stack report it, resume it, check that its curves are
continuous, and take the stack down without leaving a process or a port behind."""

from __future__ import annotations

import json
import os
import re
import signal
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psutil
import pytest

from browser_helpers import sees_scalar_chart
from stack_helpers import LocalStack, alive, port_free, read_stats, wait_until
from trainer_helpers import IMAGE_TAGS, SEED_TAGS, vdl_steps

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
TINY = ["--preset", "cpu-demo", "--synthetic", "16", "--image-size", "32", "--epochs", "2", "--batch-size", "4"]


@pytest.fixture
def stack(tmp_path):
    # The monitor collects every second so that status follows the runs closely.
    s = LocalStack(tmp_path, MONITOR_INTERVAL="1")
    yield s
    s.cleanup()


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())


def _status(stack: LocalStack) -> tuple[int, dict]:
    proc = stack.seghw("stack", "status", "--json")
    assert proc.stdout.strip(), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def _run_entry(doc: dict, run_id: str) -> dict | None:
    return next((r for r in doc.get("runs", []) if r["run_id"] == run_id), None)


def _submit(stack: LocalStack, *args: str) -> Path:
    proc = stack.seghw("stack", "submit", *args, check=True)
    m = re.search(r"folder:\s+(\S+)", proc.stdout)
    assert m, proc.stdout
    return Path(m.group(1))


def _wait_status(run_dir: Path, wanted: str, timeout: float, stack: LocalStack) -> dict:
    def check():
        doc = read_stats(run_dir)
        if doc and doc["status"] not in ("queued", "running") and doc["status"] != wanted:
            raise AssertionError(f"{run_dir.name} ended {doc['status']}: {doc.get('error')}\n{stack.log_tail()}")
        return doc if doc and doc["status"] == wanted else None

    return wait_until(check, timeout, every=0.25, what=f"{run_dir.name} {wanted}\n{stack.log_tail()}")


def _visualdl_tags(stack: LocalStack, run_dir: Path) -> dict[str, str]:
    """``{tag: component}`` of one run as VisualDL's HTTP API lists them."""
    data = _get_json(stack.visualdl_url() + "/app/api/tags")["data"]
    prefix = str(run_dir) + "/"
    # The API names a tag "<run folder>/<tag with / as %>".
    return {k[len(prefix):].replace("%", "/"): v for k, v in data.items() if k.startswith(prefix)}


def _browser_sees_loss_train(stack: LocalStack, run_id: str, shot: Path) -> None:
    points = sees_scalar_chart(stack.visualdl_url(), run_id, "Loss/Train", shot)
    assert len(points) == 2, points  # one point per epoch


def _trainer_child(run_dir: Path) -> psutil.Process:
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if "train" in cmd and str(run_dir) in cmd and "seghw.cli" in cmd:
            return p
    raise AssertionError(f"no seghw train process for {run_dir}")


def _assert_continuous(run_dir: Path, epochs: int) -> None:
    steps = vdl_steps(run_dir)  # also asserts a single records file
    for tag in SEED_TAGS + IMAGE_TAGS:
        assert steps.get(tag) == list(range(1, epochs + 1)), f"{tag}: {steps.get(tag)}"
    for tag, seq in steps.items():
        gaps = {b - a for a, b in zip(seq, seq[1:], strict=False)}
        assert len(gaps) <= 1 and all(g > 0 for g in gaps), f"{tag} is not one continuous series: {seq}"


def test_stack_train_watch_kill_resume_and_down(stack: LocalStack, tmp_path: Path):
    started = time.monotonic()
    stack.seghw("stack", "up", check=True)
    everything = stack.processes()

    # 1. A tiny run, queued from the command line, finishes; status says healthy.
    run1 = _submit(stack, *TINY)
    assert run1.parent == stack.log_root
    _wait_status(run1, "finished", 180, stack)

    def finished_in_status():
        code, doc = _status(stack)
        entry = _run_entry(doc, run1.name)
        return (code, doc, entry) if entry and entry["state"] == "finished" else None

    code, doc, entry = wait_until(finished_in_status, 30, what="status to show the finished run")
    assert code == 0, doc
    assert entry["level"] == "ok" and entry["problems"] == []

    # 2. VisualDL's API lists the run, its seed tags and both image tags. Its reader loads new
    # records when the page asks for the component tabs; until its 20 s cache expires a new run is
    # listed under its folder path rather than its display name.
    def listed():
        _get_json(stack.visualdl_url() + "/app/api/component_tabs")
        runs = _get_json(stack.visualdl_url() + "/app/api/runs")["data"]
        return [r for r in runs if r == run1.name or r.endswith("/" + run1.name)]

    assert len(wait_until(listed, 60, what="VisualDL to list the run")) == 1

    def all_tags():
        found = _visualdl_tags(stack, run1)
        return found if all(t in found for t in SEED_TAGS + IMAGE_TAGS) else None

    tags = wait_until(all_tags, 60, what="VisualDL to list every seed and image tag")
    for tag in SEED_TAGS:
        assert tags[tag] == "scalar", tag
    for tag in IMAGE_TAGS:
        assert tags[tag] == "image", tag

    # 3. A browser renders the Loss/Train chart.
    _browser_sees_loss_train(stack, run1.name, ARTIFACTS / "e2e_visualdl_loss_train.png")

    # 4. A longer run; its trainer is killed with SIGKILL in the middle of an epoch.
    fast = tmp_path / "fast.json"
    fast.write_text(json.dumps({"stats_seconds": 0.05}))
    run2 = _submit(stack, "--preset", "cpu-demo", "--synthetic", "48", "--image-size", "32", "--batch-size", "4",
                   "--epochs", "4", "--log-every-steps", "1", "--config", str(fast))

    def mid_epoch():
        s = read_stats(run2)
        if s and s["status"] not in ("queued", "running"):
            raise AssertionError(f"{run2.name} ended {s['status']} before the kill\n{stack.log_tail()}")
        return bool(s and s["status"] == "running" and s["epoch"] >= 1 and s["steps_per_epoch"]
                    and s["global_step"] % s["steps_per_epoch"] >= 2)

    wait_until(mid_epoch, 180, every=0.05, what=f"{run2.name} to reach the middle of an epoch")
    child = _trainer_child(run2)
    child.send_signal(signal.SIGKILL)
    child.wait(30)

    def reported_unhealthy():
        code, doc = _status(stack)
        entry = _run_entry(doc, run2.name)
        bad = entry and entry["state"] != "running" or entry and entry["level"] == "error"
        return (code, entry) if bad else None

    code, entry = wait_until(reported_unhealthy, 60, what="status to report the killed run")
    assert code != 0, entry
    assert entry["level"] == "error"
    assert {entry["state"], entry["health"]} & {"failed", "dead", "stalled"}, entry

    # 5. Resubmitted with --resume it finishes, and every curve is one continuous series.
    resumed = stack.seghw("stack", "submit", "--resume", str(run2), check=True)
    assert "resumed " + run2.name in resumed.stdout
    _wait_status(run2, "finished", 180, stack)
    _assert_continuous(run2, 4)
    assert len(list(stack.log_root.glob("logs_*"))) == 2  # the resume did not make a new run

    # 6. Down: nothing left running, both ports free.
    everything += [p for p in stack.processes() if p not in everything]
    stack.seghw("stack", "down", check=True)
    assert alive(everything) == []
    assert port_free(stack.visualdl_port) and port_free(stack.redis_port)
    assert not any(str(stack.root) in " ".join(p.info["cmdline"] or [])
                   for p in psutil.process_iter(["cmdline"]) if p.pid != os.getpid())
    duration = time.monotonic() - started
    (ARTIFACTS / "e2e_duration.txt").write_text(f"{duration:.1f} s\n")
    assert duration < 240, f"the end-to-end test took {duration:.0f} s"
