"""Training labels on an image's pixel grid, as class indices (0..n-1, ``IGNORE`` = unlabelled).

* a class raster on the image grid is read window by window; on another grid or CRS it is
  reprojected onto the image grid (nearest neighbour, ``io.grid.nearest_vrt``);
* vector polygons or points with a class field (numeric ids, or class names) are reprojected
  to the image CRS and rasterised per window (pixel centres inside polygons; the pixel holding
  each point; where features overlap the later one wins).

Label values in ``ignore_values``, the raster's nodata and values that are not class ids are
unlabelled. Windows reaching beyond the scene are mirrored like :meth:`Scene.read`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from rasterio.features import rasterize
from rasterio.windows import Window as RioWindow
from rasterio.windows import transform as window_transform

from geoseg.core.classes import ClassList
from geoseg.core.grid import Window, symmetric_index
from geoseg.errors import GeoSegError
from geoseg.io.grid import nearest_vrt
from geoseg.io.scene import SceneInfo, open_raster

IGNORE = 255  # class index of unlabelled pixels (uint8)
VECTOR_SUFFIXES = {
    ".gpkg",
    ".shp",
    ".geojson",
    ".json",
    ".fgb",
    ".parquet",
    ".kml",
    ".gml",
    ".sqlite",
}
FIELD_CANDIDATES = ("class_id", "classid", "class", "id", "label", "value", "code")


def read_mirrored(
    window: Window, height: int, width: int, read_inside: Callable[[Window], np.ndarray]
) -> np.ndarray:
    """``read_inside`` over the part of ``window`` inside the scene, mirrored by index beyond
    it (the last two axes are rows and columns)."""
    rows = symmetric_index(np.arange(window.row, window.row_end), height)
    cols = symmetric_index(np.arange(window.col, window.col_end), width)
    r0, c0 = int(rows.min()), int(cols.min())
    inner = Window(r0, c0, int(rows.max()) + 1 - r0, int(cols.max()) + 1 - c0)
    arr = read_inside(inner)
    if inner == window:
        return arr
    return arr[..., rows - r0, :][..., cols - c0]


def class_lut(classes: ClassList, ignore_values: list[int]) -> np.ndarray:
    """Label value 0..255 -> class index (IGNORE for unlabelled values and unknown ids)."""
    lut = np.full(256, IGNORE, dtype=np.uint8)
    for i, c in enumerate(classes.classes):
        if c.id in ignore_values:
            raise GeoSegError(
                f"class {c.id} ({c.name}) is also listed in ignore_values: "
                "unlabelled pixels need a value that is not a class id"
            )
        lut[c.id] = i
    return lut


def ids_to_index(ids: np.ndarray, lut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(class indices, the label values as int64) for label values ``ids``."""
    v = np.asarray(ids)
    if v.dtype.kind == "f":
        v = np.where(np.isfinite(v), np.rint(v), -1)
    v = v.astype(np.int64)
    out = lut[np.clip(v, 0, 255)]
    out[(v < 0) | (v > 255)] = IGNORE
    return out, v


