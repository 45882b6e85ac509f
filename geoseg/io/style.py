"""QGIS styles (.qml) and GDAL category-name sidecars for class rasters."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from geoseg.classes import ClassList


def raster_qml(classes: ClassList) -> str:
    """A QGIS paletted-raster style with the class colours and names."""
    root = ET.Element("qgis", version="3.22.0", styleCategories="AllStyleCategories")
    pipe = ET.SubElement(root, "pipe")
    rr = ET.SubElement(pipe, "rasterrenderer", type="paletted", band="1", opacity="1",
                       alphaBand="-1", nodataColor="")
    ET.SubElement(rr, "rasterTransparency")
    pal = ET.SubElement(rr, "colorPalette")
    for c in classes.classes:
        ET.SubElement(pal, "paletteEntry", value=str(c.id), color=c.color, label=c.name,
                      alpha="255")
    ET.indent(root)
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + ET.tostring(
        root, encoding="unicode") + "\n"


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
