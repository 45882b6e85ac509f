"""Reference data for an accuracy assessment, put on the map's grid.

* a class raster: read window by window; if its CRS or grid differ from the map's, each
  window is reprojected onto the map grid with nearest neighbour (``io.grid.nearest_vrt``);
* polygons with a class field: the features touching a block are rasterised onto the map grid
  there (pixel centres inside a polygon; where polygons overlap the later feature wins);
* points with a class field: each point is compared with the map pixel it falls in.

Reference ids become map class indices through the map's class list and an optional
``class_map`` {reference id: map id}. Id 0 means unlabelled and is left out, as are nodata,
masked pixels, empty fields and everything outside the reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pyogrio
import rasterio
from rasterio.features import rasterize
from rasterio.windows import Window as RioWindow
from rasterio.windows import bounds as window_bounds

from geoseg.core.grid import Window
from geoseg.errors import GeoSegError
from geoseg.io.classmap import NO_VALUE, UNKNOWN, ClassMap, lookup, read_classes
from geoseg.io.grid import nearest_vrt
from geoseg.io.scene import open_raster

# Class fields looked for in a vector reference, in order (case-insensitive).
REF_FIELDS = ("ref_class", "reference", "class", "class_id", "classid", "classvalue", "code")
STRATUM_FIELDS = ("map_class", "stratum_px")  # written by `geoseg sample`
STRATA_LAYER = "geoseg_strata"


def reference_table(cmap: ClassMap, class_map: dict[int, int] | None) -> dict[int, int]:
    """Reference id -> map class index (NO_VALUE: left out). Ids equal to a map class id map
    to it; 0 is unlabelled; ``class_map`` overrides both (map id 0: leave the class out)."""
    table = {cid: i for cid, i in cmap.index_of.items() if cid != 0}
    table[0] = NO_VALUE
    for ref_id, map_id in (class_map or {}).items():
        if int(map_id) in cmap.index_of:
            table[int(ref_id)] = cmap.index_of[int(map_id)]
        elif int(map_id) == 0:
            table[int(ref_id)] = NO_VALUE
        else:
            raise GeoSegError(
                f"class_map maps reference id {ref_id} to {map_id}, which is not "
                f"a class of the map (ids {cmap.ids}; 0 leaves a class out)"
            )
    return table


def unknown_ids_error(ids, cmap: ClassMap, source: str) -> GeoSegError:
    shown = sorted(ids)
    more = f" and {len(shown) - 10} more" if len(shown) > 10 else ""
    return GeoSegError(
        f"reference {source} has class ids {shown[:10]}{more} that are not in the map's class "
        f"list {cmap.ids}: map them with class_map={{ref_id: map_id}} (CLI: --class-map "
        "REF=MAP, repeatable; MAP 0 leaves a class out)"
    )


@dataclass(frozen=True)
class RasterReference:
    path: str
    table: dict[int, int]
    warp: bool  # reproject each window onto the map grid
    note: str
    kind: str = "raster"

    @classmethod
    def open(cls, path: str, cmap: ClassMap, table: dict[int, int]) -> RasterReference:
        with open_raster(path) as src:
            crs, transform, shape = src.crs, src.transform, (src.height, src.width)
            res = (abs(transform.a), abs(transform.e))
        same_crs = crs == cmap.crs or crs is None or cmap.crs is None
        same = (
            same_crs
            and shape == (cmap.height, cmap.width)
            and transform.almost_equals(cmap.transform)
        )
        if same:
            return cls(path, table, False, "reference raster on the map grid")
        if crs is None or cmap.crs is None:
            raise GeoSegError(
                f"reference {path} is not on the map's grid and "
                f"{'it' if crs is None else 'the map'} has no CRS: give both a "
                "CRS (gdal_edit.py -a_srs) or resample the reference to the map"
            )
        what = "CRS" if crs != cmap.crs else "grid"
        note = (
            f"reference raster ({crs.to_string()}, {res[0]:g} x {res[1]:g} units, "
            f"{shape[1]} x {shape[0]} px) differs from the map in {what}: reprojected block "
            "by block onto the map grid with nearest neighbour"
        )
        return cls(path, table, True, note)

    def read_index(self, cmap: ClassMap, window: Window) -> tuple[np.ndarray, dict[int, int]]:
        """Map class indices of the reference over ``window`` and counts of unknown ids."""
        with rasterio.open(self.path) as src:
            if not self.warp:
                return read_classes(src, window, self.table)
            nodata = src.nodata if src.nodata is not None else 0
            with nearest_vrt(src, cmap, nodata) as vrt:
                return read_classes(vrt, window, self.table)


@dataclass
class VectorReference:
    path: str
    layer: str
    field: str
    kind: str  # "points" or "polygons"
    geometry: object  # GeoSeries in the map CRS
    values: np.ndarray  # map class index per feature (NO_VALUE: unlabelled)
    notes: list[str] = field(default_factory=list)
    strata: np.ndarray | None = None  # map class index recorded per point by `geoseg sample`
    stratum_pixels: dict[int, int] = field(default_factory=dict)  # class index -> pixels

    @property
    def unlabelled(self) -> int:
        return int((self.values == NO_VALUE).sum())

    def pixels(self, cmap: ClassMap) -> tuple[np.ndarray, np.ndarray]:
        """Row and column of the pixel under each point (may lie outside the map)."""
        x, y = self.geometry.x.to_numpy(), self.geometry.y.to_numpy()
        cols, rows = ~cmap.transform * (x, y)
        return np.floor(rows).astype(np.int64), np.floor(cols).astype(np.int64)

    def shapes_in(self, cmap: ClassMap, window: Window) -> list[tuple[object, int]]:
        """(polygon, class index) of the labelled features touching ``window``."""
        from shapely.geometry import box

        rw = RioWindow(window.col, window.row, window.width, window.height)
        hits = self.geometry.sindex.query(
            box(*window_bounds(rw, cmap.transform)), predicate="intersects"
        )
        hits = np.sort(hits)  # file order: the later feature wins where polygons overlap
        return [(self.geometry.iloc[i], int(self.values[i])) for i in hits if self.values[i] >= 0]


def rasterize_index(shapes: list[tuple[object, int]], cmap: ClassMap, window: Window) -> np.ndarray:
    """Class indices of ``shapes`` burnt onto the map grid over ``window`` (pixel centres)."""
    if not shapes:
        return np.full((window.height, window.width), NO_VALUE, dtype=np.int16)
    burnt = rasterize(
        ((g, v + 1) for g, v in shapes),
        out_shape=(window.height, window.width),
        transform=cmap.window_transform(window),
        fill=0,
        dtype="int16",
    )
    return burnt - 1


def open_reference(
    source: str,
    cmap: ClassMap,
    *,
    class_map: dict[int, int] | None = None,
    field: str | None = None,
    layer: str | None = None,
) -> RasterReference | VectorReference:
    """The reference at ``source``: a vector data set if OGR reads one, else a raster."""
    table = reference_table(cmap, class_map)
    try:
        layers = [(str(n), g) for n, g in pyogrio.list_layers(source)]
    except Exception:  # not a vector data set (pyogrio's DataSourceError and friends)
        layers = []
    spatial = [n for n, g in layers if g is not None]
    if not spatial:
        if layer or field:
            raise GeoSegError(
                f"reference {source} has no vector layer: field and layer apply "
                "to points or polygons only"
            )
        return RasterReference.open(source, cmap, table)
    return _open_vector(source, cmap, table, field, layer, spatial, [n for n, _ in layers])


def _open_vector(path, cmap, table, field, layer, spatial, all_layers) -> VectorReference:
    if layer is None:
        layer = spatial[0]
    elif layer not in spatial:
        raise GeoSegError(f"{path} has no vector layer {layer!r}: its layers are {spatial}")
    names = [str(f) for f in pyogrio.read_info(path, layer=layer)["fields"]]
    lower = {f.lower(): f for f in names}
    if field is None:
        field = next((lower[f] for f in REF_FIELDS if f in lower), None)
        if field is None:
            raise GeoSegError(
                f"cannot tell which field of {path} holds the reference class "
                f"(fields: {names}): pass field= (CLI: --field)"
            )
    elif field not in names:
        raise GeoSegError(f"{path} has no field {field!r}: its fields are {names}")
    extra = [f for f in STRATUM_FIELDS if f in names and f != field]
    gdf = pyogrio.read_dataframe(path, layer=layer, columns=[field, *extra])
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    kinds = set(gdf.geometry.geom_type)
    if kinds <= {"Point", "MultiPoint"}:
        kind = "points"
        gdf = gdf.explode(index_parts=False)
    elif kinds <= {"Polygon", "MultiPolygon"}:
        kind = "polygons"
    else:
        raise GeoSegError(
            f"reference layer {layer!r} of {path} holds {sorted(kinds)}: pass points or polygons"
        )
    notes = []
    if gdf.crs is not None and cmap.crs is not None and gdf.crs != cmap.crs:
        notes.append(f"reference {kind} reprojected from {gdf.crs.to_string()} to the map CRS")
        gdf = gdf.to_crs(cmap.crs)
    elif gdf.crs is None or cmap.crs is None:
        notes.append(f"reference {kind} or map without CRS: coordinates taken as they are")
    ids = _class_ids(gdf[field], cmap, path, field)
    values = lookup(ids, table)
    if (values == UNKNOWN).any():
        raise unknown_ids_error(set(np.unique(ids[values == UNKNOWN]).tolist()), cmap, path)
    ref = VectorReference(
        path,
        layer,
        field,
        kind,
        gdf.geometry.reset_index(drop=True),
        values.astype(np.int16),
        notes,
    )
    if kind == "points" and set(STRATUM_FIELDS) <= set(names):
        _read_strata(ref, gdf, cmap, path, all_layers)
    return ref


def _class_ids(col, cmap: ClassMap, path: str, field: str) -> np.ndarray:
    """Class ids of a field: integers (NaN: unlabelled), or class names of the map."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(col):
        v = col.to_numpy(dtype=float, na_value=np.nan)
        bad = np.isfinite(v) & (v != np.round(v))
        if bad.any():
            raise GeoSegError(
                f"field {field!r} of {path} has non-integer class ids (e.g. "
                f"{v[bad][0]}): pass a field of integer ids or class names"
            )
        return np.where(np.isfinite(v), v, 0).astype(np.int64)
    by_name = {c.name.strip().lower(): c.id for c in cmap.classes.classes}
    text = col.astype("string").str.strip().str.lower().fillna("")
    unknown = sorted(set(text) - set(by_name) - {""})
    if unknown:
        raise GeoSegError(
            f"field {field!r} of {path} has class names {unknown[:10]} that are "
            f"not in the map's classes {cmap.names}: rename them, or use a "
            "field of class ids with class_map"
        )
    return np.array([by_name.get(t, 0) for t in text], dtype=np.int64)


