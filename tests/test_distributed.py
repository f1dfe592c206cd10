"""Data-parallel training: the CPU path (--nproc, gloo) runs the code the GPU path (--gpus) runs."""

from __future__ import annotations

import signal
import sys

import numpy as np
import pytest

from seghw.data.dataset import PairSet
from seghw.errors import ConfigError
from seghw.flops import PEAK_ENV, train_step_flops
from seghw.train import distributed

from trainer_helpers import TINY, only_run, read_stats, run_seghw, start_seghw, vdl_steps, wait_for


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def test_launch_command_runs_the_same_training_once_per_device(tmp_path):
    argv = ["train", "--preset", "cpu-demo", "--gpus", "0,1", "--epochs", "3"]
    cmd = distributed.launch_command(argv, tmp_path, distributed.device_args("0,1", None))
    assert cmd[:3] == [sys.executable, "-m", "paddle.distributed.launch"]
    assert cmd[3:5] == ["--gpus", "0,1"]
    worker = cmd[cmd.index("seghw.cli") + 1:]
    assert worker == ["train", "--preset", "cpu-demo", "--epochs", "3", "--run-dir", str(tmp_path)]
    cpu = distributed.launch_command(["train", "--nproc=2"], tmp_path, distributed.device_args(None, 2))
    assert cpu[3:5] == ["--nproc_per_node", "2"] and "--nproc=2" not in cpu


@pytest.mark.parametrize("bad", ["", "a,b", "0,0", "-1"])
def test_bad_gpu_lists_are_named(bad):
    with pytest.raises(ConfigError, match="--gpus"):
        distributed.parse_gpus(bad)


def test_shards_split_the_pairs_without_overlap():
    pairs = PairSet([f"p{i}" for i in range(7)], [np.zeros(1)] * 7, [np.zeros(1)] * 7, [np.zeros(1)] * 7)
    shards = [distributed.shard(pairs, i, 2).names for i in range(2)]
    assert shards == [["p0", "p2", "p4", "p6"], ["p1", "p3", "p5"]]
    assert distributed.shard(pairs, 0, 1) is pairs


def test_two_processes_train_one_run(tmp_path, cache, monkeypatch):
    root = tmp_path / "models"
    monkeypatch.setenv(PEAK_ENV, "500")  # the ceiling, as the launcher hands it to its processes
    proc = run_seghw(["train", *TINY, "--synthetic", "32", "--epochs", "2", "--log-root", str(root), "--nproc", "2"],
                     cache, timeout=240, check=True)
    run_dir = only_run(root)
    stats = read_stats(run_dir)
    assert stats["status"] == "finished" and stats["data"]["processes"] == 2
    # 29 training pairs, 14 per process, batch 4: 3 steps per epoch on each rank
    assert stats["global_step"] == 6
    assert "2 processes (data parallel)" in proc.stdout
    assert vdl_steps(run_dir)["Iter/Loss"] == list(range(1, 7))  # rank 0 alone writes records
    assert len(list(run_dir.glob("vdlrecords.*.log"))) == 1
    rank1 = (run_dir / distributed.LOG_DIR / "workerlog.1").read_text()
    assert "finished: 2 epochs, 6 steps" in rank1
    # Utilization divides the run's rate (both processes) by the ceiling measured before they started.
    last = stats["history"][-1]
    cfg = stats["config"]
    flops = train_step_flops(cfg["base_channels"], cfg["depth"], cfg["image_size"], cfg["patch_stem"], cfg["context"])
    assert last["flops_utilization"] == pytest.approx(last["samples_per_sec"] * flops / 500e9, rel=1e-6)


def test_sigterm_stops_every_process_at_the_same_step(tmp_path, cache):
    root = tmp_path / "models"
    proc = start_seghw(["train", *TINY, "--synthetic", "32", "--epochs", "40", "--log-root", str(root),
                        "--nproc", "2"], cache)
    run_dir = wait_for(lambda: next(iter(root.glob("logs_*")), None), 120, "run folder")
    wait_for(lambda: (run_dir / "training_stats.json").exists() and read_stats(run_dir)["global_step"] >= 4,
             180, "a few steps")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    stats = read_stats(run_dir)
    assert stats["status"] == "stopped", out
    assert stats["last_checkpoint"]["global_step"] == stats["global_step"]
    rank1 = (run_dir / distributed.LOG_DIR / "workerlog.1").read_text()
    assert f"stopped at epoch {stats['epoch']}, step {stats['global_step']}" in rank1
    assert proc.returncode == 0, out
    run_seghw(["train", "--resume", str(run_dir), "--epochs", str(stats["epoch"] + 2), "--nproc", "2"], cache,
              timeout=240, check=True)
    stats = read_stats(run_dir)
    assert stats["status"] == "finished"
    assert vdl_steps(run_dir)["Iter/Loss"] == list(range(1, stats["global_step"] + 1))


def test_a_bad_process_count_is_named_before_anything_is_written(tmp_path, cache):
    proc = run_seghw(["train", *TINY, "--log-root", str(tmp_path), "--nproc", "-1"], cache)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("seghw: error: invalid --nproc -1")
    assert not list(tmp_path.glob("logs_*"))


def test_gpus_without_cuda_is_a_one_line_error(tmp_path, cache):
    proc = run_seghw(["train", *TINY, "--log-root", str(tmp_path), "--gpus", "0,1"], cache)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("seghw: error: invalid --gpus '0,1'")
    assert not list(tmp_path.glob("logs_*"))


def test_rates_count_the_images_of_every_process(tmp_path, cache, monkeypatch):
    """Speed/Samples_per_sec and the FLOP utilization are the run's, not one process's."""
    from seghw.config import build_config
    from seghw.train.loop import fit
    from seghw.train.observers.base import Observer
    from seghw.train.runner import prepare

    monkeypatch.setenv("SEGHW_CACHE_DIR", str(cache))
    cfg = build_config("cpu-demo", log_root=str(tmp_path), synthetic=16, synthetic_size=48, image_size=32,
                       batch_size=4, epochs=1, static_graph=False, observers=False)
    state, train_batches, _ = prepare(cfg, tmp_path / "logs_11271700")

    class Steps(Observer):
        def __init__(self):
            self.images = []

        def on_step_end(self, state, step):
            self.images.append(step.batch_size)

    seen = Steps()
    monkeypatch.setenv("PADDLE_TRAINERS_NUM", "2")  # as the launcher tells each of two processes
    fit(state, train_batches, None, seen, lambda: False)
    assert seen.images == [8] * state.steps_per_epoch
