"""Training scenes: image bands and class indices read together, held in memory when small.

A scene whose bands fit in the remaining cache budget is read once; larger ones are read
window by window with :meth:`Scene.read` and :class:`LabelSource` every time a window is needed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geoseg.core.classes import ClassList
from geoseg.core.grid import Window
from geoseg.core.radiometry import BandMapping
from geoseg.errors import GeoSegError
from geoseg.io.scene import Scene
from geoseg.train.config import SceneConfig, TrainConfig
from geoseg.train.labels import IGNORE, LabelSource, read_mirrored

log = logging.getLogger(__name__)


@dataclass
class SceneData:
    index: int  # position in the config's (expanded) scene list
    name: str
    role: str
    scene: Scene
    bands: list[int]
    labels: LabelSource | None
    cached: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    radiometry: BandMapping | None = None  # training.normalize: per-scene

    def set_radiometry(self, mapping: BandMapping) -> None:
        """Map this scene's bands with ``mapping`` from now on (its cache at once)."""
        self.radiometry = mapping
        if self.cached is not None:
            mapping.apply(self.cached[0])

    @property
    def height(self) -> int:
        return self.scene.info.height

    @property
    def width(self) -> int:
        return self.scene.info.width

    @property
    def nbytes(self) -> int:
        return self.height * self.width * (4 * len(self.bands) + 2)

    def load(self) -> None:
        """Read the whole scene into memory (image float32, validity, class indices)."""
        whole = Window(0, 0, self.height, self.width)
        x, valid = self.scene.read(whole, self.bands)
        if self.radiometry is not None:
            self.radiometry.apply(x)
        self.cached = (x, valid, self._labels(whole))

    def _labels(self, w: Window) -> np.ndarray:
        if self.labels is None:
            return np.full((w.height, w.width), IGNORE, dtype=np.uint8)
        return self.labels.read(w)

    def read(self, w: Window) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Image (float32, bands x h x w, a copy), validity and class indices over ``w``;
        unlabelled and invalid pixels have class ``IGNORE``."""
        if self.cached is None:
            x, valid = self.scene.read(w, self.bands)
            if self.radiometry is not None:
                self.radiometry.apply(x)
        else:
            cx, cv, _ = self.cached
            x = read_mirrored(
                w, self.height, self.width, lambda i: cx[(slice(None), *i.slices())]
            ).copy()
            valid = read_mirrored(w, self.height, self.width, lambda i: cv[i.slices()]).copy()
        y = self.read_labels(w)
        y[~valid] = IGNORE
        return x, valid, y

    def read_labels(self, w: Window) -> np.ndarray:
        """Class indices only, whatever the image holds there (cheap for uncached scenes: no
        image read)."""
        if self.cached is not None:
            return read_mirrored(
                w, self.height, self.width, lambda i: self.cached[2][i.slices()]
            ).copy()
        return self._labels(w)


def open_scenes(
    cfg: TrainConfig, classes: ClassList, roles=("split", "train", "val"), cache: bool = True
) -> tuple[list[SceneData], list[int]]:
    """The configured scenes with one of ``roles`` and the bands they are read with. With
    ``cache``, scenes with training pixels that fit in ``cache_mb`` are read into memory
    (validation windows are read once, see :mod:`geoseg.train.validate`)."""
    out: list[SceneData] = []
    bands: list[int] | None = cfg.bands
    for i, sc in enumerate(cfg.scenes):
        if sc.role not in roles:
            continue
        scene = Scene.of(sc.image)
        info = scene.info
        if bands is None:
            bands = list(range(1, info.count + 1))
        scene.check_bands(bands)
        if sc.labels is None:
            raise GeoSegError(
                f"scenes[{i}] ({scene_name(sc)}) has no labels: every scene with "
                f"role {sc.role} needs them"
            )
        labels = LabelSource(sc.labels, info, classes, cfg.ignore_values, sc.label_field)
        out.append(SceneData(i, scene_name(sc), sc.role, scene, bands, labels))
    if not out:
        raise GeoSegError(f"no scene with role {' or '.join(roles)} in the config")
    budget = cfg.cache_mb * 2**20 if cache else -1
    for d in out:
        if d.role == "val":
            continue
        if d.nbytes <= budget:
            d.load()
            budget -= d.nbytes
        else:
            log.info("%s is read window by window (%.0f MB > cache left)", d.name, d.nbytes / 2**20)
    return out, bands or []


def scene_name(sc: SceneConfig) -> str:
    """A short name for a configured scene: its name, else folder/stem of its first image."""
    if sc.name:
        return sc.name
    first = sc.image if isinstance(sc.image, str) else sc.image[0]
    p = Path(first)
    return f"{p.parent.name}/{p.stem}" if p.parent.name else p.stem
