"""The trainer as users run it: real subprocesses, real VisualDL records, tiny sizes."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from seghw.stats import validation_errors

from trainer_helpers import (
    IMAGE_TAGS,
    SEED_TAGS,
    SEGHW,
    TINY,
    env_for,
    only_run,
    read_stats,
    records_file,
    run_seghw,
    start_seghw,
    vdl_steps,
    wait_for,
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def two_epoch_run(tmp_path_factory, cache):
    root = tmp_path_factory.mktemp("models")
    proc = run_seghw(["train", *TINY, "--epochs", "2", "--log-root", str(root)], cache, check=True)
    return only_run(root), proc


def test_first_line_names_the_run_folder(two_epoch_run):
    run_dir, proc = two_epoch_run
    assert proc.stdout.splitlines()[0] == f"run folder: {run_dir}"
    assert run_dir.name.startswith("logs_") and len(run_dir.name) == len("logs_MMDDHHMM")


def test_every_seed_tag_and_image_is_in_visualdl(two_epoch_run):
    run_dir, _ = two_epoch_run
    steps = vdl_steps(run_dir)
    for tag in SEED_TAGS + IMAGE_TAGS:
        assert steps.get(tag) == [1, 2], f"{tag}: {steps.get(tag)}"
    for tag in ("Metrics/PSNR", "Metrics/SSIM", "Speed/Samples_per_sec", "System/Memory_MB",
                "Speed/FLOP_Utilization"):
        assert steps.get(tag) == [1, 2], tag
    # per-iteration curves: every step, under their own tags
    stats = read_stats(run_dir)
    assert steps["Iter/Loss"] == list(range(1, stats["global_step"] + 1))
    assert stats["config"]["synthetic_size"] == 48 and stats["config"]["static_graph"] is True
    assert any(t.startswith("Weights/") for t in steps) and any(t.startswith("Gradients/") for t in steps)
    graph = json.loads(next(run_dir.glob("vdlgraph.*.log")).read_text())  # VisualDL's Graphs tab
    assert {"conv2d", "sigmoid", "pixel_shuffle"} <= {n["type"] for n in graph["nodes"]}
    from visualdl import LogReader

    texts = LogReader(file_path=str(records_file(run_dir))).get_data("text", "Model/Graph")
    assert "total" in texts[0].text.encoded_text_string


def test_images_are_grids_of_four_columns(two_epoch_run):
    import io

    from PIL import Image
    from visualdl import LogReader

    run_dir, _ = two_epoch_run
    reader = LogReader(file_path=str(records_file(run_dir)))
    record = reader.get_data("image", "Prediction/Result")[-1]
    img = Image.open(io.BytesIO(record.image.encoded_image_string))
    # input | prediction | target | mask, 32 px each with 2 px gaps
    assert img.width == 4 * 32 + 3 * 2


def test_stats_file_validates_and_tells_the_story(two_epoch_run):
    run_dir, _ = two_epoch_run
    stats = read_stats(run_dir)
    assert validation_errors(stats) == []
    assert stats["status"] == "finished"
    assert stats["epoch"] == stats["total_epochs"] == 2
    assert stats["global_step"] == stats["total_steps"] == 2 * stats["steps_per_epoch"]
    assert [h["epoch"] for h in stats["history"]] == [1, 2]
    assert stats["total_parameters"] > 100_000
    for key in ("train_loss", "val_loss", "lr", "grad_norm", "param_norm", "epoch_duration",
                "samples_per_sec", "psnr", "ssim", "flops_utilization"):
        assert isinstance(stats["latest"][key], float), key
    assert 0 < stats["latest"]["flops_utilization"] < 1
    assert stats["best_checkpoint"]["epoch"] in (1, 2)
    assert Path(stats["last_checkpoint"]["path"]).is_file()


def test_checkpoints_hold_everything_needed_to_resume(two_epoch_run):
    from seghw import checkpoint

    run_dir, _ = two_epoch_run
    payload = checkpoint.load(run_dir)
    for key in ("model", "optimizer", "scheduler", "scaler", "epoch", "global_step", "rng", "config", "history"):
        assert key in payload, key
    assert payload["epoch"] == 2
    assert (run_dir / "checkpoints" / "best.pdckpt").is_file()


def test_eval_table_fits_an_80_column_terminal_without_cutting_a_value(two_epoch_run, cache, tmp_path):
    run_dir, _ = two_epoch_run
    data = tmp_path / "held_out"
    run_seghw(["synth", "--out", str(data), "--count", "2", "--size", "48", "--seed", "99"], cache, check=True)
    args = ["eval", "--checkpoint", str(run_dir), "--data", str(data)]
    rows = {r["method"]: r for r in json.loads(run_seghw([*args, "--json"], cache, check=True).stdout)}
    table = subprocess.run(SEGHW + args, capture_output=True, text=True, timeout=300,
                           env={**env_for(cache), "COLUMNS": "80"})
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert "…" not in table.stdout and max(map(len, lines)) <= 80, table.stdout
    assert lines[0].strip() == f"{data}: 2 pages", table.stdout
    shown = {line.split()[0]: line.split()[1:] for line in lines if line.split()[:1] in (["model"], ["identity"],
                                                                                       ["classical"])}
    assert set(shown) == {"model", "identity", "classical"}, table.stdout
    assert "classical: ink threshold + Telea" in table.stdout
    for name, row in rows.items():
        values = shown[name.split(" (")[0]]
        assert values[0] == f"{row['psnr']:.2f}" and values[1] == f"{row['ssim']:.4f}", (name, values)
        percent = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"  # noqa: E731
        assert values[6:8] == [percent(row["colour_kept"]), percent(row["hw_removed"])], (name, values)


def test_eval_shows_its_pages_on_a_terminal_and_keeps_stdout_for_the_json(two_epoch_run, cache, tmp_path):
    run_dir, _ = two_epoch_run
    data = tmp_path / "held_out"
    run_seghw(["synth", "--out", str(data), "--count", "3", "--size", "48", "--seed", "98"], cache, check=True)
    master, slave = os.openpty()
    shown = bytearray()

    def read_terminal():
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                return
            if not chunk:
                return
            shown.extend(chunk)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    try:
        proc = subprocess.run(SEGHW + ["eval", "--checkpoint", str(run_dir), "--data", str(data), "--json"],
                              stdout=subprocess.PIPE, stderr=slave, text=True, timeout=300, env=env_for(cache))
    finally:
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
    assert proc.returncode == 0, bytes(shown).decode(errors="replace")
    assert {r["method"] for r in json.loads(proc.stdout)} >= {"model", "identity"}
    terminal = bytes(shown).decode(errors="replace")
    assert "eval held_out" in terminal and "3/3" in terminal, terminal


def test_eval_and_infer_from_the_checkpoint(two_epoch_run, cache, tmp_path):
    run_dir, _ = two_epoch_run
    data = tmp_path / "held_out"
    run_seghw(["synth", "--out", str(data), "--count", "2", "--size", "48", "--seed", "99"], cache, check=True)
    proc = run_seghw(["eval", "--checkpoint", str(run_dir), "--data", str(data), "--json"], cache, check=True)
    rows = {r["method"]: r for r in json.loads(proc.stdout)}
    assert set(rows) >= {"model", "identity"}
    assert rows["identity"]["psnr"] > 0 and rows["model"]["psnr"] > 0
    out = tmp_path / "clean"
    run_seghw(["infer", "--checkpoint", str(run_dir / "checkpoints" / "best.pdckpt"),
               "--input", str(data / "images"), "--output", str(out), "--window", "32", "--overlap", "8"],
              cache, check=True)
    from PIL import Image

    for name in ("syn_000000", "syn_000001"):
        assert Image.open(out / f"{name}.png").size == (48, 48)
        assert Image.open(out / f"{name}_mask.png").size == (48, 48)
    # A page run at half its scale comes back at its own size.
    half = tmp_path / "half"
    proc = run_seghw(["infer", "--checkpoint", str(run_dir), "--input", str(data / "images" / "syn_000000.jpg"),
                      "--output", str(half), "--window", "32", "--overlap", "8", "--scale", "0.5"], cache, check=True)
    assert "[1/1] syn_000000.jpg: 48x48 px, run at 0.50x" in proc.stderr
    assert Image.open(half / "syn_000000.png").size == (48, 48)
    assert Image.open(half / "syn_000000_mask.png").size == (48, 48)


def test_fast_inference_computes_what_the_training_model_computes(two_epoch_run, cache, tmp_path):
    import numpy as np
    from PIL import Image

    run_dir, _ = two_epoch_run
    data = tmp_path / "pages"
    run_seghw(["synth", "--out", str(data), "--count", "1", "--size", "80", "--seed", "7"], cache, check=True)
    outputs = {}
    for engine in ("fast", "eager"):
        out = tmp_path / engine
        run_seghw(["infer", "--checkpoint", str(run_dir), "--input", str(data / "images"), "--output", str(out),
                   "--window", "48", "--overlap", "16", "--engine", engine], cache, check=True)
        outputs[engine] = [np.asarray(Image.open(out / f"syn_000000{s}.png"), np.int16) for s in ("", "_mask")]
    for fast, eager in zip(outputs["fast"], outputs["eager"], strict=True):
        assert np.abs(fast - eager).max() <= 1  # rounding of float differences only


def _saved_before_the_patch_stem(run_dir: Path) -> None:
    """Make a run's checkpoints what such a run left behind: configs without the setting."""
    from seghw.device import import_paddle

    paddle = import_paddle()
    for ckpt in (run_dir / "checkpoints").glob("*.pdckpt"):
        payload = paddle.load(str(ckpt))
        payload["config"].pop("patch_stem", None)
        paddle.save(payload, str(ckpt))


