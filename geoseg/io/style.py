"""QGIS styles (.qml) and GDAL category-name sidecars for class rasters."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from geoseg.core.classes import ClassList
from geoseg.errors import GeoSegError


def raster_qml(classes: ClassList) -> str:
    """A QGIS paletted-raster style with the class colours and names."""
    root = ET.Element("qgis", version="3.22.0", styleCategories="AllStyleCategories")
    pipe = ET.SubElement(root, "pipe")
    rr = ET.SubElement(
        pipe,
        "rasterrenderer",
        type="paletted",
        band="1",
        opacity="1",
        alphaBand="-1",
        nodataColor="",
    )
    ET.SubElement(rr, "rasterTransparency")
    pal = ET.SubElement(rr, "colorPalette")
    for c in classes.classes:
        ET.SubElement(
            pal, "paletteEntry", value=str(c.id), color=c.color, label=c.name, alpha="255"
        )
    ET.indent(root)
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        + ET.tostring(root, encoding="unicode")
        + "\n"
    )


def category_aux_xml(names: list[str]) -> str:
    """A GDAL PAM sidecar (``.aux.xml``) carrying band 1's category names.

    Written by hand because rasterio has no API for GDAL category names; this is the file GDAL
    itself writes for a GeoTIFF (the format keeps category names in PAM), and GDAL, QGIS and
    ArcGIS read it beside the raster.
    """
    root = ET.Element("PAMDataset")
    band = ET.SubElement(root, "PAMRasterBand", band="1")
    cats = ET.SubElement(band, "CategoryNames")
    for n in names:
        ET.SubElement(cats, "Category").text = n
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def vector_qml(classes: ClassList, field: str = "class_id", geometry: str = "polygon") -> str:
    """A QGIS categorized-renderer style on ``field`` (the class id) with the class colours and
    names, for polygon layers (filled, a darker outline) or point layers (``geometry="point"``:
    circles of the class colour, outlined in black so that they read on any map)."""
    root = ET.Element("qgis", version="3.22.0", styleCategories="Symbology")
    rend = ET.SubElement(
        root,
        "renderer-v2",
        type="categorizedSymbol",
        attr=field,
        symbollevels="0",
        enableorderby="0",
        forceraster="0",
    )
    cats = ET.SubElement(rend, "categories")
    symbols = ET.SubElement(rend, "symbols")
    for i, c in enumerate(classes.classes):
        ET.SubElement(cats, "category", symbol=str(i), value=str(c.id), label=c.name, render="true")
        point = geometry == "point"
        sym = ET.SubElement(
            symbols,
            "symbol",
            type="marker" if point else "fill",
            name=str(i),
            alpha="1",
            clip_to_extent="1",
            force_rhr="0",
        )
        layer = ET.SubElement(
            sym,
            "layer",
            attrib={
                "class": "SimpleMarker" if point else "SimpleFill",
                "enabled": "1",
                "pass": "0",
                "locked": "0",
            },
        )
        opts = ET.SubElement(layer, "Option", type="Map")
        r, g, b = c.rgb
        if point:
            options = (
                ("color", f"{r},{g},{b},255"),
                ("name", "circle"),
                ("size", "2.4"),
                ("size_unit", "MM"),
                ("outline_color", "35,35,35,255"),
                ("outline_style", "solid"),
                ("outline_width", "0.3"),
                ("outline_width_unit", "MM"),
            )
        else:
            options = (
                ("color", f"{r},{g},{b},255"),
                ("style", "solid"),
                ("outline_color", f"{r // 2},{g // 2},{b // 2},255"),
                ("outline_style", "solid"),
                ("outline_width", "0.1"),
                ("outline_width_unit", "MM"),
                ("joinstyle", "bevel"),
            )
        for k, v in options:
            ET.SubElement(opts, "Option", name=k, type="QString", value=v)
    ET.indent(root)
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        + ET.tostring(root, encoding="unicode")
        + "\n"
    )


# QGIS loads the style of a file layer from ``<stem>.qml`` beside it, whatever the layer's
# suffix, so ``landcover.tif`` and ``landcover.shp`` would share one style file. A writer
# never replaces a style that belongs to the other kind of layer.
_RASTER_STYLE, _VECTOR_STYLE = "<rasterrenderer", "<renderer-v2"
RASTER_SUFFIXES = (".tif", ".tiff")
SIDECAR_VECTOR_SUFFIXES = (".shp", ".geojson", ".json", ".fgb", ".parquet", ".geoparquet")


def check_style_free(layer: str | Path, kind: str) -> None:
    """Fail before any work if ``<stem>.qml`` beside ``layer`` is another kind's style.

    ``kind`` is ``"raster"`` or ``"vector"``: the kind of layer about to write its style.
    """
    layer = Path(layer)
    qml = layer.with_suffix(".qml")
    try:
        text = qml.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return
    theirs = _RASTER_STYLE if kind == "vector" else _VECTOR_STYLE
    if theirs not in text:
        return
    suffixes = RASTER_SUFFIXES if kind == "vector" else SIDECAR_VECTOR_SUFFIXES
    owner = next(
        (layer.with_suffix(s).name for s in suffixes if layer.with_suffix(s).exists()),
        f"another {'raster' if kind == 'vector' else 'vector'} layer",
    )
    if kind == "vector":
        raise GeoSegError(
            f"{qml} is the QGIS style of the class raster {owner}, and the polygons "
            f"{layer.name} would replace it (QGIS reads <name>.qml for both): name the polygons "
            f"differently (e.g. {layer.stem}_polygons{layer.suffix}) or write a GeoPackage, "
            "which keeps its style inside"
        )
    raise GeoSegError(
        f"{qml} is the QGIS style of the polygons {owner}, and the class raster {layer.name} "
        f"would replace it (QGIS reads <name>.qml for both): name the raster differently or "
        "move the polygons"
    )
