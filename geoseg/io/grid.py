"""Georeferenced grids (CRS, transform, shape), the common grid of several rasters, and
rasters read onto a grid.

The common grid is a base grid (the first date's, or one the user names) cropped to the pixels
whose centres lie inside every raster's footprint. A raster that shares the grid's CRS, pixel
size and pixel lattice is read with a plain window offset; any other one is warped onto the
grid window by window (:func:`nearest_vrt`), with **nearest neighbour for class rasters and
for probabilities alike**: the confidence that gates a pixel must be the one of the very source
pixel whose label is compared (bilinear would blend in neighbours across class edges, where
confidence dips).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.errors import CRSError
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window as RioWindow

from geoseg.core.grid import Window
from geoseg.errors import GeoSegError
from geoseg.io.classmap import ClassMap, read_classes
from geoseg.io.scene import open_raster

_EPS = 1e-6  # pixels: tolerance for "on the same lattice" and footprint edges


@dataclass(frozen=True)
class RasterGrid:
    """A georeferenced grid: CRS, transform and size of a raster (or of an output)."""

    crs: object
    transform: Affine
    height: int
    width: int

    @classmethod
    def of(cls, path: str | Path) -> RasterGrid:
        with open_raster(path) as src:
            return cls(src.crs, src.transform, src.height, src.width)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        t = self.transform
        xs = (t.c, t.c + t.a * self.width)
        ys = (t.f, t.f + t.e * self.height)
        return min(xs), min(ys), max(xs), max(ys)

    def pixel_area_ha(self) -> float:
        _, factor = self.crs.linear_units_factor
        return abs(self.transform.determinant) * factor**2 / 1e4

    def describe(self) -> dict:
        return {
            "crs": self.crs.to_string(),
            "transform": list(self.transform)[:6],
            "height": self.height,
            "width": self.width,
            "pixel_size": [abs(self.transform.a), abs(self.transform.e)],
            "bounds": list(self.bounds),
        }


def common_grid(base: RasterGrid, footprints: list[tuple[str, RasterGrid]]) -> RasterGrid:
    """``base`` cropped to the pixels whose centres lie inside every footprint."""
    if base.crs is None or any(g.crs is None for _, g in footprints):
        raise GeoSegError(
            "change detection needs georeferenced rasters: "
            f"{next((n for n, g in footprints if g.crs is None), 'the grid')} has "
            "no CRS (set one with gdal_edit.py -a_srs)"
        )
    t = base.transform
    if t.b or t.d:
        raise GeoSegError("the output grid is rotated: name a north-up grid with --grid")
    try:
        if base.crs.is_geographic or base.crs.linear_units_factor[1] <= 0:
            raise CRSError("geographic")
    except CRSError:
        raise GeoSegError(
            f"the output grid's CRS ({base.crs.to_string()}) is not projected: "
            "areas in hectares need a projected grid; name one with --grid "
            "(a raster in a projected CRS)"
        ) from None
    x0, y0, x1, y1 = base.bounds
    for _, g in footprints:
        b = transform_bounds(g.crs, base.crs, *g.bounds, densify_pts=21)
        x0, y0, x1, y1 = max(x0, b[0]), max(y0, b[1]), min(x1, b[2]), min(y1, b[3])
    inv = ~t
    c_a, r_a = inv * (x0, y1)
    c_b, r_b = inv * (x1, y0)
    (c0, c1), (r0, r1) = sorted((c_a, c_b)), sorted((r_a, r_b))
    col0, col1 = _centres_within(c0, c1, base.width)
    row0, row1 = _centres_within(r0, r1, base.height)
    if col1 <= col0 or row1 <= row0:
        names = " and ".join(f"{n} ({_fmt_bounds(g)})" for n, g in footprints)
        raise GeoSegError(
            f"the dates do not overlap: {names} share no pixel; pass two rasters of the same area"
        )
    return RasterGrid(base.crs, t * Affine.translation(col0, row0), row1 - row0, col1 - col0)


def _centres_within(lo: float, hi: float, size: int) -> tuple[int, int]:
    """Pixels [first, end) of a row or column whose centres lie in [lo, hi]."""
    return max(0, math.ceil(lo - 0.5 - _EPS)), min(size, math.floor(hi - 0.5 + _EPS) + 1)


def _fmt_bounds(g: RasterGrid) -> str:
    b = g.bounds
    return f"{b[0]:.6g}, {b[1]:.6g} - {b[2]:.6g}, {b[3]:.6g} in {g.crs.to_string()}"


@dataclass(frozen=True)
class Layer:
    """A raster read onto the output grid: by offset, or warped (nearest) window by window."""

    path: str
    warp: bool
    offset: tuple[int, int] = (0, 0)  # (row, col) of the grid's origin in the raster's pixels

    @classmethod
    def on(cls, path: str | Path, grid: RasterGrid) -> Layer:
        src = RasterGrid.of(path)
        p = str(Path(path).resolve())
        s, t = src.transform, grid.transform
        same_crs = src.crs == grid.crs
        same_res = (
            not (s.b or s.d)
            and math.isclose(s.a, t.a, rel_tol=1e-9)
            and math.isclose(s.e, t.e, rel_tol=1e-9)
        )
        if same_crs and same_res:
            col, row = ~s * (t.c, t.f)
            if abs(col - round(col)) < _EPS and abs(row - round(row)) < _EPS:
                return cls(p, False, (round(row), round(col)))
        return cls(p, True)

    def note(self, what: str, grid: RasterGrid) -> str:
        if not self.warp:
            return f"{what} read on the grid (same CRS and pixel lattice)"
        src = RasterGrid.of(self.path)
        col, row = ~src.transform * (grid.transform.c, grid.transform.f)
        how = (
            "CRS"
            if src.crs != grid.crs
            else "pixel size"
            if not (
                math.isclose(abs(src.transform.a), abs(grid.transform.a), rel_tol=1e-9)
                and math.isclose(abs(src.transform.e), abs(grid.transform.e), rel_tol=1e-9)
            )
            else "extent (nodata where it does not cover the grid)"
            if abs(col - round(col)) < _EPS and abs(row - round(row)) < _EPS
            else "pixel lattice (origin shifted by a fraction of a pixel)"
        )
        return (
            f"{what} ({src.crs.to_string()}, {abs(src.transform.a):g} x "
            f"{abs(src.transform.e):g}, {src.width} x {src.height} px) differs from the "
            f"grid in {how}: warped onto it block by block with nearest neighbour"
        )

    def _rio_window(self, w: Window) -> RioWindow:
        return RioWindow(w.col + self.offset[1], w.row + self.offset[0], w.width, w.height)

    def read_classes(
        self,
        grid: RasterGrid,
        w: Window,
        table: dict[int, int],
    ) -> tuple[np.ndarray, dict[int, int]]:
        """Indices through ``table`` over grid window ``w`` (see io.classmap.read_classes)."""
        with rasterio.open(self.path) as src:
            if not self.warp:
                return read_classes(
                    src,
                    Window(w.row + self.offset[0], w.col + self.offset[1], w.height, w.width),
                    table,
                )
            nodata = src.nodata if src.nodata is not None else _free_value(src.dtypes[0], table)
            with nearest_vrt(src, grid, nodata) as vrt:
                return read_classes(vrt, w, table)

    def read_confidence(self, grid: RasterGrid, w: Window) -> np.ndarray:
        """Largest class probability per pixel over ``w``, float64 in [0, 1] (NaN where a
        band is nodata or NaN). A single band is taken as the confidence itself. Unscaled
        uint8 bands are geoseg's 0..254 (255 nodata) encoding."""
        with rasterio.open(self.path) as src:
            scales = np.asarray(src.scales, dtype=np.float64)
            uint8 = src.dtypes[0] == "uint8"
            if uint8 and np.all(scales == 1.0):
                scales = np.full(src.count, 1 / 254)
            nodata = src.nodata if src.nodata is not None else (255 if uint8 else math.nan)
            if self.warp:
                with nearest_vrt(src, grid, nodata) as vrt:
                    data = vrt.read(window=RioWindow(w.col, w.row, w.width, w.height))
            else:
                data = src.read(window=self._rio_window(w))
        bad = np.isnan(data).any(axis=0) if data.dtype.kind == "f" else False
        if not (isinstance(nodata, float) and math.isnan(nodata)):
            bad = bad | (data == nodata).any(axis=0)
        p = (data.astype(np.float64) * scales[:, None, None]).max(axis=0)
        p[bad] = np.nan
        return p