def test_a_run_saved_before_the_patch_stem_existed_resumes_and_infers_with_its_model(tmp_path, cache):
    # The cpu-demo preset now turns the patch stem on; such a run was trained without it.
    root = tmp_path / "models"
    full_res = tmp_path / "full_res.json"
    full_res.write_text(json.dumps({"patch_stem": False}))
    run_seghw(["train", *TINY, "--epochs", "1", "--log-root", str(root), "--config", str(full_res)], cache,
              check=True)
    run_dir = only_run(root)
    parameters = read_stats(run_dir)["total_parameters"]
    _saved_before_the_patch_stem(run_dir)
    resumed = run_seghw(["train", "--resume", str(run_dir), "--epochs", "2", "--log-root", str(root)], cache,
                        check=True)
    assert "resumed at epoch 1" in resumed.stdout
    stats = read_stats(run_dir)
    assert stats["status"] == "finished" and stats["config"]["patch_stem"] is False
    assert stats["total_parameters"] == parameters
    data = tmp_path / "pages"
    run_seghw(["synth", "--out", str(data), "--count", "1", "--size", "48", "--seed", "5"], cache, check=True)
    _saved_before_the_patch_stem(run_dir)
    run_seghw(["infer", "--checkpoint", str(run_dir / "checkpoints" / "best.pdckpt"), "--input",
               str(data / "images"), "--output", str(tmp_path / "clean"), "--window", "32", "--overlap", "8"],
              cache, check=True)
    assert (tmp_path / "clean" / "syn_000000.png").is_file()


