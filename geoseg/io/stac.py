"""STAC in and out, with pystac.

In: a STAC Item (file or URL) whose named assets are stacked, in the order given, as the
scene (:func:`scene_from_item`). Out: a STAC Item beside a raster product
(``<stem>.stac.json``, :func:`write_item`) with the projection, raster, classification and
file extensions, the scene's acquisition date where known, the model and the source scene;
and a Collection of a workflow's items (:func:`write_collection`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path

from geoseg.core.classes import ClassList
from geoseg.errors import GeoSegError
from geoseg.io.files import atomic_write

STAC_SUFFIX = ".stac.json"


def is_item(source) -> bool:
    """Whether a scene argument names a STAC Item (a ``.json`` file or URL)."""
    return isinstance(source, str | os.PathLike) and str(source).lower().endswith(".json")


def scene_from_item(
    href: str | os.PathLike, assets: list[str] | None
) -> tuple[list[str], str | None]:
    """The hrefs of ``assets`` of the Item at ``href`` (absolute; remote ones as GDAL paths),
    and the Item's acquisition date (YYYY-MM-DD) or None."""
    import pystac

    try:
        item = pystac.Item.from_file(str(href))
    except FileNotFoundError:
        raise GeoSegError(f"STAC item {href} does not exist: check the path or URL") from None
    except Exception as e:  # not JSON, not an Item: pystac raises several kinds
        raise GeoSegError(f"cannot read {href} as a STAC Item ({e}): pass an Item JSON") from None
    if not assets:
        names = ",".join(list(item.assets)[:4])
        raise GeoSegError(f"name the assets to stack with --assets, e.g. --assets {names}")
    missing = [a for a in assets if a not in item.assets]
    if missing:
        raise GeoSegError(
            f"STAC item {item.id} has no asset {', '.join(missing)}: it has "
            f"{', '.join(item.assets)}"
        )
    paths = [_gdal_path(item.assets[a].get_absolute_href() or item.assets[a].href) for a in assets]
    when = item.datetime or item.common_metadata.start_datetime
    return paths, when.date().isoformat() if when else None


def _gdal_path(href: str) -> str:
    if href.startswith(("http://", "https://")):
        return f"/vsicurl/{href}"
    if href.startswith("s3://"):
        return "/vsis3/" + href[5:]
    return href[7:] if href.startswith("file://") else href


