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


def same_for_one_block_and_many(scene, bundle, tmp_path, client):
    """Predict ``scene`` with ``bundle`` as one block and as many; assert the class map and
    the border head are identical; return the one-block result."""
    import numpy as np
    import rasterio

    from geoseg.engine.predict import predict

    one = predict(scene, str(bundle), tmp_path / "one.tif", block=512, client=client)
    many = predict(scene, str(bundle), tmp_path / "many.tif", block=64, client=client)
    assert many.blocks > 1 == one.blocks
    for a, b in ((one.path, many.path), (one.outputs["boundary"], many.outputs["boundary"])):
        with rasterio.open(a) as x, rasterio.open(b) as y:
            assert np.array_equal(x.read(1), y.read(1))
    return one
