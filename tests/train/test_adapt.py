"""geoseg adapt on the real NC scene: the committed bundle fitted to a copy of its scene
whose bands were shifted (another 'date'), its lineage, the mapping folded into the adapted
bundle's statistics, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from geoseg.cli.main import app
from geoseg.model.bundle import read_meta, sha256_file, weights_path

ROOT = Path(__file__).resolve().parents[2]
NC = ROOT / "examples" / "data" / "nc"
BUNDLE = ROOT / "examples" / "models" / "nc-deeplabv3plus"
BANDS = [f"lsat7_2000_{b}.tif" for b in (10, 20, 30, 40, 50, 70)]
GAIN = [1.3, 0.8, 1.2, 0.75, 1.1, 1.25]
OFFSET = [20.0, -5.0, 10.0, 15.0, -8.0, 12.0]


@pytest.fixture(scope="module")
def later(tmp_path_factory) -> list[str]:
    """The NC bands with y = gain * x + offset: a later 'date' with other radiometry."""
    out = tmp_path_factory.mktemp("later")
    paths = []
    for name, g, o in zip(BANDS, GAIN, OFFSET, strict=True):
        with rasterio.open(NC / name) as src:
            x = src.read(1).astype(np.float64)
            valid = src.read_masks(1) > 0
            prof = src.profile
        prof.update(dtype="float32")
        with rasterio.open(out / name, "w", **prof) as dst:
            dst.write(np.where(valid, g * x + o, x).astype(np.float32), 1)
        paths.append(str(out / name))
    return paths


def test_adapt_fits_the_bundle_and_records_its_lineage(client, later, tmp_path):
    from geoseg.engine.predict import predict
    from geoseg.train.adapt import adapt

    out = tmp_path / "adapted"
    res = adapt(BUNDLE, later, out, epochs=1, samples_per_epoch=16, client=client)
    assert res["normalize"] == "scene"  # auto saw the shift
    meta, parent = read_meta(out), read_meta(BUNDLE)
    lineage = meta.provenance["adapted"]
    assert lineage["parent"]["weights_sha256"] == sha256_file(weights_path(BUNDLE))
    assert lineage["adapted_to"] == later and lineage["threshold"] == 0.9
    assert 0 < lineage["pseudo_labelled_share"] <= 1
    assert sum(lineage["pseudo_labelled_pixels"].values()) > 0
    assert meta.provenance["encoder_init"]["bundle"] == str(BUNDLE.resolve())
    assert [c.name for c in meta.classes] == [c.name for c in parent.classes]
    # the scene's mapping (which undoes the shift) is folded into mean and std, so the
    # adapted bundle reads the raw later bands: its statistics are the parent's, shifted
    m, s = np.array(meta.normalization.mean), np.array(meta.normalization.std)
    pm, ps = np.array(parent.normalization.mean), np.array(parent.normalization.std)
    g, o = np.array(GAIN), np.array(OFFSET)
    # (within a quarter of a band spread: the scene's statistics are sampled, the training
    # quantiles are of the training blocks only; unfolded, band 1 would be 2.9 spreads off)
    assert np.all(np.abs(m - (g * pm + o)) < 0.25 * g * ps), (m, g * pm + o)
    assert np.allclose(s, g * ps, rtol=0.15), (s, g * ps)
    assert json.loads(json.dumps(lineage))["normalize_reason"].startswith("band ")
    # the adapted bundle's training quantiles are the later scene's: auto keeps its own
    # statistics there
    again = predict(later, str(out), tmp_path / "map.tif", client=client)
    assert again.normalize == "bundle"
    assert not list(tmp_path.glob(".adapted.adapting-*"))  # its working folder is gone


def test_adapt_one_line_errors(later, tmp_path):
    runner = CliRunner()
    args = ["adapt", str(BUNDLE), "--out", str(tmp_path / "a")]
    args += [x for p in later for x in ("--scene", p)]
    for extra, words in (
        (["--threshold", "1.5"], "--threshold"),
        (["--normalize", "match"], "--normalize"),
    ):
        r = runner.invoke(app, args + extra)
        assert r.exit_code == 2, r.output
        assert words in r.output and len(r.output.strip().splitlines()) == 1
    (tmp_path / "a").mkdir()
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and "--overwrite" in r.output
