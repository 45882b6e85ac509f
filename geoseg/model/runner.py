"""Tile prediction with a loaded bundle: normalisation, batching, softmax, OOM back-off.

The model runs in one runtime (torch, or OpenVINO on CPUs) and one precision (fp32, bf16
autocast, fp16 on GPUs): :mod:`geoseg.model.runtime` decides which, once per job.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from geoseg.model.bundle import BundleMeta, read_meta
from geoseg.model.factory import load_model
from geoseg.model.heads import Activation
from geoseg.model.tta import TTA_VIEWS, check_tta

log = logging.getLogger(__name__)

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
_OLD_AMP = {"bf16": "bf16", "fp16": "fp16", "none": "fp32"}  # the former ``amp=`` values


def memory_format(device: torch.device) -> torch.memory_format:
    """channels_last on CPU: oneDNN's convolutions run DeepLabV3+ faster in it (training
    1.3-1.6x, benchmarks/train_step.py; prediction ~1.2x); GPUs keep the default."""
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


def normalize(data: np.ndarray, valid: np.ndarray, meta: BundleMeta) -> np.ndarray:
    """(x - mean) / std per band, in place; invalid pixels become 0 (the band mean)."""
    mean = np.asarray(meta.normalization.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(meta.normalization.std, dtype=np.float32)[:, None, None]
    data -= mean
    data /= std
    if not valid.all():  # a boolean-mask assignment costs a pass even where none is invalid
        data[:, ~valid] = 0.0
    # one float64 sum tells whether any value is NaN or infinite (they propagate into it)
    # at a fraction of nan_to_num's three masks and copies over every pixel
    if not np.isfinite(np.add.reduce(data, axis=None, dtype=np.float64)):
        np.nan_to_num(data, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return data


def _is_oom(e: BaseException) -> bool:
    return isinstance(e, torch.cuda.OutOfMemoryError) or "out of memory" in str(e).lower()


class TilePredictor:
    """Holds one model on one device and turns normalised tiles into class probabilities.

    ``precision``: fp32, bf16 or fp16 (default: bf16 on GPUs, fp32 on CPUs); ``runtime``:
    torch, or openvino (CPU; the model converted once and cached, softmax in its graph, for
    tiles of ``tile`` pixels, default the bundle's).
    """

    def __init__(
        self,
        bundle: str,
        device: str = "cpu",
        batch_size: int | None = None,
        precision: str | None = None,
        runtime: str = "torch",
        tta: str = "none",
        threads: int = 1,
        amp: str | None = None,
        tile: int | None = None,
    ):
        self.device = torch.device(device)
        self.views = TTA_VIEWS[check_tta(tta)]
        if precision is None:
            precision = _OLD_AMP.get(amp or "", "bf16" if self.device.type == "cuda" else "fp32")
        self.precision, self.runtime = precision, runtime
        # batch 1 is fastest on CPU (measured); GPUs want many tiles per call.
        self.batch_size = batch_size or (1 if self.device.type == "cpu" else 16)
        self.oom_retries = 0
        if runtime == "openvino" and read_meta(bundle).architecture.lower() == "maskrcnn":
            # a detector's data-dependent graph (NMS, per-object masks) is not converted
            log.info("maskrcnn runs on torch, not OpenVINO")
            self.runtime = runtime = "torch"
        if runtime == "openvino":
            from geoseg.model.openvino_model import OpenVINOModel

            self.meta = read_meta(bundle)
            self.tile = tile or self.meta.tile  # the converted model's static tile size
            self.model = OpenVINOModel(bundle, self.batch_size, self.tile, precision, threads)
            self.amp_dtype = None
        else:
            self.model, self.meta = load_model(bundle, device=device)
            self.model = self.model.to(memory_format=memory_format(self.device))
            self.amp_dtype = DTYPES.get(precision)
        self.activation = Activation(self.meta)

    @property
    def n_classes(self) -> int:
        return self.meta.n_classes

    @property
    def tag(self) -> str:
        return f"{self.runtime}/{self.precision}"

    def _probs(self, v: torch.Tensor) -> torch.Tensor:
        """Every head's values (float32; class probabilities first) of one view of a batch."""
        if self.runtime == "openvino":
            if v.shape[-1] != self.tile or v.shape[-2] != self.tile:
                raise ValueError(f"this OpenVINO model takes {self.tile}-pixel tiles")
            return torch.from_numpy(self.model(v.numpy()))
        v = v.contiguous(memory_format=memory_format(self.device))
        if self.amp_dtype is not None:
            with torch.autocast(self.device.type, dtype=self.amp_dtype):
                logits = self.model(v)
        else:
            logits = self.model(v)
        return self.activation(logits)

    def _batch(self, x: np.ndarray) -> torch.Tensor:
        """Probabilities of one batch (at most ``batch_size`` tiles), on the model's device."""
        t = torch.from_numpy(np.ascontiguousarray(x))
        if self.device.type == "cuda":  # from pinned memory, the copy overlaps the GPU's work
            t = t.pin_memory()
        t = t.to(self.device, non_blocking=True)
        total = None
        with torch.inference_mode():
            for k, flip in self.views:
                v = t.flip(-1) if flip else t
                v = torch.rot90(v, k, dims=(-2, -1)) if k else v
                p = self._probs(v)
                p = torch.rot90(p, -k, dims=(-2, -1)) if k else p
                p = p.flip(-1) if flip else p
                total = p if total is None else total + p
            if len(self.views) > 1:
                total /= len(self.views)
        return total

    def predict(self, tiles: np.ndarray) -> np.ndarray:
        """Probabilities (N x C x T x T float32) for normalised tiles (N x B x T x T).

        Out-of-memory on the device halves the batch and retries the same tiles.
        """
        return self.predict_tensor(tiles).cpu().numpy()

    def predict_tensor(self, tiles: np.ndarray) -> torch.Tensor:
        """:meth:`predict`'s probabilities left on the model's device (where the engine
        blends them, model.accumulate)."""
        parts: list[torch.Tensor] = []
        i = 0
        while i < len(tiles):
            n = min(self.batch_size, len(tiles) - i)
            try:
                parts.append(self._batch(tiles[i : i + n]))
            except (RuntimeError, MemoryError) as e:
                if not _is_oom(e) or self.batch_size == 1 or self.runtime == "openvino":
                    raise
                self.batch_size = max(1, self.batch_size // 2)
                self.oom_retries += 1
                log.warning(
                    "out of memory with %d tiles a batch; retrying with %d", n, self.batch_size
                )
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            i += n
        return parts[0] if len(parts) == 1 else torch.cat(parts)
