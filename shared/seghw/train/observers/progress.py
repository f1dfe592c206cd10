"""A progress bar per epoch (loss, lr, img/s, ETA) on a terminal; plain periodic lines in logs.

It only shows the run (``display_kind``): the loop records its failures and goes on."""

from __future__ import annotations

import os
import sys
import time

from seghw.train.observers.base import Observer
from seghw.train.state import EpochResult, RunState, StepResult


def _fmt(value, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def _silence_stdout() -> None:
    """The reader of stdout went away (``seghw train | head``): later output goes nowhere instead
    of failing again, and the interpreter's last flush at exit cannot fail either."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):
        return  # not a file descriptor (a test's capture): nothing to redirect
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


class ProgressReporter(Observer):
    display_kind = "progress"

    def __init__(self, line_seconds: float = 10.0, stream=None):
        self.stream = stream or sys.stdout
        self.interactive = self.stream.isatty()
        self.line_seconds = line_seconds
        self._progress = None
        self._task = None
        self._last_line = 0.0

    def _print(self, line: str) -> None:
        try:
            print(line, file=self.stream, flush=True)
        except BrokenPipeError:
            if self.stream is sys.stdout:
                _silence_stdout()
            raise

    def on_train_start(self, state: RunState) -> None:
        cfg = state.config
        where = f"resumed at epoch {state.epoch}, step {state.global_step}" if state.resumed_from else "new run"
        processes = state.data_info.get("processes", 1)
        device = f"{processes} processes (data parallel), rank 0 on {state.device}" if processes > 1 else state.device
        self._print(f"{state.run_dir.name}: {where}; device {device}; {state.total_parameters:,} parameters; "
                    f"{state.data_info.get('train_images', 0)} train / {state.data_info.get('val_images', 0)} val "
                    f"images; {state.steps_per_epoch} steps/epoch x {cfg.epochs} epochs")
        if self.interactive:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}  lr {task.fields[lr]}  {task.fields[ips]} img/s"),
                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), transient=False,
                console=Console(file=self.stream),
            )
            self._progress.start()

    def on_epoch_start(self, state: RunState) -> None:
        if self._progress is not None:
            self._task = self._progress.add_task(
                "train", total=state.steps_per_epoch, completed=state.step_in_epoch,
                epoch=f"{state.epoch + 1}/{state.config.epochs}", loss="-", lr="-", ips="-")

    def on_step_end(self, state: RunState, step: StepResult) -> None:
        ips = state.latest.get("samples_per_sec")
        if self._progress is not None:
            self._progress.update(self._task, completed=state.step_in_epoch, loss=_fmt(step.loss),
                                  lr=_fmt(step.lr, ".2e"), ips=_fmt(ips, ".1f"))
        elif time.monotonic() - self._last_line >= self.line_seconds:
            self._last_line = time.monotonic()
            self._print(f"epoch {state.epoch + 1}/{state.config.epochs} step {state.step_in_epoch}/"
                        f"{state.steps_per_epoch} loss {_fmt(step.loss)} lr {_fmt(step.lr, '.2e')} "
                        f"{_fmt(ips, '.1f')} img/s")

    def on_epoch_end(self, state: RunState, result: EpochResult) -> None:
        q = result.quality or {}
        line = (f"epoch {state.epoch}/{state.config.epochs}: train loss {_fmt(result.train_loss)}, "
                f"val loss {_fmt(result.val_loss)}, PSNR {_fmt(q.get('psnr'), '.2f')} dB, "
                f"SSIM {_fmt(q.get('ssim'))}, {_fmt(result.samples_per_sec, '.1f')} img/s, "
                f"{_fmt(result.epoch_duration, '.1f')} s")
        if self._progress is not None:
            self._progress.update(self._task, completed=state.steps_per_epoch)
            self._progress.console.print(line, markup=False, highlight=False)
        else:
            self._print(line)

    def on_train_end(self, state: RunState) -> None:
        if self._progress is not None:
            self._progress.stop()