def _checksum(path: Path) -> str:
    """The file's SHA2-256 as a multihash (code 0x12, length 0x20), as the file extension asks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "1220" + h.hexdigest()


def build_item(
    raster: str | Path,
    *,
    classes: ClassList | None = None,
    title: str,
    roles: list[str],
    date: str | None = None,
    model: str | None = None,
    sources: list[str] = (),
    properties: dict | None = None,
):
    """A pystac Item for ``raster`` (its footprint in WGS84, its grid in the projection
    extension, its bands in the raster extension, its classes in the classification one)."""
    import pystac
    import rasterio
    from pystac.extensions.classification import Classification, ClassificationExtension
    from pystac.extensions.file import FileExtension
    from pystac.extensions.projection import ProjectionExtension
    from pystac.extensions.raster import DataType, RasterBand, RasterExtension
    from rasterio.warp import transform_geom

    raster = Path(raster)
    with rasterio.open(raster) as src:
        b = src.bounds
        ring = [[b.left, b.bottom], [b.right, b.bottom], [b.right, b.top], [b.left, b.top]]
        geom = {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
        if src.crs is not None:
            geom = transform_geom(src.crs, "EPSG:4326", geom)
        xs = [p[0] for p in geom["coordinates"][0]]
        ys = [p[1] for p in geom["coordinates"][0]]
        bands = [
            RasterBand.create(
                data_type=DataType(src.dtypes[i]),
                nodata=src.nodatavals[i],
                scale=src.scales[i] if src.scales[i] != 1 else None,
            )
            for i in range(src.count)
        ]
        epsg, shape, transform = (src.crs.to_epsg() if src.crs else None), src.shape, src.transform
        wkt = src.crs.to_wkt() if src.crs is not None and epsg is None else None
    when = dt.datetime.fromisoformat(date).replace(tzinfo=dt.UTC) if date else None
    props = {"title": title, **(properties or {})}
    if model:
        props["geoseg:model"] = model
    if when is None:  # STAC needs a datetime or a range: the run's time, said to be so
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        props["start_datetime"] = props["end_datetime"] = now.isoformat().replace("+00:00", "Z")
        props["geoseg:datetime_is"] = "processing time (the scene's acquisition date is unknown)"
    item = pystac.Item(
        id=raster.stem,
        geometry=geom,
        bbox=[min(xs), min(ys), max(xs), max(ys)],
        datetime=when,
        properties=props,
    )
    asset = pystac.Asset(
        href=f"./{raster.name}",
        media_type=pystac.MediaType.COG,
        roles=roles,
        title=title,
    )
    item.add_asset("data", asset)
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    proj.epsg = epsg
    if wkt:
        proj.wkt2 = wkt
    proj.shape = list(shape)
    proj.transform = list(transform)[:6]
    RasterExtension.ext(asset, add_if_missing=True).bands = bands
    f = FileExtension.ext(asset, add_if_missing=True)
    f.size = raster.stat().st_size
    f.checksum = _checksum(raster)
    if classes is not None:
        ClassificationExtension.ext(asset, add_if_missing=True).classes = [
            Classification.create(value=c.id, name=c.name, color_hint=c.color.lstrip("#").upper())
            for c in classes.classes
        ] + [Classification.create(value=classes.nodata, name="nodata", nodata=True)]
    for s in sources:
        item.add_link(pystac.Link("derived_from", _href(s, raster.parent), title="source scene"))
    return item


def _href(path: str, base: Path) -> str:
    if "://" in path or path.startswith("/vsi"):
        return path
    try:
        return os.path.relpath(os.path.abspath(path), base)
    except ValueError:  # another drive
        return os.path.abspath(path)


def item_path(raster: str | Path) -> Path:
    raster = Path(raster)
    return raster.with_name(raster.stem + STAC_SUFFIX)


def write_item(raster: str | Path, **kw) -> Path:
    """``<stem>.stac.json`` beside ``raster``, self-contained (asset and links relative)."""
    item = build_item(raster, **kw)
    out = item_path(raster)
    atomic_write(out, (json.dumps(item.to_dict(include_self_link=False), indent=2) + "\n").encode())
    return out


def write_collection(folder: Path, items: list[Path], *, title: str, description: str) -> Path:
    """A STAC Collection ``collection.json`` in ``folder`` linking ``items`` (their extents
    joined), each item linked back to it."""
    import pystac

    loaded = [pystac.Item.from_file(str(p)) for p in items]
    if not loaded:
        raise GeoSegError("no STAC item to collect")
    bbox = [
        min(i.bbox[0] for i in loaded),
        min(i.bbox[1] for i in loaded),
        max(i.bbox[2] for i in loaded),
        max(i.bbox[3] for i in loaded),
    ]
    times = [t for i in loaded for t in _times(i)]
    coll = pystac.Collection(
        id=folder.name or "geoseg",
        title=title,
        description=description,
        extent=pystac.Extent(
            pystac.SpatialExtent([bbox]), pystac.TemporalExtent([[min(times), max(times)]])
        ),
        license="other",
    )
    out = folder / "collection.json"
    doc = coll.to_dict(include_self_link=False)
    doc["links"] += [
        {"rel": "item", "href": f"./{os.path.relpath(p, folder)}", "type": "application/json"}
        for p in items
    ]
    atomic_write(out, (json.dumps(doc, indent=2) + "\n").encode())
    for p in items:  # each item points to its collection
        d = json.loads(Path(p).read_text())
        d["collection"] = coll.id
        d["links"] = [ln for ln in d["links"] if ln["rel"] not in ("collection", "parent")]
        rel = os.path.relpath(out, Path(p).parent)
        d["links"] += [
            {"rel": "collection", "href": rel, "type": "application/json"},
            {"rel": "parent", "href": rel, "type": "application/json"},
        ]
        atomic_write(Path(p), (json.dumps(d, indent=2) + "\n").encode())
    return out


def _times(item) -> list[dt.datetime]:
    if item.datetime:
        return [item.datetime]
    c = item.common_metadata
    return [t for t in (c.start_datetime, c.end_datetime) if t]


PRODUCT_TITLES = {
    "classes": ("land-cover classes", ["data"]),
    "probs": ("class probabilities", ["data"]),
    "conf": ("confidence (largest class probability)", ["data"]),
    "boundary": ("border of the thing classes' objects (probability)", ["data"]),
}


def write_products(outs: dict, classes, tags: dict[str, str]) -> None:
    """A STAC Item beside each product of a prediction (``outs``: the assembly's
    ``classes``, ``probs``, ``conf`` paths), from the class list and the COG tags."""
    sources = [s for s in tags.get("GEOSEG_SOURCE", "").split(",") if s]
    for k, (title, roles) in PRODUCT_TITLES.items():
        if k in outs:
            write_item(
                outs[k],
                classes=classes if k == "classes" else None,
                title=title,
                roles=roles,
                date=tags.get("GEOSEG_DATE"),
                model=tags.get("GEOSEG_MODEL"),
                sources=sources,
                properties={"geoseg:runtime": tags.get("GEOSEG_RUNTIME")},
            )
