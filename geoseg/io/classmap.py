"""A class raster (a land-cover map) read as class indices, window by window.

Pixel values are class ids; they are turned into indices 0..n-1 of the class list so that
confusion matrices and counts are dense. Index -1 is "no value" (nodata, masked) and -2 a value
that is not in the class list. The classes come from the band-1 ``CLASSES`` tag that geoseg's
:class:`~geoseg.io.cog.CogWriter` writes, or from an explicit class list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import MaskFlags
from rasterio.errors import CRSError
from rasterio.windows import Window as RioWindow
from rasterio.windows import transform as window_transform

from geoseg.core.classes import ClassList, load_classes
from geoseg.core.grid import BlockGrid, TileGrid, Window
from geoseg.errors import GeoSegError
from geoseg.io.scene import open_raster

NO_VALUE = -1  # nodata / masked / unlabelled / outside
UNKNOWN = -2  # a value that is not a known class id


def lookup(values: np.ndarray, table: dict[int, int]) -> np.ndarray:
    """Map integer ``values`` through ``table`` (id -> index); ids not in it become UNKNOWN.
    Non-integral floats are UNKNOWN too. Returns int16."""
    v = np.asarray(values)
    if v.dtype.kind in "ui" and v.dtype.itemsize <= 2:  # a table over the whole dtype
        info = np.iinfo(v.dtype)
        lut = np.full(int(info.max) - int(info.min) + 1, UNKNOWN, dtype=np.int16)
        for k, i in table.items():
            if info.min <= k <= info.max:
                lut[k - info.min] = i
        return lut[v] if info.min == 0 else lut[v.astype(np.int32) - info.min]
    if v.dtype.kind == "f":
        iv = np.where(np.isfinite(v), v, -(2**62)).astype(np.int64)
        bad = iv != v
    else:
        iv, bad = v.astype(np.int64, copy=False), None
    if iv.size == 0:
        return np.empty(v.shape, dtype=np.int16)
    lo, hi = int(iv.min()), int(iv.max())
    if hi - lo < 1 << 20:
        lut = np.full(hi - lo + 1, UNKNOWN, dtype=np.int16)
        for k, i in table.items():
            if lo <= k <= hi:
                lut[k - lo] = i
        out = lut[iv - lo]
    else:
        uniq, inv = np.unique(iv, return_inverse=True)
        out = np.array([table.get(int(u), UNKNOWN) for u in uniq], dtype=np.int16)[inv]
        out = out.reshape(iv.shape)
    if bad is not None:
        out[bad] = UNKNOWN
    return out


def read_classes(src, window: Window, table: dict[int, int]) -> tuple[np.ndarray, dict]:
    """Band 1 of ``src`` over ``window`` as indices through ``table`` (NO_VALUE where nodata,
    masked or NaN; UNKNOWN for ids not in the table) and the counts of those unknown ids."""
    rw = RioWindow(window.col, window.row, window.width, window.height)
    data = src.read(1, window=rw)
    flags, nodata = src.mask_flag_enums[0], src.nodata
    valid = None
    if MaskFlags.all_valid in flags:
        pass
    elif flags == [MaskFlags.nodata] and nodata is not None and data.dtype.kind in "ui":
        if float(nodata).is_integer():  # nodata straight into the table: no mask needed
            table = {**table, int(nodata): NO_VALUE}
    elif flags == [MaskFlags.nodata] and nodata is not None:
        valid = data != nodata
    else:
        valid = src.read_masks(1, window=rw) > 0
    if data.dtype.kind == "f":
        nan = np.isnan(data)
        if nan.any():
            valid = ~nan if valid is None else valid & ~nan
        if valid is not None:  # keep the ids' range small for the lookup
            data = np.where(valid, data, next(iter(table), 0))
    idx = lookup(data, table)
    if valid is not None:
        idx[~valid] = NO_VALUE
    unknown = idx == UNKNOWN
    return idx, value_counts(data[unknown]) if unknown.any() else {}


def value_counts(values: np.ndarray) -> dict[int, int]:
    """Counts of each distinct (integral part of a) value."""
    if values.size == 0:
        return {}
    u, c = np.unique(values.astype(np.int64), return_counts=True)
    return {int(a): int(b) for a, b in zip(u, c, strict=True)}


@dataclass(frozen=True)
class ClassMap:
    """Grid, nodata and classes of a class raster; cheap to pickle into Dask tasks."""

    path: str
    height: int
    width: int
    crs: object  # rasterio CRS or None
    transform: object  # affine.Affine
    classes: ClassList

    @classmethod
    def open(
        cls,
        path: str | Path,
        classes: str | Path | list | ClassList | None = None,
    ) -> ClassMap:
        p = str(path)
        with open_raster(p) as src:
            if src.count < 1:
                raise GeoSegError(f"{p} has no bands: pass a class raster")
            tag = src.tags(1).get("CLASSES")
            shape, crs, transform = (src.height, src.width), src.crs, src.transform
        if isinstance(classes, ClassList):
            cl = classes
        elif classes is not None:
            cl = load_classes(classes)
        elif tag:
            try:
                cl = load_classes(json.loads(tag))
            except json.JSONDecodeError:
                raise GeoSegError(
                    f"the CLASSES tag of {p} is not valid JSON: pass the class "
                    "list explicitly (classes.json)"
                ) from None
        else:
            raise GeoSegError(
                f"{p} has no CLASSES tag (it was not written by geoseg): pass "
                "its class list, a classes.json of [{id, name, color}] "
                "(--classes)"
            )
        return cls(p, shape[0], shape[1], crs, transform, cl)

    @property
    def n(self) -> int:
        return len(self.classes.classes)

    @property
    def ids(self) -> list[int]:
        return self.classes.ids

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes.classes]

    @cached_property
    def index_of(self) -> dict[int, int]:
        return {cid: i for i, cid in enumerate(self.ids)}

    @property
    def pixels(self) -> int:
        return self.height * self.width

    def pixel_area_ha(self) -> float | None:
        """Area of one pixel in hectares; None without a projected CRS in linear units."""
        if self.crs is None or self.transform is None or self.transform.is_identity:
            return None
        try:
            _, factor = self.crs.linear_units_factor
        except CRSError:
            return None
        t = self.transform
        return abs(t.a * t.e - t.b * t.d) * factor**2 / 1e4

    def windows(self, block: int) -> list[Window]:
        """Block windows of about ``block`` pixels (a multiple of 32), row by row."""
        if block < 1:
            raise GeoSegError(f"block must be a positive number of pixels, got {block}")
        grid = BlockGrid.from_block_size(TileGrid(self.height, self.width, 32, 0), block)
        return [b.region for b in grid]

    def window_transform(self, window: Window):
        return window_transform(
            RioWindow(window.col, window.row, window.width, window.height), self.transform
        )

    def read_index(self, window: Window) -> tuple[np.ndarray, dict[int, int]]:
        """Class indices over ``window`` (NO_VALUE where invalid, UNKNOWN for values outside
        the class list) and the counts of those unknown values."""
        with rasterio.open(self.path) as src:
            return read_classes(src, window, self.index_of)

    def class_counts(self, window: Window) -> tuple[np.ndarray, dict[int, int]]:
        """Pixels of each class in ``window`` and the counts of unknown values."""
        idx, unknown = self.read_index(window)
        return np.bincount(idx[idx >= 0].ravel(), minlength=self.n).astype(np.int64), unknown


def list_attrs(classes: ClassList) -> dict:
    """A class map's attributes as arrays carry them (xarray, Zarr): the class list as JSON
    (as in the COG's ``CLASSES`` tag) and as CF flags (``flag_values`` / ``flag_meanings``,
    names with spaces as underscores, as CF requires), the colours and the nodata value."""
    return {
        "classes": classes_json(classes),
        "flag_values": [c.id for c in classes.classes],
        "flag_meanings": " ".join(c.name.replace(" ", "_") for c in classes.classes),
        "flag_colors": " ".join(c.color for c in classes.classes),
        "nodata": classes.nodata,
    }


def classes_json(classes: ClassList) -> str:
    return classes.to_json()
