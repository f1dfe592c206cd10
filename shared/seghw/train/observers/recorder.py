"""Keeps ``state.latest`` and ``state.history`` up to date: what stats and checkpoints report."""

from __future__ import annotations

from seghw.stats import clean_metrics, now_iso
from seghw.train.observers.base import Observer
from seghw.train.state import EpochResult, RunState, StepResult


class MetricsRecorder(Observer):
    """Also reports FLOP utilization, as nanoGPT reports MFU: achieved training FLOP/s divided by
    ``peak_flops`` (on the CPU, numpy's matmul rate measured at start; None elsewhere)."""

    def __init__(self, window: int = 20, flops_per_sample: float | None = None, peak_flops: float | None = None):
        self.window = window
        self.flops_per_sample = flops_per_sample
        self.peak_flops = peak_flops
        self._step_times: list[float] = []

    def utilization(self, samples_per_sec: float | None) -> float | None:
        if not (samples_per_sec and self.flops_per_sample and self.peak_flops):
            return None
        return samples_per_sec * self.flops_per_sample / self.peak_flops

    def on_step_end(self, state: RunState, step: StepResult) -> None:
        self._step_times = (self._step_times + [step.step_seconds])[-self.window :]
        mean_step = sum(self._step_times) / len(self._step_times)
        rate = step.batch_size / mean_step if mean_step > 0 else None
        state.latest.update(clean_metrics({
            "step_loss": step.loss,
            "lr": step.lr,
            "step_grad_norm": step.grad_norm,
            "step_time": mean_step,
            "samples_per_sec": rate,
            "flops_utilization": self.utilization(rate),
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
            "flops_utilization": self.utilization(result.samples_per_sec),
            "data_wait_share": result.data_wait_share,
            "psnr": q.get("psnr"),
            "ssim": q.get("ssim"),
            "ms_ssim": q.get("ms_ssim"),
            "score": q.get("score"),
        })
        state.latest.update(metrics)
        state.history.append({"epoch": state.epoch, "global_step": state.global_step, "time": now_iso(),
                              **metrics})
