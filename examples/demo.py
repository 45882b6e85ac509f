"""The README demo: predict the bundled North Carolina Landsat 7 sample into a land-cover COG.

    make demo            (or: .venv/bin/python examples/demo.py)

Uses the trained NC model in examples/models/ when present; otherwise it makes an *untrained*
DeepLabV3+ bundle (fresh weights, band statistics from the scene) and says so: the map then
shows the engine working, not a meaningful land cover.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NC = HERE / "data" / "nc"
BANDS = [NC / f"lsat7_2000_{b}.tif" for b in (10, 20, 30, 40, 50, 70)]
TRAINED = HERE / "models" / "nc-deeplabv3plus"
OUT = HERE.parent / "demo-output"


def main() -> int:
    from rich.console import Console

    from geoseg.engine.predict import predict
    from geoseg.io.stats import band_stats
    from geoseg.model.bundle import create_bundle

    con = Console()
    OUT.mkdir(exist_ok=True)
    bundle = TRAINED
    if not (TRAINED / "bundle.json").exists():
        bundle = OUT / "untrained-model"
        con.print("[yellow]No trained NC model in examples/models/: using an UNTRAINED "
                  "DeepLabV3+ (fresh weights). The map shows the engine, not real land cover."
                  "[/]")
        mean, std = band_stats([str(b) for b in BANDS], list(range(1, 7)))
        create_bundle(bundle, classes=NC / "classes.json", bands=6, architecture="deeplabv3plus",
                      encoder="resnet18", mean=mean, std=std, tile=256, overlap=32,
                      name="nc-untrained", band_names=[b.stem for b in BANDS])
    t = time.perf_counter()
    res = predict([str(b) for b in BANDS], str(bundle), OUT / "landcover.tif", block=512,
                  workers=2, overwrite=True, probabilities=True, progress=True)
    con.print(f"\n[bold green]Done in {time.perf_counter() - t:.1f} s[/] "
              f"({res.megapixels:.2f} Mpx, {res.tiles} tiles, {res.blocks} blocks)")
    con.print("Products:")
    for name, path in res.outputs.items():
        con.print(f"  {name:<8} {Path(path).relative_to(OUT.parent)}")
    con.print(f"  style    {Path(res.path).with_suffix('.qml').relative_to(OUT.parent)} "
              "(QGIS loads it with the map)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
