"""CogWriter.finish: creation options given by the caller replace the writer's own (thread
count, compression level), and the COG they make is valid and holds the same pixels."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rio_cogeo.cogeo import cog_validate

from geoseg.core.classes import load_classes
from geoseg.core.grid import Window
from geoseg.io.cog import CogWriter, RasterSpec

CLASSES = load_classes([{"id": i, "name": f"c{i}"} for i in range(1, 5)])


def _cog(a: np.ndarray, out, scratch, creation: dict | None) -> dict:
    spec = RasterSpec(
        *a.shape, 1, "EPSG:32612", from_origin(5e5, 4.2e6, 10, 10), 0, classes=CLASSES
    )
    w = CogWriter(spec, scratch)
    w.write(Window(0, 0, *a.shape), a)
    w.finish(out, creation=creation)
    ok, errors, _ = cog_validate(str(out))
    assert ok, errors
    with rasterio.open(out) as s:
        assert np.array_equal(s.read(1), a)
        return {"overviews": s.overviews(1), "compress": s.profile.get("compress")}


@pytest.mark.parametrize(
    "creation",
    [{"NUM_THREADS": 1}, {"NUM_THREADS": "2", "LEVEL": 1}, {"COMPRESS": "ZSTD"}],
)
def test_creation_options_replace_the_writers_own(tmp_path, creation):
    rng = np.random.default_rng(0)
    a = np.kron(rng.integers(0, 5, (40, 40), dtype=np.uint8), np.ones((32, 32), np.uint8))
    base = _cog(a, tmp_path / "base.tif", tmp_path / "s", None)
    got = _cog(a, tmp_path / "opt.tif", tmp_path / "s", creation)
    assert got["overviews"] == base["overviews"] and base["overviews"]
    assert got["compress"] == creation.get("COMPRESS", "DEFLATE").lower()
    if "LEVEL" in creation:  # level 1 keeps less: a larger file than the default level 6
        assert (tmp_path / "opt.tif").stat().st_size > (tmp_path / "base.tif").stat().st_size
