"""AdamW and its learning-rate schedule, a pure function of the step (so a resumed run follows
the same schedule as an uninterrupted one)."""

from __future__ import annotations

import math

import torch

from geoseg.train.config import TrainingConfig

ONECYCLE_PCT = 0.3  # share of steps rising to the peak (torch's OneCycleLR default)
ONECYCLE_DIV, ONECYCLE_FINAL_DIV = 25.0, 1e4


def make_optimizer(model: torch.nn.Module, cfg: TrainingConfig) -> torch.optim.AdamW:
    """AdamW; biases and normalisation weights (1-d tensors) get no weight decay. With
    ``encoder_lr`` below 1 or a frozen warm-up, the encoder's tensors form groups of their
    own whose rate is ``lr_scale`` times the schedule's (a config without either keeps the
    two groups it always had, so its optimizer state and steps are unchanged)."""
    split = hasattr(model, "encoder") and (cfg.encoder_lr != 1 or cfg.freeze_encoder_epochs)
    parts = [("encoder", cfg.encoder_lr), ("rest", 1.0)] if split else [("all", 1.0)]
    groups = []
    for part, scale in parts:
        params = [
            p
            for n, p in model.named_parameters()
            if p.requires_grad
            and (part == "all" or n.startswith("encoder.") == (part == "encoder"))
        ]
        for decay in (True, False):
            groups.append(
                {
                    "params": [p for p in params if (p.ndim > 1) == decay],
                    "weight_decay": cfg.weight_decay if decay else 0.0,
                    "lr_scale": scale,
                    "part": part,
                }
            )
    return torch.optim.AdamW(groups, lr=cfg.lr)


def freeze_encoder(model: torch.nn.Module, opt: torch.optim.Optimizer, frozen: bool) -> None:
    """Stop (or restart) the encoder's learning: no gradients through it while frozen."""
    if not hasattr(model, "encoder"):
        return
    for p in model.encoder.parameters():
        p.requires_grad_(not frozen)


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
        g["lr"] = lr * g.get("lr_scale", 1.0)
