"""Every observer fed extreme values: none may raise, and what they write stays readable.

Real records files read by VisualDL's own reader, a real stats file checked as strict JSON against
the schema, a real terminal (a pty) for the progress bar; no mocks."""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image
from visualdl import LogReader

from seghw.stats import validation_errors
from seghw.train.observers.progress import ProgressReporter
from seghw.train.observers.stats_writer import StatsWriter
from seghw.train.observers.visualdl_logger import FLOAT32_MAX, NONFINITE_TAG, image_grid
from seghw.train.state import RunState

from trainer_helpers import bare_state, epoch_result, start_logger, step_result

F32 = np.float32
ULP = float(np.spacing(F32(1)))
HUGE = 1e300
TINY = 5e-324
EXTREME_FLOATS = [math.nan, math.inf, -math.inf, 0.0, -0.0, HUGE, -HUGE, TINY, 1e-45, 3.5e38]


def _reader(state) -> LogReader:
    return LogReader(file_path=str(next(state.run_dir.glob("vdlrecords.*.log"))))


def _strict_json(path: Path):
    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


@pytest.fixture
def run(tmp_path):
    state, vdl = start_logger(tmp_path)
    yield state, vdl
    vdl.on_train_end(state)


# ---------------------------------------------------------------- histograms of the model's tensors

TENSOR_CASES = {
    "constant": lambda n: np.full(n, 0.25),
    "below float32 resolution": lambda n: 1.0 + (np.arange(n) % 5) * ULP,
    "plus and minus 1e30": lambda n: np.where(np.arange(n) % 2, 1e30, -1e30),
    "denormals": lambda n: (np.arange(n) % 3) * 1e-45,
    "some NaN": lambda n: np.where(np.arange(n) % 7 == 0, np.nan, 0.5),
    "some inf": lambda n: np.where(np.arange(n) % 5 == 0, np.inf, -0.5),
    "all NaN": lambda n: np.full(n, np.nan),
}


@pytest.mark.parametrize("case", TENSOR_CASES)
def test_weight_histograms_of_extreme_tensors_are_written(run, case):
    state, vdl = run
    for p in state.model.parameters():
        p.set_value(TENSOR_CASES[case](int(np.prod(p.shape))).astype(F32).reshape(p.shape))
    vdl.on_epoch_end(state, epoch_result())
    vdl.flush()

    reader = _reader(state)
    tags = reader.get_tags()
    written = {tag: reader.get_data("histogram", tag)[0].histogram for tag in tags.get("histogram", [])}
    params = dict(state.model.named_parameters())
    nonfinite = 0
    for name, p in list(params.items())[:: max(1, len(params) // 8)]:
        values = p.numpy().astype(np.float64)
        finite = int(np.isfinite(values).sum())
        nonfinite += values.size - finite
        if finite == 0:
            assert f"Weights/{name}" not in written  # nothing to draw; the count below tells
            continue
        hist = written[f"Weights/{name}"]
        assert sum(hist.hist) == finite
        assert all(math.isfinite(e) for e in hist.bin_edges)
    assert [v.value for v in reader.get_data("scalar", NONFINITE_TAG)] == [nonfinite]
    assert state.faults.count == 0


# ---------------------------------------------------------------- scalars


@pytest.mark.parametrize("value", EXTREME_FLOATS)
def test_per_step_scalars_of_extreme_values(run, value):
    state, vdl = run
    state.global_step = 1
    vdl.on_step_end(state, step_result(loss=value, lr=0.0, grad_norm=value, step_seconds=value))
    vdl.flush()
    reader = _reader(state)
    points = {tag: [v.value for v in reader.get_data("scalar", tag)] for tag in reader.get_tags()["scalar"]}
    assert points["Iter/Learning_Rate"] == [0.0]
    expected = [] if not math.isfinite(value) else [max(-FLOAT32_MAX, min(FLOAT32_MAX, value))]
    assert points.get("Iter/Loss", []) == pytest.approx(expected, rel=1e-6, abs=1e-45)
    assert all(math.isfinite(v) for vs in points.values() for v in vs)
    assert state.faults.count == 0


def test_epoch_scalars_of_extreme_values(run):
    state, vdl = run
    state.epoch = 1
    result = epoch_result(train_loss=math.nan, val_loss=None, lr=0.0, grad_norm=HUGE, param_norm=math.inf,
                          epoch_duration=-math.inf, samples_per_sec=0.0, data_wait_share=TINY,
                          quality={"psnr": None, "ssim": math.nan}, parts={"l1_hole": -HUGE})
    state.latest["flops_utilization"] = math.nan
    vdl.on_epoch_end(state, result)
    vdl.flush()
    reader = _reader(state)
    points = {tag: [v.value for v in reader.get_data("scalar", tag)] for tag in reader.get_tags()["scalar"]}
    for tag in ("Loss/Train", "Loss/Validation", "Model/Parameter_Norm", "Time/Epoch_Duration",
                "Metrics/PSNR", "Metrics/SSIM", "Speed/FLOP_Utilization"):
        assert tag not in points, tag
    assert points["Learning_Rate"] == [0.0] and points["Speed/Samples_per_sec"] == [0.0]
    assert points["Model/Gradient_Norm"] == pytest.approx([FLOAT32_MAX])
    assert points["Loss/l1_hole"] == pytest.approx([-FLOAT32_MAX])
    assert state.faults.count == 0


# ---------------------------------------------------------------- image grids


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 3), st.integers(1, 6), st.integers(1, 6),
    st.lists(st.sampled_from([1, 3]), min_size=1, max_size=4),
    st.sampled_from([np.float16, np.float32, np.float64]),
    st.data(),
)
def test_any_image_grid_is_a_uint8_picture(n, h, w, channels, dtype, data):
    elements = {"allow_nan": True, "allow_infinity": True, "allow_subnormal": True}
    columns = [data.draw(hnp.arrays(dtype, (n, c, h, w), elements=elements)) for c in channels]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even an invalid-cast warning for NaN
        grid = image_grid(columns)
    k = len(channels)
    assert grid.dtype == np.uint8 and grid.shape == (n * h + 2 * (n - 1), k * w + 2 * (k - 1), 3)


