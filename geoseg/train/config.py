"""Training configuration: YAML, safe-loaded and validated (unknown keys are errors).

Relative paths are resolved against the config file's folder (a dict or model passed from
Python: the current directory), except scene images and labels, which are resolved against
``root`` (the data folder, itself relative to the config file's folder) when it is given. An
``image`` given as a glob pattern expands into one scene per matching file, paired in sorted
order with the files matching its ``labels`` pattern.
"""

from __future__ import annotations

import copy
import glob
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from geoseg.errors import GeoSegError

_GLOB_CHARS = set("*?[")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class SceneConfig(_Strict):
    image: str | list[str]  # one raster, a glob pattern, or single-band files stacked in order
    labels: str | None = None  # class raster, or vector polygons/points (or a glob pattern)
    label_field: str | None = None  # vector: field with class ids (numbers) or class names
    role: Literal["split", "train", "val", "test"] = "split"
    name: str | None = None

    @field_validator("image")
    @classmethod
    def _image(cls, v):
        if isinstance(v, list) and not v:
            raise ValueError("image is an empty list: give a raster or band files")
        return v


class SplitConfig(_Strict):
    """How scenes with role ``split`` are divided into training and validation pixels."""

    mode: Literal["blocks", "halves"] = "blocks"
    block: int = Field(128, ge=8)
    val_fraction: float = Field(0.2, gt=0, lt=1)
    buffer: int = Field(16, ge=0)
    axis: Literal["x", "y"] = "x"  # halves: x = west trains, east validates; y = north/south
    seed: int = 0


class HeadConfig(_Strict):
    """An output beyond the classes (``geoseg.train.heads``): ``boundary``, the border of the
    thing classes' objects within ``width`` pixels, weighted ``weight`` in the loss, learned
    with ``loss`` (``balanced`` or ``bce``)."""

    name: Literal["boundary"] = "boundary"
    width: int = Field(2, ge=1, le=16)
    weight: float = Field(1.0, gt=0)
    # balanced: border pixels weighted by the batch's non-border/border ratio, plus a soft
    # Dice term; bce: a plain binary cross-entropy (a border of ~5 % of the pixels: the head
    # learned the prior and no border on Dubai, BENCHMARKS.md)
    loss: Literal["balanced", "bce"] = "balanced"


class ModelConfig(_Strict):
    architecture: str = "deeplabv3plus"
    encoder: str = "resnet18"
    arch_kwargs: dict[str, Any] = Field(default_factory=dict)
    # A local encoder state_dict file (.safetensors/.pth), or pretrained weights that smp or
    # timm offer for the encoder by name (imagenet, ssl, ...: fetched into their cache).
    encoder_weights: str | None = None
    tile: int = Field(512, ge=32)  # prediction tile stored in the bundle
    overlap: int = Field(64, ge=0)
    heads: list[HeadConfig] = Field(default_factory=list)  # outputs beyond the classes

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        d = handler(self)
        if not d.get("heads"):  # configs without extra heads dump and hash as before
            d.pop("heads", None)
        return d

    @field_validator("encoder_weights")
    @classmethod
    def _weights(cls, v, info):
        if not v:
            return None
        if v.lower() in ("none", "null"):
            raise ValueError("write null (no quotes) to start from random weights")
        from geoseg.train.encoder_weights import is_weights_name

        is_weights_name(v, info.data.get("encoder", ""), info.data.get("architecture", ""))
        return v


class LossConfig(_Strict):
    ce: float = Field(1.0, ge=0)
    dice: float = Field(0.0, ge=0)
    focal: float = Field(0.0, ge=0)
    focal_gamma: float = Field(2.0, ge=0)
    class_weights: Literal["auto", "none"] | list[float] = "auto"  # auto: 1/sqrt(frequency)

    @model_validator(mode="after")
    def _any(self) -> LossConfig:
        if self.ce == 0 and self.dice == 0 and self.focal == 0:
            raise ValueError("all loss weights are 0: give ce, dice or focal a weight > 0")
        return self


class PerBandConfig(_Strict):
    """Per-band radiometric augmentation (see :func:`geoseg.train.augment.per_band`): for each
    sample, with probability ``p``, each band draws its own gain and gamma (log-uniform in
    [min, max]) and offset (uniform, in units of the band's training std, as augmentation runs
    on standardised bands). The defaults are the recommended start for other dates."""

    gain: tuple[float, float] = (0.8, 1.25)  # contrast about the band mean
    offset: tuple[float, float] = (-0.2, 0.2)  # shift, in band standard deviations
    gamma: tuple[float, float] = (0.8, 1.25)  # tone curve on the robust range, +-3 std
    p: float = Field(0.8, ge=0, le=1)  # probability that a sample is augmented at all

    @field_validator("gain", "offset", "gamma")
    @classmethod
    def _range(cls, v, info):
        lo, hi = _PER_BAND_LIMITS[info.field_name]
        if v[0] > v[1]:
            raise ValueError("min must not exceed max")
        if not (lo <= v[0] and v[1] <= hi):
            raise ValueError(f"[min, max] must lie within [{lo:g}, {hi:g}], got {list(v)}")
        return v


