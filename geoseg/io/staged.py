"""Staged blocks and the class COGs built from them: block windows, atomic .npz staging, and a
class COG like the engine's (palette, CLASSES tag, category names, QGIS style) from blocks."""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from geoseg.core.classes import ClassList
from geoseg.core.grid import BlockGrid, TileGrid, Window
from geoseg.io.cog import CogWriter, RasterSpec
from geoseg.io.files import atomic_path


def block_windows(height: int, width: int, block: int) -> list[tuple[int, int, Window]]:
    """(block row, block column, window) of blocks of about ``block`` pixels (a multiple of
    32), row by row."""
    grid = BlockGrid.from_block_size(TileGrid(height, width, 32, 0), block)
    return [(b.bi, b.bj, b.region) for b in grid]


@contextlib.contextmanager
def staging(parent: Path, method: str) -> Iterator[Path]:
    """A scratch folder for staged blocks beside the outputs, removed afterwards; absolute,
    as workers of another scheduler run in another folder."""
    path = Path(parent).resolve() / f".geoseg-{method}-{uuid.uuid4().hex[:12]}"
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """Stage arrays under a temporary name, renamed when complete (an ``OSError``, a full
    disk, is left to the caller, who names the staging folder)."""
    with atomic_path(Path(path), user_error=False) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def class_ids_of(classes: ClassList) -> np.ndarray:
    """Class index -> class id (uint8)."""
    return np.asarray(classes.ids, dtype=np.uint8)


def write_class_cog(
    out: str,
    items: list[tuple[Window, str, object]],
    classes: ClassList,
    grid: tuple[int, int, object, object],
    tags: dict[str, str],
    scratch: str,
    paint: Callable[[dict, object], np.ndarray] | None = None,
) -> str:
    """Stream the staged blocks ``items`` (window, .npz path, extra) into the class COG
    ``out``; a block's class ids are ``paint(arrays, extra)``, or its ``cls`` array.
    ``grid``: (height, width, crs, transform). Runs in one process (a Dask task)."""
    height, width, crs, transform = grid
    writer = CogWriter(
        RasterSpec(
            height=height,
            width=width,
            count=1,
            crs=crs,
            transform=transform,
            nodata=classes.nodata,
            descriptions=["class"],
            tags=tags,
            classes=classes,
        ),
        scratch,
        f"cls-{Path(out).stem}",
    )
    try:
        for w, path, extra in items:
            with np.load(path) as z:
                arrays = {k: z[k] for k in z.files}
            writer.write(w, arrays["cls"] if paint is None else paint(arrays, extra))
        return str(writer.finish(out))
    except BaseException:
        writer.abort()
        raise
