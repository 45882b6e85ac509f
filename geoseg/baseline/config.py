"""Baseline configuration: a YAML file that points at a training config (whose scenes, labels,
classes, bands and spatial split the baselines reuse) and adds the baselines' own settings.

Safe-loaded and strict (an unknown key is an error naming it); relative paths are relative to
the baseline config's folder. A training config given on its own is taken with the defaults
below. See examples/baseline/.

.. code-block:: yaml

    train_config: ../train/nc.yaml
    segmentation: {method: slic, size: 12, compactness: 0.1}
    features: [mean, std, percentiles, indices, glcm, shape]
    band_roles: {green: 2, red: 3, nir: 4}   # scene band numbers, for NDVI / NDWI
    classifier: {kind: rf, params: {n_estimators: 200}}
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from geoseg.errors import GeoSegError
from geoseg.train.config import TrainConfig, format_error, load_config, read_yaml

FEATURES = ("mean", "std", "percentiles", "indices", "glcm", "shape")
ROLES = ("blue", "green", "red", "nir", "swir1", "swir2")
SEE = "examples/baseline/"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


# Segmentations run on the bands z-scored with the training pixels' mean and std, so their
# colour parameters are in standard deviations whatever the sensor's units.
class Slic(_Strict):
    """k-means superpixels (skimage.segmentation.slic)."""

    method: Literal["slic"]
    size: float = Field(12.0, gt=1)  # typical superpixel side in pixels (n_segments = area/size^2)
    compactness: float = Field(0.1, gt=0)  # colour vs space; higher = squarer superpixels
    sigma: float = Field(0.5, ge=0)  # Gaussian pre-smoothing, pixels
    max_num_iter: int = Field(10, ge=1)


class Felzenszwalb(_Strict):
    """Graph-based segmentation (skimage.segmentation.felzenszwalb)."""

    method: Literal["felzenszwalb"]
    scale: float = Field(100.0, gt=0)  # higher = fewer, larger segments
    sigma: float = Field(0.5, ge=0)
    min_size: int = Field(20, ge=1)  # pixels


class Quickshift(_Strict):
    """Mode seeking in colour and space (skimage.segmentation.quickshift)."""

    method: Literal["quickshift"]
    kernel_size: float = Field(3.0, gt=0)
    max_dist: float = Field(6.0, gt=0)
    ratio: float = Field(0.5, ge=0, le=1)
    sigma: float = Field(0.0, ge=0)


class Watershed(_Strict):
    """Compact watershed of the gradient from markers on a grid (skimage.segmentation)."""

    method: Literal["watershed"]
    size: float = Field(12.0, gt=1)  # marker spacing in pixels
    compactness: float = Field(0.001, ge=0)
    sigma: float = Field(1.0, ge=0)  # smoothing before the gradient


Segmentation = Annotated[
    Slic | Felzenszwalb | Quickshift | Watershed, Field(discriminator="method")
]


class GlcmConfig(_Strict):
    """Grey-level co-occurrence texture of each object's brightness (mean z-score)."""

    levels: int = Field(16, ge=2, le=64)
    distances: list[int] = Field(default_factory=lambda: [1], min_length=1)
    properties: list[
        Literal["contrast", "dissimilarity", "homogeneity", "energy", "correlation", "ASM"]
    ] = Field(
        default_factory=lambda: ["contrast", "homogeneity", "energy", "correlation"], min_length=1
    )


class BandRoles(_Strict):
    """Scene band numbers (1-based, as in the training config's ``bands``) of known roles;
    NDVI needs red and nir, NDWI (McFeeters) green and nir."""

    blue: int | None = Field(None, ge=1)
    green: int | None = Field(None, ge=1)
    red: int | None = Field(None, ge=1)
    nir: int | None = Field(None, ge=1)
    swir1: int | None = Field(None, ge=1)
    swir2: int | None = Field(None, ge=1)

    def indices(self) -> dict[str, tuple[int, int]]:
        """{index name: (band a, band b)} for index = (a - b) / (a + b), where bands allow."""
        out = {}
        if self.nir and self.red:
            out["ndvi"] = (self.nir, self.red)
        if self.green and self.nir:
            out["ndwi"] = (self.green, self.nir)
        return out


