"""A bundle's model in OpenVINO: converted once, cached on disk, compiled per worker.

The converted model (softmax included, static input shape) is cached under a key of the
weights' SHA-256, the graph-defining metadata, the input shape and OpenVINO's version, so the
next job (or the next worker on this machine) compiles it in ~0.1 s instead of converting it
again (~7 s for resnet34 DeepLabV3+). Workers converting at once wait on a file lock; the cache
entry appears by one directory rename, so a reader never sees half a model.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np

from geoseg.errors import GeoSegError
from geoseg.io.files import atomic_path
from geoseg.model.bundle import BundleMeta, read_meta, sha256_file, weights_path

HINTS = {"fp32": "f32", "bf16": "bf16"}


def cache_root() -> Path:
    """``$GEOSEG_CACHE/openvino``, else ``$XDG_CACHE_HOME/geoseg/openvino`` (~/.cache)."""
    base = os.environ.get("GEOSEG_CACHE")
    if base:
        return Path(base) / "openvino"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "geoseg" / "openvino"


def cache_key(meta: BundleMeta, sha256: str, batch: int, tile: int) -> str:
    import openvino

    graph = {
        "arch": meta.architecture,
        "encoder": meta.encoder,
        "kwargs": meta.arch_kwargs,
        "bands": meta.in_channels,
        "classes": meta.n_classes,
        "openvino": openvino.get_version(),
    }
    if meta.heads:  # declared heads change the graph's activations (absent: as before)
        graph["heads"] = [h.model_dump() for h in meta.heads]
    h = hashlib.sha256(json.dumps(graph, sort_keys=True).encode()).hexdigest()[:8]
    return f"{sha256[:24]}-{h}-b{batch}-t{tile}"


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def converted(bundle: str, batch: int, tile: int) -> Path:
    """The cached OpenVINO model (``model.xml``) of ``bundle`` for batches of ``batch`` tiles."""
    meta = read_meta(bundle)
    wp = weights_path(bundle)
    sha = sha256_file(wp)
    if meta.weights_sha256 and sha != meta.weights_sha256:
        raise GeoSegError(
            f"{wp} does not match the checksum in its bundle.json: the weights were "
            "changed or damaged; re-create the bundle"
        )
    root = cache_root()
    key = cache_key(meta, sha, batch, tile)
    final = root / key
    xml = final / "model.xml"
    if xml.exists():
        return xml
    with _locked(root / f".{key}.lock"):
        if xml.exists():  # another worker converted it while this one waited
            return xml
        _convert(bundle, meta, batch, tile, final)
    return xml


def _convert(bundle: str, meta: BundleMeta, batch: int, tile: int, final: Path) -> None:
    import openvino as ov
    import torch

    from geoseg.model.factory import load_model
    from geoseg.model.heads import Activation

    model, _ = load_model(bundle)
    net = torch.nn.Sequential(model, Activation(meta)).eval()
    example = torch.zeros(batch, meta.in_channels, tile, tile)
    try:
        with atomic_path(final, user_error=False) as tmp:
            # torch.jit's deprecation notes would reach the user's terminal from every worker
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                om = ov.convert_model(net, example_input=example, input=[tuple(example.shape)])
            tmp.mkdir(parents=True, exist_ok=True)
            ov.save_model(om, str(tmp / "model.xml"), compress_to_fp16=False)
    except GeoSegError:
        raise
    except Exception as e:
        raise GeoSegError(
            f"cannot convert {meta.architecture}/{meta.encoder} to OpenVINO "
            f"({type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}): "
            "use --runtime torch"
        ) from None


class OpenVINOModel:
    """Softmax probabilities (float32) of fixed-size batches, on this worker's CPU threads."""

    def __init__(self, bundle: str, batch: int, tile: int, precision: str, threads: int = 1):
        import openvino as ov

        if precision not in HINTS:
            raise GeoSegError(f"OpenVINO on a CPU runs fp32 or bf16, not {precision}")
        self.batch, self.tile = batch, tile
        self.xml = converted(bundle, batch, tile)
        core = ov.Core()
        config = {
            # f32 must be asked for: on AMX CPUs OpenVINO defaults to bf16
            "INFERENCE_PRECISION_HINT": HINTS[precision],
            "INFERENCE_NUM_THREADS": threads,
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
            # several single-threaded workers on one machine: pinning put them on one core
            "ENABLE_CPU_PINNING": False,
        }
        self.compiled = core.compile_model(str(self.xml), "CPU", config)
        self.request = self.compiled.create_infer_request()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Probabilities (N x C x T x T) of N <= batch normalised tiles (N x B x T x T)."""
        n = len(x)
        if n < self.batch:  # the model's shape is static: pad the last batch of a block
            pad = np.zeros((self.batch - n,) + x.shape[1:], dtype=np.float32)
            x = np.concatenate([x, pad])
        out = self.request.infer({0: np.ascontiguousarray(x, dtype=np.float32)})
        return np.asarray(out[0][:n], dtype=np.float32)
