"""``geoseg change --model --normalize``: a date whose bands were shifted, with no change on
the ground, shows (almost) no change once each date is put onto the training radiometry."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from geoseg.change.change import change
from geoseg.cli.main import app
from geoseg.errors import GeoSegError
from tests.engine.test_normalize import _shifted, _with_quantiles


def test_normalize_removes_radiometric_false_change(client, synth, bundles, tmp_path):
    before, _ = synth(240, 260, seed=8)
    after = _shifted(before, tmp_path / "after.tif", [0.5, 1.8, 1.4, 0.6], [800, -300, 200, 900])
    bundle = _with_quantiles(bundles("pixelnet", tile=64, overlap=16), before, tmp_path / "b")
    changed = {}
    for mode in ("bundle", "scene", "pif"):
        res = change(
            before,
            after,
            tmp_path / mode,
            model=bundle,
            normalize=mode,
            threshold=0.0,
            block=128,
            client=client,
        )
        r = res.report
        changed[mode] = r["area_ha"]["changed"] / r["area_ha"]["compared"]
        assert r["normalize"]["after"]["mode"] == mode
    assert changed["scene"] < 0.01 and changed["bundle"] > changed["scene"] + 0.02, changed
    assert changed["pif"] < 0.01, changed  # the later date fitted onto the earlier
    rep = json.loads((tmp_path / "scene" / "report.json").read_text())
    assert len(rep["normalize"]["after"]["bands"]) == 4
    pif = json.loads((tmp_path / "pif" / "report.json").read_text())["normalize"]
    assert pif["before"]["mode"] == "bundle" and len(pif["pif"]["bands"]) == 4
    # after = gain * before + offset, so the fit onto the earlier date is its inverse
    assert abs(pif["pif"]["bands"][0]["gain"] * 0.5 - 1) < 0.02


def test_normalize_needs_a_model(synth, tmp_path):
    before, labels = synth(100, 100, seed=9)
    with pytest.raises(GeoSegError, match="applies to scenes predicted with --model"):
        change(labels, labels, tmp_path / "x", normalize="scene")
    r = CliRunner().invoke(
        app,
        ["change", "--before", str(labels), "--after", str(labels), "--out", str(tmp_path / "y")]
        + ["--normalize", "match"],
    )
    assert r.exit_code == 2 and "--model" in r.output and not (tmp_path / "y").exists()
