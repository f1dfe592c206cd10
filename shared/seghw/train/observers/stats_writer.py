"""Rewrites training_stats.json atomically: at start, every few seconds, every epoch, at the end."""

from __future__ import annotations

import os
import socket
import time
from datetime import datetime, timezone

from seghw.stats import SCHEMA_VERSION, now_iso, write_stats
from seghw.train.observers.base import Observer
from seghw.train.state import EpochResult, RunState, StepResult


def stats_document(state: RunState) -> dict:
    cfg = state.config
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": state.run_dir.name,
        "run_dir": str(state.run_dir.resolve()),
        "status": state.status,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "device": state.device,
        "started_at": datetime.fromtimestamp(state.started_at, timezone.utc).isoformat(timespec="milliseconds"),
        "updated_at": now_iso(),
        "epoch": state.epoch,
        "total_epochs": cfg.epochs,
        "global_step": state.global_step,
        "total_steps": state.total_steps,
        "steps_per_epoch": state.steps_per_epoch,
        "config": cfg.model_dump(),
        "total_parameters": state.total_parameters,
        "latest": dict(state.latest),
        "history": list(state.history),
        "best_checkpoint": state.best_checkpoint,
        "last_checkpoint": state.last_checkpoint,
        "data": dict(state.data_info),
        "bad_steps": state.bad_steps,
        "display_faults": state.faults.summary(),
        "error": state.error,
    }


class StatsWriter(Observer):
    def __init__(self) -> None:
        self._last_write = 0.0

    def write(self, state: RunState) -> None:
        write_stats(state.run_dir, stats_document(state))
        self._last_write = time.monotonic()

    def on_train_start(self, state: RunState) -> None:
        self.write(state)

    def on_step_end(self, state: RunState, step: StepResult) -> None:
        if time.monotonic() - self._last_write >= state.config.stats_seconds:
            self.write(state)

    def on_epoch_end(self, state: RunState, result: EpochResult) -> None:
        self.write(state)

    def on_train_end(self, state: RunState) -> None:
        if state.error:
            state.error.setdefault("at", now_iso())
        self.write(state)
