"""A prediction job's description and its staging area (what makes resume possible)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

from geoseg.core.grid import BlockGrid, TileGrid
from geoseg.core.radiometry import BandMapping
from geoseg.engine.options import PredictOptions
from geoseg.errors import GeoSegError
from geoseg.io.files import atomic_path
from geoseg.io.scene import Scene
from geoseg.version import __version__

STAGING_FORMAT = 1


class HeadOut(NamedTuple):
    """A model head after the classes that the job writes (``<map>_<name>.tif``)."""

    name: str
    channels: int


@dataclass(frozen=True)
class PredictJob:
    """Everything a worker needs for one block; small and cheap to send with each task."""

    scene: Scene
    bundle: str
    height: int
    width: int
    tile: int
    overlap: int
    tiles_per_block: int
    staging: str
    options: PredictOptions = PredictOptions()  # as asked, with the job's runtime choice
    radiometry: BandMapping | None = None  # applied to band values before the bundle's
    extra_heads: tuple[HeadOut, ...] = ()  # the bundle's heads after the classes

    def key_params(self, bands: list[int]) -> dict:
        """Every value that changes the output, for :func:`job_key`."""
        params = {
            "tile": self.tile,
            "overlap": self.overlap,
            "tiles_per_block": self.tiles_per_block,
            "bands": bands,
            **self.options.key_params(),
        }
        if self.radiometry is not None:  # absent by default: older staging stays valid
            params["radiometry"] = self.radiometry.to_json()
        return params

    @property
    def grid(self) -> TileGrid:
        return TileGrid(self.height, self.width, self.tile, self.overlap)

    @property
    def blocks(self) -> BlockGrid:
        return BlockGrid(self.grid, self.tiles_per_block)

    def block_path(self, key: str) -> Path:
        return Path(self.staging) / f"{key}.npz"


def make_job(
    scene: Scene | None,
    height: int,
    width: int,
    bundle: str,
    meta,
    options: PredictOptions,
    staging: str = "",
    radiometry: BandMapping | None = None,
) -> PredictJob:
    """The job for a ``height`` x ``width`` input: the tile grid (the bundle's tile and overlap
    unless the options give them) and its blocks, checked. The one planner of the file path
    (:func:`geoseg.engine.predict.plan`) and the array path (:mod:`geoseg.xarray.predict`)."""
    tile = options.tile or meta.tile
    overlap = meta.overlap if options.overlap is None else options.overlap
    try:
        blocks = BlockGrid.from_block_size(TileGrid(height, width, tile, overlap), options.block)
    except ValueError as e:
        raise GeoSegError(f"invalid tiling: {e}") from None
    return PredictJob(
        scene=scene,
        bundle=str(Path(bundle).resolve()),
        height=height,
        width=width,
        tile=tile,
        overlap=overlap,
        tiles_per_block=blocks.tiles_per_block,
        staging=staging,
        options=options,
        radiometry=radiometry,
        extra_heads=tuple(HeadOut(h.name, h.channels) for h in meta.output_heads[1:]),
    )


def _file_identity(path: str) -> dict:
    """Path plus size and modification time (cheap; a changed input invalidates the staging)."""
    try:
        st = os.stat(path)
        return {"path": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    except OSError:  # remote (/vsis3/, http): the URL stands for itself
        return {"path": path}


def job_key(scene: Scene, weights_sha256: str, params: dict) -> str:
    """A hash of the inputs, the model and every parameter that changes the output."""
    ident = {
        "staging_format": STAGING_FORMAT,
        "geoseg": __version__,
        "scene": [_file_identity(p) for p in scene.paths],
        "weights": weights_sha256,
        "params": params,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


def default_staging_root(out: Path) -> Path:
    return out.parent / f".{out.name}.staging"


def write_manifest(job: PredictJob, key: str) -> None:
    d = Path(job.staging)
    d.mkdir(parents=True, exist_ok=True)
    man = d / "job.json"
    if not man.exists():
        doc = {"key": key, **asdict(job)}
        doc["scene"] = list(job.scene.paths)
        doc["options"] = job.options.model_dump()
        doc["radiometry"] = job.radiometry and job.radiometry.to_json()
        with atomic_path(man, user_error=False) as tmp:  # its OSError: the caller's (ENOSPC)
            tmp.write_text(json.dumps(doc, indent=2))
