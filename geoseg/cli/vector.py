"""``geoseg vectorize``: a class raster to polygons."""

from __future__ import annotations

from pathlib import Path

import typer

from geoseg.cli.common import SCHEDULER_HELP, one_line_errors, out
from geoseg.cli.options import with_options
from geoseg.errors import GeoSegError
from geoseg.vector.options import VectorizeOptions


@with_options(VectorizeOptions)
def vectorize(
    classes: Path = typer.Argument(..., help="Class raster (geoseg's class COG)."),
    out_path: str = typer.Option(
        ..., "--out", "-o", help="Output layer (.gpkg by default), or an s3:// or /vsis3/ URL."
    ),
    fmt: str = typer.Option(
        None,
        "--format",
        "-f",
        help="gpkg, shp, parquet, fgb or geojson (default: from the --out suffix, else gpkg).",
    ),
    confidence: Path = typer.Option(
        None,
        help="Confidence raster for a mean 'confidence' "
        "attribute (default: <stem>_confidence.tif if present).",
    ),
    attr: list[str] = typer.Option(
        None,
        "--attr",
        help="KEY=VALUE attribute for every polygon (overrides source, date, model, model_ver).",
    ),
    date: str = typer.Option(
        None,
        help="Acquisition date YYYY-MM-DD for the 'date' attribute (default: from the map's "
        "tags, its scene's metadata or a file name; empty when unknown).",
    ),
    workers: int = typer.Option(None, help="Local worker processes (default: one per core)."),
    scheduler: str = typer.Option(None, help=SCHEDULER_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
    opts: VectorizeOptions = None,
):
    """Polygonize a class raster into a GIS layer, block by block, seams merged."""
    import time

    from geoseg.vector.vectorize import vectorize as run

    with one_line_errors():
        if any("=" not in a for a in attr or []):
            raise GeoSegError("--attr takes KEY=VALUE, e.g. --attr date=2015-08-18")
        attrs = dict(a.split("=", 1) for a in attr or [])
        if date:
            from geoseg.io.dates import check_date

            attrs.setdefault("date", check_date(date))
        t0 = time.perf_counter()
        path = run(
            classes,
            out_path,
            opts,
            fmt=fmt,
            probabilities=confidence,
            workers=workers,
            scheduler=scheduler,
            attrs=attrs,
            overwrite=overwrite,
        )
    out.print(f"[green]wrote[/] {path} ({time.perf_counter() - t0:.1f} s)")
