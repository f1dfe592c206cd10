"""Observers in process: the checkpoint is written off the training thread, behind the records."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import psutil
import pytest

from seghw import checkpoint
from seghw.config import build_config
from seghw.graph_export import cached_graph_file, start_export
from seghw.model import model_settings
from seghw.train.observers.checkpointer import Checkpointer
from seghw.train.observers.visualdl_logger import VisualDLLogger
from seghw.train.runner import build
from seghw.train.state import StepResult

from trainer_helpers import start_logger, step_result, vdl_steps, wait_for


@pytest.fixture
def run(tmp_path):
    state, vdl = start_logger(tmp_path, keep_last=3)
    yield state, vdl
    vdl.on_train_end(state)


def _step(state) -> StepResult:
    state.global_step += 1
    state.step_in_epoch += 1
    return step_result()


def test_a_checkpoint_is_written_behind_the_records_while_training_goes_on(run):
    state, vdl = run
    gate = threading.Event()
    vdl.after_records(lambda: gate.wait(30))  # the writer thread is busy with earlier records
    vdl.on_step_end(state, _step(state))
    vdl.on_step_end(state, _step(state))
    saved = {k: v.numpy().copy() for k, v in state.model.state_dict().items()}

    Checkpointer(after_records=vdl.after_records).save(state)
    seen: list[list[int]] = []
    vdl.after_records(lambda: seen.append(vdl_steps(state.run_dir).get("Iter/Loss", [])))
    # The save returned at once: nothing on disk yet, and the stats do not name a checkpoint.
    assert checkpoint.latest_checkpoint(state.run_dir) is None
    assert state.last_checkpoint is None
    # Training goes on and changes the weights before the file is written.
    for p in state.model.parameters():
        p.set_value(p.numpy() + 1.0)

    gate.set()
    vdl.flush()
    assert seen == [[1, 2]]  # every record queued before is on disk when a queued write runs
    payload = checkpoint.load(state.run_dir)
    assert payload["global_step"] == 2
    for name, value in saved.items():
        np.testing.assert_array_equal(np.asarray(payload["model"][name]), value)
    assert Path(state.last_checkpoint["path"]).is_file()
    assert state.last_checkpoint["global_step"] == 2


def test_a_failed_checkpoint_write_stops_the_run_at_the_next_save(run):
    state, vdl = run
    (state.run_dir / "checkpoints").write_text("a file where the checkpoint folder should be")
    saver = Checkpointer(after_records=vdl.after_records)
    saver.save(state)
    vdl.on_step_end(state, _step(state))  # records queued behind the failing write
    vdl._queue.join()
    with pytest.raises(RuntimeError, match="background write failed: .*checkpoints"):
        saver.save(state)
    assert "Iter/Loss" not in vdl_steps(state.run_dir)  # nothing after the failure was written


def test_without_a_writer_thread_the_checkpoint_is_written_at_once(tmp_path):
    cfg = build_config("cpu-demo", log_root=str(tmp_path), image_size=32, static_graph=False)
    state = build(cfg, tmp_path / "logs_11271601", "cpu", steps_per_epoch=4)
    Checkpointer().save(state)
    assert Path(state.last_checkpoint["path"]).is_file()


def test_the_graph_exporter_runs_below_the_trainer_priority(tmp_path):
    proc = start_export(tmp_path, {"base_channels": 4, "depth": 2}, 32)
    try:
        mine = psutil.Process().nice()
        assert wait_for(lambda: psutil.Process(proc.pid).nice() >= mine + 10, 30, "the exporter to lower its priority")
    finally:
        proc.wait(120)
    assert proc.returncode == 0
    assert list(tmp_path.glob("vdlgraph.*.log"))


def test_a_model_graph_is_exported_once_then_copied_from_the_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("SEGHW_CACHE_DIR", str(cache))
    cfg = build_config("cpu-demo", log_root=str(tmp_path), image_size=32, static_graph=False)
    cached = cached_graph_file(cache, model_settings(cfg), cfg.image_size)

    def start_run(name: str):
        run_dir = tmp_path / name
        run_dir.mkdir()
        state = build(cfg, run_dir, "cpu", steps_per_epoch=4)
        vdl = VisualDLLogger(run_dir, log_every_steps=1)
        vdl.on_train_start(state)
        return run_dir, state, vdl

    first, state, vdl = start_run("logs_11271602")
    vdl.on_train_end(state)  # waits for the exporter
    exported = cached.stat()
    second, state, vdl = start_run("logs_11271603")
    copied = list(second.glob("vdlgraph.*.log"))  # there before any exporter could have finished
    vdl.on_train_end(state)
    assert len(copied) == 1
    assert (cached.stat().st_ino, cached.stat().st_mtime_ns) == (exported.st_ino, exported.st_mtime_ns)
    graph = copied[0].read_bytes()
    assert graph == next(first.glob("vdlgraph.*.log")).read_bytes() == cached.read_bytes()
    assert {"conv2d", "sigmoid", "pixel_shuffle"} <= {n["type"] for n in json.loads(graph)["nodes"]}
    # Another input size or any other model setting is another graph.
    model = model_settings(cfg)
    assert cached_graph_file(cache, model, 64) != cached
    for changed in ({"depth": cfg.depth + 1}, {"patch_stem": not cfg.patch_stem}, {"fill": "paper"},
                    {"context": True}, {"base_channels": cfg.base_channels * 2}):
        assert cached_graph_file(cache, {**model, **changed}, cfg.image_size) != cached, changed


def test_the_graph_is_the_runs_own_model_context_branch_and_all(tmp_path):
    # The Graphs tab of a run with the context branch shows it (an average pool at the bottleneck).
    plain = {"base_channels": 4, "depth": 2, "patch_stem": True, "fill": "bounded", "context": False}
    graphs = {}
    for context in (False, True):
        out = tmp_path / f"context_{context}"
        out.mkdir()
        proc = start_export(out, {**plain, "context": context}, 32)
        assert proc.wait(120) == 0, proc.stderr.read()
        nodes = json.loads(next(out.glob("vdlgraph.*.log")).read_bytes())["nodes"]
        graphs[context] = [n["type"] for n in nodes]
    assert graphs[True].count("conv2d") == graphs[False].count("conv2d") + 2
    assert "pool2d" in graphs[True]


def test_an_unusable_cache_entry_costs_an_export_not_the_graph(tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    monkeypatch.setenv("SEGHW_CACHE_DIR", str(cache))
    cfg = build_config("cpu-demo", log_root=str(tmp_path), image_size=32, static_graph=False)
    cached = cached_graph_file(cache, model_settings(cfg), cfg.image_size)
    cached.mkdir(parents=True)  # neither readable nor replaceable as a file
    run_dir = tmp_path / "logs_11271604"
    run_dir.mkdir()
    state = build(cfg, run_dir, "cpu", steps_per_epoch=4)
    vdl = VisualDLLogger(run_dir, log_every_steps=1)
    vdl.on_train_start(state)
    vdl.on_train_end(state)  # waits for the exporter
    graphs = list(run_dir.glob("vdlgraph.*.log"))
    assert len(graphs) == 1
    assert "conv2d" in {n["type"] for n in json.loads(graphs[0].read_bytes())["nodes"]}
    assert state.faults.count == 0
    assert "graph" not in capsys.readouterr().err
    assert cached.is_dir()