IMAGE_CASES = {
    "NaN pixels": (lambda shape: np.where(np.arange(np.prod(shape)).reshape(shape) % 3, np.nan, 0.5), 0),
    "all constant": (lambda shape: np.full(shape, 0.5), 128),
    "above 1": (lambda shape: np.full(shape, 7.0), 255),
    "below 0": (lambda shape: np.full(shape, -3.0), 0),
    "inf": (lambda shape: np.full(shape, np.inf), 255),
}


@pytest.mark.parametrize("case", IMAGE_CASES)
def test_image_grids_of_extreme_pixels_are_written(run, case):
    state, vdl = run
    fill, pixel = IMAGE_CASES[case]
    rgb, grey = fill((2, 3, 32, 32)).astype(F32), fill((2, 1, 32, 32)).astype(F32)  # masks have one channel
    preview = {"image": rgb, "pred": rgb, "gt": rgb, "pred_mask": grey}
    state.epoch = 1
    vdl.on_epoch_end(state, epoch_result(preview=preview, train_preview={"image": rgb, "pred": rgb, "mask": grey}))
    vdl.flush()
    reader = _reader(state)
    for tag, columns in (("Prediction/Result", 4), ("Train/Sample", 3)):
        [record] = reader.get_data("image", tag)
        img = np.asarray(Image.open(io.BytesIO(record.image.encoded_image_string)).convert("RGB"))
        assert img.shape == (2 * 32 + 2, columns * 32 + (columns - 1) * 2, 3)
        assert img[33, 0, 0] == 255  # the white row between the two samples
        assert img[-1, -1, 0] == pixel  # the last pixel: a mask pixel, drawn grey as the rest
    assert state.faults.count == 0


# ---------------------------------------------------------------- the stats file


metric = st.one_of(st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True), st.none(),
                   st.floats(width=32).map(np.float32), st.integers(-(2**40), 2**40))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["train_loss", "val_loss", "lr", "grad_norm", "psnr", "ssim", "step_time"]),
                       metric), st.lists(metric, max_size=3), metric)
def test_stats_of_any_metric_values_are_strict_json_that_validates(latest, losses, psnr):
    with tempfile.TemporaryDirectory() as tmp:
        state = bare_state(Path(tmp))
        state.latest = dict(latest)
        state.history = [{"epoch": i + 1, "global_step": i + 1, "train_loss": v} for i, v in enumerate(losses)]
        state.best_checkpoint = {"path": "x", "epoch": 1, "global_step": 1, "psnr": psnr}
        StatsWriter().write(state)
        doc = _strict_json(state.run_dir / "training_stats.json")
    assert validation_errors(doc) == []
    for key, value in latest.items():
        as_float = None if value is None else float(value)
        assert doc["latest"][key] == (as_float if as_float is not None and math.isfinite(as_float) else None)


# ---------------------------------------------------------------- progress output


def _drive(reporter: ProgressReporter, state: RunState, value: float | None) -> None:
    reporter.on_train_start(state)
    reporter.on_epoch_start(state)
    state.latest["samples_per_sec"] = value
    for _ in range(3):
        state.global_step += 1
        state.step_in_epoch += 1
        reporter.on_step_end(state, step_result(loss=math.nan if value is None else value, lr=0.0,
                                                grad_norm=HUGE))
    state.epoch += 1
    reporter.on_epoch_end(state, epoch_result(train_loss=value if value is not None else math.nan, val_loss=value,
                                              epoch_duration=value, samples_per_sec=value,
                                              quality={"psnr": value, "ssim": None}))
    reporter.on_train_end(state)


@pytest.mark.parametrize("value", [*EXTREME_FLOATS, None])
def test_progress_lines_of_extreme_values(tmp_path, value):
    log = tmp_path / "out.log"
    with open(log, "w", encoding="utf-8") as stream:
        _drive(ProgressReporter(line_seconds=0, stream=stream), bare_state(tmp_path), value)
    lines = log.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 + 3 + 1 and lines[-1].startswith("epoch 1/2: train loss")


@pytest.mark.parametrize("value", [math.nan, math.inf, HUGE, None])
def test_the_progress_bar_on_a_terminal_with_extreme_values(tmp_path, value):
    master, slave = os.openpty()
    os.set_blocking(master, False)
    try:
        with open(slave, "w", encoding="utf-8", closefd=True) as tty:
            reporter = ProgressReporter(stream=tty)
            assert reporter.interactive
            _drive(reporter, bare_state(tmp_path), value)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
    assert b"epoch 1/2: train loss" in shown
