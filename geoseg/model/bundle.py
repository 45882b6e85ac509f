"""Model bundles: a directory with ``bundle.json`` (metadata) and ``weights.safetensors``.

Loading reads JSON and safetensors only; nothing is ever unpickled. The metadata half of this
module imports no torch, so the engine's planner and the CLI's ``bundle info`` stay light;
building, loading and creating models is :mod:`geoseg.model.factory`'s.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_serializer,
    model_validator,
)

from geoseg.core.classes import ClassInfo, ClassList
from geoseg.core.radiometry import PERCENTILES
from geoseg.errors import GeoSegError
from geoseg.io.files import atomic_files, atomic_write
from geoseg.version import __version__

FORMAT = "geoseg-bundle"
FORMAT_VERSION = 1
META_FILE = "bundle.json"
WEIGHTS_FILE = "weights.safetensors"


class Normalization(BaseModel):
    """What the model was trained on: each band's mean and standard deviation (the model's
    input is ``(x - mean) / std``) and, for ``--normalize scene|match``, the band's training
    quantiles at the percentiles 0, 1, ..., 100 (None in bundles made before they existed)."""

    model_config = ConfigDict(extra="forbid")
    mean: list[float]
    std: list[float]
    quantiles: list[list[float]] | None = None
    # per-scene: every training scene was standardised by its own band median and IQR first
    # (training.normalize), so predictions do the same with each scene (--normalize scene)
    mode: Literal["global", "per-scene"] = "global"
    # where mean and std come from: the training pixels (None, the default) or ImageNet's RGB
    # statistics, which pretrained encoders expect (training.standardize)
    source: Literal["imagenet"] | None = None
    # how far (core.radiometry.radiometric_distance) the farthest training scene lies from the
    # pooled training quantiles: --normalize auto standardises scenes beyond it
    spread: float | None = None

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        d = handler(self)
        for k in ("source", "spread"):  # bundles without them stay byte-identical
            if d.get(k, 0) is None:
                del d[k]
        return d

    @model_validator(mode="after")
    def _check(self) -> Normalization:
        if len(self.mean) != len(self.std):
            raise ValueError("normalization mean and std differ in length")
        if not all(math.isfinite(v) for v in self.mean):
            raise ValueError(f"normalization.mean must be finite numbers, got {self.mean}")
        if not all(math.isfinite(v) and v > 0 for v in self.std):
            raise ValueError(f"normalization.std must be finite positive numbers, got {self.std}")
        if self.quantiles is not None:
            if len(self.quantiles) != len(self.mean):
                raise ValueError("normalization quantiles have a different number of bands")
            for q in self.quantiles:
                if len(q) != len(PERCENTILES) or any(b < a for a, b in zip(q, q[1:], strict=False)):
                    raise ValueError(
                        f"normalization quantiles must be {len(PERCENTILES)} non-decreasing "
                        "values per band (percentiles 0..100)"
                    )
        return self


class Head(BaseModel):
    """One named output of a model: its channels, and how its logits become values
    (``softmax`` across its channels, or ``sigmoid`` per channel). The engine blends every
    head's channels alike; the ``classes`` head gives the class map."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    channels: int = Field(ge=1)
    activation: Literal["softmax", "sigmoid"] = "softmax"


