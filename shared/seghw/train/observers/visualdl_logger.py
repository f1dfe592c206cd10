"""Writes every VisualDL view of the run: the guide's seven scalars, finer per-step curves,
image grids, histograms, the model graph and hparams.

Records are queued to a background thread, so PNG encoding and file writes stay off the
training thread. The checkpointer queues its writes behind them (``after_records``), so a
checkpoint never names a step whose records are not yet on disk.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from seghw import vdl_records
from seghw.graph_export import GRAPH_GLOB
from seghw.train.callbacks import Callback
from seghw.train.state import EpochResult, RunState, StepResult

# Tags at step = epoch, named exactly as in the guide.
EPOCH_TAGS = {
    "train_loss": "Loss/Train",
    "val_loss": "Loss/Validation",
    "lr": "Learning_Rate",
    "grad_norm": "Model/Gradient_Norm",
    "param_norm": "Model/Parameter_Norm",
    "total_parameters": "Model/Total_Parameters",
    "epoch_duration": "Time/Epoch_Duration",
}
QUALITY_TAGS = {"psnr": "Metrics/PSNR", "ssim": "Metrics/SSIM", "ms_ssim": "Metrics/MS_SSIM",
                "score": "Metrics/Score"}
# Tags at step = global step; resume trims them by the step instead of the epoch.
ITER_PREFIX = "Iter/"
HPARAM_METRICS = ["Metrics/PSNR", "Metrics/SSIM", "Loss/Validation", "Loss/Train"]
HISTOGRAM_LIMIT = 8


def keep_until(epoch: int, global_step: int) -> Callable[[str, int], bool]:
    """Which records survive a resume from a checkpoint at (epoch, global_step)."""

    def keep(tag: str, step: int) -> bool:
        return step <= (global_step if tag.startswith(ITER_PREFIX) else epoch)

    return keep


def image_grid(columns: list[np.ndarray]) -> np.ndarray:
    """Rows of samples, columns side by side: each column is NCHW float in [0,1] (C = 1 or 3)."""
    tiles = []
    for col in columns:
        col = np.clip(col, 0.0, 1.0)
        if col.shape[1] == 1:
            col = np.repeat(col, 3, axis=1)
        tiles.append(col.transpose(0, 2, 3, 1))  # NHWC
    n, h = tiles[0].shape[:2]
    gap = np.ones((n, h, 2, 3), dtype=np.float32)
    rows = np.concatenate([t if i == 0 else np.concatenate([gap, t], axis=2) for i, t in enumerate(tiles)], axis=2)
    sep = np.ones((2, rows.shape[2], 3), dtype=np.float32)
    grid = np.concatenate([np.concatenate([r, sep], axis=0) for r in rows[:-1]] + [rows[-1]], axis=0)
    return (grid * 255.0 + 0.5).astype(np.uint8)


class VisualDLLogger(Callback):
    def __init__(self, run_dir: Path, log_every_steps: int):
        self.run_dir = Path(run_dir)
        self.log_every_steps = log_every_steps
        self.writer = None
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._graph_export = None

    # -- background writer -------------------------------------------------------------------
    def _worker(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                job()
            except BaseException as exc:  # reported on the training thread at the next flush
                self._error = self._error or exc
            finally:
                self._queue.task_done()

    def _submit(self, fn: Callable[[], None]) -> None:
        self._queue.put(fn)

    def _raise_pending(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise RuntimeError(f"background write failed: {err}") from err

    def flush(self) -> None:
        if self._thread is None:
            return
        self._queue.join()
        self.writer.flush()
        self._raise_pending()

    def after_records(self, job: Callable[[], None]) -> None:
        """Run ``job`` on the writer thread once every record queued so far is on disk; at once if
        the writer is closed (its records are all on disk then). A failed job raises here, at the next
        call, or at the next flush."""
        if self._thread is None:
            job()
            return
        self._raise_pending()

        def ordered() -> None:
            self.writer.flush()
            job()

        self._submit(ordered)

    # -- hooks -------------------------------------------------------------------------------
    def on_train_start(self, state: RunState) -> None:
        from visualdl import LogWriter

        existing = vdl_records.newest_records_file(self.run_dir)
        resumed = state.resumed_from is not None or existing is not None
        if existing is not None:
            vdl_records.trim_records(existing, keep_until(state.epoch, state.global_step))
            self.writer = LogWriter(logdir=str(self.run_dir), file_name=existing.name,
                                    display_name=self.run_dir.name)
        else:
            self.writer = LogWriter(logdir=str(self.run_dir), display_name=self.run_dir.name)
        self._thread = threading.Thread(target=self._worker, name="visualdl-writer", daemon=True)
        self._thread.start()
        if not resumed:
            cfg = state.config
            hparams = {k: v for k, v in cfg.model_dump().items() if isinstance(v, int | float | str)
                       and not isinstance(v, bool)}
            self.writer.add_hparams(hparams, HPARAM_METRICS)
        if not resumed and not list(self.run_dir.glob(GRAPH_GLOB)):
            self._add_graph(state)

    def _add_graph(self, state: RunState) -> None:
        """The Graphs tab (exported by a separate process) and the layer tree as text."""
        from seghw import paths
        from seghw.graph_export import cached_graph_file, copy_cached_graph, start_export

        cfg = state.config
        shape = (cfg.base_channels, cfg.depth, cfg.image_size, cfg.patch_stem)
        cached = cached_graph_file(paths.cache_dir(paths.log_root(cfg.log_root)), *shape)
        if copy_cached_graph(self.run_dir, cached) is None:
            self._graph_export = start_export(self.run_dir, *shape, cache_file=cached)
        text = model_summary(state.model, cfg.image_size)
        self._submit(lambda: self.writer.add_text("Model/Graph", text, 0))

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
            print(f"note: model graph not written for VisualDL's Graphs tab ({last[0]})")

    def on_step_end(self, state: RunState, step: StepResult) -> None:
        if state.global_step % self.log_every_steps:
            return
        gs = state.global_step
        values = {"Iter/Loss": step.loss, "Iter/Learning_Rate": step.lr, "Iter/Gradient_Norm": step.grad_norm,
                  "Iter/Samples_per_sec": step.batch_size / max(step.step_seconds, 1e-9)}
        self._submit(lambda: [self.writer.add_scalar(t, float(v), gs) for t, v in values.items()
                              if np.isfinite(v)])

    def on_epoch_end(self, state: RunState, result: EpochResult) -> None:
        if self._graph_export is not None and self._graph_export.poll() is not None:
            self._finish_graph()  # reaps the exporter as soon as it is done
        epoch = state.epoch
        scalars = {
            EPOCH_TAGS["train_loss"]: result.train_loss,
            EPOCH_TAGS["val_loss"]: result.val_loss,
            EPOCH_TAGS["lr"]: result.lr,
            EPOCH_TAGS["grad_norm"]: result.grad_norm,
            EPOCH_TAGS["param_norm"]: result.param_norm,
            EPOCH_TAGS["total_parameters"]: state.total_parameters,
            EPOCH_TAGS["epoch_duration"]: result.epoch_duration,
            "Speed/Samples_per_sec": result.samples_per_sec,
            "Speed/Data_Wait_Share": result.data_wait_share,
            "Speed/FLOP_Utilization": state.latest.get("flops_utilization"),
            "System/Memory_MB": _memory_mb(state.device),
        }
        scalars.update({QUALITY_TAGS[k]: v for k, v in (result.quality or {}).items() if k in QUALITY_TAGS})
        scalars.update({f"Loss/{k}": v for k, v in result.parts.items()})
        # Parameters and gradients are copied here, on the training thread, before they change.
        hist = {}
        named = list(state.model.named_parameters())
        for name, p in named[:: max(1, len(named) // HISTOGRAM_LIMIT)]:
            hist[f"Weights/{name}"] = p.numpy().ravel()
            if p.grad is not None:
                hist[f"Gradients/{name}"] = p.grad.numpy().ravel()
        train_preview, preview = result.train_preview, result.preview

        def write() -> None:
            for tag, value in scalars.items():
                if value is not None and np.isfinite(value):
                    self.writer.add_scalar(tag, float(value), epoch)
            for tag, values in hist.items():
                if np.all(np.isfinite(values)):
                    self.writer.add_histogram(tag, values, epoch, buckets=30)
            if train_preview is not None:
                cols = [train_preview[k] for k in ("image", "pred", "gt", "mask") if k in train_preview]
                self.writer.add_image("Train/Sample", image_grid(cols), epoch)
            if preview is not None:
                cols = [preview["image"], preview["pred"], preview["gt"], preview["pred_mask"]]
                self.writer.add_image("Prediction/Result", image_grid(cols), epoch)

        self._submit(write)

    def on_train_end(self, state: RunState) -> None:
        self._finish_graph()
        if self._thread is None:
            return
        try:
            self.flush()
        finally:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self.writer.close()
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
