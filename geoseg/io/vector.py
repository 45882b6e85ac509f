"""Polygon layers for GIS: GeoPackage (default), Shapefile, GeoParquet, FlatGeobuf, GeoJSON.

Layers arrive as an Arrow table whose ``geom`` column holds WKB, and are written without
building Python geometries (pyogrio's Arrow writer), except GeoParquet, which geopandas writes
with its ``geo`` metadata. Everything goes to temporary names first (all component files of a
Shapefile, the QGIS ``.qml`` beside the layer) and is renamed into place when complete, the
layer itself last. A GeoPackage is written as version 1.3 and carries its style in QGIS's
``layer_styles`` table instead of a ``.qml`` (which would be the class raster's if they share
a name).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from geoseg.errors import GeoSegError
from geoseg.io.cog import check_output
from geoseg.io.crs import wkt_with_authority
from geoseg.io.files import atomic_files
from geoseg.io.style import check_style_free

GEOM = "geom"
SHP_MAX_BYTES = 2**31  # .shp/.dbf offsets are 32-bit: GIS software fails beyond 2 GB
SHP_COMPONENTS = (".shx", ".dbf", ".prj", ".cpg")


@dataclass(frozen=True)
class VectorFormat:
    name: str
    driver: str | None  # OGR driver; None: written by geopandas (GeoParquet)
    suffix: str


FORMATS = {
    "gpkg": VectorFormat("gpkg", "GPKG", ".gpkg"),
    "shp": VectorFormat("shp", "ESRI Shapefile", ".shp"),
    "parquet": VectorFormat("parquet", None, ".parquet"),
    "fgb": VectorFormat("fgb", "FlatGeobuf", ".fgb"),
    "geojson": VectorFormat("geojson", "GeoJSON", ".geojson"),
}
_BY_SUFFIX = {
    ".gpkg": "gpkg",
    ".shp": "shp",
    ".parquet": "parquet",
    ".geoparquet": "parquet",
    ".fgb": "fgb",
    ".geojson": "geojson",
    ".json": "geojson",
}


SUFFIXES = ", ".join(f.suffix for f in FORMATS.values())  # what the errors name


def vector_format(out: str | Path, fmt: str | None = None) -> VectorFormat:
    """The format named by ``fmt``, else by the output's suffix, else (no suffix) GeoPackage.

    A suffix geoseg does not write (``.kml``, ``.png``) or one that contradicts ``fmt`` is a
    :class:`GeoSegError` before any work: the layer would otherwise be written in another
    format under that name, which no GIS client opens."""
    suffix = Path(out).suffix.lower()
    by_suffix = _BY_SUFFIX.get(suffix)
    if suffix and by_suffix is None:
        raise GeoSegError(
            f"{out}: geoseg does not write {suffix} vector layers: name the output with one of "
            f"{SUFFIXES}"
        )
    if fmt:
        key = fmt.lower().lstrip(".")
        key = {"geoparquet": "parquet", "shapefile": "shp", "flatgeobuf": "fgb"}.get(key, key)
        if key not in FORMATS:
            raise GeoSegError(f"unknown vector format {fmt!r}: use one of {', '.join(FORMATS)}")
        if by_suffix is not None and by_suffix != key:
            raise GeoSegError(
                f"{out}: --format {key} writes {FORMATS[key].suffix} files, not {suffix}: "
                f"name the output *{FORMATS[key].suffix} or leave --format out"
            )
        return FORMATS[key]
    return FORMATS[by_suffix or "gpkg"]


def check_vector_output(out: str | Path, fmt: VectorFormat, overwrite: bool) -> Path:
    """Fail before any work if the layer (or, for a Shapefile, a component) can't be written."""
    p = check_output(out, overwrite)
    if fmt.name != "gpkg":  # its style goes inside; the others' beside it, as <stem>.qml
        check_style_free(p, "vector")
    if fmt.name == "shp" and not overwrite:
        for ext in SHP_COMPONENTS:
            if p.with_suffix(ext).exists():
                raise GeoSegError(
                    f"{p.with_suffix(ext)} already exists: pass --overwrite to "
                    "replace the Shapefile"
                )
    return p