def _free_value(dtype: str, table: dict[int, int]) -> float:
    """A value of ``dtype`` that is no class id: the fill of warped pixels outside a raster
    without a nodata value."""
    if np.dtype(dtype).kind == "f":
        return math.nan
    info = np.iinfo(dtype)
    for v in (info.max, info.min, *range(info.max - 1, info.min, -1)):
        if v not in table:
            return v
    raise GeoSegError(f"no free value in {dtype} for nodata")  # pragma: no cover


def nearest_vrt(src, grid, nodata: float | None = None) -> WarpedVRT:
    """The open raster ``src`` reprojected onto ``grid`` (anything with ``crs``,
    ``transform``, ``height`` and ``width``: a :class:`RasterGrid`, a ClassMap, a SceneInfo)
    with nearest neighbour; pixels outside ``src`` are ``nodata`` (None: ``src``'s own)."""
    fill = {} if nodata is None else {"nodata": nodata}
    return WarpedVRT(
        src,
        crs=grid.crs,
        transform=grid.transform,
        width=grid.width,
        height=grid.height,
        resampling=Resampling.nearest,
        **fill,
    )


@dataclass(frozen=True)
class MapOnGrid(ClassMap):
    """A class map read on another map's grid (its ``height``, ``width``, ``crs`` and
    ``transform`` are the grid's): through ``layer``, by offset or warped with nearest
    neighbour window by window, so no resampled copy is written."""

    layer: Layer = None  # type: ignore[assignment]

    @classmethod
    def onto(cls, own: ClassMap, grid: ClassMap) -> MapOnGrid:
        g = RasterGrid(grid.crs, grid.transform, grid.height, grid.width)
        layer = Layer.on(own.path, g)
        (r, c), inside = layer.offset, True
        if not layer.warp:  # by offset only where the grid lies inside the map
            inside = r >= 0 and c >= 0 and r + g.height <= own.height and c + g.width <= own.width
        if not inside:  # else warped: pixels outside the map are nodata
            layer = Layer(layer.path, True)
        return cls(
            own.path, grid.height, grid.width, grid.crs, grid.transform, own.classes, layer
        )  # fmt: skip

    @property
    def grid(self) -> RasterGrid:
        return RasterGrid(self.crs, self.transform, self.height, self.width)

    def read_index(self, window: Window) -> tuple[np.ndarray, dict[int, int]]:
        return self.layer.read_classes(self.grid, window, self.index_of)
