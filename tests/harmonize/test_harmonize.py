"""Pseudo-invariant-feature normalisation: known gains and offsets recovered despite planted
changes, the harmonized COG on a real cluster, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from affine import Affine
from typer.testing import CliRunner

from geoseg.cli.main import app
from geoseg.errors import GeoSegError
from geoseg.harmonize.harmonize import harmonize
from geoseg.harmonize.pif import fit_pif

GAIN = np.array([0.8, 1.25, 1.1, 0.9])  # earlier = GAIN * later + OFFSET
OFFSET = np.array([120.0, -60.0, 35.0, 200.0])


def _later(scene, out, changed_fraction=0.3, seed=0, shift=(0, 0)):
    """The later date: the scene with the inverse radiometric shift, a little noise, and
    planted changes (patches of other land cover) over ``changed_fraction`` of the rows;
    optionally on a grid shifted by whole pixels."""
    rng = np.random.default_rng(seed)
    with rasterio.open(scene) as src:
        x = src.read().astype(np.float64)
        valid = src.dataset_mask() > 0
        prof = src.profile
    # a grid shifted by (columns, rows) = shift: the later pixel (r, c) lies on the earlier
    # pixel (r + rows, c + columns), so it holds that pixel's spectrum
    x = np.roll(x, (-shift[1], -shift[0]), axis=(1, 2))
    y = (x - OFFSET[:, None, None]) / GAIN[:, None, None]
    y += rng.normal(0, 2, y.shape)
    h = x.shape[1]
    rows = slice(0, int(h * changed_fraction))
    y[:, rows] = rng.permutation(y[:, rows].reshape(4, -1).T).T.reshape(y[:, rows].shape)[::-1]
    y[:, rows] += rng.normal(300, 150, (4, 1, 1))
    prof.update(dtype="float32", nodata=None)
    prof["transform"] = prof["transform"] * Affine.translation(*shift)
    with rasterio.open(out, "w", **prof) as dst:
        dst.write(y.astype(np.float32))
        dst.write_mask(valid)
    return out


def test_fit_recovers_gains_and_offsets_despite_planted_change():
    rng = np.random.default_rng(1)
    n = 40000
    y = np.stack(
        [rng.gamma(4, 300, n), rng.gamma(3, 400, n), rng.gamma(5, 200, n), rng.gamma(2, 900, n)]
    )
    x = GAIN[:, None] * y + OFFSET[:, None] + rng.normal(0, 3, y.shape)
    changed = rng.random(n) < 0.45  # nearly half the area changed
    x[:, changed] = rng.permutation(x[:, changed].T).T  # other spectra at those pixels
    gain, offset, keep, _ = fit_pif(x, y)
    np.testing.assert_allclose(gain, GAIN, rtol=0.01)
    np.testing.assert_allclose(offset, OFFSET, atol=0.02 * np.abs(x).mean())
    assert keep.sum() == n // 4 and changed[keep].mean() < 0.05  # the PIFs are unchanged ones


def test_harmonize_writes_the_later_date_on_the_earlier_radiometry(client, synth, tmp_path):
    earlier, _ = synth(300, 320, seed=11, nodata_fraction=0.05)
    later = _later(earlier, tmp_path / "later.tif", shift=(1, -2))  # another pixel lattice
    res = harmonize(later, earlier, tmp_path / "out.tif", client=client, block=128)
    np.testing.assert_allclose(res.report["bands"][0]["gain"], GAIN[0], rtol=0.02)
    with rasterio.open(res.path) as src, rasterio.open(earlier) as e, rasterio.open(later) as lt:
        got, ref = src.read(), e.read().astype(np.float64)
        assert src.dtypes[0] == "float32" and np.isnan(src.nodata)
        assert src.crs == lt.crs and src.transform == lt.transform  # the later's own grid
        assert len(src.overviews(1)) >= 0
        rep = json.loads(src.tags()["GEOSEG_HARMONIZE"])
        lv = lt.dataset_mask() > 0
    assert rep["pif_pixels"] == res.report["pif_pixels"]
    assert np.isnan(got[:, ~lv]).all() and not np.isnan(got[:, lv]).any()
    # unchanged rows, compared on the same ground: later (r, c) is earlier (r - 2, c + 1)
    h = got.shape[1]
    a = got[:, int(h * 0.35) : h - 5, 5:-5]
    b = ref[:, int(h * 0.35) - 2 : h - 7, 6:-4]
    ok = np.isfinite(a).all(axis=0) & (b > 0).all(axis=0)
    err = np.abs(a[:, ok] - b[:, ok]).mean(axis=1) / b[:, ok].mean(axis=1)
    assert np.all(err < 0.01), err


def test_cli_and_errors(client, synth, tmp_path):
    earlier, _ = synth(200, 200, seed=12)
    later = _later(earlier, tmp_path / "later.tif")
    out = tmp_path / "o"
    r = CliRunner().invoke(
        app,
        ["harmonize", str(later), "--to", str(earlier), "--out", str(out / "h.tif")]
        + ["--scheduler", client.scheduler.address],
    )
    assert r.exit_code == 0, r.output
    assert "pseudo-invariant pixels" in r.output and (out / "h.tif").exists()
    with rasterio.open(earlier) as src:
        prof = src.profile
        two = src.read([1, 2])
    prof.update(count=2)
    with rasterio.open(tmp_path / "two.tif", "w", **prof) as dst:
        dst.write(two)
    r = CliRunner().invoke(
        app,
        ["harmonize", str(tmp_path / "two.tif"), "--to", str(earlier), "--out", str(out / "x.tif")],
    )
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and "same bands" in lines[0]
    assert not (out / "x.tif").exists()
    with pytest.raises(GeoSegError, match="too few"):
        fit_pif(np.ones((2, 100)), np.ones((2, 100)))
