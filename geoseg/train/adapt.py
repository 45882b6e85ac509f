"""``geoseg adapt``: a bundle fitted to a new date or scene without labels (self-training).

1. The bundle predicts the scene through the engine, on the cluster's workers, with
   ``--normalize`` (``auto`` by default: the scene's bands moved onto the training radiometry
   where they differ) and with its confidence.
2. Pixels whose confidence reaches ``threshold`` keep their predicted class as a pseudo-label;
   the rest are unlabelled.
3. The whole network is fine-tuned from the parent's weights on those pixels (class-balanced
   crops, a low learning rate), on this machine, by :func:`geoseg.train.train.train`.

The adapted bundle reads the scene's raw bands: the radiometric mapping of step 1 (affine, per
band) is folded into its mean and standard deviation, and its training quantiles are the
scene's, so ``--normalize auto`` keeps its statistics for that scene. It records its parent
(name, version, weights SHA-256), the scene, the threshold and the share of pixels kept.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import rasterio

from geoseg.errors import GeoSegError
from geoseg.model.bundle import BundleMeta, read_meta, sha256_file, weights_path

CONF_SCALE = 254  # the confidence COG stores round(p * 254), 255 = nodata


def adapt(
    bundle: str | Path,
    scene,
    out: str | Path,
    *,
    threshold: float = 0.9,
    epochs: int = 8,
    samples_per_epoch: int = 512,
    lr: float = 2e-4,
    normalize: str = "auto",
    client=None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> dict:
    """Fit ``bundle`` to ``scene`` (a path or band files) and write the adapted bundle to
    ``out``; returns a summary (normalisation used, pixels kept, the training result)."""
    from geoseg.cluster.setup import ClusterOptions, connect
    from geoseg.engine.predict import predict
    from geoseg.io.scene import Scene
    from geoseg.train.train import train

    if not 0 < threshold < 1:
        raise GeoSegError(f"--threshold must lie between 0 and 1, got {threshold}")
    if normalize not in ("auto", "bundle", "scene"):
        raise GeoSegError(
            f"geoseg adapt takes --normalize auto, bundle or scene (an affine mapping the "
            f"adapted bundle can carry), not {normalize!r}"
        )
    meta = read_meta(bundle)
    out = Path(out)
    if out.exists() and not overwrite:
        raise GeoSegError(f"{out} exists: pass --overwrite to replace it")
    scene = Scene.of(scene)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.adapting-", dir=out.parent))
    try:
        with connect(ClusterOptions(workers=workers), client) as c:
            res = predict(
                scene,
                str(bundle),
                work / "prediction.tif",
                probabilities=True,
                normalize=normalize,
                client=c,
                progress=progress,
            )
        if any(c.id == 0 for c in meta.classes):
            raise GeoSegError("geoseg adapt marks unlabelled pixels 0, a class id of this bundle")
        labels = _pseudo_labels(res.outputs, work / "pseudo_labels.tif", threshold)
        if not labels.any():
            raise GeoSegError(
                f"no pixel reached confidence {threshold}: lower --threshold (the model is "
                "unsure everywhere on this scene)"
            )
        cfg = _config(meta, scene, work / "pseudo_labels.tif", work, epochs, samples_per_epoch, lr)
        lineage = {
            "parent": {
                "name": meta.name,
                "version": meta.version,
                "path": str(Path(bundle).resolve()),
                "weights_sha256": meta.weights_sha256 or sha256_file(weights_path(bundle)),
            },
            "adapted_to": list(scene.paths),
            "threshold": threshold,
            "normalize": res.normalize,
            "normalize_reason": res.normalize_reason,
            "pseudo_labelled_share": round(float((labels > 0).mean()), 4),
            "pseudo_labelled_pixels": {c.name: int((labels == c.id).sum()) for c in meta.classes},
        }
        result = train(
            cfg,
            progress=progress,
            init_from=str(bundle),
            normalization=folded_normalization(meta, res.radiometry),
            provenance={"adapted": lineage},
        )
        if out.exists():
            shutil.rmtree(out)
        os.replace(result.bundle, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {**lineage, "bundle": str(out), "best_val_miou": result.best_miou}


def _pseudo_labels(outputs: dict, path: Path, threshold: float) -> np.ndarray:
    """Class ids where the confidence reaches ``threshold``, else 0 (unlabelled), written to
    ``path`` on the scene's grid; returns them."""
    with rasterio.open(outputs["classes"]) as src:
        cls = src.read(1)
        profile = src.profile
        nodata = src.nodata
    with rasterio.open(outputs["conf"]) as src:
        conf = src.read(1)
    keep = (conf != 255) & (conf >= int(np.ceil(threshold * CONF_SCALE)))
    if nodata is not None:
        keep &= cls != nodata
    labels = np.where(keep, cls, 0).astype(np.uint8)
    profile = {k: profile[k] for k in ("width", "height", "crs", "transform")}
    with rasterio.open(path, "w", driver="GTiff", count=1, dtype="uint8", **profile) as dst:
        dst.write(labels, 1)
    return labels


def folded_normalization(meta: BundleMeta, radiometry: dict | None) -> dict:
    """The parent's mean and std with the scene's affine mapping folded in: ``(g x + o - m)
    / s = (x - (m - o) / g) / (s / g)``, so the adapted bundle reads the raw scene."""
    norm = meta.normalization
    mean, std = np.asarray(norm.mean, float), np.asarray(norm.std, float)
    if radiometry is not None:
        gain = np.array([b["gain"] for b in radiometry["bands"]])
        offset = np.array([b["offset"] for b in radiometry["bands"]])
        mean, std = (mean - offset) / gain, std / gain
    out = {"mean": mean.tolist(), "std": std.tolist()}
    if norm.source:
        out["source"] = norm.source
    return out


def _config(meta, scene, labels, work: Path, epochs, samples, lr) -> dict:
    classes = [c.model_dump(exclude_none=True) for c in meta.classes]
    image = list(scene.paths) if len(scene.paths) > 1 else scene.paths[0]
    return {
        "name": f"{meta.name}-adapted",
        "version": meta.version,
        "classes": classes,
        "scenes": [{"image": image, "labels": str(labels), "role": "split"}],
        "bands": meta.bands,
        "ignore_values": [0],
        "split": {"mode": "blocks", "block": 128, "val_fraction": 0.2, "buffer": 16},
        "model": {
            "architecture": meta.architecture,
            "encoder": meta.encoder,
            "arch_kwargs": meta.arch_kwargs,
            "tile": meta.tile,
            "overlap": meta.overlap,
        },
        "training": {
            "epochs": epochs,
            "samples_per_epoch": samples,
            "batch_size": 8,
            "crop": min(256, meta.tile),
            "lr": lr,
            "schedule": "cosine",
            "sampling": "balanced",
            "loss": {"ce": 1.0, "class_weights": "auto"},
            "augment": {"d4": True, "brightness": 0.1, "contrast": 0.1},
            "early_stopping": None,
            "standardize": "bands",
        },
        "output": str(work / "bundle"),
        "checkpoint_dir": str(work / "checkpoint"),
    }
