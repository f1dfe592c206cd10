"""The fault line: a view that cannot be written is noted, counted and training goes on; records,
checkpoints or stats that cannot be written stop the run as failed, the last good checkpoint kept."""

from __future__ import annotations

import io
import itertools
import os
import subprocess

import numpy as np
import pytest

from seghw import checkpoint
from seghw.config import build_config
from seghw.train import runner
from seghw.train.observers.base import ObserverList
from seghw.train.observers.progress import ProgressReporter

from trainer_helpers import (
    SEGHW,
    TINY,
    bare_state,
    env_for,
    epoch_result,
    only_run,
    read_stats,
    records_file,
    run_seghw,
    start_logger,
    step_result,
    vdl_steps,
    wait_for,
)


def notes(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("note: ")]


def test_a_view_that_fails_on_bad_data_is_left_out_noted_once_and_counted(tmp_path, capsys):
    state, vdl = start_logger(tmp_path)
    rgb = np.full((2, 3, 32, 32), 0.5, np.float32)
    # A prediction of another size than its input: the grid cannot be drawn.
    bad = {"image": rgb, "pred": rgb[:, :, :16], "gt": rgb, "pred_mask": rgb[:, :1]}
    try:
        for epoch in (1, 2):
            state.epoch = epoch
            vdl.on_epoch_end(state, epoch_result(preview=bad, train_preview={"image": rgb, "pred": rgb}))
        vdl.flush()
    finally:
        vdl.on_train_end(state)
    steps = vdl_steps(state.run_dir)
    assert "Prediction/Result" not in steps
    assert steps["Train/Sample"] == steps["Loss/Train"] == [1, 2]  # everything else was written
    assert any(tag.startswith("Weights/") for tag in steps)
    [note] = notes(capsys.readouterr().err)
    assert note.startswith("note: VisualDL image Prediction/Result not written: ValueError: ")
    assert note.endswith("; training goes on")
    summary = state.faults.summary()
    assert summary["count"] == 2
    assert [(i["kind"], i["tag"], i["count"]) for i in summary["items"]] == [("image", "Prediction/Result", 2)]


def test_progress_output_to_a_closed_pipe_never_reaches_the_loop(tmp_path, capsys):
    state = bare_state(tmp_path)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader went away, as `seghw train | head` leaves it
    # Unbuffered, so that closing it afterwards has nothing left to flush into the broken pipe.
    with io.TextIOWrapper(io.FileIO(write_end, "w"), encoding="utf-8", write_through=True) as pipe:
        observers = ObserverList([ProgressReporter(line_seconds=0, stream=pipe)])
        observers.on_train_start(state)
        observers.on_epoch_start(state)
        for _ in range(3):
            state.global_step += 1
            observers.on_step_end(state, step_result())
        state.epoch = 1
        observers.on_epoch_end(state, epoch_result())
        observers.on_train_end(state)
    assert state.status == "running"
    summary = state.faults.summary()
    assert summary["count"] == 1 + 3 + 1
    assert {(i["kind"], i["tag"]): i["count"] for i in summary["items"]} == {
        ("progress", "on_train_start"): 1, ("progress", "on_step_end"): 3, ("progress", "on_epoch_end"): 1}
    lines = notes(capsys.readouterr().err)
    assert len(lines) == 3 and all("progress output" in line and "BrokenPipeError" in line for line in lines)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.mark.parametrize("log_every_steps", [1, 100], ids=["lost per-step records", "lost epoch records"])
def test_records_that_cannot_be_written_fail_the_run_and_keep_the_last_good_checkpoint(
        tmp_path, cache, monkeypatch, capsys, log_every_steps):
    monkeypatch.setenv("SEGHW_CACHE_DIR", str(cache))
    cfg = build_config("cpu-demo", log_root=str(tmp_path), synthetic=16, synthetic_size=48, image_size=32,
                       batch_size=4, epochs=2, num_workers=1, log_every_steps=log_every_steps, static_graph=False)
    run_dir = tmp_path / "logs_11272300"
    questions = itertools.count(1)

    def disk_fills_up_in_epoch_two() -> bool:
        # The loop asks once per step (3 per epoch, not at an epoch's last) and once per epoch end:
        # the fourth question comes after the second epoch's first step.
        if next(questions) == 4:
            wait_for(lambda: checkpoint.latest_checkpoint(run_dir), 60, "the first epoch's checkpoint")
            path = records_file(run_dir)
            full = run_dir / "full"
            full.symlink_to("/dev/full")  # every write there fails as on a full disk
            full.replace(path)
        return False

    assert runner.run(cfg, run_dir, stop=disk_fills_up_in_epoch_two) == runner.EXIT_FAILED
    stats = read_stats(run_dir)
    assert stats["status"] == "failed"
    assert f"VisualDL records file {run_dir}" in stats["error"]["message"]
    assert "No space left on device" in stats["error"]["message"]
    assert stats["last_checkpoint"]["epoch"] == 1 and stats["last_checkpoint"]["global_step"] == 3
    assert checkpoint.latest_checkpoint(run_dir).name == checkpoint.checkpoint_name(1, 3)
    assert stats["display_faults"]["count"] == 0  # lost data is not a display fault
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("seghw: training failed: RuntimeError: background write failed: VisualDL records file")


def test_a_closed_stdout_costs_the_progress_output_not_the_run(tmp_path, cache):
    root = tmp_path / "models"
    stderr = tmp_path / "stderr.txt"
    with open(stderr, "w") as err:
        proc = subprocess.Popen(SEGHW + ["train", *TINY, "--epochs", "2", "--log-root", str(root)],
                                stdout=subprocess.PIPE, stderr=err, text=True, env=env_for(cache))
        assert proc.stdout.readline().startswith("run folder: ")
        proc.stdout.close()  # as `seghw train | head -1` does
        assert proc.wait(300) == 0, stderr.read_text()
    stats = read_stats(only_run(root))
    assert stats["status"] == "finished" and stats["epoch"] == 2
    faults = stats["display_faults"]
    assert faults["count"] == 1 and faults["items"][0]["kind"] == "progress"  # later output goes nowhere
    assert "BrokenPipeError" in faults["items"][0]["message"]
    [note] = notes(stderr.read_text())
    assert note.startswith("note: progress output on_") and note.endswith("; training goes on")
    # The count is the run's, not the process's: a resume keeps it.
    run_seghw(["train", "--resume", str(only_run(root)), "--epochs", "3", "--log-root", str(root)], cache,
              check=True)
    stats = read_stats(only_run(root))
    assert stats["status"] == "finished" and stats["epoch"] == 3
    assert stats["display_faults"] == faults
