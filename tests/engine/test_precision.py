"""Every runtime and precision the machine can run: one per job, recorded, bit-identical for
any block size and worker count; OpenVINO's converted-model cache; the GPU blending path."""

from __future__ import annotations

import glob

import numpy as np
import pytest
import rasterio

from geoseg.engine.predict import predict
from geoseg.model.runtime import openvino_version

COMBOS = [("torch", "fp32"), ("torch", "bf16"), ("openvino", "fp32"), ("openvino", "bf16")]


def read(path):
    with rasterio.open(path) as s:
        return s.read(1), s.tags()


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    # the converted models of these tests in a folder of their own (workers inherit the env)
    monkeypatch.setenv("GEOSEG_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _skip_without(rt):
    if rt == "openvino" and openvino_version() is None:
        pytest.skip("OpenVINO is not installed")


@pytest.mark.parametrize("rt, precision", COMBOS)
def test_bit_identical_for_any_block_size_and_worker_count(
    rt, precision, client, synth, bundles, tmp_path
):
    from geoseg.cluster.setup import ClusterOptions, connect

    _skip_without(rt)
    scene, _ = synth(300, 420, seed=61)
    bundle = bundles("deeplabv3plus", tile=128, overlap=32, encoder="resnet18")
    kw = dict(precision=precision, runtime=rt)
    runs = [
        predict(scene, bundle, tmp_path / f"b{b}.tif", block=b, client=client, **kw)
        for b in (96, 512)
    ]
    with connect(ClusterOptions(workers=1)) as one:
        runs.append(predict(scene, bundle, tmp_path / "w1.tif", block=192, client=one, **kw))
    first, tags = read(runs[0].path)
    assert len(np.unique(first)) > 1
    assert tags["GEOSEG_RUNTIME"] == f"{rt}/{precision}" == runs[0].runtime
    for r in runs[1:]:
        np.testing.assert_array_equal(read(r.path)[0], first)


def test_auto_is_recorded_and_reduced_precision_is_close_to_fp32(client, synth, bundles, tmp_path):
    scene, _ = synth(300, 420, seed=61)
    bundle = bundles("deeplabv3plus", tile=128, overlap=32, encoder="resnet18")
    ref = predict(
        scene, bundle, tmp_path / "fp32.tif", client=client, precision="fp32", runtime="torch"
    )
    auto = predict(scene, bundle, tmp_path / "auto.tif", client=client)
    a, tags = read(auto.path)
    assert tags["GEOSEG_RUNTIME"] == auto.runtime and auto.runtime_reason
    assert "/" in auto.runtime
    # a different choice is a different job: nothing staged for fp32 is reused for it
    assert auto.runtime == "torch/fp32" or auto.blocks_reused == 0
    # untrained weights have tiny margins; trained bundles agree far better (see the NC test)
    assert (a == read(ref.path)[0]).mean() > 0.9


@pytest.mark.parametrize("rt", ["torch", "openvino"])
def test_nc_bundle_in_bf16_agrees_with_fp32(rt, client, tmp_path):
    """The accuracy guard on the committed, trained NC bundle and its own scene."""
    from tests.conftest import ROOT

    _skip_without(rt)
    scene = sorted(glob.glob(str(ROOT / "examples/data/nc/lsat7_2000_*.tif")))
    bundle = ROOT / "examples/models/nc-deeplabv3plus"
    ref = read(
        predict(
            scene, bundle, tmp_path / "fp32.tif", client=client, precision="fp32", runtime="torch"
        ).path
    )[0]
    low = read(
        predict(
            scene, bundle, tmp_path / "bf16.tif", client=client, precision="bf16", runtime=rt
        ).path
    )[0]
    assert (low == ref).mean() >= 0.995


def test_openvino_conversion_is_cached_by_the_weights(bundles, tmp_path, monkeypatch):
    if openvino_version() is None:
        pytest.skip("OpenVINO is not installed")
    import geoseg.model.openvino_model as ovm
    from geoseg.model.factory import create_bundle

    monkeypatch.setenv("GEOSEG_CACHE", str(tmp_path / "cache"))
    bundle = bundles("pixelnet", tile=64, overlap=16)
    x = np.random.default_rng(0).normal(size=(1, 4, 64, 64)).astype(np.float32)
    first = ovm.OpenVINOModel(str(bundle), 1, 64, "fp32")
    assert first.xml.exists() and first.xml.is_relative_to(tmp_path / "cache")

    def no_conversion(*a, **k):
        raise AssertionError("converted again")

    monkeypatch.setattr(ovm, "_convert", no_conversion)
    again = ovm.OpenVINOModel(str(bundle), 1, 64, "fp32")
    assert again.xml == first.xml
    np.testing.assert_array_equal(again(x), first(x))
    # other weights: another key, converted afresh
    other = tmp_path / "other"
    classes = [{"id": i + 1, "name": f"class{i + 1}"} for i in range(5)]
    create_bundle(
        other, classes=classes, bands=4, architecture="pixelnet", tile=64, overlap=16, seed=9
    )
    with pytest.raises(AssertionError, match="converted again"):
        ovm.OpenVINOModel(str(other), 1, 64, "fp32")


def test_openvino_probabilities_match_torch_in_fp32(bundles, tmp_path, monkeypatch):
    if openvino_version() is None:
        pytest.skip("OpenVINO is not installed")
    from geoseg.model.runner import TilePredictor

    monkeypatch.setenv("GEOSEG_CACHE", str(tmp_path / "cache"))
    bundle = str(bundles("deeplabv3plus", tile=128, overlap=32, encoder="resnet18"))
    x = np.random.default_rng(1).normal(size=(3, 4, 128, 128)).astype(np.float32)
    t = TilePredictor(bundle, precision="fp32", runtime="torch", batch_size=2).predict(x)
    o = TilePredictor(bundle, precision="fp32", runtime="openvino", batch_size=2).predict(x)
    np.testing.assert_allclose(o, t, atol=2e-4)  # the last batch is padded: same results


def test_gpu_finalize_path_gives_the_cpu_map(synth, bundles, tmp_path, monkeypatch):
    """A GPU worker's whole block path (blending and argmax in torch, model.accumulate) run on
    the CPU through the engine: the same map and probabilities, bit for bit, as the CPU path
    (numpy argmax). The blending itself equals core.blend's (tests/model/test_accumulate.py)."""
    from distributed import Client, LocalCluster

    import geoseg.engine.blocks as blocks
    from geoseg.model.accumulate import finalize_torch

    scene, _ = synth(300, 420, seed=62)
    bundle = bundles("deeplabv3plus", tile=128, overlap=32, encoder="resnet18")
    kw = dict(block=192, precision="fp32", runtime="torch", probabilities=True)
    with (
        LocalCluster(n_workers=1, processes=False, dashboard_address="127.0.0.1:0") as lc,
        Client(lc) as c,
    ):
        cpu = predict(scene, bundle, tmp_path / "cpu.tif", client=c, **kw)
        used = []

        def on_device(acc, reg, ids, valid, nodata, want):
            used.append(acc.device.type)
            sums = acc.data[:, : reg.height, : reg.width]
            return finalize_torch(sums, ids, valid, nodata, want)

        monkeypatch.setattr(blocks, "_finalize", on_device)
        dev = predict(scene, bundle, tmp_path / "dev.tif", client=c, **kw)
    assert used and dev.blocks_reused == 0
    np.testing.assert_array_equal(read(dev.path)[0], read(cpu.path)[0])
    with rasterio.open(cpu.outputs["probs"]) as a, rasterio.open(dev.outputs["probs"]) as b:
        np.testing.assert_array_equal(a.read(), b.read())


def test_openvino_with_a_tile_size_other_than_the_bundles(client, synth, bundles, tmp_path):
    _skip_without("openvino")
    scene, _ = synth(200, 230, seed=63)
    bundle = bundles("pixelnet", tile=128, overlap=32)
    kw = dict(client=client, precision="fp32", tile=64, overlap=16)
    ov = predict(scene, bundle, tmp_path / "ov.tif", runtime="openvino", **kw)
    pt = predict(scene, bundle, tmp_path / "pt.tif", runtime="torch", **kw)
    a, tags = read(ov.path)
    assert tags["GEOSEG_TILE"] == "64" and ov.runtime == "openvino/fp32"
    assert (a == read(pt.path)[0]).mean() > 0.999
