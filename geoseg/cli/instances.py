"""``geoseg instances``: every object of a class map's thing classes with its own id."""

from __future__ import annotations

from pathlib import Path

import typer

from geoseg.cli.common import SCHEDULER_HELP, one_line_errors, out
from geoseg.cli.options import with_options
from geoseg.instances.options import InstanceOptions


@with_options(InstanceOptions)
def instances_cmd(
    classmap: Path = typer.Argument(..., help="Class raster (geoseg's class COG)."),
    out_path: Path = typer.Option(
        ..., "--out", "-o", help="Instance-id COG to write (uint32, 0 = no instance)."
    ),
    polygons: str = typer.Option(
        None,
        "--polygons",
        help="Also one polygon per instance (.gpkg, .shp, .parquet, .fgb or .geojson).",
    ),
    classes: Path = typer.Option(None, help="classes.json, if the map has no CLASSES tag."),
    workers: int = typer.Option(None, help="Local worker processes (default: one per core)."),
    scheduler: str = typer.Option(None, help=SCHEDULER_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    opts: InstanceOptions = None,
):
    """Label each object of the thing classes (buildings, trees...) over the whole scene:
    one id per object, objects cut by blocks made whole; counts per class."""
    from geoseg.instances.label import instances

    with one_line_errors():
        res = instances(
            classmap,
            out_path,
            opts,
            classes=classes,
            polygons=polygons,
            workers=workers,
            scheduler=scheduler,
            overwrite=overwrite,
        )
    counts = ", ".join(f"{n} {k}" for k, n in res.counts.items())
    out.print(f"[green]wrote[/] {res.path}  ({res.total} instances: {counts})", highlight=False)
    if res.polygons:
        out.print(f"[green]wrote[/] {res.polygons}")
    out.print(f"[green]wrote[/] {res.summary}")
