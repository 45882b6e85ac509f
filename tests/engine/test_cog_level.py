"""``--cog-level``: how the COG outputs are compressed, not what they hold. Another level
reuses the staged blocks, writes the same pixels and overviews into a valid COG of another
size; a level outside 1-9 is a one-line error before any work."""

from __future__ import annotations

import subprocess

import numpy as np
import rasterio
from rio_cogeo.cogeo import cog_validate

from geoseg.engine.predict import predict
from tests.conftest import predict_cmd


def _pixels(path) -> list[np.ndarray]:
    with rasterio.open(path) as s:
        levels = [s.read(1)]
        for i in range(len(s.overviews(1))):
            with rasterio.open(path, overview_level=i) as o:
                levels.append(o.read(1))
    return levels


def test_another_level_same_pixels_other_size(client, synth, bundles, tmp_path):
    scene, _ = synth(1300, 1100, seed=21)
    bundle = bundles("pixelnet", tile=128, overlap=32)
    staging = tmp_path / "staging"
    kw = dict(client=client, staging=str(staging), keep_staging=True)
    six = predict(scene, bundle, tmp_path / "six.tif", **kw)
    one = predict(scene, bundle, tmp_path / "one.tif", cog_level=1, **kw)
    assert one.blocks_reused == one.blocks == six.blocks  # the same job: nothing recomputed
    for p in (six.path, one.path):
        ok, errors, _ = cog_validate(p)
        assert ok, errors
    a, b = _pixels(six.path), _pixels(one.path)
    assert len(a) == len(b) > 1
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert (tmp_path / "one.tif").stat().st_size > (tmp_path / "six.tif").stat().st_size


def test_a_level_outside_1_to_9_is_a_one_line_error(synth, bundles, tmp_path):
    scene, _ = synth(100, 100, seed=22)
    out = tmp_path / "x.tif"
    cmd = predict_cmd(scene, bundles("pixelnet"), out, "--cog-level", "12")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "cog-level" in lines[0] and "9" in lines[0], r.stderr
    assert not out.exists() and not list(tmp_path.glob(".x*"))
