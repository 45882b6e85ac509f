"""Tile prediction with a loaded bundle: normalisation, batching, softmax, OOM back-off."""

from __future__ import annotations

import logging

import numpy as np
import torch

from geoseg.model.bundle import BundleMeta
from geoseg.model.factory import load_model
from geoseg.model.tta import TTA_VIEWS, check_tta

log = logging.getLogger(__name__)


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
    data[:, ~valid] = 0.0
    np.nan_to_num(data, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return data


def _is_oom(e: BaseException) -> bool:
    return isinstance(e, torch.cuda.OutOfMemoryError) or "out of memory" in str(e).lower()


class TilePredictor:
    """Holds one model on one device and turns normalised tiles into class probabilities."""

    def __init__(
        self,
        bundle: str,
        device: str = "cpu",
        batch_size: int | None = None,
        amp: str | None = None,
        tta: str = "none",
    ):
        self.device = torch.device(device)
        self.views = TTA_VIEWS[check_tta(tta)]
        self.model, self.meta = load_model(bundle, device=device)
        self.model = self.model.to(memory_format=memory_format(self.device))
        # batch 1 is fastest on CPU (measured); GPUs want many tiles per call.
        self.batch_size = batch_size or (1 if self.device.type == "cpu" else 16)
        if amp is None:
            amp = "bf16" if self.device.type == "cuda" else "none"
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
        self.oom_retries = 0

    @property
    def n_classes(self) -> int:
        return self.meta.n_classes

    def _forward(self, x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(x)).to(self.device, non_blocking=True)
        fmt = memory_format(self.device)
        total = None
        with torch.inference_mode():
            for k, flip in self.views:
                v = t.flip(-1) if flip else t
                v = torch.rot90(v, k, dims=(-2, -1)) if k else v
                if self.amp_dtype is not None:
                    with torch.autocast(self.device.type, dtype=self.amp_dtype):
                        logits = self.model(v.contiguous(memory_format=fmt))
                else:
                    logits = self.model(v.contiguous(memory_format=fmt))
                p = torch.softmax(logits.float(), dim=1)
                p = torch.rot90(p, -k, dims=(-2, -1)) if k else p
                p = p.flip(-1) if flip else p
                total = p if total is None else total + p
            if len(self.views) > 1:
                total /= len(self.views)
        return total.cpu().numpy()

    def predict(self, tiles: np.ndarray) -> np.ndarray:
        """Probabilities (N x C x T x T float32) for normalised tiles (N x B x T x T).

        Out-of-memory on the device halves the batch and retries the same tiles.
        """
        out = np.empty((len(tiles), self.n_classes) + tiles.shape[2:], dtype=np.float32)
        i = 0
        while i < len(tiles):
            n = min(self.batch_size, len(tiles) - i)
            try:
                out[i : i + n] = self._forward(tiles[i : i + n])
            except (RuntimeError, MemoryError) as e:
                if not _is_oom(e) or self.batch_size == 1:
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
        return out
