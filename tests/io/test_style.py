"""QGIS styles: every product keeps its own ``.qml``. QGIS reads ``<stem>.qml`` beside any file
layer, so a class raster and a Shapefile of the same stem would share one; neither writer may
replace the other's, and a GeoPackage keeps its style inside."""

from __future__ import annotations

import pytest

from geoseg import predict
from geoseg.errors import GeoSegError
from geoseg.vector.vectorize import vectorize


def test_raster_and_polygon_styles_never_replace_each_other(client, synth, bundles, tmp_path):
    scene, _ = synth(130, 140, seed=5)
    model = bundles("pixelnet", tile=64, overlap=16)
    cmap = predict(scene, model, tmp_path / "lc.tif", client=client).path
    raster_style = (tmp_path / "lc.qml").read_text()
    assert "<paletteEntry" in raster_style and "renderer-v2" not in raster_style

    with pytest.raises(GeoSegError, match=r"lc\.qml is the QGIS style of the class raster lc\.tif"):
        vectorize(cmap, tmp_path / "lc.shp", client=client)
    assert not (tmp_path / "lc.shp").exists() and not (tmp_path / "lc.dbf").exists()

    vectorize(cmap, tmp_path / "lc.gpkg", client=client)  # its style goes into layer_styles
    vectorize(cmap, tmp_path / "lc_polygons.shp", client=client)
    assert (tmp_path / "lc.qml").read_text() == raster_style
    assert 'attr="class_id"' in (tmp_path / "lc_polygons.qml").read_text()

    # the other way round: a class raster never replaces the polygons' style
    with pytest.raises(GeoSegError, match=r"style of the polygons lc_polygons\.shp"):
        predict(scene, model, tmp_path / "lc_polygons.tif", client=client)
    assert not (tmp_path / "lc_polygons.tif").exists()
    # and re-running either product replaces only its own style
    predict(scene, model, tmp_path / "lc.tif", client=client, overwrite=True)
    vectorize(cmap, tmp_path / "lc_polygons.shp", client=client, overwrite=True)
    assert (tmp_path / "lc.qml").read_text() == raster_style
