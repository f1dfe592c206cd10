"""Learning rate: linear warm-up, then cosine decay to ``min_lr_ratio``; step-based and resumable."""

from __future__ import annotations

import math


def lr_factor(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(lr: float, warmup_steps: int, total_steps: int, min_ratio: float):
    import paddle

    return paddle.optimizer.lr.LambdaDecay(
        learning_rate=lr, lr_lambda=lambda step: lr_factor(step, warmup_steps, total_steps, min_ratio)
    )
