"""The scenes a baseline trains on and maps, taken from the training config.

Training pixels are exactly those ``geoseg train`` trains on: labelled pixels of scenes with
role ``split`` or ``train``, outside the validation part of the split and its buffer
(:mod:`geoseg.train.split`, through :func:`geoseg.train.sampling.split_scene`). Scenes to map
are chosen by the baseline config's ``map``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from geoseg.baseline.config import Baseline
from geoseg.core.classes import ClassList, load_classes
from geoseg.errors import GeoSegError
from geoseg.io.cog import check_output
from geoseg.io.scene import Scene, SceneInfo
from geoseg.io.stats import band_moments, stats_from_moments
from geoseg.train.data import SceneData, open_scenes, scene_name
from geoseg.train.labels import LabelSource
from geoseg.train.sampling import split_scene
from geoseg.train.split import SceneSplit

TRAIN_ROLES = ("split", "train")
MAP_ROLES = {
    "heldout": ("split", "test"),
    "all": ("split", "train", "val", "test"),
    "split": ("split",),
    "val": ("val",),
    "test": ("test",),
}
STATS_MAX_PIXELS = 8_000_000
_sources: dict[tuple, LabelSource] = {}  # per worker process


@dataclass(frozen=True)
class LabelRef:
    """What a worker needs to open a scene's labels (opened once per worker process)."""

    path: str
    info: SceneInfo
    classes: ClassList
    ignore_values: tuple[int, ...]
    field: str | None

    def open(self) -> LabelSource:
        key = (self.path, self.field, self.ignore_values, self.info.height, self.info.width)
        src = _sources.get(key)
        if src is None:
            src = _sources[key] = LabelSource(
                self.path, self.info, self.classes, list(self.ignore_values), self.field
            )
        return src


@dataclass(frozen=True)
class BaselineScene:
    index: int  # position in the training config's (expanded) scene list
    name: str
    role: str
    scene: Scene
    labels: LabelRef | None
    split: SceneSplit | None  # None: no training pixels here
    mapped: bool

    @property
    def info(self) -> SceneInfo:
        return self.scene.info

    @property
    def trains(self) -> bool:
        return self.split is not None and self.split.has_train and self.labels is not None


@dataclass(frozen=True)
class Plan:
    scenes: list[BaselineScene]
    bands: list[int]
    classes: ClassList
    train_data: list[tuple[SceneData, SceneSplit]]

    @property
    def mapped(self) -> list[BaselineScene]:
        return [s for s in self.scenes if s.mapped]


def plan(b: Baseline) -> Plan:
    """Open the training scenes (labels and split) and the scenes to map."""
    cfg = b.train
    classes = load_classes(cfg.classes)
    choice = b.cfg.map
    wanted = set(choice) if isinstance(choice, list) else None
    bad = sorted(i for i in wanted or () if not 0 <= i < len(cfg.scenes))
    if bad:
        raise GeoSegError(
            f"map: scene indices {bad} are not in the training config's "
            f"{len(cfg.scenes)} scenes (0-based, after glob expansion)"
        )
    if not any(s.role in TRAIN_ROLES for s in cfg.scenes):
        raise GeoSegError(
            "the training config has no scene with role split or train: the "
            "baselines train on the same pixels as geoseg train"
        )
    data, bands = open_scenes(cfg, classes, roles=TRAIN_ROLES, cache=False)
    train_data = [(d, split_scene(cfg.split, d)) for d in data]
    splits = {d.index: sp for d, sp in train_data}
    out: list[BaselineScene] = []
    for i, sc in enumerate(cfg.scenes):
        mapped = i in wanted if wanted is not None else sc.role in MAP_ROLES[choice]
        if not (mapped or i in splits):
            continue
        scene = Scene.of(sc.image)
        scene.check_bands(bands)
        ref = None
        if sc.labels is not None:
            ref = LabelRef(sc.labels, scene.info, classes, tuple(cfg.ignore_values), sc.label_field)
        out.append(BaselineScene(i, scene_name(sc), sc.role, scene, ref, splits.get(i), mapped))
    if not any(s.mapped for s in out):
        raise GeoSegError(
            f"map: {choice!r} selects no scene of the training config: use "
            "heldout, all, split, val, test or a list of scene indices"
        )
    return Plan(out, bands, classes, train_data)


def band_stats_of(p: Plan) -> tuple[list[float], list[float]]:
    """Per-band mean and standard deviation of the training pixels (as geoseg train)."""
    budget = max(STATS_MAX_PIXELS // max(len(p.train_data), 1), 65536)
    moments = sum(
        band_moments(d.scene, p.bands, budget, windows=sp.train)
        for d, sp in p.train_data
        if sp.has_train
    )
    return stats_from_moments(moments)


def outputs(out: Path, mapped: list[BaselineScene], overwrite: bool) -> list[Path]:
    """One class COG per mapped scene: ``out`` itself (a .tif) for one scene, else files
    ``NNN_<name>.tif`` in the folder ``out``; each checked before any work."""
    if out.suffix.lower() in (".tif", ".tiff"):
        if len(mapped) > 1:
            raise GeoSegError(
                f"the config maps {len(mapped)} scenes: pass a folder for the "
                f"output, not the file {out}"
            )
        paths = [out]
    else:
        if out.exists() and not out.is_dir():
            raise GeoSegError(f"{out} is a file: pass a folder (or a .tif for one scene)")
        paths = [out / map_name(s.index, s.name) for s in mapped]
    return [check_output(p, overwrite) for p in paths]


def map_name(index: int, name: str) -> str:
    """The file name of scene ``index``'s map in an output folder."""
    return f"{index:03d}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.tif"


def grid_of(s: BaselineScene) -> tuple[int, int, object, object]:
    i = s.info
    return i.height, i.width, i.crs, i.transform
