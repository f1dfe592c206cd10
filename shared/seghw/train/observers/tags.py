"""Every VisualDL tag the trainer writes, in one table: its name, its kind, what its step counts and
what it shows. The logger writes from this table; ``docs/trainer.md``'s tag table is checked
against it (``tests/test_vdl_tags.py``). The first seven are the guide's, named exactly as there.

A name ending in ``/*`` is a family: one tag per loss part or per layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from seghw.train.state import EpochResult, RunState, StepResult

EPOCH, STEP, ONCE = "epoch", "global step", "0"


@dataclass(frozen=True)
class Tag:
    name: str
    kind: str  # scalar | image | histogram | text | hparams
    step: str  # EPOCH, STEP or ONCE
    shows: str


def _epoch(name: str, shows: str, value: Callable[[RunState, EpochResult], Any]) -> tuple[Tag, Callable]:
    return Tag(name, "scalar", EPOCH, shows), value


def _step(name: str, shows: str, value: Callable[[StepResult], Any]) -> tuple[Tag, Callable]:
    return Tag(name, "scalar", STEP, shows), value


# Scalars at step = epoch: (tag, value from the run state and the epoch's result).
EPOCH_SCALARS = dict([
    _epoch("Loss/Train", "mean training loss of the epoch", lambda s, r: r.train_loss),
    _epoch("Loss/Validation", "validation loss (when there is a validation set)", lambda s, r: r.val_loss),
    _epoch("Learning_Rate", "learning rate at the end of the epoch", lambda s, r: r.lr),
    _epoch("Model/Gradient_Norm", "mean global gradient norm (before clipping)", lambda s, r: r.grad_norm),
    _epoch("Model/Parameter_Norm", "global parameter norm", lambda s, r: r.param_norm),
    _epoch("Model/Total_Parameters", "parameter count", lambda s, r: s.total_parameters),
    _epoch("Time/Epoch_Duration", "seconds the epoch took, validation included", lambda s, r: r.epoch_duration),
    _epoch("Metrics/PSNR", "validation PSNR (dB)", lambda s, r: (r.quality or {}).get("psnr")),
    _epoch("Metrics/SSIM", "validation SSIM", lambda s, r: (r.quality or {}).get("ssim")),
    _epoch("Metrics/MS_SSIM", "validation MS-SSIM (crops of 176 px and more)",
           lambda s, r: (r.quality or {}).get("ms_ssim")),
    _epoch("Metrics/Score", "competition score 0.5·PSNR/100 + 0.5·MS-SSIM",
           lambda s, r: (r.quality or {}).get("score")),
    _epoch("Speed/Samples_per_sec", "training images per second (every process's)", lambda s, r: r.samples_per_sec),
    _epoch("Speed/Data_Wait_Share", "share of step time spent waiting for data", lambda s, r: r.data_wait_share),
    _epoch("Speed/FLOP_Utilization", "CPU: achieved training FLOP/s over numpy's matmul rate",
           lambda s, r: s.latest.get("flops_utilization")),
])
# Measured by the logger itself, at step = epoch.
MEMORY = Tag("System/Memory_MB", "scalar", EPOCH, "RSS in MB (GPU: peak allocated)")
NONFINITE = Tag("Model/NonFinite_Values", "scalar", EPOCH, "NaN and ±inf values left out of the histograms")
LOSS_PARTS = Tag("Loss/*", "scalar", EPOCH, "each part of the training loss (hole, valid, mask BCE, mask Dice)")

# Scalars at step = global step, every --log-every-steps steps; a resume trims them by the step.
ITER_PREFIX = "Iter/"
STEP_SCALARS = dict([
    _step("Iter/Loss", "training loss of the step", lambda s: s.loss),
    _step("Iter/Learning_Rate", "learning rate of the step", lambda s: s.lr),
    _step("Iter/Gradient_Norm", "global gradient norm of the step (before clipping)", lambda s: s.grad_norm),
    _step("Iter/Samples_per_sec", "images per second of the step", lambda s: s.batch_size / max(s.step_seconds, 1e-9)),
])

TRAIN_SAMPLE = Tag("Train/Sample", "image", EPOCH, "training samples: input | prediction | target | mask")
PREDICTION = Tag("Prediction/Result", "image", EPOCH,
                 "validation samples: input | prediction | target | predicted mask")
WEIGHTS = Tag("Weights/*", "histogram", EPOCH, "a few layers' weights (30 buckets over the finite values)")
GRADIENTS = Tag("Gradients/*", "histogram", EPOCH, "the same layers' gradients")
GRAPH_TEXT = Tag("Model/Graph", "text", ONCE, "the layer tree with parameter counts")
HPARAMS = Tag("hparams", "hparams", ONCE, "the configuration, with the quality metrics and losses below as metrics")
HPARAM_METRICS = ["Metrics/PSNR", "Metrics/SSIM", "Loss/Validation", "Loss/Train"]

TAGS: tuple[Tag, ...] = (
    *EPOCH_SCALARS, MEMORY, NONFINITE, LOSS_PARTS, *STEP_SCALARS, TRAIN_SAMPLE, PREDICTION, WEIGHTS, GRADIENTS,
    GRAPH_TEXT, HPARAMS,
)
