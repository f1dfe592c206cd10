"""Observers of the training loop. The loop calls these hooks and knows nothing else about them."""

from __future__ import annotations

from seghw.train.state import EpochResult, RunState, StepResult


class Callback:
    def on_train_start(self, state: RunState) -> None:
        """Before the first step (also after a resume)."""

    def on_epoch_start(self, state: RunState) -> None:
        """Before the first step of an epoch (or of its remainder after a resume)."""

    def on_step_end(self, state: RunState, step: StepResult) -> None:
        """After each optimizer step; ``state.global_step`` already counts it."""

    def on_epoch_end(self, state: RunState, result: EpochResult) -> None:
        """After validation; ``state.epoch`` already counts the epoch."""

    def on_train_end(self, state: RunState) -> None:
        """Always called once; ``state.status`` says how the run ended."""


class CallbackList(Callback):
    def __init__(self, callbacks: list[Callback]):
        self.callbacks = list(callbacks)

    def on_train_start(self, state):
        for cb in self.callbacks:
            cb.on_train_start(state)

    def on_epoch_start(self, state):
        for cb in self.callbacks:
            cb.on_epoch_start(state)

    def on_step_end(self, state, step):
        for cb in self.callbacks:
            cb.on_step_end(state, step)

    def on_epoch_end(self, state, result):
        for cb in self.callbacks:
            cb.on_epoch_end(state, result)

    def on_train_end(self, state):
        # Every observer gets to finish even if one of them fails.
        first_error = None
        for cb in self.callbacks:
            try:
                cb.on_train_end(state)
            except Exception as exc:  # noqa: PERF203
                first_error = first_error or exc
        if first_error is not None:
            raise first_error
