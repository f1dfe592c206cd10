"""Writes every VisualDL view of the run: the guide's seven scalars, finer per-step curves,
image grids, histograms, the model graph and hparams.

Records are built and written on a background thread, so PNG encoding and file writes stay off
the training thread. The checkpointer queues its writes behind them (``after_records``), so a
checkpoint never names a step whose records are not yet on disk.

Where the fault line runs: building a view (binning a histogram, encoding an image grid, the
graph, the hparams) shows the run and may fail on odd data; that view is left out, noted and
counted (``state.faults``), and training goes on. Writing the records file keeps the curves; when
it fails the run stops as failed, and nothing queued after the lost records is written (no
checkpoint names a step whose records were lost).
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from seghw import vdl_records
from seghw.graph_export import GRAPH_GLOB
from seghw.train.observers import tags
from seghw.train.observers.base import Observer
from seghw.train.observers.histogram import Histogram, bin_values
from seghw.train.state import EpochResult, RunState, StepResult
from seghw.vdl_records import RecordsWriter, now_ms

# The tags themselves, and what each shows: seghw.train.observers.tags.
NONFINITE_TAG = tags.NONFINITE.name
HISTOGRAM_LIMIT = 8
# VisualDL stores a scalar as a float32: a larger value would read back as inf.
FLOAT32_MAX = float(np.finfo(np.float32).max)

View = tuple[str, str, Callable[[], Any]]  # (kind, tag, build): build returns a Record, or None


def keep_until(epoch: int, global_step: int) -> Callable[[str, int], bool]:
    """Which records survive a resume from a checkpoint at (epoch, global_step)."""

    def keep(tag: str, step: int) -> bool:
        return step <= (global_step if tag.startswith(tags.ITER_PREFIX) else epoch)

    return keep


def image_grid(columns: list[np.ndarray]) -> np.ndarray | None:
    """Rows of samples, columns side by side: each column is NCHW float in [0,1] (C = 1 or 3;
    other channel counts are shown grey). NaN is drawn black, values outside [0,1] clipped.
    None when there is no sample to show."""
    tiles = []
    for col in columns:
        col = np.nan_to_num(np.asarray(col, dtype=np.float64), nan=0.0, posinf=1.0, neginf=0.0)
        col = np.clip(col, 0.0, 1.0).astype(np.float32)
        if col.shape[1] != 3:
            col = np.repeat(col.mean(axis=1, keepdims=True), 3, axis=1)
        tiles.append(col.transpose(0, 2, 3, 1))  # NHWC
    if not tiles or tiles[0].shape[0] == 0:
        return None
    n, h = tiles[0].shape[:2]
    gap = np.ones((n, h, 2, 3), dtype=np.float32)
    rows = np.concatenate([t if i == 0 else np.concatenate([gap, t], axis=2) for i, t in enumerate(tiles)], axis=2)
    sep = np.ones((2, rows.shape[2], 3), dtype=np.float32)
    grid = np.concatenate([np.concatenate([r, sep], axis=0) for r in rows[:-1]] + [rows[-1]], axis=0)
    return (grid * 255.0 + 0.5).astype(np.uint8)


# -- records: VisualDL builds them; None is "nothing to show", not a fault -----------------------
def scalar_record(tag: str, value, step: int):
    from visualdl.component.base_component import scalar

    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None  # the stats keep what happened; a chart cannot draw it
    return scalar(tag, min(max(value, -FLOAT32_MAX), FLOAT32_MAX), step, now_ms())


def _iter_record(tag: str, get: Callable[[StepResult], Any], step: StepResult, global_step: int):
    return scalar_record(tag, get(step), global_step)


def histogram_record(tag: str, hist: Histogram, step: int):
    from visualdl.component.base_component import histogram

    if hist.empty:
        return None
    return histogram(tag, hist.counts.tolist(), hist.edges.tolist(), step, now_ms())


def image_record(tag: str, columns: list[np.ndarray], step: int):
    from visualdl.component.base_component import image

    grid = image_grid(columns)
    return None if grid is None else image(tag, grid, step, now_ms())


def text_record(tag: str, text: str, step: int):
    from visualdl.component.base_component import text as text_

    return text_(tag, text, step, now_ms())


def hparams_record(records_file: Path, hparams: dict[str, Any], metrics: list[str]):
    from visualdl.component.base_component import hparam
    from visualdl.utils.md5_util import md5

    # Named as LogWriter.add_hparams names it: after the records file.
    return hparam(md5(str(records_file)), hparams, metrics, now_ms())


class VisualDLLogger(Observer):
    def __init__(self, run_dir: Path, log_every_steps: int):
        self.run_dir = Path(run_dir)
        self.log_every_steps = log_every_steps
        self.records: RecordsWriter | None = None
        self.faults = None
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._lost = False  # a write failed: nothing queued after it is written
        self._graph_export = None

    # -- background writer -------------------------------------------------------------------
    def _worker(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                if not self._lost:
                    job()
            except BaseException as exc:  # reported on the training thread at the next flush
                self._lost = True
                self._error = self._error or exc
            finally:
                self._queue.task_done()

    def _submit(self, fn: Callable[[], None]) -> None:
        self._queue.put(fn)

    def _show(self, views: Iterable[View]) -> None:
        """Build every view (one that fails is left out and counted), then write them all (a
        failure to write raises: those records are lost)."""
        built = (self.faults.attempt(kind, tag, build) for kind, tag, build in views)
        self.records.write([record for record in built if record is not None])

    def _show_later(self, views: list[View]) -> None:
        self._submit(partial(self._show, views))

    def _raise_pending(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise RuntimeError(f"background write failed: {err}") from err

    def flush(self) -> None:
        if self._thread is None:
            return
        self._queue.join()
        if not self._lost:
            self.records.sync()
        self._raise_pending()

    def after_records(self, job: Callable[[], None]) -> None:
        """Run ``job`` on the writer thread once every record queued so far is on disk; at once if
        the writer is closed (its records are all on disk then). A failed job raises here, at the next
        call, or at the next flush; a job queued behind records that could not be written never runs."""
        if self._thread is None:
            if not self._lost:
                job()
            return
        self._raise_pending()

        def ordered() -> None:
            self.records.sync()
            job()

        self._submit(ordered)

    # -- hooks -------------------------------------------------------------------------------
    def on_train_start(self, state: RunState) -> None:
        self.faults = state.faults
        existing = vdl_records.newest_records_file(self.run_dir)
        resumed = state.resumed_from is not None or existing is not None
        if existing is not None:
            vdl_records.trim_records(existing, keep_until(state.epoch, state.global_step))
            self.records = RecordsWriter(existing)
        else:
            self.records = RecordsWriter.create(self.run_dir, display_name=self.run_dir.name)
        self._thread = threading.Thread(target=self._worker, name="visualdl-writer", daemon=True)
        self._thread.start()
        if not resumed:
            hparams = {k: v for k, v in state.config.model_dump().items() if isinstance(v, int | float | str)
                       and not isinstance(v, bool)}
            self._show_later([("hparams", "hparams",
                               partial(hparams_record, self.records.path, hparams, tags.HPARAM_METRICS))])
        if not resumed and not list(self.run_dir.glob(GRAPH_GLOB)):
            self.faults.attempt("graph", "Graphs tab", self._start_graph, state)
            graph = tags.GRAPH_TEXT.name
            text = self.faults.attempt("text", graph, model_summary, state.model, state.config.image_size)
            if text is not None:
                self._show_later([("text", graph, partial(text_record, graph, text, 0))])

    def _start_graph(self, state: RunState) -> None:
        """The Graphs tab, exported by a separate process unless the cache has it."""
        from seghw import paths
        from seghw.graph_export import cached_graph_file, copy_cached_graph, start_export
        from seghw.model import model_settings

        cfg = state.config
        model = model_settings(cfg)
        cached = cached_graph_file(paths.cache_dir(paths.log_root(cfg.log_root)), model, cfg.image_size)
        if copy_cached_graph(self.run_dir, cached) is None:
            self._graph_export = start_export(self.run_dir, model, cfg.image_size, cache_file=cached)

    def _finish_graph(self) -> None:
        proc, self._graph_export = self._graph_export, None
        if proc is None:
            return
        try:
            _, err = proc.communicate(timeout=120)
        except Exception:
            proc.kill()
            err = "timed out"
        if proc.returncode:
            last = (err or "").strip().splitlines()[-1:] or ["unknown error"]
            self.faults.record("graph", "Graphs tab", RuntimeError(f"the graph exporter failed: {last[0]}"))

    def on_step_end(self, state: RunState, step: StepResult) -> None:
        if state.global_step % self.log_every_steps:
            return
        views = [("scalar", tag.name, partial(_iter_record, tag.name, get, step, state.global_step))
                 for tag, get in tags.STEP_SCALARS.items()]
        self._show_later(views)

    def on_epoch_end(self, state: RunState, result: EpochResult) -> None:
        if self._graph_export is not None and self._graph_export.poll() is not None:
            self._finish_graph()  # reaps the exporter as soon as it is done
        epoch = state.epoch
        scalars = {tag.name: get(state, result) for tag, get in tags.EPOCH_SCALARS.items()}
        scalars[tags.MEMORY.name] = self.faults.attempt("scalar", tags.MEMORY.name, _memory_mb, state.device)
        scalars.update({tags.LOSS_PARTS.name.replace("*", k): v for k, v in result.parts.items()})
        tensors = self._copy_tensors(state)
        grids = {}
        if result.train_preview is not None:
            grids[tags.TRAIN_SAMPLE.name] = [result.train_preview[k] for k in ("image", "pred", "gt", "mask")
                                     if k in result.train_preview]
        if result.preview is not None:
            grids[tags.PREDICTION.name] = [result.preview[k] for k in ("image", "pred", "gt", "pred_mask")]

        def write() -> None:
            binned = {tag: self.faults.attempt("histogram", tag, bin_values, values) for tag, values in tensors.items()}
            binned = {tag: hist for tag, hist in binned.items() if hist is not None}
            scalars[tags.NONFINITE.name] = sum(hist.nonfinite for hist in binned.values())
            views = [("scalar", tag, partial(scalar_record, tag, value, epoch)) for tag, value in scalars.items()]
            views += [("histogram", tag, partial(histogram_record, tag, hist, epoch)) for tag, hist in binned.items()]
            views += [("image", tag, partial(image_record, tag, cols, epoch)) for tag, cols in grids.items()]
            self._show(views)

        self._submit(write)

    def _copy_tensors(self, state: RunState) -> dict[str, np.ndarray]:
        """A few layers' parameters and gradients, copied on the training thread before they change."""
        named = list(state.model.named_parameters())
        tensors = {}
        for name, p in named[:: max(1, len(named) // HISTOGRAM_LIMIT)]:
            tensors[tags.WEIGHTS.name.replace("*", name)] = p
            if p.grad is not None:
                tensors[tags.GRADIENTS.name.replace("*", name)] = p.grad
        copies = {tag: self.faults.attempt("histogram", tag, lambda t=t: t.numpy().ravel())
                  for tag, t in tensors.items()}
        return {tag: values for tag, values in copies.items() if values is not None}

    def on_train_end(self, state: RunState) -> None:
        self._finish_graph()
        if self._thread is None:
            return
        try:
            self.flush()
        finally:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None


def _memory_mb(device: str) -> float:
    import psutil

    if device.startswith("gpu"):
        import paddle

        return paddle.device.cuda.max_memory_allocated() / 2**20
    return psutil.Process().memory_info().rss / 2**20


def model_summary(model, image_size: int) -> str:
    """One line per layer that owns parameters: name, type, parameter count; then the total."""
    lines = [f"{type(model).__name__}, input 1x3x{image_size}x{image_size}", ""]
    total = 0
    for name, layer in model.named_sublayers():
        own = sum(int(p.numel()) for p in layer.parameters(include_sublayers=False))
        if own:
            total += own
            lines.append(f"{name:<48} {type(layer).__name__:<14} {own:>10,}")
    lines.append(f"{'total':<63} {total:>10,}")
    return "\n".join(lines)
