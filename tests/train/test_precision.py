"""training.precision: what auto picks, by detection and by timing the real model's steps."""

from __future__ import annotations

import pytest
import torch

import geoseg.train.precision as tp
from geoseg.errors import GeoSegError
from geoseg.train.config import TrainingConfig
from geoseg.train.train import train
from tests.train.test_train import _config


def test_requested_maps_the_former_amp_key():
    assert tp.requested(TrainingConfig(), None) == "auto"
    assert tp.requested(TrainingConfig(amp="none"), None) == "fp32"
    assert tp.requested(TrainingConfig(amp="bf16"), None) == "bf16"
    assert tp.requested(TrainingConfig(precision="fp32"), "bf16") == "bf16"  # the override
    with pytest.raises(GeoSegError, match="use auto, fp32 or bf16"):
        tp.requested(TrainingConfig(), "fp16")


def _net():
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 4, 1))


def test_auto_is_fp32_without_native_bf16(monkeypatch):
    monkeypatch.setattr(tp, "cpu_bf16", lambda: None)
    got = tp.resolve("auto", torch.device("cpu"), _net(), 3, 4, TrainingConfig(crop=32))
    assert got["precision"] == "fp32" and "without native bf16" in got["reason"]


def test_auto_times_both_on_a_bf16_cpu_and_keeps_the_faster(monkeypatch):
    monkeypatch.setattr(tp, "cpu_bf16", lambda: "amx")
    net = _net()
    before = [p.detach().clone() for p in net.parameters()]
    state = torch.random.get_rng_state()
    got = tp.resolve("auto", torch.device("cpu"), net, 3, 4, TrainingConfig(crop=32))
    t = got["step_seconds"]
    assert set(t) == {"fp32", "bf16"} and min(t.values()) > 0
    assert got["precision"] == ("bf16" if t["bf16"] < 0.9 * t["fp32"] else "fp32")
    # the model and the seeded random state are untouched by the timing
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    assert torch.equal(state, torch.random.get_rng_state())


def test_bf16_run_is_recorded_in_the_bundle(synth, tmp_path):
    scene, labels = synth(192, 160, patch=40, seed=2)
    res = train(_config(scene, labels, tmp_path / "m", training={"epochs": 1}), precision="bf16")
    assert res.meta.provenance["precision"] == "bf16"
    assert res.meta.provenance["precision_reason"] == "asked for"


def test_a_resumed_auto_run_keeps_the_precision_it_started_in(synth, tmp_path, monkeypatch):
    import geoseg.train.train as tt

    scene, labels = synth(192, 160, patch=40, seed=2)
    cfg = _config(scene, labels, tmp_path / "m", training={"epochs": 2})

    class Crash(Exception):
        pass

    def crash(row):
        raise Crash

    with pytest.raises(Crash):
        train(cfg, on_epoch=crash)
    first = tt.read_state(cfg["output"] + ".checkpoint")["precision"]

    def no_new_choice(*a, **k):
        raise AssertionError("precision chosen again on resume")

    monkeypatch.setattr(tt, "resolve", no_new_choice)
    res = train(cfg, resume=True)
    assert res.meta.provenance["precision"] == first["precision"]