def _read_strata(ref: VectorReference, gdf, cmap: ClassMap, path: str, layers) -> None:
    """The strata of a `geoseg sample` point set: map class per point and pixels per class."""
    strata = lookup(gdf["map_class"].to_numpy(dtype=float, na_value=np.nan), cmap.index_of)
    if (strata < 0).any():
        raise GeoSegError(
            f"{path}: field map_class holds ids that are not classes of the map "
            f"{cmap.ids}: was the sample drawn from another map?"
        )
    ref.strata = strata
    px = gdf["stratum_px"].to_numpy(dtype=float, na_value=np.nan)
    counts: dict[int, int] = {}
    if STRATA_LAYER in layers:
        table = pyogrio.read_dataframe(path, layer=STRATA_LAYER)
        for cid, n in zip(table["map_class"], table["pixels"], strict=True):
            if int(cid) in cmap.index_of:
                counts[cmap.index_of[int(cid)]] = int(n)
    for s in np.unique(strata):
        vals = px[(strata == s) & np.isfinite(px)]
        if vals.size and (vals != vals[0]).any():
            raise GeoSegError(
                f"{path}: points of stratum {cmap.ids[s]} disagree on stratum_px "
                "(the strata pixel counts were edited?)"
            )
        if vals.size and int(s) not in counts:
            counts[int(s)] = int(vals[0])
    ref.stratum_pixels = counts
    if any(math.isnan(v) for v in px):
        ref.notes.append(
            "some points have no stratum_px: their stratum size is taken from the "
            "strata table or the map"
        )
