"""The training loop, top to bottom. Logging, stats and checkpoints are observers of it."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import paddle

from seghw.losses import LossWeights, erase_loss
from seghw.metrics import QualityMeter
from seghw.train import distributed
from seghw.train.observers.base import Observer
from seghw.train.state import EpochAccumulator, EpochResult, RunState, StepResult


class Diverged(RuntimeError):
    """The loss or the gradients stopped being finite more often than allowed."""


PREVIEW_KEYS = ("image", "gt", "mask")


def global_grad_norm(parameters) -> paddle.Tensor:
    squares = [paddle.sum(paddle.square(p.grad)) for p in parameters if p.grad is not None]
    return paddle.sqrt(paddle.add_n(squares)) if squares else paddle.zeros([])


def parameter_norm(parameters) -> float:
    return float(paddle.sqrt(paddle.add_n([paddle.sum(paddle.square(p)) for p in parameters])))


def train_step(state: RunState, batch: dict[str, np.ndarray], weights: LossWeights):
    """One optimizer step. Returns (loss, parts, grad_norm) as floats; skips the update if not finite.

    The reported gradient norm is taken before clipping (the optimizer clips by global norm).
    """
    model, opt, scaler = state.model, state.optimizer, state.scaler
    image = paddle.to_tensor(batch["image"])
    gt = paddle.to_tensor(batch["gt"])
    mask = paddle.to_tensor(batch["mask"])
    opt.clear_grad(set_to_zero=False)
    with paddle.amp.auto_cast(enable=scaler.is_enable()):
        out, _pred, mask_logits = model(image)
    loss, parts = erase_loss(out.astype("float32"), mask_logits.astype("float32"), gt, mask, weights)
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    params = [p for p in model.parameters() if not p.stop_gradient]
    grad_norm = float(global_grad_norm(params))
    loss_value = float(loss)
    if not math.isfinite(loss_value):
        return loss_value, {}, grad_norm
    if not math.isfinite(grad_norm):
        if scaler.is_enable():
            # An AMP overflow: the scaler skips this update and lowers its scale; not a divergence.
            scaler.step(opt)
            scaler.update()
            return loss_value, {k: float(v) for k, v in parts.items()}, float("nan")
        return loss_value, {}, grad_norm
    scaler.step(opt)
    scaler.update()
    state.scheduler.step()
    return loss_value, {k: float(v) for k, v in parts.items()}, grad_norm


@paddle.no_grad()
def predict(model, images: np.ndarray) -> np.ndarray:
    model.eval()
    out = model(paddle.to_tensor(images))[0].numpy()
    model.train()
    return out


@paddle.no_grad()
def evaluate(state: RunState, batches: Iterable[dict[str, Any]], weights: LossWeights, preview_count: int):
    """Validation loss and quality; also returns the first samples for image grids."""
    model = state.model
    model.eval()
    meter = QualityMeter()
    loss_sum, n, preview = 0.0, 0, None
    for batch in batches:
        image = paddle.to_tensor(batch["image"])
        out, pred, mask_logits = model(image)
        loss, _ = erase_loss(out, mask_logits, paddle.to_tensor(batch["gt"]),
                             paddle.to_tensor(batch["mask"]), weights)
        size = image.shape[0]
        loss_sum += float(loss) * size
        n += size
        out_np = out.numpy()
        meter.update(out_np, batch["gt"])
        if preview is None:
            k = preview_count
            preview = {key: batch[key][:k] for key in PREVIEW_KEYS}
            preview["pred"] = out_np[:k]
            preview["pred_mask"] = paddle.nn.functional.sigmoid(mask_logits).numpy()[:k]
    model.train()
    if n == 0:
        return None, {}, None
    return loss_sum / n, meter.result(), preview


def fit(
    state: RunState,
    train_batches: Callable[[int, int], Iterable[dict[str, np.ndarray]]],
    val_batches: Callable[[], Iterable[dict[str, Any]]] | None,
    observers: Observer,
    should_stop: Callable[[], bool],
) -> RunState:
    """Train from ``state`` (fresh or restored) to ``config.epochs``.

    ``train_batches(epoch, skip)`` yields the batches of ``epoch`` after the first ``skip``;
    the caller decides how a run ends from ``state.status``.
    """
    cfg = state.config
    weights = LossWeights(cfg.loss_hole, cfg.loss_valid, cfg.loss_mask_bce, cfg.loss_mask_dice, cfg.mask_dilation)
    # The step's images in every process: the rates and the FLOP utilization are those of the run.
    world = distributed.world_size()
    state.model.train()
    try:
        observers.on_train_start(state)
        while state.epoch < cfg.epochs:
            observers.on_epoch_start(state)
            epoch_started = time.perf_counter() - state.acc.train_seconds
            batches = train_batches(state.epoch, state.step_in_epoch)
            train_preview = None
            last_tick = time.perf_counter()
            for batch in batches:
                waited = time.perf_counter() - last_tick
                loss, parts, grad_norm = train_step(state, batch, weights)
                if not parts:  # non-finite: the update was skipped
                    state.bad_steps += 1
                    if state.bad_steps > cfg.max_bad_steps:
                        raise Diverged(
                            f"loss became non-finite at step {state.global_step + 1} "
                            f"(loss={loss}, grad norm={grad_norm}); last good checkpoint kept"
                        )
                    last_tick = time.perf_counter()
                    continue
                now = time.perf_counter()
                step = StepResult(loss=loss, parts=parts, lr=state.optimizer.get_lr(), grad_norm=grad_norm,
                                  batch_size=batch["image"].shape[0] * world, step_seconds=now - last_tick,
                                  data_wait_seconds=waited)
                state.global_step += 1
                state.step_in_epoch += 1
                state.acc.add(step)
                if state.step_in_epoch == state.steps_per_epoch:
                    train_preview = {k: batch[k][: cfg.images_per_grid] for k in PREVIEW_KEYS}
                observers.on_step_end(state, step)
                # A stop at an epoch's last step waits for the epoch end below: a checkpoint taken
                # between the two would resume without that epoch's training preview.
                if state.step_in_epoch < state.steps_per_epoch and should_stop():
                    state.status = "stopped"
                    return state
                last_tick = time.perf_counter()
            if state.step_in_epoch < state.steps_per_epoch:
                continue  # the iterator ended early only if it was told to skip past the end
            train_seconds = time.perf_counter() - epoch_started
            val_loss, quality, preview = (
                evaluate(state, val_batches(), weights, cfg.images_per_grid) if val_batches else (None, {}, None)
            )
            if train_preview is not None:
                train_preview["pred"] = predict(state.model, train_preview["image"])
            acc = state.acc
            result = EpochResult(
                train_loss=acc.mean(acc.loss_sum),
                val_loss=val_loss,
                lr=state.optimizer.get_lr(),
                grad_norm=acc.mean(acc.grad_norm_sum, acc.grad_norm_steps),
                param_norm=parameter_norm(state.model.parameters()),
                epoch_duration=time.perf_counter() - epoch_started,
                samples_per_sec=acc.samples / max(acc.train_seconds, 1e-9),
                data_wait_share=acc.data_wait_seconds / max(train_seconds, 1e-9),
                quality=quality,
                parts={k: v / acc.steps for k, v in acc.parts_sum.items()},
                preview=preview,
                train_preview=train_preview,
            )
            state.epoch += 1
            state.step_in_epoch = 0
            state.acc = EpochAccumulator()
            observers.on_epoch_end(state, result)
            if should_stop():
                state.status = "stopped"
                return state
        state.status = "finished"
        return state
    except Diverged as exc:
        state.status = "diverged"
        state.error = {"type": "Diverged", "message": str(exc)}
        raise
    except BaseException as exc:
        state.status = "failed"
        state.error = {"type": type(exc).__name__, "message": str(exc) or type(exc).__name__}
        raise
    finally:
        observers.on_train_end(state)
