"""A class map's overviews from its blocks (core.pyramid, io.cog): each level the 2 x 2 mode,
nodata left out, ties to the smallest id, equal to a brute-force mode and to itself for any
block size; the COG keeps them (valid COG, GDAL's level sizes and count); blocks off the
lattice fall back to GDAL's MODE."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rio_cogeo.cogeo import cog_validate

from geoseg.core.classes import load_classes
from geoseg.core.grid import Window
from geoseg.core.pyramid import aligned, level_shapes, mode2x2
from geoseg.io.cog import CogWriter, RasterSpec

CLASSES = load_classes([{"id": i, "name": f"c{i}"} for i in range(1, 7)])


def brute_mode(a: np.ndarray, nodata: int | None) -> np.ndarray:
    h, w = (a.shape[0] + 1) // 2, (a.shape[1] + 1) // 2
    out = np.empty((h, w), a.dtype)
    for r in range(h):
        for c in range(w):
            cell = [int(v) for v in a[2 * r : 2 * r + 2, 2 * c : 2 * c + 2].ravel()]
            counts = Counter(v for v in cell if v != nodata)
            if not counts:
                out[r, c] = nodata
                continue
            top = max(counts.values())
            out[r, c] = min(v for v, n in counts.items() if n == top)
    return out


@pytest.mark.parametrize("shape", [(8, 8), (9, 7), (1, 5), (31, 2)])
@pytest.mark.parametrize("nodata", [0, 255, None])
def test_mode2x2_is_the_cells_mode(shape, nodata):
    rng = np.random.default_rng(sum(shape))
    a = rng.integers(0, 4, shape).astype(np.uint8)  # few values: ties and pairs are common
    if nodata == 255:
        a[rng.random(shape) < 0.3] = 255
    assert np.array_equal(mode2x2(a, nodata), brute_mode(a, nodata))


def test_aligned_blocks():
    assert aligned(0, 64, 64, 64, (200, 200), 3)
    assert not aligned(0, 60, 64, 64, (200, 200), 3)  # corner off the 8-pixel lattice
    assert aligned(192, 192, 8, 8, (200, 200), 3)
    assert aligned(128, 128, 72, 72, (200, 200), 3)  # 72 = 9 x 8
    assert aligned(192, 0, 8, 64, (200, 200), 3) and aligned(0, 192, 64, 5, (200, 197), 3)
    assert not aligned(0, 0, 60, 64, (200, 200), 3)


def _map(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    small = rng.integers(1, 7, size=(h // 20 + 1, w // 20 + 1), dtype=np.uint8)
    a = np.kron(small, np.ones((20, 20), np.uint8))[:h, :w].copy()
    noise = rng.random((h, w)) < 0.05
    a[noise] = rng.integers(0, 7, int(noise.sum()), dtype=np.uint8)  # 0: nodata
    return a


def _write(a: np.ndarray, block: int, path, scratch) -> list[np.ndarray]:
    h, w = a.shape
    spec = RasterSpec(h, w, 1, "EPSG:32612", from_origin(5e5, 4.2e6, 10, 10), 0, classes=CLASSES)
    cw = CogWriter(spec, scratch)
    for r in range(0, h, block):
        for c in range(0, w, block):
            cw.write(
                Window(r, c, min(block, h - r), min(block, w - c)), a[r : r + block, c : c + block]
            )
    kept = bool(cw.levels)
    cw.finish(path)
    ok, errors, _ = cog_validate(str(path))
    assert ok, errors
    with rasterio.open(path) as s:
        assert np.array_equal(s.read(1), a)
        levels = []
        for i in range(len(s.overviews(1))):
            with rasterio.open(path, overview_level=i) as o:
                levels.append(o.read(1))
    return kept, levels


def test_the_cog_holds_the_block_pyramid_for_any_block_size(tmp_path):
    a = _map(1300, 2100)  # 3 levels: 650 x 1050, 325 x 525, 163 x 263 (the last one odd)
    want, x = [], a
    for _ in level_shapes(*a.shape):
        x = mode2x2(x, 0)  # (checked against the brute-force mode above)
        want.append(x)
    assert [w.shape for w in want] == [(650, 1050), (325, 525), (163, 263)]
    for block in (64, 256, 2048):
        kept, got = _write(a, block, tmp_path / f"b{block}.tif", tmp_path / "scratch")
        assert kept and len(got) == len(want) == 3
        for g, w in zip(got, want, strict=True):
            assert np.array_equal(g, w), block
    # blocks off the lattice: GDAL's MODE overviews instead, as many levels, near-equal
    kept, gdal = _write(a, 100, tmp_path / "b100.tif", tmp_path / "scratch")
    assert not kept and len(gdal) == 3
    assert [g.shape for g in gdal[:2]] == [w.shape for w in want[:2]]
    assert (gdal[0] == want[0]).mean() > 0.99  # ties are broken differently
    assert not list((tmp_path / "scratch").iterdir())  # no level file left behind