class LabelSource:
    """Class indices of one scene's pixels, from a raster or a vector layer."""

    def __init__(
        self,
        path: str,
        info: SceneInfo,
        classes: ClassList,
        ignore_values: list[int],
        field: str | None = None,
    ):
        self.path = path
        self.info = info
        self.classes = classes
        self.ignore_values = list(ignore_values)
        self.lut = class_lut(classes, self.ignore_values)
        self.unknown: set[int] = set()  # label values seen that are neither classes nor ignored
        if not Path(path).exists() and not path.startswith("/vsi"):
            raise GeoSegError(f"labels {path} do not exist: check the path")
        self.is_vector = Path(path).suffix.lower() in VECTOR_SUFFIXES
        if self.is_vector:
            self._load_vector(field)
        else:
            self._check_raster()

    # --- rasters -------------------------------------------------------------------------
    def _check_raster(self) -> None:
        info = self.info
        with open_raster(self.path, warn_no_crs=False) as src:
            same_grid = (src.height, src.width) == (info.height, info.width) and (
                src.transform == info.transform or (src.crs is None and info.crs is None)
            )
            if not same_grid and (src.crs is None or info.crs is None):
                raise GeoSegError(
                    f"labels {self.path} are {src.height}x{src.width} pixels but the image is "
                    f"{info.height}x{info.width}, and without a CRS on both they cannot be "
                    "reprojected: give labels on the image's pixel grid"
                )
        self.warp = not same_grid

    def _read_raster(self, w: Window) -> np.ndarray:
        info = self.info
        with open_raster(self.path, warn_no_crs=False) as src:
            if self.warp:
                with nearest_vrt(src, info) as vrt:
                    return self._masked(vrt, w)
            return self._masked(src, w)

    def _masked(self, src, w: Window) -> np.ndarray:
        rw = RioWindow(w.col, w.row, w.width, w.height)
        out, ids = ids_to_index(src.read(1, window=rw), self.lut)
        valid = src.read_masks(1, window=rw) > 0
        out[~valid] = IGNORE
        self._note_unknown(ids[(out == IGNORE) & valid])
        return out

    def _note_unknown(self, values: np.ndarray) -> None:
        if values.size:
            u = np.unique(values)
            self.unknown.update(u[~np.isin(u, self.ignore_values)].tolist())

    # --- vectors -------------------------------------------------------------------------
    def _load_vector(self, field: str | None) -> None:
        import geopandas as gpd

        try:
            gdf = gpd.read_file(self.path)
        except Exception as e:  # noqa: BLE001 - one line for the user
            raise GeoSegError(
                f"cannot read labels {self.path} as a vector layer ({str(e).splitlines()[0][:160]})"
            ) from None
        if self.info.crs is None:
            raise GeoSegError(
                f"vector labels {self.path} need a georeferenced image; this "
                "image has no CRS: give a label raster on its pixel grid"
            )
        if gdf.crs is None:
            warnings.warn(f"{self.path} has no CRS: assuming the image's", stacklevel=2)
            gdf = gdf.set_crs(self.info.crs)
        elif not gdf.crs.equals(self.info.crs):
            gdf = gdf.to_crs(self.info.crs)
        self.field = field or _guess_field(gdf, self.path)
        if self.field not in gdf.columns:
            raise GeoSegError(
                f"labels {self.path} have no field {self.field!r} (fields: "
                f"{', '.join(c for c in gdf.columns if c != 'geometry')})"
            )
        values = gdf[self.field]
        if values.dtype.kind in "iuf":
            idx, ids = ids_to_index(values.fillna(-1).to_numpy(), self.lut)
            self._note_unknown(ids[(idx == IGNORE) & values.notna().to_numpy()])
        else:
            by_name = {c.name.lower(): i for i, c in enumerate(self.classes.classes)}
            names = values.astype(str).str.strip().str.lower()
            unknown = sorted(set(names) - set(by_name))
            if unknown:
                raise GeoSegError(
                    f"labels {self.path}: field {self.field!r} has values that "
                    f"are not class names: {', '.join(unknown[:5])}"
                )
            idx = np.array([by_name[n] for n in names], dtype=np.uint8)
        keep = (idx != IGNORE) & gdf.geometry.notna().to_numpy() & ~gdf.geometry.is_empty
        self.geoms = gdf.geometry[keep].reset_index(drop=True)
        self.values = idx[keep.to_numpy()]
        self.sindex = self.geoms.sindex

    def _read_vector(self, w: Window) -> np.ndarray:
        tf = window_transform(RioWindow(w.col, w.row, w.width, w.height), self.info.transform)
        x0, y1 = tf * (0, 0)
        x1, y0 = tf * (w.width, w.height)
        hits = self.sindex.query(_box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
        if len(hits) == 0:
            return np.full((w.height, w.width), IGNORE, dtype=np.uint8)
        hits = np.sort(hits)  # file order: later features win
        shapes = zip(self.geoms.iloc[hits], self.values[hits].tolist(), strict=True)
        return rasterize(
            shapes, out_shape=(w.height, w.width), transform=tf, fill=IGNORE, dtype="uint8"
        )

    # --- both ----------------------------------------------------------------------------
    def read(self, window: Window) -> np.ndarray:
        """Class indices (uint8, IGNORE = unlabelled) over ``window``."""
        fn = self._read_vector if self.is_vector else self._read_raster
        return read_mirrored(window, self.info.height, self.info.width, fn)


def _box(x0, y0, x1, y1):
    import shapely

    return shapely.box(x0, y0, x1, y1)


def _guess_field(gdf, path: str) -> str:
    cols = {c.lower(): c for c in gdf.columns if c != "geometry"}
    for cand in FIELD_CANDIDATES:
        if cand in cols:
            return cols[cand]
    raise GeoSegError(
        f"labels {path}: say which field holds the class (label_field); fields: "
        f"{', '.join(cols.values())}"
    )
