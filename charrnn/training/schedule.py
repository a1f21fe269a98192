"""The learning-rate schedule: linear warmup, then cosine decay to a floor."""

from __future__ import annotations

import math

from ..config import TrainConfig


def lr_at(cfg: TrainConfig, step: int, progress: float) -> float:
    """Linear warmup over `warmup` steps, then cosine decay from lr to min_lr as
    the run's progress (by steps, epochs or time, whichever is furthest) goes 0 -> 1."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    p = min(max(progress, 0.0), 1.0)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1.0 + math.cos(math.pi * p))
