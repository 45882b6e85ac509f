"""Model bundles: a directory with ``bundle.json`` (metadata) and ``weights.safetensors``.

Loading reads JSON and safetensors only; nothing is ever unpickled. The metadata half of this
module imports no torch, so the engine's planner and the CLI's ``bundle info`` stay light.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from geoseg import __version__
from geoseg.classes import ClassInfo, ClassList
from geoseg.errors import GeoSegError

FORMAT = "geoseg-bundle"
FORMAT_VERSION = 1
META_FILE = "bundle.json"
WEIGHTS_FILE = "weights.safetensors"


class Normalization(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mean: list[float]
    std: list[float]

    @model_validator(mode="after")
    def _check(self) -> Normalization:
        if len(self.mean) != len(self.std):
            raise ValueError("normalization mean and std differ in length")
        if any(s <= 0 for s in self.std):
            raise ValueError("normalization std must be positive")
        return self


class BundleMeta(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    name: str = "geoseg-model"
    version: str = "0"
    architecture: str = "deeplabv3plus"
    encoder: str = "resnet34"
    arch_kwargs: dict[str, Any] = Field(default_factory=dict)
    in_channels: int
    bands: list[int]  # 1-based indices into the (stacked) input scene
    band_names: list[str] = Field(default_factory=list)
    normalization: Normalization
    classes: list[ClassInfo]
    tile: int = 512
    overlap: int = 64
    weights_sha256: str = ""
    provenance: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> BundleMeta:
        if self.format != FORMAT:
            raise ValueError(f"format is {self.format!r}, expected {FORMAT!r}")
        if self.format_version > FORMAT_VERSION:
            raise ValueError(
                f"format_version {self.format_version} is newer than this geoseg "
                f"understands ({FORMAT_VERSION}): upgrade geoseg"
            )
        if len(self.bands) != self.in_channels:
            raise ValueError(
                f"{len(self.bands)} bands listed but in_channels is {self.in_channels}"
            )
        if len(self.normalization.mean) != self.in_channels:
            raise ValueError("normalization has a different number of bands than in_channels")
        ClassList(classes=self.classes)  # validates ids and fills colours
        return self

    @property
    def class_list(self) -> ClassList:
        return ClassList(classes=self.classes)

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


def read_meta(path: str | Path) -> BundleMeta:
    """Read and validate a bundle's metadata (no torch needed)."""
    d = Path(path)
    mf = d / META_FILE if d.is_dir() else d
    if not mf.exists():
        raise GeoSegError(
            f"model bundle {path} not found: pass a directory made by "
            "'geoseg bundle create' or 'geoseg train'"
        )
    try:
        raw = json.loads(mf.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GeoSegError(
            f"bundle metadata {mf} is not valid JSON ({e}): the bundle is damaged; re-create it"
        ) from None
    try:
        return BundleMeta.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise GeoSegError(
            f"bundle metadata {mf} is invalid: {loc + ': ' if loc else ''}{first['msg']}"
        ) from None


def weights_path(path: str | Path) -> Path:
    d = Path(path)
    return (d if d.is_dir() else d.parent) / WEIGHTS_FILE


def save_bundle(model, meta: BundleMeta, out_dir: str | Path) -> BundleMeta:
    """Write ``model``'s weights (safetensors) and ``meta`` (JSON) atomically into ``out_dir``."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp_w = out / f".{WEIGHTS_FILE}.tmp{os.getpid()}"
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp_w), metadata={"format": FORMAT})
    meta = meta.model_copy(update={"weights_sha256": sha256_file(tmp_w)})
    prov = dict(meta.provenance)
    prov.setdefault("created", _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    prov.setdefault("geoseg_version", __version__)
    meta = meta.model_copy(update={"provenance": prov})
    tmp_m = out / f".{META_FILE}.tmp{os.getpid()}"
    tmp_m.write_text(json.dumps(meta.model_dump(), indent=2) + "\n")
    os.replace(tmp_w, out / WEIGHTS_FILE)
    os.replace(tmp_m, out / META_FILE)
    return meta


def load_model(path: str | Path, device: str = "cpu"):
    """Build the model described by a bundle and load its weights (safetensors only)."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from geoseg.model.factory import build_model

    meta = read_meta(path)
    wp = weights_path(path)
    if not wp.exists():
        raise GeoSegError(f"bundle {path} has no {WEIGHTS_FILE}: the bundle is incomplete")
    if meta.weights_sha256 and sha256_file(wp) != meta.weights_sha256:
        raise GeoSegError(
            f"{wp} does not match the checksum in {META_FILE}: the weights were "
            "changed or damaged; re-create the bundle"
        )
    try:
        state = load_file(str(wp), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise GeoSegError(
            f"{wp} is not a safetensors file ({str(e).splitlines()[0]}); geoseg "
            "never loads pickled weights"
        ) from None
    model = build_model(meta)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        detail = next((ln.strip() for ln in str(e).splitlines()[1:] if ln.strip()), str(e))
        raise GeoSegError(
            f"weights in {wp} do not fit a {meta.architecture}/{meta.encoder} "
            f"with {meta.in_channels} bands and {meta.n_classes} classes "
            f"({detail[:200]})"
        ) from None
    model.eval()
    return model.to(torch.device(device)), meta


def describe(meta: BundleMeta) -> dict[str, Any]:
    """A summary for ``geoseg bundle info``."""
    return {
        "name": meta.name,
        "version": meta.version,
        "architecture": meta.architecture,
        "encoder": meta.encoder,
        "in_channels": meta.in_channels,
        "bands": meta.bands,
        "band_names": meta.band_names,
        "classes": [f"{c.id}: {c.name} ({c.color})" for c in meta.classes],
        "tile": meta.tile,
        "overlap": meta.overlap,
        "weights_sha256": meta.weights_sha256,
        "provenance": meta.provenance,
    }


def create_bundle(
    out_dir: str | Path,
    *,
    classes,
    bands: int | list[int],
    architecture: str = "deeplabv3plus",
    encoder: str = "resnet34",
    arch_kwargs: dict | None = None,
    mean: list[float] | None = None,
    std: list[float] | None = None,
    band_names: list[str] | None = None,
    tile: int = 512,
    overlap: int = 64,
    state_dict: str | Path | None = None,
    name: str = "geoseg-model",
    version: str = "0",
    seed: int = 0,
    provenance: dict | None = None,
) -> BundleMeta:
    """A bundle with fresh weights (seeded) or weights from an smp ``state_dict`` file
    (``.safetensors``, or a torch file read with ``weights_only=True``)."""
    import torch

    from geoseg.classes import load_classes
    from geoseg.model.factory import build_model

    cl = classes if isinstance(classes, ClassList) else load_classes(classes)
    band_list = list(range(1, bands + 1)) if isinstance(bands, int) else list(bands)
    n = len(band_list)
    meta = BundleMeta(
        name=name,
        version=version,
        architecture=architecture,
        encoder=encoder,
        arch_kwargs=arch_kwargs or {},
        in_channels=n,
        bands=band_list,
        band_names=band_names or [],
        tile=tile,
        overlap=overlap,
        classes=cl.classes,
        normalization=Normalization(mean=mean or [0.0] * n, std=std or [1.0] * n),
        provenance={"trained": state_dict is not None, **(provenance or {})},
    )
    torch.manual_seed(seed)
    model = build_model(meta)
    if state_dict is not None:
        sd_path = Path(state_dict)
        if sd_path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(sd_path))
        else:
            try:
                with warnings.catch_warnings():  # torch's notes on a plain pickle's protocol
                    warnings.simplefilter("ignore", UserWarning)
                    state = torch.load(sd_path, map_location="cpu", weights_only=True)
            except Exception as e:
                raise GeoSegError(
                    f"cannot read {sd_path} as a state_dict with weights_only=True"
                    f" ({type(e).__name__}); geoseg loads no arbitrary pickles"
                ) from None
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise GeoSegError(
                f"{sd_path} does not fit {architecture}/{encoder} with {n} bands "
                f"and {len(cl.classes)} classes: {str(e).splitlines()[0]}"
            ) from None
        meta.provenance["source"] = sd_path.name
    return save_bundle(model, meta, out_dir)
