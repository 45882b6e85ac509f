"""The tile grid, block ownership and the blending weights (pure core, no cluster)."""

from __future__ import annotations

import numpy as np
import pytest

from geoseg.core.blend import SCALE, Accumulator, add_patch, finalize, tile_weights
from geoseg.core.grid import BlockGrid, TileGrid, Window, symmetric_index


@pytest.mark.parametrize(
    "h,w,tile,overlap,block",
    [
        (1000, 1300, 128, 32, 300),
        (97, 61, 64, 16, 64),
        (512, 512, 512, 64, 2048),
        (2049, 777, 256, 0, 512),
        (5000, 3000, 512, 64, 2048),
    ],
)
def test_blocks_partition_scene_and_own_each_tile_once(h, w, tile, overlap, block):
    g = TileGrid(h, w, tile, overlap)
    bg = BlockGrid.from_block_size(g, block)
    covered = np.zeros((h, w), dtype=np.int32)
    owned = np.zeros(g.shape, dtype=np.int32)
    for b in bg:
        covered[b.region.slices()] += 1
        for ti in b.tiles_rows:
            for tj in b.tiles_cols:
                owned[ti, tj] += 1
                tw = g.tile_window(ti, tj)
                assert b.read.intersect(tw) == tw  # the block reads all its tiles
        # a block's tiles reach at most `overlap` pixels beyond its region
        assert b.extent.row_end - b.region.row_end <= overlap
        assert b.extent.col_end - b.region.col_end <= overlap
    assert (covered == 1).all()
    assert (owned == 1).all()
    # the last tile covers the scene end; tile origins are multiples of the stride
    nt = g.shape
    assert g.tile_window(nt[0] - 1, 0).row_end >= h and g.tile_window(0, nt[1] - 1).col_end >= w


@pytest.mark.parametrize(
    "h,w,tile,overlap", [(700, 900, 128, 32), (300, 200, 64, 32), (100, 100, 128, 16)]
)
def test_weights_are_a_partition_of_unity(h, w, tile, overlap):
    g = TileGrid(h, w, tile, overlap)
    total = np.zeros((h, w))
    nt = g.shape
    for ti in range(nt[0]):
        for tj in range(nt[1]):
            tw = g.tile_window(ti, tj)
            inter = tw.intersect(g.scene)
            total[inter.slices()] += tile_weights(g, ti, tj)[inter.slices((tw.row, tw.col))]
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_weights_taper_inside_only():
    g = TileGrid(1000, 1000, 128, 32)
    first = tile_weights(g, 0, 0)
    assert first[0, 0] == 1.0 and first[0, 50] == 1.0  # no taper at the scene border
    assert first[127, 127] < 0.01 and first[127, 127] > 0  # tapered towards the next tiles
    mid = tile_weights(g, 2, 2)
    assert mid[0, 64] < 0.01 and mid[64, 64] == 1.0


def test_symmetric_index_matches_numpy_pad():
    a = np.arange(7)
    idx = np.arange(-20, 27)
    padded = np.pad(a, 20, mode="symmetric")[: len(idx)]
    np.testing.assert_array_equal(a[symmetric_index(idx, 7)], padded)
    assert (symmetric_index(np.arange(-5, 5), 1) == 0).all()


def test_invalid_tiling_rejected():
    with pytest.raises(ValueError, match="multiple of 32"):
        TileGrid(100, 100, 100, 10)
    with pytest.raises(ValueError, match="overlap"):
        TileGrid(100, 100, 128, 100)


def test_fixed_point_sums_do_not_depend_on_grouping():
    rng = np.random.default_rng(0)
    g = TileGrid(300, 300, 128, 32)
    tiles = [(ti, tj) for ti in range(g.shape[0]) for tj in range(g.shape[1])]
    probs = {
        t: rng.dirichlet(np.ones(4), size=(128, 128)).transpose(2, 0, 1).astype(np.float32)
        for t in tiles
    }
    whole = Accumulator(g.scene, 4)
    for t in tiles:
        whole.add_tile(probs[t], tile_weights(g, *t), g.tile_window(*t))
    # the same tiles summed in two groups (as two blocks would), then merged
    halves = [Accumulator(g.scene, 4), Accumulator(g.scene, 4)]
    for k, t in enumerate(reversed(tiles)):
        halves[k % 2].add_tile(probs[t], tile_weights(g, *t), g.tile_window(*t))
    merged = halves[0].data.copy()
    add_patch(merged, (0, 0), halves[1].data, (0, 0))
    np.testing.assert_array_equal(merged, whole.data)
    # normalised probabilities are the weighted mean, to fixed-point precision
    assert abs(whole.data[4].astype(np.int64) - SCALE).max() <= 4


def test_finalize_maps_ids_and_nodata():
    sums = np.zeros((3, 2, 2), dtype=np.int32)
    sums[0] = [[10, 0], [0, 5]]
    sums[1] = [[0, 10], [5, 0]]
    sums[2] = 10
    valid = np.array([[True, True], [True, False]])
    cls, probs = finalize(sums, np.array([3, 7]), valid, 0, want_probs=True)
    np.testing.assert_array_equal(cls, [[3, 7], [7, 0]])
    assert probs[0, 0, 0] == 254 and probs[1, 0, 0] == 0 and probs[0, 1, 1] == 255


def test_window_intersection():
    a = Window(0, 0, 10, 10)
    assert a.intersect(Window(5, 5, 10, 10)) == Window(5, 5, 5, 5)
    assert a.intersect(Window(10, 0, 3, 3)) is None


@pytest.mark.parametrize("channels", [1, 2, 6, 9])
def test_argmax_channels_equals_numpy_ties_included(channels):
    from geoseg.core.blend import argmax_channels

    rng = np.random.default_rng(channels)
    a = rng.integers(0, 4, size=(channels, 37, 53)).astype(np.int32)  # many ties
    got = argmax_channels(a)
    assert got.dtype == np.uint8
    assert np.array_equal(got, np.argmax(a, axis=0))