class ClassifierConfig(_Strict):
    kind: Literal["rf", "svm"] = "rf"  # sklearn RandomForestClassifier, or SVC (RBF)
    params: dict[str, Any] = Field(default_factory=dict)  # keyword arguments of that class
    class_weight: Literal["balanced", "none"] = "balanced"
    max_samples: int = Field(200_000, ge=10)  # training samples used at most (random subset)

    @model_validator(mode="after")
    def _params(self) -> ClassifierConfig:
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.svm import SVC

        cls = RandomForestClassifier if self.kind == "rf" else SVC
        known = set(inspect.signature(cls).parameters) - {"class_weight", "probability"}
        bad = sorted(set(self.params) - known)
        if bad:
            raise ValueError(
                f"params {bad} are not arguments of sklearn's {cls.__name__} "
                f"(e.g. {', '.join(sorted(known)[:6])})"
            )
        return self


class PixelConfig(_Strict):
    """The pixel-based random forest: band values (and indices) of sampled training pixels."""

    samples_per_class: int = Field(20_000, ge=10)
    indices: bool = True
    classifier: ClassifierConfig = Field(
        default_factory=lambda: ClassifierConfig(
            params={"n_estimators": 100, "min_samples_leaf": 2}
        )
    )


MapChoice = Literal["heldout", "all", "split", "val", "test"]


class BaselineConfig(_Strict):
    train_config: str | dict[str, Any]  # a training config file, or one inline
    segmentation: Segmentation = Field(default_factory=lambda: Slic(method="slic"))
    features: list[Literal[FEATURES]] = Field(default_factory=lambda: list(FEATURES), min_length=1)
    percentiles: list[float] = Field(default_factory=lambda: [10.0, 50.0, 90.0])
    glcm: GlcmConfig = Field(default_factory=GlcmConfig)
    band_roles: BandRoles = Field(default_factory=BandRoles)
    classifier: ClassifierConfig = Field(
        default_factory=lambda: ClassifierConfig(params={"n_estimators": 200})
    )
    min_overlap: float = Field(0.5, gt=0, le=1)  # majority label share of an object's pixels
    pixel: PixelConfig = Field(default_factory=PixelConfig)
    block: int = Field(1024, ge=64)  # pixels per block task
    halo: int = Field(32, ge=0)  # context read around a block for its segmentation
    map: MapChoice | list[int] = "heldout"  # scenes to map (heldout = split and test scenes)
    output: str | None = None  # default output folder: <output>/<method>/NNN_<scene>.tif
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> BaselineConfig:
        if any(not 0 <= p <= 100 for p in self.percentiles):
            raise ValueError("percentiles are between 0 and 100")
        if self.halo >= self.block:
            raise ValueError(f"halo ({self.halo}) must be smaller than block ({self.block})")
        return self


@dataclass(frozen=True)
class Baseline:
    """A loaded baseline config with its training config, all paths resolved."""

    cfg: BaselineConfig
    train: TrainConfig
    source: str  # the baseline config file, or "<dict>"

    def output(self, out: str | os.PathLike | None, method: str) -> Path:
        """``out`` as given, else the folder ``<output>/<method>`` of the config."""
        if out is not None:
            return Path(out)
        if self.cfg.output is None:
            raise GeoSegError("no output given: pass --out (or set output: in the baseline config)")
        return Path(self.cfg.output) / method


def parse_baseline(data: Any, where: str = "baseline config") -> BaselineConfig:
    if isinstance(data, BaselineConfig):
        return data
    if not isinstance(data, dict):
        raise GeoSegError(
            f"{where}: expected a mapping of keys (train_config, segmentation, "
            f"...), got {type(data).__name__}"
        )
    try:
        return BaselineConfig.model_validate(data)
    except ValidationError as e:
        raise GeoSegError(format_error(e, where, SEE)) from None


def load_baseline(source: str | os.PathLike | dict | BaselineConfig) -> Baseline:
    """The baseline config at ``source`` (a YAML file, a dict or a model) and its training
    config. A training config file on its own gets the baseline defaults."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        raw = read_yaml(path, "baseline config")
        base, where = path.resolve().parent, str(path)
        if isinstance(raw, dict) and "scenes" in raw and "train_config" not in raw:
            raw = {"train_config": path.name}  # a training config: baseline defaults
        cfg = parse_baseline(raw, f"config {path}")
    else:
        cfg, base, where = parse_baseline(source), Path.cwd(), "<dict>"
    tc = cfg.train_config
    train = load_config(tc if isinstance(tc, dict) else base / os.path.expanduser(tc))
    cfg = cfg.model_copy(
        update={
            "train_config": tc if isinstance(tc, dict) else str(base / tc),
            "output": cfg.output and os.path.normpath(base / os.path.expanduser(cfg.output)),
        }
    )
    return Baseline(cfg, train, where)
