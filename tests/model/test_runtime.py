"""The runtime and precision choice: detection per worker, one decision per job."""

from __future__ import annotations

import pytest

from geoseg.errors import GeoSegError
from geoseg.model import runtime
from geoseg.model.runtime import choose, cpu_bf16


def cpu(bf16=None, ov="2026.4"):
    return {"device": "cpu", "cpu": "test CPU", "cpu_bf16": bf16, "openvino": ov}


def gpu(bf16=True):
    return {"device": "cuda", "gpu": "test GPU", "gpu_bf16": bf16, "cpu_bf16": None}


def test_cpu_bf16_from_the_flags():
    assert cpu_bf16(frozenset({"avx2", "amx_bf16", "amx_tile", "avx512_bf16"})) == "amx"
    assert cpu_bf16(frozenset({"avx2", "avx512f", "avx512_bf16"})) == "avx512_bf16"
    assert cpu_bf16(frozenset({"avx2", "fma"})) is None


def test_this_machine_is_detected():
    p = runtime.probe("cpu")
    flags = runtime.cpu_flags()
    assert p["device"] == "cpu" and p["cpu"]
    assert (p["cpu_bf16"] is not None) == ("amx_bf16" in flags or "avx512_bf16" in flags)


@pytest.mark.parametrize(
    "probes, want",
    [
        ([cpu("amx"), cpu("amx")], ("openvino", "bf16")),
        ([cpu("avx512_bf16")], ("openvino", "bf16")),
        ([cpu(None)], ("openvino", "fp32")),
        ([cpu("amx"), cpu(None)], ("openvino", "fp32")),  # one slow worker: fp32 for all
        ([cpu("amx", ov=None)], ("torch", "bf16")),
        ([cpu("amx"), cpu("amx", ov=None)], ("torch", "bf16")),  # one runtime for all
        ([gpu(True), gpu(True)], ("torch", "bf16")),
        ([gpu(False)], ("torch", "fp16")),
    ],
)
def test_auto_picks_one_runtime_and_precision_for_every_worker(probes, want):
    c = choose("auto", "auto", probes)
    assert (c.runtime, c.precision) == want
    assert c.reason and c.tag == f"{want[0]}/{want[1]}"


def test_explicit_choices_are_honoured():
    assert choose("fp32", "torch", [cpu("amx")]).tag == "torch/fp32"
    assert choose("bf16", "auto", [cpu(None)]).tag == "openvino/bf16"  # asked for: kept
    assert choose("fp16", "torch", [gpu()]).tag == "torch/fp16"


@pytest.mark.parametrize(
    "precision, rt, probes, words",
    [
        ("fp16", "auto", [cpu("amx")], "GPUs only"),
        ("auto", "openvino", [cpu("amx", ov=None)], "pip install openvino"),
        ("auto", "openvino", [gpu()], "--runtime torch"),
        ("bf16", "auto", [gpu(False)], "--precision fp16"),
        ("auto", "auto", [cpu(), gpu()], "mixes GPU and CPU"),
        ("fp8", "auto", [cpu()], "unknown precision"),
        ("auto", "tensorrt", [cpu()], "unknown runtime"),
    ],
)
def test_impossible_choices_are_one_line_errors(precision, rt, probes, words):
    with pytest.raises(GeoSegError, match=words) as e:
        choose(precision, rt, probes)
    assert "\n" not in str(e.value)
