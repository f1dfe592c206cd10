"""Keeps ``state.latest`` and ``state.history`` up to date: what stats and checkpoints report."""

from __future__ import annotations

from seghw.stats import clean_metrics, now_iso
from seghw.train.callbacks import Callback
from seghw.train.state import EpochResult, RunState, StepResult


class MetricsRecorder(Callback):
    def __init__(self, window: int = 20):
        self.window = window
        self._step_times: list[float] = []

    def on_step_end(self, state: RunState, step: StepResult) -> None:
        self._step_times = (self._step_times + [step.step_seconds])[-self.window :]
        mean_step = sum(self._step_times) / len(self._step_times)
        state.latest.update(clean_metrics({
            "step_loss": step.loss,
            "lr": step.lr,
            "step_grad_norm": step.grad_norm,
            "step_time": mean_step,
            "samples_per_sec": step.batch_size / mean_step if mean_step > 0 else None,
        }))

    def on_epoch_end(self, state: RunState, result: EpochResult) -> None:
        q = result.quality or {}
        metrics = clean_metrics({
            "train_loss": result.train_loss,
            "val_loss": result.val_loss,
            "lr": result.lr,
            "grad_norm": result.grad_norm,
            "param_norm": result.param_norm,
            "epoch_duration": result.epoch_duration,
            "samples_per_sec": result.samples_per_sec,
            "data_wait_share": result.data_wait_share,
            "psnr": q.get("psnr"),
            "ssim": q.get("ssim"),
            "ms_ssim": q.get("ms_ssim"),
            "score": q.get("score"),
        })
        state.latest.update(metrics)
        state.history.append({"epoch": state.epoch, "global_step": state.global_step, "time": now_iso(),
                              **metrics})
