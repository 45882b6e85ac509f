"""Which runtime and numeric precision a job's model runs in.

Every worker reports what it has (:func:`probe`: device, bf16 support of its CPU or GPU,
OpenVINO); the client decides once per job (:func:`choose`), so all blocks of a map run in one
runtime and precision and the map stays bit-identical for any block size or worker count.

``auto`` on a CPU: bf16 where the CPU computes it natively (AMX or AVX-512 BF16: measured 2.0-3x
faster than fp32 on such CPUs, BENCHMARKS.md), fp32 elsewhere (on an AVX2-only CPU bf16 was ~50x
slower); OpenVINO wherever it is installed (faster than torch eager in fp32 and bf16 on every CPU
measured). On a GPU: torch in bf16 (fp16 where the GPU lacks bf16).
"""

from __future__ import annotations

import functools
import platform
from dataclasses import dataclass

from geoseg.errors import GeoSegError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
RUNTIMES = ("auto", "torch", "openvino")


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_bf16(flags: frozenset[str] | None = None) -> str | None:
    """How this CPU computes bf16 natively: ``amx``, ``avx512_bf16``, or None (emulated)."""
    flags = cpu_flags() if flags is None else flags
    if "amx_bf16" in flags:
        return "amx"
    if "avx512_bf16" in flags:
        return "avx512_bf16"
    return None


def openvino_version() -> str | None:
    try:
        import openvino
    except Exception:  # not installed, or a broken install: torch it is
        return None
    return openvino.__version__ if hasattr(openvino, "__version__") else openvino.get_version()


def probe(device: str = "auto") -> dict:
    """What this process can run: called on every worker (``Client.run``), cheap."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    out = {"device": device, "cpu": cpu_name(), "cpu_bf16": cpu_bf16()}
    if device == "cuda":
        out["gpu"] = torch.cuda.get_device_name()
        out["gpu_bf16"] = bool(torch.cuda.is_bf16_supported())
        out["openvino"] = None  # its GPU plugin is for Intel GPUs
    else:
        out["openvino"] = openvino_version()
    return out


@dataclass(frozen=True)
class Choice:
    """The runtime and precision of one job, and why."""

    device: str  # cpu | cuda
    runtime: str  # torch | openvino
    precision: str  # fp32 | bf16 | fp16
    reason: str = ""

    @property
    def tag(self) -> str:
        return f"{self.runtime}/{self.precision}"


def check_options(precision: str, runtime: str) -> None:
    if precision not in PRECISIONS:
        raise GeoSegError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if runtime not in RUNTIMES:
        raise GeoSegError(f"unknown runtime {runtime!r}: use one of {', '.join(RUNTIMES)}")


def choose(precision: str, runtime: str, probes: list[dict]) -> Choice:
    """One runtime and precision for every worker of a job, from what each reported."""
    check_options(precision, runtime)
    if not probes:
        raise GeoSegError("no worker reported its hardware: is the cluster running?")
    devices = {p["device"] for p in probes}
    if len(devices) > 1:
        raise GeoSegError(
            "the cluster mixes GPU and CPU workers: one map needs one kind of worker "
            "(use --gpus with GPU workers only, or --device cpu)"
        )
    device = devices.pop()
    if device == "cuda":
        return _choose_gpu(precision, runtime, probes)
    return _choose_cpu(precision, runtime, probes)


def _choose_gpu(precision: str, runtime: str, probes: list[dict]) -> Choice:
    if runtime == "openvino":
        raise GeoSegError(
            "--runtime openvino runs on CPUs here; with GPU workers use --runtime torch (or auto)"
        )
    bf16 = all(p.get("gpu_bf16") for p in probes)
    if precision == "auto":
        p, why = ("bf16", "GPU with bf16") if bf16 else ("fp16", "GPU without bf16")
    else:
        p, why = precision, "asked for"
    if p == "bf16" and not bf16:
        raise GeoSegError(
            f"--precision bf16: {probes[0].get('gpu', 'this GPU')} has no bf16: use "
            "--precision fp16 or fp32"
        )
    return Choice("cuda", "torch", p, why)


def _choose_cpu(precision: str, runtime: str, probes: list[dict]) -> Choice:
    if precision == "fp16":
        raise GeoSegError(
            "--precision fp16 runs on GPUs only here; on a CPU use bf16 (fast where the "
            "CPU has AMX or AVX-512 BF16) or fp32"
        )
    native = [p.get("cpu_bf16") for p in probes]
    reasons = []
    if precision == "auto":
        if all(native):
            p = "bf16"
            reasons.append(f"CPU bf16 ({native[0]})")
        else:
            p = "fp32"
            reasons.append("CPU without native bf16")
    else:
        p = precision
        reasons.append(f"{p} asked for")
    ov = [w.get("openvino") for w in probes]
    if runtime == "openvino" and not all(ov):
        raise GeoSegError(
            "--runtime openvino: OpenVINO is not installed on every worker: "
            "pip install openvino there, or use --runtime torch"
        )
    if runtime == "auto":
        r = "openvino" if all(ov) else "torch"
        reasons.append("OpenVINO installed" if all(ov) else "no OpenVINO")
    else:
        r = runtime
    return Choice("cpu", r, p, "; ".join(reasons))
