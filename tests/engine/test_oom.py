"""GPU out-of-memory, simulated on the CPU: the batch is halved and the same tiles retried,
and the output is what it would have been without the error."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch

from geoseg.engine.predict import predict
from geoseg.model.runner import TilePredictor


def _oom_above(model, limit: int, calls: list[int]):
    """Make ``model`` raise CUDA's out-of-memory error for batches of more than ``limit``."""
    forward = model.forward

    def guarded(x):
        calls.append(x.shape[0])
        if x.shape[0] > limit:
            raise torch.cuda.OutOfMemoryError(
                f"CUDA out of memory. Tried to allocate {x.shape[0] * 64} MiB"
            )
        return forward(x)

    model.forward = guarded
    return model


def test_predictor_halves_the_batch_and_retries_the_same_tiles(bundles):
    bundle = bundles("pixelnet", tile=64, overlap=16)
    tiles = np.random.default_rng(0).normal(0, 1, size=(11, 4, 64, 64)).astype(np.float32)
    normal = TilePredictor(str(bundle), batch_size=8).predict(tiles)

    pred = TilePredictor(str(bundle), batch_size=8)
    calls: list[int] = []
    _oom_above(pred.model, 2, calls)
    out = pred.predict(tiles)

    assert calls[:3] == [8, 4, 2]  # halved twice, then the same first tiles succeed
    assert pred.batch_size == 2 and pred.oom_retries == 2
    assert sum(n for n in calls if n <= 2) == len(tiles)  # every tile predicted exactly once
    np.testing.assert_array_equal(out.argmax(axis=1), normal.argmax(axis=1))
    np.testing.assert_allclose(out, normal, rtol=0, atol=1e-6)


def test_oom_at_batch_one_is_not_swallowed(bundles):
    pred = TilePredictor(str(bundles("pixelnet", tile=64, overlap=16)), batch_size=1)
    _oom_above(pred.model, 0, [])
    with pytest.raises(torch.cuda.OutOfMemoryError):
        pred.predict(np.zeros((2, 4, 64, 64), np.float32))


def test_engine_block_retried_with_smaller_batches_gives_the_normal_map(
    client, synth, bundles, tmp_path, monkeypatch
):
    """A whole job on a worker thread of this process, with the model's forward failing above
    3 tiles a batch: the blocks complete and the map equals a run without the error."""
    from distributed import LocalCluster

    import geoseg.engine.blocks as blocks
    import geoseg.model.runner as runner

    scene, _ = synth(300, 360, seed=51)
    bundle = bundles("pixelnet", tile=64, overlap=16)
    kw = dict(block=192, batch_size=8, precision="fp32", runtime="torch")  # torch's OOM path
    normal = predict(scene, bundle, tmp_path / "normal.tif", client=client, **kw)

    calls: list[int] = []
    load = runner.load_model

    def load_oom(*a, **k):
        model, meta = load(*a, **k)
        return _oom_above(model, 3, calls), meta

    monkeypatch.setattr(runner, "load_model", load_oom)
    monkeypatch.setattr(blocks, "_predictors", {})  # a fresh predictor, built with the patch
    threads = torch.get_num_threads()
    try:
        with (
            LocalCluster(
                n_workers=1, threads_per_worker=1, processes=False, dashboard_address="127.0.0.1:0"
            ) as cluster,
            cluster.get_client() as c,
        ):
            res = predict(scene, bundle, tmp_path / "oom.tif", device="cpu", client=c, **kw)
    finally:
        torch.set_num_threads(threads)  # the worker's predictor set it for this process
    (pred,) = blocks._predictors.values()
    assert pred.oom_retries == 2 and pred.batch_size == 2
    assert calls[:3] == [8, 4, 2] and max(calls[3:]) <= 2
    assert res.tiles == normal.tiles and res.blocks_reused == 0
    with rasterio.open(res.path) as a, rasterio.open(normal.path) as b:
        np.testing.assert_array_equal(a.read(), b.read())
