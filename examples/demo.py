"""The README demo from Python: what ``make demo`` runs (``geoseg run workflows/landcover.yaml``)
through the Python API.

    .venv/bin/python examples/demo.py            # or: make demo

The workflow maps the bundled North Carolina Landsat 7 sample with the NC model in
examples/models/nc-deeplabv3plus (when that bundle is absent it trains a quick one from
examples/train/nc-model.yaml first), polygonizes the map into a GeoPackage and a Shapefile,
assesses it against the 1996 land-cover raster and writes demo-output/report.html. Run it again
and every current stage is skipped.
"""

from __future__ import annotations

import sys
from pathlib import Path

WORKFLOW = Path(__file__).resolve().parents[1] / "workflows" / "landcover.yaml"


def main() -> int:
    from geoseg.workflow import run

    res = run(WORKFLOW, progress=True)  # any distributed.Client: run(..., client=client)
    print(f"done in {res.seconds:.1f} s; ran: {', '.join(res.ran) or 'nothing (all current)'}")
    for name, path in res.products.items():
        print(f"  {name:<32} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
