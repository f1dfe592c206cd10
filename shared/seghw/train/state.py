"""What the loop knows about a run, shared read-only with its observers."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seghw.config import TrainConfig
from seghw.train.observers.faults import DisplayFaults


@dataclass
class StepResult:
    loss: float
    parts: dict[str, float]
    lr: float
    grad_norm: float
    batch_size: int  # images in this optimizer step, over every data-parallel process
    step_seconds: float
    data_wait_seconds: float


@dataclass
class EpochResult:
    train_loss: float
    val_loss: float | None
    lr: float
    grad_norm: float
    param_norm: float
    epoch_duration: float
    samples_per_sec: float
    data_wait_share: float
    quality: dict[str, float | None]
    parts: dict[str, float]
    # A few validation samples (NCHW float32 numpy in [0,1]) for image grids.
    preview: dict[str, Any] | None = None
    train_preview: dict[str, Any] | None = None


@dataclass
class EpochAccumulator:
    """Running sums of the current epoch; checkpointed so a mid-epoch resume reports the same means."""

    loss_sum: float = 0.0
    grad_norm_sum: float = 0.0
    grad_norm_steps: int = 0
    parts_sum: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    samples: int = 0
    train_seconds: float = 0.0
    data_wait_seconds: float = 0.0

    def add(self, step: StepResult) -> None:
        self.loss_sum += step.loss
        if math.isfinite(step.grad_norm):  # an AMP overflow step has no usable norm
            self.grad_norm_sum += step.grad_norm
            self.grad_norm_steps += 1
        for k, v in step.parts.items():
            self.parts_sum[k] = self.parts_sum.get(k, 0.0) + v
        self.steps += 1
        self.samples += step.batch_size
        self.train_seconds += step.step_seconds
        self.data_wait_seconds += step.data_wait_seconds

    def mean(self, total: float, steps: int | None = None) -> float:
        steps = self.steps if steps is None else steps
        return total / steps if steps else float("nan")


@dataclass
class RunState:
    config: TrainConfig
    run_dir: Path
    device: str
    started_at: float = field(default_factory=time.time)
    status: str = "running"
    epoch: int = 0  # completed epochs
    global_step: int = 0  # completed optimizer steps
    step_in_epoch: int = 0
    steps_per_epoch: int = 0
    total_parameters: int = 0
    data_info: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    latest: dict[str, float | None] = field(default_factory=dict)
    best_checkpoint: dict[str, Any] | None = None
    last_checkpoint: dict[str, Any] | None = None
    bad_steps: int = 0
    error: dict[str, str] | None = None
    acc: EpochAccumulator = field(default_factory=EpochAccumulator)
    resumed_from: dict[str, Any] | None = None  # {"path", "epoch", "global_step"}
    faults: DisplayFaults = field(default_factory=DisplayFaults)  # views not written; training went on
    # Live training objects; observers may read them (e.g. to checkpoint), never replace them.
    model: Any = None
    optimizer: Any = None
    scheduler: Any = None
    scaler: Any = None

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.config.epochs

    @property
    def best_psnr(self) -> float | None:
        return (self.best_checkpoint or {}).get("psnr")
