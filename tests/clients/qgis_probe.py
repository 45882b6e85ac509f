"""Open layers in QGIS headless and report what a QGIS user would see, as JSON on stdout.

Run by Debian's system Python (``python3-qgis``), not the project's venv, so it imports only
QGIS and the standard library. Input (argv[1]): a JSON list of ``{"path", "kind": "raster" |
"vector", "layer"?}`` and optionally ``"render": PNG`` to render that layer alone. For each
layer: validity, CRS, the renderer and its classes or categories (value, label, colour), the
legend's labels, feature count, and every QGIS message of warning level or above.
"""

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (  # noqa: E402
    Qgis,
    QgsApplication,
    QgsMapRendererParallelJob,
    QgsMapSettings,
    QgsRasterLayer,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QSize  # noqa: E402
from qgis.PyQt.QtGui import QColor  # noqa: E402


def hexcolor(c: QColor) -> str:
    return f"#{c.red():02x}{c.green():02x}{c.blue():02x}"


def raster(path: str) -> tuple[object, dict]:
    lyr = QgsRasterLayer(path, os.path.basename(path), "gdal")
    r = lyr.renderer()
    info = {"renderer": r.type() if r else None}
    if r is not None and r.type() == "paletted":
        info["classes"] = [
            {"value": int(c.value), "label": c.label, "color": hexcolor(c.color)}
            for c in r.classes()
        ]
    if r is not None:
        info["legend"] = [label for label, _ in r.legendSymbologyItems()]
    return lyr, info


def vector(path: str, layer: str | None) -> tuple[object, dict]:
    uri = f"{path}|layername={layer}" if layer else path
    lyr = QgsVectorLayer(uri, layer or os.path.basename(path), "ogr")
    r = lyr.renderer()
    info = {"renderer": r.type() if r else None, "features": lyr.featureCount()}
    if r is not None and r.type() == "categorizedSymbol":
        cats = r.categories()  # copies: keep them alive while their symbols are read
        info["attribute"] = r.classAttribute()
        info["categories"] = [
            {
                "value": str(c.value()),
                "label": c.label(),
                "color": hexcolor(c.symbol().color()),
                "symbol": c.symbol().symbolLayer(0).layerType(),
            }
            for c in cats
        ]
    info["fields"] = {f.name(): f.typeName() for f in lyr.fields()}
    return lyr, info


def main() -> None:
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    app = QgsApplication([], False)
    app.initQgis()
    messages: list[str] = []

    def collect(message, tag, level):
        if level >= Qgis.Warning:
            messages.append(f"{tag}: {message}")

    QgsApplication.messageLog().messageReceived.connect(collect)
    out = []
    for item in spec:
        start = len(messages)
        if item["kind"] == "raster":
            lyr, info = raster(item["path"])
        else:
            lyr, info = vector(item["path"], item.get("layer"))
        info.update(
            path=item["path"],
            valid=lyr.isValid(),
            crs=lyr.crs().authid(),
            crs_description=lyr.crs().description(),
        )
        if item.get("render") and lyr.isValid():
            settings = QgsMapSettings()
            settings.setLayers([lyr])
            settings.setDestinationCrs(lyr.crs())
            settings.setExtent(lyr.extent())
            settings.setOutputSize(QSize(800, 800))
            settings.setBackgroundColor(QColor(255, 255, 255))
            job = QgsMapRendererParallelJob(settings)
            job.start()
            job.waitForFinished()
            info["rendered"] = bool(job.renderedImage().save(item["render"], "png"))
        app.processEvents()
        info["messages"] = messages[start:]
        out.append(info)
    print(json.dumps(out), flush=True)
    # Layers and symbols are Python wrappers of C++ objects that must die before QGIS does:
    # leaving them to the interpreter's exit crashes QGIS 3.22 (SIGSEGV after the output).
    del lyr
    import gc

    gc.collect()
    app.exitQgis()


if __name__ == "__main__":
    main()