_PER_BAND_LIMITS = {"gain": (0.25, 4.0), "offset": (-3.0, 3.0), "gamma": (0.25, 4.0)}


class AugmentConfig(_Strict):
    d4: bool = True  # random flips and 90-degree rotations
    brightness: float = Field(0.1, ge=0)  # additive, in units of the band's std
    contrast: float = Field(0.1, ge=0, lt=1)  # multiplicative, 1 +- contrast
    # Random zoom [min, max], log-uniform: a crop of crop * s pixels resampled to crop (s > 1
    # shows objects smaller, s < 1 larger), so a model meets other ground resolutions than
    # its training scenes'. None: off.
    scale: tuple[float, float] | None = None
    # Per-band gain, offset and gamma, drawn per sample and band (other dates, other sensor
    # states). None: off (no draws from the generator, so training is unchanged).
    per_band: PerBandConfig | None = None

    @field_validator("scale")
    @classmethod
    def _scale(cls, v):
        if v is not None and not (0.125 <= v[0] <= v[1] <= 8):
            raise ValueError(f"scale is [min, max] with 0.125 <= min <= max <= 8, got {list(v)}")
        return v

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        # per_band left out while off, so dumps (provenance, workflow stage hashes) of configs
        # without it stay exactly what they were before the option existed
        d = handler(self)
        if d.get("per_band", 0) is None:
            del d["per_band"]
        return d


class EarlyStopping(_Strict):
    patience: int = Field(10, ge=1)  # epochs without a better validation mIoU
    min_delta: float = Field(0.0, ge=0)


class SemiConfig(_Strict):
    """Semi-supervised training on pixels without labels (FixMatch, Sohn et al. 2020): each
    step also draws unlabelled crops; the model's prediction on a weakly augmented view
    (flips and rotations) gives pseudo-labels where it is at least ``threshold`` confident,
    and a strongly augmented view of the same crop (per-band gain, offset, gamma, noise and
    cut-out) is trained towards them with weight ``weight``."""

    scenes: list[str] = Field(min_length=1)  # rasters or glob patterns, relative to root
    threshold: float = Field(0.9, gt=0, lt=1)
    weight: float = Field(1.0, gt=0)
    batch_size: int | None = Field(None, ge=1)  # unlabelled crops per step (default: batch)

    @model_validator(mode="before")
    @classmethod
    def _list(cls, v):
        return {"scenes": v} if isinstance(v, list | str) else v

    @field_validator("scenes", mode="before")
    @classmethod
    def _one(cls, v):
        return [v] if isinstance(v, str) else v


# Options added after bundles and workflows were first hashed: left out of dumps while at
# their default, so configs without them keep their provenance and stage hashes.
_LATE_DEFAULTS = {
    "encoder_lr": 1.0,
    "freeze_encoder_epochs": 0,
    "standardize": "auto",
    "unlabelled": None,
}