class TrainedOn(BaseModel):
    """What the training scenes were, for the check that a scene to predict is alike
    (:mod:`geoseg.engine.compat`): their pixel size in metres (None: not georeferenced), the
    data type of the model's bands, and how far apart a scene's pixel size may be (factor)."""

    model_config = ConfigDict(extra="forbid")
    pixel_m: float | None = Field(None, gt=0)
    dtype: str | None = None
    pixel_factor: float = Field(2.0, ge=1)


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
    # the model's outputs in channel order; absent: one ``classes`` head (bundles before heads)
    heads: list[Head] | None = None
    # the training scenes' pixel size and data type (absent in bundles made before)
    trained_on: TrainedOn | None = None

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        out = handler(self)
        for k in ("heads", "trained_on"):  # absent: bundle.json stays as it was
            if out.get(k) is None:
                out.pop(k, None)
        return out

    @model_validator(mode="after")
    def _check(self) -> BundleMeta:
        if self.format != FORMAT:
            raise ValueError(f"format is {self.format!r}, expected {FORMAT!r}")
        if self.format_version > FORMAT_VERSION:
            raise ValueError(
                f"format_version {self.format_version} is newer than this geoseg "
                f"understands ({FORMAT_VERSION}): upgrade geoseg"
            )
        self._check_sizes()
        if len(self.bands) != self.in_channels:
            raise ValueError(
                f"{len(self.bands)} bands listed but in_channels is {self.in_channels}"
            )
        if len(self.normalization.mean) != self.in_channels:
            raise ValueError("normalization has a different number of bands than in_channels")
        ClassList(classes=self.classes)  # validates ids and fills colours
        if self.heads is not None:
            first, names = self.heads[0], [h.name for h in self.heads]
            if first.name != "classes" or first.channels != len(self.classes):
                raise ValueError(
                    f"the first head must be 'classes' with {len(self.classes)} channels"
                )
            if len(set(names)) != len(names):
                raise ValueError(f"head names repeat: {', '.join(names)}")
        return self

    def _check_sizes(self) -> None:
        """The fields a job is sized by, checked as the CLI checks its options (core.grid)."""
        if self.tile < 32 or self.tile % 32:
            raise ValueError(f"tile must be a multiple of 32 (>= 32), got {self.tile}")
        if not 0 <= self.overlap <= self.tile // 2:
            raise ValueError(
                f"overlap must be between 0 and tile/2 ({self.tile // 2}), got {self.overlap}"
            )
        if self.in_channels < 1:
            raise ValueError(f"in_channels must be at least 1, got {self.in_channels}")
        if any(b < 1 for b in self.bands):
            raise ValueError(f"bands are 1-based band numbers (>= 1), got {self.bands}")

    @property
    def output_heads(self) -> list[Head]:
        """The declared heads, or the one ``classes`` head."""
        return self.heads or [Head(name="classes", channels=self.n_classes)]

    @property
    def n_outputs(self) -> int:
        """Channels of every head together: what the network outputs."""
        return sum(h.channels for h in self.output_heads)

    def head_slices(self) -> dict[str, slice]:
        """Each head's channels in the model's output."""
        out, at = {}, 0
        for h in self.output_heads:
            out[h.name] = slice(at, at + h.channels)
            at += h.channels
        return out

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
        msg = first["msg"].removeprefix("Value error, ")
        if loc == "normalization" and msg.startswith("normalization"):
            loc = ""  # the message names the field
        raise GeoSegError(
            f"bundle metadata {mf} is invalid: {loc + ': ' if loc else ''}{msg}: fix the field "
            "or re-create the bundle"
        ) from None


def weights_path(path: str | Path) -> Path:
    d = Path(path)
    return (d if d.is_dir() else d.parent) / WEIGHTS_FILE


def save_bundle(model, meta: BundleMeta, out_dir: str | Path) -> BundleMeta:
    """Write ``model``'s weights (safetensors) and ``meta`` (JSON) atomically into ``out_dir``."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_files(out / META_FILE, user_error=False) as add:
        tmp_m = add(out / META_FILE)  # renamed last, after the weights
        tmp_w = add(out / WEIGHTS_FILE)
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp_w), metadata={"format": FORMAT})
        meta = meta.model_copy(update={"weights_sha256": sha256_file(tmp_w)})
        prov = dict(meta.provenance)
        prov.setdefault("created", _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
        prov.setdefault("geoseg_version", __version__)
        meta = meta.model_copy(update={"provenance": prov})
        tmp_m.write_bytes(_meta_json(meta))
    return meta


def _meta_json(meta: BundleMeta) -> bytes:
    return (json.dumps(meta.model_dump(), indent=2) + "\n").encode()


def set_normalization(path: str | Path, normalization: Normalization, **provenance) -> BundleMeta:
    """Rewrite a bundle's ``bundle.json`` with ``normalization`` (and ``provenance`` entries),
    atomically; the weights and their checksum stay as they are."""
    meta = read_meta(path)
    prov = {**meta.provenance, **provenance}
    meta = meta.model_copy(update={"normalization": normalization, "provenance": prov})
    d = Path(path) if Path(path).is_dir() else Path(path).parent
    atomic_write(d / META_FILE, _meta_json(meta))
    return meta


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
        "training_quantiles": meta.normalization.quantiles is not None,
        "normalization": meta.normalization.mode,
        "weights_sha256": meta.weights_sha256,
        "provenance": meta.provenance,
    }