def _shp_checks(table: pa.Table, out: Path) -> None:
    long = [n for n in table.column_names if n != GEOM and len(n) > 10]
    if long:
        raise GeoSegError(
            f"Shapefile field names are limited to 10 characters: rename "
            f"{', '.join(long)} or use --format gpkg"
        )
    n = table.num_rows
    wkb_bytes = int(pc.sum(pc.binary_length(table[GEOM])).as_py() or 0)
    shp = 100 + 43 * n + wkb_bytes  # record = 52 + 4 per ring + 16 per point <= 43 + WKB size
    widths = []
    for f in table.schema:
        if f.name == GEOM:
            continue
        if pa.types.is_string(f.type) or pa.types.is_large_string(f.type):
            longest = int(pc.max(pc.utf8_length(table[f.name])).as_py() or 0)
            widths.append(max(80, min(254, longest)))
        else:
            widths.append(24 if pa.types.is_floating(f.type) else 20)
    dbf = 34 + 32 * len(widths) + n * (1 + sum(widths))
    for ext, size in ((".shp", shp), (".dbf", dbf)):
        if size > SHP_MAX_BYTES:
            raise GeoSegError(
                f"the Shapefile's {out.with_suffix(ext).name} would be "
                f"{size / 2**30:.1f} GB, over the format's 2 GB limit: use "
                "--format gpkg (or parquet, fgb)"
            )


def write_polygons(
    out: str | Path,
    table: pa.Table,
    *,
    fmt: VectorFormat,
    crs_wkt: str | None,
    geometry_type: str,
    qml: str | None = None,
) -> Path:
    """Write ``table`` (WKB in column ``geom``) as layer ``out.stem`` of ``out``, with ``qml``
    inside a GeoPackage (``layer_styles``) or beside any other format (``<stem>.qml``, never
    replacing a raster's style); the final names appear only when all is written."""
    out = Path(out)
    sidecar = qml is not None and fmt.name != "gpkg"
    crs_wkt = wkt_with_authority(crs_wkt)  # its EPSG code where the definition matches one
    if sidecar:
        check_style_free(out, "vector")
    if fmt.name == "shp":
        _shp_checks(table, out)
    try:  # the layer is renamed last, after its Shapefile parts and style
        with atomic_files(out, user_error=False) as add:
            tmp = add(out, fmt.suffix)
            if fmt.driver is None:
                _write_parquet(tmp, table, crs_wkt)
            else:
                _write_ogr(
                    tmp, table, fmt, layer=out.stem, crs_wkt=crs_wkt, geometry_type=geometry_type
                )
            if fmt.name == "gpkg" and qml is not None:
                add_layer_style(tmp, out.stem, qml)
            if fmt.name == "shp":
                for e in SHP_COMPONENTS:
                    if tmp.with_suffix(e).exists():
                        add(out.with_suffix(e), e)
            if sidecar:
                add(out.with_suffix(".qml"), ".qml").write_text(qml, encoding="utf-8")
            if fmt.name == "shp":  # stale components of a replaced Shapefile would not match
                for e in SHP_COMPONENTS + (".qix", ".sbn", ".sbx"):
                    if not tmp.with_suffix(e).exists():
                        with contextlib.suppress(FileNotFoundError):
                            out.with_suffix(e).unlink()
    except Exception as e:
        if isinstance(e, OSError) or type(e).__module__.startswith("pyogrio"):
            raise GeoSegError(
                f"cannot write {out} ({e}): check free space and permissions"
            ) from None
        raise
    return out


