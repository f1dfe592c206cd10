"""Saves a checkpoint every epoch, every ``checkpoint_minutes``, and when the run is stopped.

The state is copied on the training thread; serializing and the durable writes can then run on a
background writer, so training goes on while the file is written.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable

import numpy as np

from seghw import checkpoint
from seghw.train.observers.base import Observer
from seghw.train.state import EpochResult, RunState, StepResult


def _frozen(value):
    """A copy of a state dict's tensors that later optimizer steps cannot change."""
    import paddle

    if isinstance(value, paddle.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return type(value)((k, _frozen(v)) for k, v in value.items())
    return value


def checkpoint_payload(state: RunState) -> dict:
    import paddle

    with paddle.no_grad():
        model, optimizer = _frozen(state.model.state_dict()), _frozen(state.optimizer.state_dict())
    return {
        "format": 1,
        "model": model,
        "optimizer": optimizer,
        "scheduler": state.scheduler.state_dict(),
        "scaler": state.scaler.state_dict(),
        "epoch": state.epoch,
        "global_step": state.global_step,
        "step_in_epoch": state.step_in_epoch,
        "accumulator": dataclasses.asdict(state.acc),
        "history": [dict(h) for h in state.history],
        "latest": dict(state.latest),
        "best_checkpoint": state.best_checkpoint,
        "bad_steps": state.bad_steps,
        "display_faults": state.faults.summary(),
        "config": state.config.model_dump(),
        "total_parameters": state.total_parameters,
        "rng": {"numpy": np.random.get_state(), "python": random.getstate()},
    }


class Checkpointer(Observer):
    """``after_records(write)`` runs ``write`` once every record queued so far is on disk (the VisualDL
    logger's writer thread does that in order); without it the checkpoint is written at once.
    ``state.last_checkpoint`` names a checkpoint only once its file is durable."""

    def __init__(self, after_records: Callable[[Callable[[], None]], None] | None = None):
        self.after_records = after_records or (lambda write: write())
        self._last_save = time.monotonic()

    def save(self, state: RunState, best: bool = False) -> None:
        payload = checkpoint_payload(state)
        info = {"epoch": state.epoch, "global_step": state.global_step, "psnr": state.latest.get("psnr")}

        def write() -> None:
            path = checkpoint.save(state.run_dir, payload, state.config.keep_last, best=best)
            state.last_checkpoint = {"path": str(path), **info}

        self._last_save = time.monotonic()
        self.after_records(write)

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
