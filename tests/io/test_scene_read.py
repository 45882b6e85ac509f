"""``Scene.read``: windows inside, across and beyond the scene's edges are the symmetric
padding of the whole image (numpy's 'symmetric' pad), bands in any order and from several
files alike."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geoseg.core.grid import Window
from geoseg.io.scene import Scene


@pytest.fixture
def image(tmp_path):
    rng = np.random.default_rng(5)
    a = rng.integers(0, 4000, (3, 37, 53)).astype(np.uint16)
    a[:, 3, 4] = 0  # nodata
    path = tmp_path / "img.tif"
    profile = {"driver": "GTiff", "height": 37, "width": 53, "count": 3, "dtype": "uint16"}
    with rasterio.open(
        path, "w", **profile, nodata=0, crs="EPSG:32617", transform=from_origin(0, 0, 30, 30)
    ) as dst:
        dst.write(a)
    return path, a


@pytest.mark.parametrize(
    "window",
    [
        Window(2, 3, 10, 11),  # inside
        Window(-5, 4, 12, 20),  # above
        Window(30, -6, 15, 70),  # below, left and right
        Window(-8, 40, 50, 20),  # every row side, right
    ],
)
@pytest.mark.parametrize("bands", [[1, 2, 3], [3, 1]])
def test_a_window_is_the_symmetric_padding_of_the_image(image, window, bands):
    path, a = image
    data, valid = Scene.of(str(path)).read(window, bands)
    pad = ((0, 0), (max(0, -window.row), max(0, window.row_end - 37)))
    pad += ((max(0, -window.col), max(0, window.col_end - 53)),)
    full = np.pad(a[[b - 1 for b in bands]], pad, mode="symmetric").astype(np.float32)
    r, c = max(0, window.row), max(0, window.col)
    want = full[:, r : r + window.height, c : c + window.width]
    assert data.dtype == np.float32 and np.array_equal(data, want)
    assert np.array_equal(valid, (want != 0).all(axis=0))