@pytest.mark.parametrize("command", ["infer", "eval"])
def test_a_bad_page_scale_is_named(two_epoch_run, cache, tmp_path, command):
    run_dir, _ = two_epoch_run
    where = (["--input", str(tmp_path), "--output", str(tmp_path / "o")] if command == "infer"
             else ["--data", str(tmp_path)])
    proc = run_seghw([command, "--checkpoint", str(run_dir), *where, "--scale", "0"], cache)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["seghw: error: invalid --scale '0': use auto, or a factor in (0, 4]"]


def test_an_unknown_inference_engine_is_named(two_epoch_run, cache, tmp_path):
    run_dir, _ = two_epoch_run
    proc = run_seghw(["infer", "--checkpoint", str(run_dir), "--input", str(tmp_path), "--output", str(tmp_path / "o"),
                      "--engine", "turbo"], cache)
    assert proc.returncode == 2
    assert "turbo" in proc.stderr.strip().splitlines()[-1]


def _assert_continuous(run_dir: Path, epochs: int) -> None:
    steps = vdl_steps(run_dir)
    stats = read_stats(run_dir)
    for tag in SEED_TAGS + IMAGE_TAGS:
        assert steps[tag] == list(range(1, epochs + 1)), f"{tag}: {steps[tag]}"
    assert steps["Iter/Loss"] == list(range(1, stats["global_step"] + 1))
    assert [h["epoch"] for h in stats["history"]] == list(range(1, epochs + 1))


