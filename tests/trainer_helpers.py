"""Helpers for tests that run the real trainer as a subprocess and read its VisualDL records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from visualdl import LogReader

SEGHW = [sys.executable, "-m", "seghw.cli"]
SEED_TAGS = ["Loss/Train", "Loss/Validation", "Learning_Rate", "Model/Gradient_Norm",
             "Model/Parameter_Norm", "Model/Total_Parameters", "Time/Epoch_Duration"]
IMAGE_TAGS = ["Train/Sample", "Prediction/Result"]
# Tiny and quick: 32 px crops of 48 px pages, 16 synthetic pairs, 3 steps per epoch.
TINY = ["--preset", "cpu-demo", "--synthetic", "16", "--synthetic-size", "48", "--image-size", "32",
        "--batch-size", "4", "--num-workers", "1", "--log-every-steps", "1"]


def env_for(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["SEGHW_CACHE_DIR"] = str(cache)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("SEGHW_LOG_ROOT", None)
    return env


def run_seghw(args: list[str], cache: Path, timeout: float = 300, check: bool = False):
    proc = subprocess.run(SEGHW + args, capture_output=True, text=True, timeout=timeout, env=env_for(cache))
    if check and proc.returncode != 0:
        raise AssertionError(f"seghw {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def start_seghw(args: list[str], cache: Path) -> subprocess.Popen:
    return subprocess.Popen(SEGHW + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env_for(cache))


def only_run(log_root: Path) -> Path:
    runs = sorted(p for p in log_root.iterdir() if p.name.startswith("logs_"))
    assert len(runs) == 1, runs
    return runs[0]


def read_stats(run_dir: Path) -> dict:
    return json.loads((run_dir / "training_stats.json").read_text())


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def records_file(run_dir: Path) -> Path:
    files = sorted(run_dir.glob("vdlrecords.*.log"))
    assert len(files) == 1, f"expected one records file, found {files}"
    return files[0]


def vdl_steps(run_dir: Path) -> dict[str, list[int]]:
    """Steps of every scalar, image and histogram tag, as VisualDL's own reader returns them."""
    reader = LogReader(file_path=str(records_file(run_dir)))
    out: dict[str, list[int]] = {}
    for component, tags in reader.get_tags().items():
        if component in ("scalar", "image", "histogram"):
            for tag in tags:
                out[tag] = [int(v.id) for v in reader.get_data(component, tag)]
    return out
