"""Saves a checkpoint every epoch, every ``checkpoint_minutes``, and when the run is stopped."""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from seghw import checkpoint
from seghw.train.callbacks import Callback
from seghw.train.state import EpochResult, RunState, StepResult


def checkpoint_payload(state: RunState) -> dict:
    return {
        "format": 1,
        "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict(),
        "scaler": state.scaler.state_dict(),
        "epoch": state.epoch,
        "global_step": state.global_step,
        "step_in_epoch": state.step_in_epoch,
        "accumulator": dataclasses.asdict(state.acc),
        "history": list(state.history),
        "latest": dict(state.latest),
        "best_checkpoint": state.best_checkpoint,
        "bad_steps": state.bad_steps,
        "config": state.config.model_dump(),
        "total_parameters": state.total_parameters,
        "rng": {"numpy": np.random.get_state(), "python": random.getstate()},
    }


class Checkpointer(Callback):
    """``flush`` is called before each save so that every record up to the saved step is on disk."""

    def __init__(self, flush: Callable[[], None] | None = None):
        self.flush = flush or (lambda: None)
        self._last_save = time.monotonic()

    def save(self, state: RunState, best: bool = False) -> Path:
        self.flush()
        path = checkpoint.save(state.run_dir, checkpoint_payload(state), state.config.keep_last, best=best)
        self._last_save = time.monotonic()
        info = {"path": str(path), "epoch": state.epoch, "global_step": state.global_step,
                "psnr": state.latest.get("psnr")}
        state.last_checkpoint = info
        return path

    def on_step_end(self, state: RunState, step: StepResult) -> None:
        due = time.monotonic() - self._last_save >= state.config.checkpoint_minutes * 60
        if due and state.step_in_epoch < state.steps_per_epoch:
            self.save(state)

    def on_epoch_end(self, state: RunState, result: EpochResult) -> None:
        psnr = (result.quality or {}).get("psnr")
        best = psnr is not None and (state.best_psnr is None or psnr > state.best_psnr)
        if best:
            # Recorded before saving so the best checkpoint knows it is the best.
            state.best_checkpoint = {"path": str(checkpoint.checkpoint_dir(state.run_dir) / checkpoint.BEST),
                                     "epoch": state.epoch, "global_step": state.global_step, "psnr": psnr}
        self.save(state, best=best)

    def on_train_end(self, state: RunState) -> None:
        if state.status == "stopped":
            self.save(state)
