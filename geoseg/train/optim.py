"""AdamW and its learning-rate schedule, a pure function of the step (so a resumed run follows
the same schedule as an uninterrupted one)."""

from __future__ import annotations

import math

import torch

from geoseg.train.config import TrainingConfig

ONECYCLE_PCT = 0.3  # share of steps rising to the peak (torch's OneCycleLR default)
ONECYCLE_DIV, ONECYCLE_FINAL_DIV = 25.0, 1e4


def make_optimizer(model: torch.nn.Module, cfg: TrainingConfig) -> torch.optim.AdamW:
    """AdamW; biases and normalisation weights (1-d tensors) get no weight decay."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    other = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": other, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
    )


def lr_at(step: int, total: int, cfg: TrainingConfig) -> float:
    """Learning rate for 0-based ``step`` of ``total``."""
    t = min(step, total) / max(total, 1)
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "onecycle":
        lo, end = cfg.lr / ONECYCLE_DIV, cfg.lr / ONECYCLE_DIV / ONECYCLE_FINAL_DIV
        if t < ONECYCLE_PCT:
            return lo + (cfg.lr - lo) * (1 - math.cos(math.pi * t / ONECYCLE_PCT)) / 2
        u = (t - ONECYCLE_PCT) / (1 - ONECYCLE_PCT)
        return end + (cfg.lr - end) * (1 + math.cos(math.pi * u)) / 2
    if t < cfg.warmup:  # cosine with a linear warm-up
        return cfg.lr * (step + 1) / max(1, round(cfg.warmup * total))
    u = (t - cfg.warmup) / (1 - cfg.warmup)
    return cfg.lr * (1 + math.cos(math.pi * u)) / 2


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr
