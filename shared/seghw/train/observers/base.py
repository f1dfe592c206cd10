"""The hooks of the training loop: the loop calls them on its observers and knows nothing else of them."""

from __future__ import annotations

import sys

from seghw.train.state import EpochResult, RunState, StepResult


class Observer:
    # Set to the kind of output ("progress") by an observer that only shows the run: its failures
    # are then recorded in ``state.faults`` and never end training.
    display_kind: str | None = None

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


class ObserverList(Observer):
    def __init__(self, observers: list[Observer]):
        self.observers = list(observers)

    def _each(self, hook: str, state: RunState, *args) -> None:
        for ob in self.observers:
            if ob.display_kind is None:
                getattr(ob, hook)(state, *args)
            else:
                state.faults.attempt(ob.display_kind, hook, getattr(ob, hook), state, *args)

    def on_train_start(self, state):
        self._each("on_train_start", state)

    def on_epoch_start(self, state):
        self._each("on_epoch_start", state)

    def on_step_end(self, state, step):
        self._each("on_step_end", state, step)

    def on_epoch_end(self, state, result):
        self._each("on_epoch_end", state, result)

    def on_train_end(self, state):
        # Every observer gets to finish even if one of them fails. A failure here (the last records
        # or the last checkpoint not written) fails a run that was going to end well, before the
        # observers after it (the stats writer) report how it ended.
        first_error = None
        for ob in self.observers:
            if ob.display_kind is not None:
                state.faults.attempt(ob.display_kind, "on_train_end", ob.on_train_end, state)
                continue
            try:
                ob.on_train_end(state)
            except Exception as exc:  # noqa: PERF203
                if state.status in ("failed", "diverged"):
                    # The run's own error is the one to report; this one followed from it or is secondary.
                    print(f"seghw: while ending the {state.status} run: {type(exc).__name__}: {exc}",
                          file=sys.stderr, flush=True)
                    continue
                state.status = "failed"
                state.error = {"type": type(exc).__name__, "message": str(exc) or type(exc).__name__}
                first_error = first_error or exc
        if first_error is not None:
            raise first_error