class TrainingConfig(_Strict):
    epochs: int = Field(30, ge=1)
    samples_per_epoch: int = Field(1024, ge=1)
    batch_size: int = Field(8, ge=1)
    crop: int = 256
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    schedule: Literal["cosine", "onecycle", "constant"] = "cosine"
    warmup: float = Field(0.05, ge=0, lt=1)  # cosine: share of steps with a linear warm-up
    sampling: Literal["random", "balanced"] = "random"
    loss: LossConfig = Field(default_factory=LossConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    early_stopping: EarlyStopping | None = Field(default_factory=EarlyStopping)
    # auto: bf16 autocast on GPUs and on CPUs that compute bf16 natively (AMX, AVX-512 BF16;
    # faster steps there, benchmarks/train_step.py), fp32 elsewhere
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    amp: Literal["auto", "bf16", "none"] = "auto"  # the former name (none = fp32)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(None, ge=1)
    seed: int = 0
    val_window: int = 512
    val_max_pixels: int = Field(4_000_000, ge=1024)
    # per-scene: each scene's bands are first standardised by its own band median and IQR
    # (the statistics 'geoseg predict --normalize scene' computes), so the model learns
    # scene-relative inputs; predictions with the bundle then do the same by default
    normalize: Literal["global", "per-scene"] = "global"
    # A pretrained start: the encoder learns at encoder_lr x lr (differential learning rates)
    # and is frozen for the first freeze_encoder_epochs epochs while the decoder settles.
    encoder_lr: float = Field(1.0, gt=0, le=1)
    freeze_encoder_epochs: int = Field(0, ge=0)
    # What the model's inputs are standardised with: the training pixels' band mean and
    # std (bands), ImageNet's RGB statistics (imagenet), or auto: imagenet where the encoder
    # starts from ImageNet weights and the scenes are 3-band 8-bit, bands otherwise.
    standardize: Literal["auto", "bands", "imagenet"] = "auto"
    unlabelled: SemiConfig | None = None

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        d = handler(self)
        for k, v in _LATE_DEFAULTS.items():
            if k in d and d[k] == v:
                del d[k]
        return d

    @field_validator("crop", "val_window")
    @classmethod
    def _mult32(cls, v: int) -> int:
        if v < 32 or v % 32:
            raise ValueError(f"must be a multiple of 32 (>= 32), got {v}")
        return v


class TrainConfig(_Strict):
    name: str = "geoseg-model"
    version: str = "1"
    root: str | None = None  # folder that scene images and labels are relative to
    classes: str | list[Any] | dict[str, Any]  # classes.json, or inline [{id, name, color}]
    scenes: list[SceneConfig] = Field(min_length=1)
    bands: list[int] | None = None  # 1-based bands of the (stacked) scenes; default all
    ignore_values: list[int] = Field(default_factory=lambda: [0])  # unlabelled label values
    split: SplitConfig = Field(default_factory=SplitConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    output: str  # the bundle directory
    checkpoint_dir: str | None = None  # default: OUTPUT.checkpoint, beside the bundle
    keep_checkpoint: bool = False  # keep it once training ends (to continue a finished run)
    cache_mb: int = Field(2048, ge=0)  # scenes are held in memory up to this size

    @field_validator("ignore_values", mode="before")
    @classmethod
    def _ignore(cls, v):
        return [v] if isinstance(v, int) else v

    @field_validator("bands")
    @classmethod
    def _bands(cls, v):
        if v is not None and (not v or min(v) < 1):
            raise ValueError("bands are 1-based band numbers, e.g. [1, 2, 3]")
        return v

    @model_validator(mode="after")
    def _heads_alone(self) -> TrainConfig:
        if self.model.heads and self.training.unlabelled is not None:
            raise ValueError(
                "model.heads and training.unlabelled do not combine yet: train the extra "
                "heads without unlabelled scenes"
            )
        return self

    _given: dict | None = PrivateAttr(default=None)  # as written, before paths are resolved

    @property
    def given(self) -> dict:
        """The config as written (relative paths, patterns), for provenance."""
        return self._given or self.model_dump(mode="json")

    @property
    def checkpoints(self) -> Path:
        """The resume checkpoint's folder: ``checkpoint_dir``, else ``<output>.checkpoint``
        beside the bundle, so that the bundle folder ships as it is."""
        if self.checkpoint_dir:
            return Path(self.checkpoint_dir)
        out = Path(self.output)
        return out.with_name(f"{out.name}.checkpoint")

    @property
    def legacy_checkpoints(self) -> Path:
        """Where checkpoints went before they moved beside the bundle (still resumed from)."""
        return Path(self.output) / "checkpoint"


def format_error(e: ValidationError, where: str, see: str = "examples/train/") -> str:
    """The first validation error of a config as one line (``see``: where examples live)."""
    first = e.errors()[0]
    loc = ""
    for part in first["loc"]:
        loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
    if first["type"] == "extra_forbidden":
        return f"{where}: unknown key {loc!r}: check its spelling (see {see})"
    if first["type"] == "missing":
        return f"{where}: missing required key {loc!r}"
    msg = first["msg"].removeprefix("Value error, ")
    return f"{where}: {loc}: {msg}" if loc else f"{where}: {msg}"


def parse_config(data: Any, where: str = "training config") -> TrainConfig:
    if isinstance(data, TrainConfig):
        return data
    if not isinstance(data, dict):
        raise GeoSegError(
            f"{where}: expected a mapping of keys (name, scenes, classes, "
            f"output, ...), got {type(data).__name__}"
        )
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as e:
        raise GeoSegError(format_error(e, where)) from None


def read_yaml(path: Path, what: str = "training config") -> Any:
    """The safe-loaded YAML document at ``path``; one-line errors for a missing or bad file."""
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise GeoSegError(f"{what} {path} does not exist") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise GeoSegError(
            f"{what} {path} is not valid YAML{at}: {getattr(e, 'problem', None) or e}"
        ) from None


def merge(a: dict, b: dict) -> dict:
    """``a`` with ``b``'s keys in, nested mappings merged key by key (``a`` is not changed)."""
    out = copy.deepcopy(a)
    for k, v in b.items():
        sub = out.get(k)
        out[k] = merge(sub, v) if isinstance(v, dict) and isinstance(sub, dict) else v
    return out


def load_config(
    source: str | os.PathLike | dict | TrainConfig, overrides: dict | None = None
) -> TrainConfig:
    """A validated config with every path resolved and glob patterns expanded; ``overrides``
    (nested keys, as ``geoseg train --set`` gives them) merged into a YAML's or dict's keys
    before validation (its paths are relative to the YAML's folder like the YAML's own)."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        data = read_yaml(path)
        if overrides and isinstance(data, dict):
            data = merge(data, overrides)
        cfg = parse_config(data, f"config {path}" + (" (with --set)" if overrides else ""))
        base = path.resolve().parent
    else:
        if overrides and isinstance(source, dict):
            source = merge(source, overrides)
        cfg = parse_config(source)
        base = Path.cwd()
    out = resolve(cfg, base)
    out._given = cfg.given
    return out


def _path(x: str, base: Path) -> str:
    if x.startswith("/vsi") or "://" in x:
        return x
    return os.path.normpath(base / os.path.expanduser(x))


def resolve(cfg: TrainConfig, base: Path) -> TrainConfig:
    root = (base / cfg.root) if cfg.root else base

    def p(x: str) -> str:
        return _path(x, root)

    def q(x: str) -> str:
        return _path(x, base)

    scenes: list[SceneConfig] = []
    for i, s in enumerate(cfg.scenes):
        if isinstance(s.image, list):
            scenes.append(
                s.model_copy(
                    update={"image": [p(x) for x in s.image], "labels": s.labels and p(s.labels)}
                )
            )
        elif _GLOB_CHARS & set(s.image):
            scenes.extend(_expand(s, i, p))
        else:
            scenes.append(
                s.model_copy(update={"image": p(s.image), "labels": s.labels and p(s.labels)})
            )
    classes = cfg.classes
    if isinstance(classes, str):
        classes = q(classes)
    training = cfg.training
    if training.unlabelled is not None:
        u = training.unlabelled
        found = [f for x in u.scenes for f in _matches(p(x), "training.unlabelled")]
        training = training.model_copy(
            update={"unlabelled": u.model_copy(update={"scenes": found})}
        )
    return cfg.model_copy(
        update={
            "training": training,
            "scenes": scenes,
            "classes": classes,
            "output": q(cfg.output),
            "checkpoint_dir": cfg.checkpoint_dir and q(cfg.checkpoint_dir),
            "model": cfg.model.model_copy(update={"encoder_weights": _weights(cfg.model, q)}),
            "root": str(root),
        }
    )


def _weights(m: ModelConfig, q) -> str | None:
    """A weights file resolved like the other paths; a weights name (imagenet) kept as is."""
    from geoseg.train.encoder_weights import is_weights_name

    w = m.encoder_weights
    if w is None or is_weights_name(w, m.encoder, m.architecture):
        return w
    return q(w)


def _matches(pattern: str, where: str) -> list[str]:
    """The files a path or glob pattern names (sorted); a one-line error for none."""
    if not _GLOB_CHARS & set(pattern):
        if not (pattern.startswith("/vsi") or "://" in pattern or os.path.exists(pattern)):
            raise GeoSegError(f"{where}: {pattern} does not exist")
        return [pattern]
    found = sorted(glob.glob(pattern))
    if not found:
        raise GeoSegError(f"{where}: no file matches {pattern!r}")
    return found


def _expand(s: SceneConfig, i: int, p) -> list[SceneConfig]:
    images = sorted(glob.glob(p(s.image)))
    if not images:
        raise GeoSegError(f"scenes[{i}].image: no file matches {p(s.image)!r}")
    labels: list[str | None] = [None] * len(images)
    if s.labels is not None:
        if not _GLOB_CHARS & set(s.labels):
            raise GeoSegError(
                f"scenes[{i}]: image is a pattern, so labels must be one too "
                "(files are paired in sorted order)"
            )
        labels = sorted(glob.glob(p(s.labels)))
        if len(labels) != len(images):
            raise GeoSegError(
                f"scenes[{i}]: {len(images)} images match {s.image!r} but "
                f"{len(labels)} label files match {s.labels!r}"
            )
    return [
        s.model_copy(
            update={"image": im, "labels": lb, "name": f"{s.name}-{k}" if s.name else None}
        )
        for k, (im, lb) in enumerate(zip(images, labels, strict=True))
    ]
