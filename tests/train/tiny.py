"""A tiny training config on a synthetic scene, for tests that train for a step or two."""

from __future__ import annotations

CLASSES = [{"id": i + 1, "name": f"class{i + 1}"} for i in range(3)]


def tiny_config(out, scene, labels, model: dict, **training) -> dict:
    """Two epochs of four 64-px crops on one thread; ``training`` adds or overrides keys."""
    return {
        "classes": CLASSES,
        "scenes": [{"image": str(scene), "labels": str(labels)}],
        "split": {"mode": "blocks", "block": 64, "val_fraction": 0.25, "buffer": 8},
        "model": {"tile": 64, "overlap": 16, **model},
        "training": {
            "epochs": 2,
            "samples_per_epoch": 4,
            "batch_size": 2,
            "crop": 64,
            "val_window": 64,
            "threads": 1,
            "early_stopping": None,
            **training,
        },
        "output": str(out),
    }