def test_a_stop_at_an_epochs_last_step_resumes_with_every_record(tmp_path, cache, monkeypatch):
    """Started in process, to place the stop exactly: the loop asks once per step, so the third
    question comes at the first epoch's last step (3 steps per epoch). The epoch ends before the run
    stops, and the resumed run has every epoch's records."""
    from seghw.config import build_config
    from seghw.train import runner

    monkeypatch.setenv("SEGHW_CACHE_DIR", str(cache))
    cfg = build_config("cpu-demo", log_root=str(tmp_path), synthetic=16, synthetic_size=48, image_size=32,
                       batch_size=4, epochs=2, num_workers=1, log_every_steps=1, static_graph=False)
    run_dir = tmp_path / "logs_11271700"
    questions = itertools.count(1)
    assert runner.run(cfg, run_dir, stop=lambda: next(questions) == 3) == runner.EXIT_OK
    stats = read_stats(run_dir)
    assert stats["status"] == "stopped"
    assert stats["last_checkpoint"]["epoch"] == 1
    run_seghw(["train", "--resume", str(run_dir)], cache, check=True)
    assert read_stats(run_dir)["status"] == "finished"
    _assert_continuous(run_dir, 2)


def test_sigkill_mid_epoch_then_resume_gives_continuous_curves(tmp_path, cache):
    root = tmp_path / "models"
    # A fast heartbeat shows where the run is; a checkpoint every ~0.3 s lands some mid-epoch.
    cfg = tmp_path / "fast.json"
    cfg.write_text(json.dumps({"stats_seconds": 0.05, "checkpoint_minutes": 0.005}))
    args = ["train", *TINY, "--epochs", "4", "--log-root", str(root), "--config", str(cfg), "--synthetic", "40"]
    proc = start_seghw(args, cache)
    try:
        run_dir = wait_for(lambda: next(iter(root.glob("logs_*")), None), 120, "run folder")

        def mid_epoch_two():
            try:
                s = read_stats(run_dir)
            except (OSError, ValueError):
                return False
            return s["epoch"] >= 1 and s["global_step"] % s["steps_per_epoch"] >= 2

        wait_for(mid_epoch_two, 180, "training to reach the middle of an epoch", interval=0.05)
        proc.kill()
    finally:
        proc.wait(30)
    killed = read_stats(run_dir)
    assert killed["status"] == "running"  # what a killed run leaves behind
    resumed = run_seghw(["train", "--resume", str(run_dir), "--log-root", str(root)], cache, check=True)
    assert "resumed at epoch" in resumed.stdout
    assert read_stats(run_dir)["status"] == "finished"
    _assert_continuous(run_dir, 4)
    assert len(list(run_dir.glob("vdlrecords.*.log"))) == 1


