"""Scenes: one raster, or single-band files stacked as one, read window by window.

Windows may reach beyond the scene (tiles at the border): those pixels are mirrored from inside
the scene by index, never read with ``boundless=True`` (about 8x slower here).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import rasterio
from rasterio.enums import MaskFlags
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.windows import Window as RioWindow

from geoseg.core.grid import Window, symmetric_index
from geoseg.errors import GeoSegError


@dataclass(frozen=True)
class SceneInfo:
    height: int
    width: int
    count: int
    crs: object  # rasterio CRS or None
    transform: object  # affine.Affine
    dtypes: tuple[str, ...]
    band_names: tuple[str, ...]

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None

    @property
    def pixel_m(self) -> float | None:
        """The pixel size in metres (the mean of its width and height; at the scene's centre
        for a geographic CRS), or None without a CRS."""
        if self.crs is None or self.transform is None:
            return None
        t = self.transform
        dx, dy = math.hypot(t.a, t.d), math.hypot(t.b, t.e)
        if self.crs.is_geographic:
            lat = t.f + t.e * self.height / 2 + t.d * self.width / 2
            return float((dx * 111_320 * math.cos(math.radians(lat)) + dy * 110_574) / 2)
        unit = self.crs.linear_units_factor[1] if self.crs.linear_units else 1.0
        return float((dx + dy) / 2 * unit)


@dataclass(frozen=True)
class Scene:
    """An input scene: ``paths`` are stacked band-wise in order (one path: all its bands)."""

    paths: tuple[str, ...]

    @classmethod
    def of(cls, source: str | os.PathLike | list | tuple | Scene) -> Scene:
        if isinstance(source, Scene):
            return source
        if isinstance(source, str | os.PathLike):
            return cls((os.fspath(source),))
        paths = tuple(os.fspath(p) for p in source)
        if not paths:
            raise GeoSegError("no input scene given: pass a raster path (or several band files)")
        return cls(paths)

    @cached_property
    def band_map(self) -> list[tuple[int, int]]:
        """(file index, band within file) for each stacked band, 0-based file, 1-based band."""
        out = []
        for fi, p in enumerate(self.paths):
            with open_raster(p) as src:
                out.extend((fi, b) for b in range(1, src.count + 1))
        return out

    @cached_property
    def info(self) -> SceneInfo:
        first = None
        dtypes, names = [], []
        for p in self.paths:
            with open_raster(p) as src:
                if first is None:
                    first = (src.height, src.width, src.crs, src.transform)
                elif (src.height, src.width) != first[:2]:
                    raise GeoSegError(
                        f"band file {p} is {src.height}x{src.width} but {self.paths[0]} is "
                        f"{first[0]}x{first[1]}: stacked band files must share one grid "
                        "(build a VRT with gdalbuildvrt -separate to resample them)"
                    )
                elif src.transform != first[3] or (
                    src.crs and first[2] and not _same_crs(src.crs, first[2])
                ):
                    raise GeoSegError(
                        f"band file {p} is not on the grid of {self.paths[0]} (transform or CRS "
                        "differ): stacked band files must share one grid"
                    )
                dtypes.extend(src.dtypes)
                base = os.path.splitext(os.path.basename(p))[0]
                for b in range(1, src.count + 1):
                    d = src.descriptions[b - 1]
                    names.append(d or (base if src.count == 1 else f"{base}:{b}"))
        h, w, crs, transform = first
        return SceneInfo(h, w, len(dtypes), crs, transform, tuple(dtypes), tuple(names))

    def check_bands(self, bands: list[int]) -> None:
        n = self.info.count
        bad = [b for b in bands if not 1 <= b <= n]
        if bad:
            raise GeoSegError(
                f"the model reads bands {bands} but {self._label()} has {n} band(s): pass a "
                "scene with the bands the model was trained on (see 'geoseg bundle info')"
            )

    def _label(self) -> str:
        return self.paths[0] if len(self.paths) == 1 else f"the {len(self.paths)} band files"

    def read(self, window: Window, bands: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Bands (float32, len(bands) x h x w) and validity (bool, h x w) over ``window``.

        A pixel is invalid where any band is masked (nodata value, per-dataset mask or alpha
        band) or not finite (NaN, +-Inf). Parts of ``window`` outside the scene are mirrored
        from inside it.
        """
        info = self.info
        rows = symmetric_index(np.arange(window.row, window.row_end), info.height)
        cols = symmetric_index(np.arange(window.col, window.col_end), info.width)
        r0, r1 = int(rows.min()), int(rows.max()) + 1
        c0, c1 = int(cols.min()), int(cols.max()) + 1
        rw = RioWindow(c0, r0, c1 - c0, r1 - r0)
        data = np.empty((len(bands), r1 - r0, c1 - c0), dtype=np.float32)
        valid = np.ones((r1 - r0, c1 - c0), dtype=bool)
        by_file: dict[int, list[tuple[int, int]]] = {}
        for k, b in enumerate(bands):
            fi, fb = self.band_map[b - 1]
            by_file.setdefault(fi, []).append((k, fb))
        for fi, items in by_file.items():
            failed = None
            with open_raster(self.paths[fi]) as src:
                try:
                    idx = [fb for _, fb in items]
                    ks = [k for k, _ in items]
                    if ks == list(range(ks[0], ks[0] + len(ks))):  # decoded in place
                        arr = data[ks[0] : ks[0] + len(ks)]
                        src.read(idx, window=rw, out=arr)
                    else:
                        arr = src.read(idx, window=rw, out_dtype="float32")
                        data[ks] = arr
                    for j, (_, fb) in enumerate(items):
                        _mask_band(src, fb, rw, arr[j], valid)
                except RasterioIOError as e:
                    failed = _gdal_message(e, "read failed")
            if failed:  # raised outside the handler: see _gdal_message
                raise GeoSegError(
                    f"cannot read pixels of {self.paths[fi]} at rows {r0}-{r1}, columns "
                    f"{c0}-{c1} ({failed}): the file is truncated or damaged (or, if remote, "
                    "unreachable); re-create or re-download it"
                )
        if any(np.dtype(info.dtypes[b - 1]).kind == "f" for b in bands):
            valid &= np.isfinite(data).all(axis=0)  # NaN and +-Inf alike are nodata
        inside = (
            rows[0] == r0
            and rows[-1] == r1 - 1
            and len(rows) == r1 - r0
            and cols[0] == c0
            and cols[-1] == c1 - 1
            and len(cols) == c1 - c0
        )
        if not inside:  # mirrored: gather along the axes that leave the scene only
            ri, ci = rows - r0, cols - c0
            if not (len(ri) == r1 - r0 and (ri == np.arange(len(ri))).all()):
                data, valid = data[:, ri], valid[ri]
            if not (len(ci) == c1 - c0 and (ci == np.arange(len(ci))).all()):
                data, valid = data[:, :, ci], valid[:, ci]
        return data, valid


