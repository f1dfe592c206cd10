"""Training runs as the sections make them: in this process (``train_once``) or as users do
(``cli_train``), and the CPU facts that decide which MKL code path to compare."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import time
from pathlib import Path
from typing import Any

from .core import Bench


def demo_config(observers: bool, root: Path, **overrides):
    from seghw.config import build_config

    return build_config("cpu-demo", log_root=str(root), observers=observers, **overrides)


def train_once(cfg, root: Path, around: tuple = ()) -> dict[str, Any]:
    """One in-process run of ``cfg`` (exactly what ``seghw train`` runs, minus start-up).

    ``around``: context managers entered just around ``fit`` (a profiler, a CPU sampler)."""
    from seghw import paths
    from seghw.train.loop import fit
    from seghw.train.runner import observers as make_observers
    from seghw.train.runner import prepare

    run_dir = paths.new_run_dir(root)
    with contextlib.redirect_stdout(io.StringIO()):
        state, train_batches, val_batches = prepare(cfg, run_dir)
        callbacks = make_observers(state, cfg)
        with contextlib.ExitStack() as stack:
            for manager in around:
                stack.enter_context(manager)
            t0 = time.perf_counter()
            fit(state, train_batches, val_batches, callbacks, lambda: False)
            seconds = time.perf_counter() - t0
    images = state.global_step * cfg.batch_size
    return {
        "run_dir": run_dir,
        "seconds": seconds,
        "images": images,
        "wall_rate": images / seconds,
        # The trainer's own rate (optimizer steps only: no validation, no epoch-end work) in the last
        # epoch: the first one also traces and builds the static graph, a start-up cost.
        "step_rate": [h["samples_per_sec"] for h in state.history if h.get("samples_per_sec")][-1],
        "data_wait": [h["data_wait_share"] for h in state.history if h.get("data_wait_share") is not None],
        "steps_per_epoch": state.steps_per_epoch,
    }


def run_folder(stdout: str) -> Path:
    """The run folder ``seghw train`` names on its first line."""
    return Path(stdout.splitlines()[0].split("run folder:", 1)[1].strip())


def cli_train(b: Bench, args: list[str], root: Path, env: dict[str, str] | None = None) -> tuple[Path, dict]:
    """``seghw train ARGS --log-root ROOT`` as users run it; returns its run folder and stats document."""
    argv = [b.seghw, "train", *args, "--log-root", str(root)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env or b.env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-1500:]}")
    run_dir = run_folder(proc.stdout)
    return run_dir, json.loads((run_dir / "training_stats.json").read_text())


def tiny_run(b: Bench) -> Path:
    """A real run with a checkpoint and a stats file, when no measurement has made one yet."""
    from seghw import checkpoint, paths

    for run in reversed(paths.list_runs(b.runs_root)):
        if checkpoint.latest_checkpoint(run):
            return run
    cfg = demo_config(True, b.runs_root, synthetic=16, image_size=32, epochs=1, batch_size=4)
    return train_once(cfg, b.runs_root)["run_dir"]


def forced_avx2_is_safe() -> bool:
    from seghw.device import runs_mkl_avx2_path

    try:
        return runs_mkl_avx2_path(Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace"))
    except OSError:  # not Linux, or no /proc
        return False