def test_sigterm_stops_with_a_resumable_checkpoint(tmp_path, cache):
    root = tmp_path / "models"
    proc = start_seghw(["train", *TINY, "--epochs", "3", "--log-root", str(root)], cache)
    run_dir = wait_for(lambda: next(iter(root.glob("logs_*")), None), 120, "run folder")
    wait_for(lambda: (run_dir / "training_stats.json").exists() and read_stats(run_dir)["global_step"] >= 1,
             180, "first step")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    stats = read_stats(run_dir)
    assert stats["status"] == "stopped"
    assert stats["last_checkpoint"]["global_step"] == stats["global_step"]
    assert "resume with: seghw train --resume" in out
    run_seghw(["train", "--resume", "latest", "--log-root", str(root)], cache, check=True)
    assert read_stats(run_dir)["status"] == "finished"
    _assert_continuous(run_dir, 3)


def test_the_default_gpu_preset_trains_on_the_cpu_and_resumes_with_continuous_curves(tmp_path, cache):
    """The preset users get by default, at a tiny size: its 9 M-parameter model, its warm-up from a
    learning rate of 2e-7 (BatchNorm weights then span fewer float32 steps than a histogram has
    buckets), every observer, two epochs and a resume."""
    root = tmp_path / "models"
    args = ["--preset", "gpu", "--synthetic", "32", "--synthetic-size", "96", "--image-size", "64",
            "--batch-size", "8", "--max-steps-per-epoch", "2", "--device", "cpu", "--num-workers", "1",
            "--log-every-steps", "1", "--log-root", str(root)]
    run_seghw(["train", *args, "--epochs", "2"], cache, check=True)
    run_dir = only_run(root)
    stats = read_stats(run_dir)
    assert (stats["status"], stats["epoch"], stats["config"]["preset"]) == ("finished", 2, "gpu")
    resumed = run_seghw(["train", "--resume", str(run_dir), "--epochs", "3", "--log-root", str(root)], cache,
                        check=True)
    assert "resumed at epoch 2, step 4" in resumed.stdout
    stats = read_stats(run_dir)
    assert stats["status"] == "finished" and stats["global_step"] == 6
    assert validation_errors(stats) == []
    assert stats["display_faults"] == {"count": 0, "items": []}
    assert "note:" not in resumed.stderr
    _assert_continuous(run_dir, 3)
    histograms = {tag: s for tag, s in vdl_steps(run_dir).items() if tag.startswith(("Weights/", "Gradients/"))}
    assert len(histograms) >= 8 and all(s == [1, 2, 3] for s in histograms.values()), histograms
    assert len(list(run_dir.glob("vdlrecords.*.log"))) == 1
    # The same checks as cpu-demo's on the real-source set's layout (a tiny sample of it here): print kept
    # on print-only pages, handwriting removed by source beside the print kept on written pages.
    from test_realset import _hands, _page

    from seghw.data import realset

    sample = tmp_path / "realset"
    realset.build(sample, [("p", _page(2), 14.0)], _hands(), [], seed=2, print_count=1, written_count=2)
    proc = run_seghw(["eval", "--checkpoint", str(run_dir), "--data", str(sample), "--json"], cache, check=True)
    sets = json.loads(proc.stdout)
    assert set(sets) == {"print", "written"}
    for part, rows in sets.items():
        model = next(r for r in rows if r["method"] == "model")
        assert model["images"] == (1 if part == "print" else 2) and 0.0 <= model["print_kept"] <= 1.0
        assert model["psnr_input"] > 0
        if part == "written":
            assert 0.0 <= model["hw_removed"] <= 1.0 and model["hw_removed_by"]


def test_non_finite_loss_marks_the_run_diverged(tmp_path, cache):
    root = tmp_path / "models"
    # An absurd learning rate with clipping off blows the weights up within a few steps.
    cfg = tmp_path / "explode.json"
    cfg.write_text(json.dumps({"lr": 1e30, "grad_clip": None, "warmup_steps": 0}))
    proc = run_seghw(["train", *TINY, "--epochs", "3", "--log-root", str(root), "--config", str(cfg)], cache)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "diverged" in proc.stderr and "Traceback" not in proc.stderr
    stats = read_stats(only_run(root))
    assert stats["status"] == "diverged"
    assert "non-finite" in stats["error"]["message"]
    assert validation_errors(stats) == []


