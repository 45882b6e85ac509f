"""``training.precision``: the training device's autocast dtype.

``auto`` trains in bf16 autocast on GPUs. On a CPU that computes bf16 natively (AMX or AVX-512
BF16) whether bf16 is faster depends on the model and the crop (benchmarks/train_step.py on an
AVX-512 BF16 CPU: resnet18 1.31x at 128 px, 1.91x at 256 px, but mobilenet_v2 0.91x at 128
px), so ``auto`` times a few forward-backward steps of the real model in both and keeps bf16
only where it is clearly faster. Elsewhere fp32 (on an AVX2-only CPU bf16 was ~50x slower).
"""

from __future__ import annotations

import copy
import logging
import time
import warnings

import torch

from geoseg.errors import GeoSegError
from geoseg.model.runner import memory_format
from geoseg.model.runtime import cpu_bf16

log = logging.getLogger(__name__)


def training_device(cfg) -> torch.device:
    want = cfg.device
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want == "cuda" and not torch.cuda.is_available():
        raise GeoSegError("training.device is cuda but no CUDA GPU is available")
    return torch.device(want)


def requested(cfg, precision: str | None) -> str:
    """auto, fp32 or bf16: the override, else ``training.precision`` (or the former ``amp``)."""
    p = precision or cfg.precision
    if p == "auto" and cfg.amp != "auto":
        p = "bf16" if cfg.amp == "bf16" else "fp32"
    if p not in ("auto", "fp32", "bf16"):
        raise GeoSegError(f"unknown training precision {p!r}: use auto, fp32 or bf16")
    return p


def resolve(p: str, device: torch.device, model, in_ch: int, n_classes: int, cfg) -> dict:
    """The precision to train in, and why: {"precision", "reason", ["step_seconds"]}."""
    if p == "bf16" and device.type == "cpu" and not cpu_bf16():
        warnings.warn(
            "this CPU has neither AMX nor AVX-512 BF16: bf16 is emulated and much slower "
            "than fp32 here (use --precision fp32)",
            stacklevel=4,
        )
    if p != "auto":
        return {"precision": p, "reason": "asked for"}
    if device.type == "cuda":
        return {"precision": "bf16", "reason": "GPU"}
    if not cpu_bf16():
        return {"precision": "fp32", "reason": "CPU without native bf16"}
    if hasattr(model, "detector"):  # its training forward is no plain logits to time
        return {"precision": "fp32", "reason": "maskrcnn trains in fp32 on CPUs (not timed)"}
    times = step_seconds(model, in_ch, n_classes, cfg.batch_size, cfg.crop, device)
    fast = times["bf16"] < 0.9 * times["fp32"]
    out = {
        "precision": "bf16" if fast else "fp32",
        "reason": f"measured on this CPU ({cpu_bf16()}): fp32 {times['fp32']:.2f} s, "
        f"bf16 {times['bf16']:.2f} s a step",
        "step_seconds": times,
    }
    log.info("training precision %s (%s)", out["precision"], out["reason"])
    return out


def step_seconds(model, in_ch: int, n_classes: int, batch: int, crop: int, device) -> dict:
    """Median seconds of a forward-backward step on random data in fp32 and in bf16 (on a
    copy of the model; the global random state is left alone, so training stays seeded)."""
    m = copy.deepcopy(model).train()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, in_ch, crop, crop, generator=g).to(device)
    x = x.contiguous(memory_format=memory_format(device))
    y = torch.randint(0, n_classes, (batch, crop, crop), generator=g).to(device)
    out = {}
    for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        ts = []
        for i in range(3):  # the first is a warm-up
            t = time.perf_counter()
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = torch.nn.functional.cross_entropy(m(x).float(), y)
            loss.backward()
            m.zero_grad(set_to_none=True)
            if i:
                ts.append(time.perf_counter() - t)
        out[name] = sorted(ts)[len(ts) // 2]
    return out
