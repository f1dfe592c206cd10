"""``seghw stack demo``: start the stack, train a short CPU run, show its progress, then its health."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seghw.errors import UserError
from seghw.stats import FINAL_STATUSES


def demo_args(epochs: int, synthetic: int, extra: list[str]) -> list[str]:
    return ["--preset", "cpu-demo", "--synthetic", str(synthetic), "--epochs", str(epochs), *extra]


def follow(run_id: str, read: Callable[[], dict[str, Any] | None], timeout: float,
           poll: float = 1.0) -> dict[str, Any]:
    """Show a progress bar fed by the run's stats until it reaches a final status."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    deadline = time.monotonic() + timeout
    queued_since = time.monotonic()
    doc: dict[str, Any] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
               TimeElapsedColumn())
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(f"{run_id} queued", total=None)
        while True:
            doc = read() or doc
            status = doc.get("status", "queued")
            total = doc.get("total_steps") or None
            latest = doc.get("latest") or {}
            parts = [run_id, status]
            if doc.get("total_epochs") and status != "queued":
                parts.append(f"epoch {doc.get('epoch', 0)}/{doc['total_epochs']}")
            if latest.get("train_loss") is not None:
                parts.append(f"loss {latest['train_loss']:.4f}")
            if latest.get("psnr") is not None:
                parts.append(f"PSNR {latest['psnr']:.1f} dB")
            if status == "queued" and time.monotonic() - queued_since > 60:
                parts.append("(no trainer has taken it yet: make logs)")
            progress.update(task, description=" ".join(parts), total=total,
                            completed=doc.get("global_step") or 0)
            if status in FINAL_STATUSES:
                if status == "finished" and total:
                    progress.update(task, completed=total)
                return doc
            if time.monotonic() > deadline:
                raise UserError(f"run {run_id} did not finish within {timeout:.0f} s (SEGHW_DEMO_TIMEOUT); "
                                "it goes on: make status, make logs")
            time.sleep(poll)


def wait_for_monitor(run_id: str, status: str | None, timeout: float = 30.0) -> None:
    """Give the monitor time to collect the final status, so that the table shown next is current."""
    import subprocess
    import sys

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = subprocess.run([sys.executable, "-m", "seghw.cli", "status", "--json", "--run", run_id],
                              capture_output=True, text=True, check=False)
        try:
            runs = json.loads(done.stdout).get("runs", [])
        except ValueError:
            runs = []
        if any(r.get("run_id") == run_id and r.get("state") == status for r in runs):
            return
        time.sleep(1.0)


def file_reader(run_dir: Path) -> Callable[[], dict[str, Any] | None]:
    from seghw.stats import read_stats

    def read() -> dict[str, Any] | None:
        try:
            return read_stats(run_dir)
        except (OSError, ValueError):
            return None

    return read


def compose_reader(run_dir: str) -> Callable[[], dict[str, Any] | None]:
    from seghw.paths import STATS_FILE
    from seghw.stack import compose

    def read() -> dict[str, Any] | None:
        done = compose.capture(["exec", "-T", "monitor", "cat", f"{run_dir}/{STATS_FILE}"])
        if done.returncode != 0:
            return None
        try:
            return json.loads(done.stdout)
        except ValueError:
            return None

    return read


def timeout() -> float:
    return float(os.environ.get("SEGHW_DEMO_TIMEOUT", "1200"))