def test_bad_config_values_are_refused_by_name(tmp_path, cache):
    for flags, named in ((["--epochs", "-1"], "epochs=-1"), (["--image-size", "30"], "image_size=30"),
                         (["--device", "tpu"], "device='tpu'"), (["--lr", "inf"], "lr=inf"),
                         (["--lr", "nan"], "lr=nan")):
        proc = run_seghw(["train", *TINY, *flags, "--log-root", str(tmp_path)], cache)
        assert proc.returncode == 2, flags
        assert named in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def _tiny_dataset(tmp_path: Path, cache: Path, count: int = 6) -> Path:
    data = tmp_path / "data"
    run_seghw(["synth", "--out", str(data), "--count", str(count), "--size", "40", "--seed", "5"], cache, check=True)
    return data


def test_corrupt_image_is_skipped_and_counted(tmp_path, cache):
    data = _tiny_dataset(tmp_path, cache)
    (data / "images" / "syn_000002.jpg").write_bytes(b"not a jpeg at all")
    root = tmp_path / "models"
    proc = run_seghw(["train", "--preset", "cpu-demo", "--data", str(data), "--image-size", "32", "--batch-size", "2",
                      "--epochs", "1", "--log-root", str(root), "--val-fraction", "0"], cache, check=True)
    assert "syn_000002.jpg" in proc.stderr + proc.stdout
    stats = read_stats(only_run(root))
    assert stats["data"]["skipped"] == 1
    assert any("syn_000002.jpg" in f for f in stats["data"]["skipped_files"])
    assert stats["data"]["train_images"] == 5


def test_unpaired_file_is_named(tmp_path, cache):
    data = _tiny_dataset(tmp_path, cache)
    (data / "gts" / "syn_000003.png").unlink()
    proc = run_seghw(["train", "--preset", "cpu-demo", "--data", str(data), "--log-root", str(tmp_path / "m")], cache)
    assert proc.returncode == 2
    assert "syn_000003" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_empty_dataset_stops_before_training(tmp_path, cache):
    (tmp_path / "empty" / "images").mkdir(parents=True)
    (tmp_path / "empty" / "gts").mkdir()
    proc = run_seghw(["train", "--preset", "cpu-demo", "--data", str(tmp_path / "empty"),
                      "--log-root", str(tmp_path / "m")], cache)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_train_demo_script_runs_the_guide_command(tmp_path, cache):
    import subprocess
    import sys

    from trainer_helpers import env_for

    script = Path(__file__).resolve().parents[1] / "services" / "trainer" / "train_demo.py"
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, str(script), "--synthetic", "16", "--image-size", "32", "--epochs", "1",
                           "--batch-size", "4", "--log-root", str(tmp_path)], capture_output=True, text=True,
                          env=env_for(cache), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert read_stats(only_run(tmp_path))["status"] == "finished", time.monotonic() - t0


def test_static_graph_trains_as_eager_mode_does(tmp_path, cache):
    losses = {}
    for mode in ("--static-graph", "--eager"):
        root = tmp_path / mode.strip("-")
        run_seghw(["train", *TINY, "--epochs", "2", "--log-root", str(root), mode], cache, check=True)
        stats = read_stats(only_run(root))
        assert stats["config"]["static_graph"] is (mode == "--static-graph")
        losses[mode] = [(h["train_loss"], h["val_loss"]) for h in stats["history"]]
    # same seed, same batches, same kernels: the two modes agree up to float rounding
    for static, eager in zip(losses["--static-graph"], losses["--eager"], strict=True):
        assert static == pytest.approx(eager, rel=1e-3)
