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


def start_logger(tmp_path: Path, name: str = "logs_11271600", **overrides):
    """A real model at 32 px and a started VisualDL logger writing ``tmp_path/name``; a graph file
    is put there first, so no exporter starts. Returns (state, logger); end with ``on_train_end``."""
    from seghw.config import build_config
    from seghw.train.observers.visualdl_logger import VisualDLLogger
    from seghw.train.runner import build

    cfg = build_config("cpu-demo", log_root=str(tmp_path), image_size=32, static_graph=False, **overrides)
    run_dir = tmp_path / name
    run_dir.mkdir()
    (run_dir / "vdlgraph.0000000001.log").write_text("{}")
    state = build(cfg, run_dir, "cpu", steps_per_epoch=4)
    vdl = VisualDLLogger(run_dir, log_every_steps=1)
    vdl.on_train_start(state)
    return state, vdl


def bare_state(tmp_path: Path):
    """A run's state without a model: what the stats writer and the progress output read."""
    from seghw.config import build_config
    from seghw.train.state import RunState

    state = RunState(config=build_config("cpu-demo", epochs=2), run_dir=tmp_path / "logs_11272200", device="cpu",
                     steps_per_epoch=3, total_parameters=123)
    state.data_info = {"train_images": 8, "val_images": 2, "skipped": 0}
    return state


def step_result(**values):
    from seghw.train.state import StepResult

    fields = {"loss": 0.5, "parts": {}, "lr": 1e-3, "grad_norm": 1.0, "batch_size": 4, "step_seconds": 0.1,
              "data_wait_seconds": 0.0}
    return StepResult(**{**fields, **values})


def epoch_result(**values):
    from seghw.train.state import EpochResult

    fields = {"train_loss": 0.5, "val_loss": 0.6, "lr": 1e-3, "grad_norm": 1.0, "param_norm": 10.0,
              "epoch_duration": 2.0, "samples_per_sec": 8.0, "data_wait_share": 0.1,
              "quality": {"psnr": 20.0, "ssim": 0.5}, "parts": {"l1_hole": 0.1}}
    return EpochResult(**{**fields, **values})