def _write_ogr(
    path: Path,
    table: pa.Table,
    fmt: VectorFormat,
    *,
    layer: str,
    crs_wkt: str | None,
    geometry_type: str,
) -> None:
    from pyogrio.raw import write_arrow

    kw: dict = {}
    if fmt.name == "gpkg":
        kw["dataset_options"] = {"VERSION": "1.3"}  # QGIS 3.22 warns on GDAL 3.12's 1.4
    if fmt.name == "shp":
        kw["encoding"] = "UTF-8"  # and a .cpg saying so
    if fmt.name == "geojson" and crs_wkt:
        # RFC 7946 GeoJSON is WGS84 longitude/latitude, and readers assume it: GDAL reprojects
        # on write (its default 7 decimals, ~1 cm, raised to keep the full precision)
        kw["layer_options"] = {"RFC7946": "YES", "COORDINATE_PRECISION": "15"}
    table = table.replace_schema_metadata(None)
    with warnings.catch_warnings():  # a raster without CRS was already warned about
        warnings.filterwarnings("ignore", "'crs' was not provided")
        write_arrow(
            table,
            str(path),
            layer=layer,
            driver=fmt.driver,
            geometry_name=GEOM,
            geometry_type=geometry_type,
            crs=crs_wkt,
            **kw,
        )


def _write_parquet(path: Path, table: pa.Table, crs_wkt: str | None) -> None:
    import geopandas as gpd

    geom = gpd.GeoSeries.from_wkb(table[GEOM].to_numpy(zero_copy_only=False), crs=crs_wkt)
    gdf = gpd.GeoDataFrame(table.drop_columns([GEOM]).to_pandas(), geometry=geom)
    # GeoParquet 1.1: a bbox covering column (readers skip row groups by it) and ZSTD
    gdf.to_parquet(
        path, index=False, compression="zstd", write_covering_bbox=True, schema_version="1.1.0"
    )


def add_layer_style(gpkg: Path, layer: str, qml: str, name: str | None = None) -> None:
    """Store ``qml`` as the default style of ``layer`` in the GeoPackage's ``layer_styles``
    table, the way QGIS saves a style into a database: a non-spatial (attributes) OGR table with
    FID ``id`` and QGIS's columns, registered in gpkg_contents by GDAL."""
    import pyogrio
    from pyogrio.raw import write_arrow

    geom_col = pyogrio.read_info(gpkg, layer=layer)["geometry_name"] or GEOM
    text = {
        "f_table_catalog": "",
        "f_table_schema": "",
        "f_table_name": layer,
        "f_geometry_column": geom_col,
        "styleName": name or layer,
        "styleQML": qml,
        "styleSLD": "",
    }
    cols = {k: pa.array([v], pa.string()) for k, v in text.items()}
    cols["useAsDefault"] = pa.array([True])
    for k, v in (("description", "geoseg class style"), ("owner", ""), ("ui", "")):
        cols[k] = pa.array([v], pa.string())
    cols["update_time"] = pa.array([dt.datetime.now(dt.UTC)], pa.timestamp("ms", tz="UTC"))
    write_arrow(
        pa.table(cols),
        str(gpkg),
        layer="layer_styles",
        driver="GPKG",
        append=True,
        layer_options={"FID": "id"},
        geometry_name=None,
        geometry_type=None,
    )


def constant_column(value: str | None, n: int) -> pa.Array:
    """A string column repeating one value (plain strings: every driver takes them)."""
    return pa.repeat(pa.scalar(value, type=pa.string()), n)


def id_column(n: int) -> pa.Array:
    """Feature ids 1..n: 32-bit below a billion (what GeoJSON readers infer, and a Shapefile's
    default 9-digit integer field holds), 64-bit beyond, the same type in every format."""
    return pa.array(np.arange(1, n + 1, dtype=np.int32 if n < 10**9 else np.int64))


def date_column(value: str | None, n: int) -> pa.Array:
    """A date column repeating one ISO date (``None``: null). A date, not a string, in every
    format: GeoJSON has no types and its readers take ISO dates for dates, so a string would be
    a date there and a string elsewhere."""
    day = dt.date.fromisoformat(value[:10]) if value else None
    return pa.repeat(pa.scalar(day, type=pa.date32()), n)
