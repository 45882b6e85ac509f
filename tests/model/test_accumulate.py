"""The torch accumulator and finalize are bit-identical to the numpy ones in geoseg.core.blend."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geoseg.core.blend import SCALE, Accumulator, finalize, tile_weights
from geoseg.core.grid import TileGrid, Window
from geoseg.model.accumulate import TorchAccumulator, device_weights, finalize_torch

GRID = TileGrid(150, 170, tile=64, overlap=16)  # 3 x 4 tiles, the last ones beyond the scene
C = 5
# Tile pixels [16:48] are covered by that tile alone, with weight 1 away from the scene border.
TIE = slice(20, 32)  # classes 1 and 3 tie there
HALF = 40  # pixels [HALF:HALF+8] get probabilities that scale to k + 0.5


def _tile_probs(rng: np.random.Generator) -> np.ndarray:
    t = GRID.tile
    logits = rng.normal(scale=3.0, size=(C, t, t)).astype(np.float32)
    e = np.exp(logits - logits.max(axis=0))
    p = (e / e.sum(axis=0)).astype(np.float32)
    # a tie: classes 1 and 3 equal and largest, so their sums tie
    p[:, TIE, TIE] = 0.1
    p[1, TIE, TIE] = p[3, TIE, TIE] = 0.3
    # weight 1 in the tile interior: (2k+1) / 2**25 times 2**24 is exactly k + 0.5
    k = rng.integers(0, 1 << 20, size=(C, 8, 8))
    p[:, HALF : HALF + 8, HALF : HALF + 8] = (2 * k + 1) / np.float32(2 * SCALE)
    return p


def _tiles(seed: int):
    rng = np.random.default_rng(seed)
    nt = GRID.shape
    out = []
    for ti in range(nt[0]):
        for tj in range(nt[1]):
            out.append((ti, tj, GRID.tile_window(ti, tj), _tile_probs(rng)))
    return out


WINDOWS = [GRID.scene, Window(10, 60, 60, 80), Window(100, 120, 50, 50)]


def _compare(device: torch.device, window: Window, seed: int) -> None:
    tiles = _tiles(seed)
    ref = Accumulator(window, C)
    acc = TorchAccumulator(window, C, device)
    for ti, tj, win, p in tiles:
        w = tile_weights(GRID, ti, tj)
        ref.add_tile(p, w, win)
        acc.add_tile(torch.from_numpy(p).to(device), device_weights(GRID, ti, tj, device), win)
    got = acc.numpy()
    assert got.dtype == np.int32
    assert np.array_equal(got, ref.data)
    top = ref.data[:C].max(axis=0)
    assert ((ref.data[1] == top) & (ref.data[3] == top)).sum() >= 36  # ties in this window

    # the batched entry point gives the same sums
    batch = TorchAccumulator(window, C, device)
    batch.add_tiles(
        torch.from_numpy(np.stack([p for *_, p in tiles])).to(device),
        [device_weights(GRID, ti, tj, device) for ti, tj, *_ in tiles],
        [win for _, _, win, _ in tiles],
    )
    assert np.array_equal(batch.numpy(), ref.data)

    sub = Window(window.row + 3, window.col + 5, window.height // 2, window.width // 3)
    assert np.array_equal(acc.patch(sub), ref.patch(sub))

    rng = np.random.default_rng(seed + 1)
    valid = rng.random((window.height, window.width)) > 0.1
    class_ids = np.array([4, 9, 2, 7, 0])
    for want in (False, True):
        c_ref, p_ref = finalize(ref.data, class_ids, valid, 255, want)
        c_got, p_got = finalize_torch(acc.data, class_ids, valid, 255, want)
        assert c_got.dtype == np.uint8 and np.array_equal(c_got, c_ref)
        if want:
            assert p_got.dtype == np.uint8 and np.array_equal(p_got, p_ref)
        else:
            assert p_got is None


def test_planted_cases_exercise_rounding_and_ties():
    # guard the test data itself: halves that half-up rounding would get wrong, and real ties
    tiles = _tiles(0)
    ti, tj, win, p = tiles[5]  # an interior tile: weight 1 at the planted pixels
    w = tile_weights(GRID, ti, tj)
    assert (w[HALF : HALF + 8, HALF : HALF + 8] == 1).all()
    x = p[:, HALF : HALF + 8, HALF : HALF + 8] * np.float32(SCALE)
    assert (x % 1 == 0.5).all() and (np.rint(x) != np.floor(x + 0.5)).any()
    ref = Accumulator(GRID.scene, C)
    for ti, tj, win, p in tiles:
        ref.add_tile(p, tile_weights(GRID, ti, tj), win)
    tied = (ref.data[1] == ref.data[3]) & (ref.data[1] == ref.data[:C].max(axis=0))
    assert tied.sum() >= 12 * 12 * 9  # the last column of tiles has its ties half off-scene
    assert (np.argmax(ref.data[:C], axis=0)[tied] == 1).all()


@pytest.mark.parametrize("window", WINDOWS, ids=["scene", "inner", "corner"])
def test_cpu_matches_numpy(window):
    _compare(torch.device("cpu"), window, seed=7)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("window", WINDOWS, ids=["scene", "inner", "corner"])
def test_cuda_matches_numpy(window):
    _compare(torch.device("cuda"), window, seed=11)


def test_device_weights_are_the_tile_weights_and_cached():
    nt = GRID.shape
    for ti in range(nt[0]):
        for tj in range(nt[1]):
            w = device_weights(GRID, ti, tj, "cpu")
            assert w.dtype == torch.float32
            assert np.array_equal(w.numpy(), tile_weights(GRID, ti, tj))
    # interior tiles share one tensor; another scene size with the same geometry reuses it
    assert device_weights(GRID, 1, 1, "cpu") is device_weights(GRID, 1, 2, "cpu")
    other = TileGrid(500, 500, tile=64, overlap=16)
    assert device_weights(other, 3, 3, "cpu") is device_weights(GRID, 1, 1, "cpu")


def test_rejects_other_dtypes():
    acc = TorchAccumulator(GRID.scene, C, "cpu")
    p = torch.zeros((C, GRID.tile, GRID.tile), dtype=torch.float64)
    with pytest.raises(TypeError):
        acc.add_tile(p, device_weights(GRID, 0, 0, "cpu"), GRID.tile_window(0, 0))


def test_a_thread_reuses_its_accumulator_memory_zeroed_and_threads_do_not_share():
    import threading

    w = Window(0, 0, 40, 50)
    a = TorchAccumulator(w, 3, "cpu")
    a.data += 7  # a block's sums, left behind
    b = TorchAccumulator(w, 3, "cpu")
    assert b.data.data_ptr() == a.data.data_ptr() and int(b.data.abs().sum()) == 0
    other = TorchAccumulator(Window(0, 0, 41, 50), 3, "cpu")  # another shape: fresh zeros
    assert other.data.shape == (4, 41, 50) and int(other.data.abs().sum()) == 0
    seen = []
    t = threading.Thread(target=lambda: seen.append(TorchAccumulator(w, 3, "cpu").data))
    t.start()
    t.join()
    assert seen[0].data_ptr() != other.data.data_ptr()
