"""Security: configs are safe-loaded YAML, weights are never unpickled, Dask can run over TLS.

(A pickle offered as a bundle's weights, through the CLI: tests/test_bad_inputs.py.)
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from geoseg.cli.main import app

runner = CliRunner()


def _error_line(r) -> str:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error:"), r.output
    return lines[0]


def test_yaml_python_tags_are_refused_not_executed(tmp_path):
    marker = tmp_path / "executed"
    cfg = tmp_path / "evil.yaml"
    cfg.write_text(
        f"name: !!python/object/apply:builtins.open [{str(marker)!r}, w]\n"
        "classes: [{id: 1, name: a}]\nscenes: [{image: x.tif}]\noutput: out\n"
    )
    line = _error_line(runner.invoke(app, ["train", str(cfg)]))
    assert "not valid YAML at line 1" in line and "python/object/apply" in line
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_state_dict_import_refuses_a_malicious_pickle(tmp_path, evil_pickle):
    marker = tmp_path / "executed"
    evil = tmp_path / "weights.pth"
    evil.write_bytes(evil_pickle(marker))
    classes = tmp_path / "classes.json"
    classes.write_text(json.dumps([{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]))
    r = runner.invoke(
        app,
        [
            "bundle",
            "create",
            "--out",
            str(tmp_path / "b"),
            "--classes",
            str(classes),
            "--bands",
            "3",
            "--arch",
            "pixelnet",
            "--state-dict",
            str(evil),
        ],
    )
    line = _error_line(r)
    assert "weights_only=True" in line and "no arbitrary pickles" in line
    assert not marker.exists()
    assert not (tmp_path / "b" / "bundle.json").exists()


def test_predict_over_a_tls_cluster_equals_the_plain_run(client, synth, bundles, tmp_path):
    pytest.importorskip("cryptography")
    from distributed.security import Security

    from geoseg.cluster.setup import ClusterOptions, connect
    from geoseg.engine.predict import predict

    scene, _ = synth(200, 240, seed=61)
    bundle = bundles("pixelnet", tile=64, overlap=16)
    plain = predict(scene, bundle, tmp_path / "plain.tif", block=128, client=client)
    assert client.scheduler.address.startswith("tcp://")
    sec = Security.temporary()
    with connect(ClusterOptions(workers=1, security=sec)) as c:
        assert c.scheduler.address.startswith("tls://")
        assert all(w.startswith("tls://") for w in c.scheduler_info()["workers"])
        tls = predict(scene, bundle, tmp_path / "tls.tif", block=128, client=c)
    with rasterio.open(tls.path) as a, rasterio.open(plain.path) as b:
        np.testing.assert_array_equal(a.read(), b.read())
