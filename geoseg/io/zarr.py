"""Class maps as Zarr stores (format 2, which GDAL's Zarr driver and every xarray read).

Layout: variable ``classes`` (y, x, uint8, chunks = the job's block size) and optionally
``probabilities`` (class, y, x, uint8, scale 1/254, 255 = nodata), 1-D ``x`` and ``y``
coordinates of pixel centres, and the CRS twice: CF's ``spatial_ref`` grid mapping (with its
``GeoTransform``, what rioxarray reads) and GDAL's ``_CRS`` attribute on each variable (what
GDAL's Zarr driver reads; with the coordinates it gives the geotransform).

The client creates the store's metadata and coordinates (:func:`create_store`); each block task
then writes its own region (:func:`write_region`). Chunks are aligned to the blocks' regions,
so no two tasks write one chunk and there is no single writer. The store is built under a
temporary name and renamed when complete (:func:`publish`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import numpy as np

from geoseg.core.classes import ClassList
from geoseg.errors import GeoSegError
from geoseg.io.classmap import list_attrs

CLASSES, PROBABILITIES = "classes", "probabilities"


def is_zarr(path: str | Path) -> bool:
    return str(path).rstrip("/").lower().endswith(".zarr")


def part_path(out: Path) -> Path:
    return out.with_name(f".{out.name}.part")


def create_store(
    out: Path,
    *,
    height: int,
    width: int,
    chunk: int,
    crs,
    transform,
    classes: ClassList,
    probabilities: bool,
    attrs: dict,
) -> Path:
    """The store's metadata and coordinates under ``.NAME.zarr.part``; returns that path."""
    import dask.array as dsa
    import rioxarray  # noqa: F401 - .rio
    import xarray as xr

    part = part_path(out)
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(part)
    t = transform
    xs = t.c + t.a * (np.arange(width) + 0.5)
    ys = t.f + t.e * (np.arange(height) + 0.5)
    nodata = classes.nodata
    cls = xr.DataArray(
        dsa.full((height, width), nodata, dtype=np.uint8, chunks=(chunk, chunk)),
        dims=("y", "x"),
        attrs={**list_attrs(classes), **attrs},
    )
    data = {CLASSES: cls}
    if probabilities:
        n = len(classes.classes)
        data[PROBABILITIES] = xr.DataArray(
            dsa.full((n, height, width), 255, dtype=np.uint8, chunks=(n, chunk, chunk)),
            dims=("class", "y", "x"),
            attrs={"long_name": "class probability", "scale_factor": 1 / 254, **attrs},
        )
    ds = xr.Dataset(data, coords={"y": ys, "x": xs})
    if probabilities:
        ds = ds.assign_coords({"class": [c.name for c in classes.classes]})
    if crs is not None:
        ds = ds.rio.write_crs(crs).rio.write_transform(t)
        gdal_crs = {"wkt": crs.to_wkt()}
        if crs.to_epsg():
            gdal_crs["url"] = f"http://www.opengis.net/def/crs/EPSG/0/{crs.to_epsg()}"
        for v in data:
            ds[v].attrs["_CRS"] = gdal_crs
    # into each variable's own encoding, beside rioxarray's grid_mapping (an encoding argument
    # to to_zarr would replace it, and readers would find no CRS)
    ds[CLASSES].encoding["_FillValue"] = nodata
    if probabilities:
        ds[PROBABILITIES].encoding["_FillValue"] = 255
    try:
        ds.to_zarr(part, mode="w", compute=False, zarr_format=2)
    except OSError as e:
        raise GeoSegError(
            f"cannot write {out} ({e.strerror or e}): check free space and permissions"
        ) from None
    return part


def write_region(part: str, row: int, col: int, cls: np.ndarray, probs) -> None:
    """Write one block's classes (and probabilities) at (row, col) of the store at ``part``."""
    import zarr

    root = zarr.open_group(part, mode="r+", zarr_format=2)
    h, w = cls.shape
    root[CLASSES][row : row + h, col : col + w] = cls
    if probs is not None:
        root[PROBABILITIES][:, row : row + h, col : col + w] = probs


def publish(part: Path, out: Path) -> None:
    """Consolidate the metadata and rename the finished store into place."""
    import zarr

    zarr.consolidate_metadata(str(part), zarr_format=2)
    if out.exists():
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    os.replace(part, out)


def read_classes_zarr(path: str, *, chunks="auto"):
    """The ``classes`` variable of a geoseg Zarr store, georeferenced, with its attributes."""
    import rioxarray  # noqa: F401
    import xarray as xr

    if not Path(path).exists():
        raise GeoSegError(f"input {path} does not exist: check the path")
    ds = xr.open_zarr(path, chunks=chunks, decode_coords="all", mask_and_scale=False)
    if CLASSES not in ds:
        raise GeoSegError(f"{path} has no '{CLASSES}' variable: is it a geoseg class map?")
    da = ds[CLASSES]
    da.attrs.pop("_CRS", None)
    return da.rio.write_nodata(da.attrs.get("nodata", 0), encoded=False)
