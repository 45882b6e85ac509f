"""QGIS styles (.qml) and GDAL category-name sidecars for class rasters."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from geoseg.core.classes import ClassList


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


def vector_qml(classes: ClassList, field: str = "class_id") -> str:
    """A QGIS categorized-renderer style on ``field`` (the class id) with the class colours and
    names, for polygon layers."""
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
        sym = ET.SubElement(
            symbols,
            "symbol",
            type="fill",
            name=str(i),
            alpha="1",
            clip_to_extent="1",
            force_rhr="0",
        )
        layer = ET.SubElement(
            sym, "layer", attrib={"class": "SimpleFill", "enabled": "1", "pass": "0", "locked": "0"}
        )
        opts = ET.SubElement(layer, "Option", type="Map")
        r, g, b = c.rgb
        for k, v in (
            ("color", f"{r},{g},{b},255"),
            ("style", "solid"),
            ("outline_color", f"{r // 2},{g // 2},{b // 2},255"),
            ("outline_style", "solid"),
            ("outline_width", "0.1"),
            ("outline_width_unit", "MM"),
            ("joinstyle", "bevel"),
        ):
            ET.SubElement(opts, "Option", name=k, type="QString", value=v)
    ET.indent(root)
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        + ET.tostring(root, encoding="unicode")
        + "\n"
    )