def _mask_band(src, band: int, rw: RioWindow, values: np.ndarray, valid: np.ndarray) -> None:
    """Clear ``valid`` where ``band`` is masked. A nodata-value mask is computed from the
    pixels already read (``read_masks`` would decode the band a second time); dataset masks
    and alpha bands are read."""
    flags = src.mask_flag_enums[band - 1]
    if MaskFlags.all_valid in flags:
        return
    nd = src.nodatavals[band - 1]
    if flags == [MaskFlags.nodata] and nd is not None:
        # values are float32; integer nodata values of GDAL's types are exact in float32
        valid &= ~np.isnan(values) if np.isnan(nd) else values != np.float32(nd)
    else:
        valid &= src.read_masks(band, window=rw) > 0


def _same_crs(a, b) -> bool:
    try:
        return a == b or a.to_epsg() == b.to_epsg() is not None
    except Exception:
        return False


_warned_no_crs: set[str] = set()


def _gdal_message(e: BaseException, default: str) -> str:
    """The first line of GDAL's own message (rasterio chains it as the cause).

    geoseg's errors about a rasterio error are raised outside the ``except`` block, so that
    they carry no chained rasterio exception: Dask could not send one from a worker (tblib
    fails on rasterio's CPLE errors) and the client would get a bare ``Exception`` instead."""
    text = str(e.__cause__ or e) or str(e)
    return text.splitlines()[0] if text else default


def open_raster(path: str | os.PathLike, *, warn_no_crs: bool = True):
    """Open a raster (a path, URL or ``/vsi`` name) for reading, with a one-line error for
    anything GDAL cannot read and, with ``warn_no_crs``, a warning (once per path) for one
    without a CRS."""
    path = os.fspath(path)
    if not path.startswith("/vsi") and "://" not in path and not os.path.exists(path):
        raise GeoSegError(f"input {path} does not exist: check the path")
    msg = None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", NotGeoreferencedWarning)
            src = rasterio.open(path)
    except RasterioIOError as e:
        msg = _gdal_message(e, "unreadable")
        if os.path.exists(path) and os.path.getsize(path) == 0:
            msg = "the file is empty (0 bytes)"
    if msg is not None:  # raised outside the handler: see _gdal_message
        raise GeoSegError(
            f"cannot read {path} as a raster ({msg}): pass a GeoTIFF, COG, VRT or "
            "another format GDAL reads"
        )
    if (
        warn_no_crs
        and any(issubclass(w.category, NotGeoreferencedWarning) for w in caught)
        and path not in _warned_no_crs
    ):
        _warned_no_crs.add(path)
        warnings.warn(
            f"{path} has no CRS or geotransform: outputs keep pixel coordinates", stacklevel=3
        )
    return src
