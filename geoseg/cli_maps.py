"""``geoseg evaluate``, ``sample``, ``vectorize`` and ``change``: commands on class maps,
registered on the main app (see cli.py)."""

from __future__ import annotations

from pathlib import Path

import typer

from geoseg.cli import _fail, app, out
from geoseg.errors import GeoSegError


@app.command()
def evaluate(
    map_path: Path = typer.Argument(
        ..., help="Class map (a geoseg class COG, or any class raster with --classes)."
    ),
    reference: str = typer.Argument(
        ...,
        help="Reference: a class raster, or polygons or "
        "points with a class field (GeoPackage, Shapefile, ...).",
    ),
    out_dir: Path = typer.Option(
        ..., "--out", "-o", help="Folder for report.json, CSV tables and PNG plots."
    ),
    classes: Path = typer.Option(None, help="classes.json, if the map has no CLASSES tag."),
    field: str = typer.Option(None, help="Class field of a vector reference (ids or names)."),
    layer: str = typer.Option(None, help="Layer of a vector reference."),
    class_map: list[str] = typer.Option(
        None,
        "--class-map",
        help="REF=MAP: reference id REF is map class MAP (MAP 0: leave it out); repeatable.",
    ),
    design: str = typer.Option(
        "auto",
        help="Points: auto (Olofsson stratified estimators "
        "for a 'geoseg sample' set), stratified, or none.",
    ),
    block: int = typer.Option(2048, help="Block size in pixels; one Dask task per block."),
    workers: int = typer.Option(None, help="Local worker processes (default: one per core)."),
    scheduler: str = typer.Option(None, help="Use an existing Dask scheduler, tcp://HOST:PORT."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing report."),
):
    """Accuracy of a class map against reference data: report.json, CSV tables, plots."""
    from geoseg.evaluate import evaluate as run
    from geoseg.evaluate import parse_class_map

    try:
        rep = run(
            map_path,
            reference,
            out_dir,
            classes=classes,
            field=field,
            layer=layer,
            class_map=parse_class_map(class_map),
            design=design,
            block=block,
            workers=workers,
            scheduler=scheduler,
            overwrite=overwrite,
        )
    except (GeoSegError, Exception) as e:  # noqa: BLE001 - one line for the user
        _fail(e)
        return
    o, s = rep["overall"], rep["stratified"]
    out.print(
        f"overall accuracy {o['overall_accuracy']:.3f} over {rep['compared']:,} "
        f"{rep['unit']} (quantity / allocation disagreement "
        f"{o['quantity_disagreement']:.3f} / {o['allocation_disagreement']:.3f})"
    )
    if s:
        oa = s["overall_accuracy"]
        ci = f" ± {oa['ci95']:.3f} (95 % CI)" if oa["ci95"] is not None else ""
        out.print(f"area-weighted overall accuracy {oa['estimate']:.3f}{ci}")
    for note in rep["notes"]:
        out.print(f"[yellow]note:[/] {note}", highlight=False)
    out.print(f"[green]wrote[/] {rep['files']['report_json']} (+ CSV tables and plots)")


@app.command()
def sample(
    map_path: Path = typer.Argument(..., help="Class map to sample; its classes are strata."),
    out_path: Path = typer.Option(..., "--out", "-o", help="Points to write (.gpkg)."),
    n: int = typer.Option(
        None,
        "--n",
        help="Total points (default: from --target-se and "
        "--expected-ua, Olofsson et al. 2014 eq. 13).",
    ),
    min_per_class: int = typer.Option(50, help="Minimum points per mapped class."),
    seed: int = typer.Option(0, help="Random seed (same map, block and seed: same points)."),
    expected_ua: float = typer.Option(0.8, help="Expected user's accuracy, for the default n."),
    target_se: float = typer.Option(
        0.01, help="Target standard error of overall accuracy, for the default n."
    ),
    classes: Path = typer.Option(None, help="classes.json, if the map has no CLASSES tag."),
    block: int = typer.Option(2048, help="Block size in pixels; one Dask task per block."),
    workers: int = typer.Option(None, help="Local worker processes (default: one per core)."),
    scheduler: str = typer.Option(None, help="Use an existing Dask scheduler, tcp://HOST:PORT."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing file."),
):
    """Stratified random sample of a class map (points for the analyst to label)."""
    from geoseg.sample import sample as run

    try:
        res = run(
            map_path,
            out_path,
            n=n,
            min_per_class=min_per_class,
            seed=seed,
            expected_ua=expected_ua,
            target_se=target_se,
            classes=classes,
            block=block,
            workers=workers,
            scheduler=scheduler,
            overwrite=overwrite,
        )
    except (GeoSegError, Exception) as e:  # noqa: BLE001 - one line for the user
        _fail(e)
        return
    per = ", ".join(f"{k}: {v}" for k, v in res.allocation.items())
    out.print(
        f"[green]wrote[/] {res.path} ({res.n} points; per class {per}); fill in "
        "ref_class, then run 'geoseg evaluate MAP POINTS'"
    )


@app.command()
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
    mmu: float = typer.Option(
        0.0,
        "--mmu",
        help="Minimum mapping unit in hectares: smaller regions join their neighbours.",
    ),
    simplify: float = typer.Option(
        0.0, help="Simplification tolerance in metres (shared edges stay shared)."
    ),
    connectivity: int = typer.Option(4, help="Pixel connectivity of a polygon: 4 or 8."),
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
    block: int = typer.Option(
        None, help="Largest block side in pixels (default 5000); one Dask task per block."
    ),
    workers: int = typer.Option(None, help="Local worker processes (default: one per core)."),
    scheduler: str = typer.Option(None, help="Use an existing Dask scheduler, tcp://HOST:PORT."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
):
    """Polygonize a class raster into a GIS layer, block by block, seams merged."""
    import time

    from geoseg.vectorize import DEFAULT_BLOCK
    from geoseg.vectorize import vectorize as run

    try:
        if any("=" not in a for a in attr or []):
            raise GeoSegError("--attr takes KEY=VALUE, e.g. --attr date=2015-08-18")
        attrs = dict(a.split("=", 1) for a in attr or [])
        t0 = time.perf_counter()
        path = run(
            classes,
            out_path,
            fmt=fmt,
            mmu_ha=mmu,
            simplify=simplify,
            connectivity=connectivity,
            probabilities=confidence,
            workers=workers,
            scheduler=scheduler,
            block=block or DEFAULT_BLOCK,
            attrs=attrs,
            overwrite=overwrite,
        )
    except (GeoSegError, Exception) as e:  # noqa: BLE001 - one line for the user
        _fail(e)
        return
    out.print(f"[green]wrote[/] {path} ({time.perf_counter() - t0:.1f} s)")


@app.command("change")
def change_cmd(
    before: str = typer.Option(
        ...,
        "--before",
        help="Earlier date: a class raster (its "
        "_probabilities.tif beside it is used), or a scene with --model.",
    ),
    after: str = typer.Option(..., "--after", help="Later date, likewise."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Folder for the change outputs."),
    model: str = typer.Option(None, "--model", "-m", help="Bundle: predict both scenes first."),
    threshold: float = typer.Option(
        0.7,
        help="Confidence gate: a change needs both dates' "
        "largest class probability >= this; else 'uncertain'.",
    ),
    mmu: float = typer.Option(
        0.0, "--mmu", help="Minimum mapping unit of the change polygons, hectares."
    ),
    grid: str = typer.Option(None, help="Output grid: before (default), after, or a raster."),
    before_probabilities: str = typer.Option(
        None, help="Probability raster of the earlier date (default: <stem>_probabilities.tif)."
    ),
    after_probabilities: str = typer.Option(None, help="Probability raster of the later date."),
    classes: Path = typer.Option(
        None, help="classes.json, for class rasters without a CLASSES tag."
    ),
    date_before: str = typer.Option(None, help="YYYY-MM-DD (default: from the file name)."),
    date_after: str = typer.Option(None, help="YYYY-MM-DD (default: from the file name)."),
    reference: str = typer.Option(
        None,
        help="Reference change to assess against: a raster "
        "or points of 0/1 change or from-to codes.",
    ),
    reference_field: str = typer.Option(None, help="Field of the reference points."),
    design: str = typer.Option("auto", help="Reference points: auto, stratified or none."),
    block: int = typer.Option(2048, help="Block size in pixels; one Dask task per block."),
    workers: int = typer.Option(None, help="Local worker processes (default: one per core)."),
    scheduler: str = typer.Option(None, help="Use an existing Dask scheduler, tcp://HOST:PORT."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
):
    """Land-cover change between two dates: from-to raster, change mask, transition table,
    change polygons (code = from_id * 100 + to_id)."""
    from geoseg.change import change as run

    try:
        res = run(
            before,
            after,
            out_dir,
            model=model,
            threshold=threshold,
            mmu_ha=mmu,
            grid=grid,
            before_probabilities=before_probabilities,
            after_probabilities=after_probabilities,
            classes=classes,
            dates=(date_before, date_after),
            reference=reference,
            reference_field=reference_field,
            design=design,
            block=block,
            workers=workers,
            scheduler=scheduler,
            overwrite=overwrite,
        )
    except (GeoSegError, Exception) as e:  # noqa: BLE001 - one line for the user
        _fail(e)
        return
    r = res.report
    a, gate = r["area_ha"], r["gate"]
    gated = (
        f"; {a['uncertain']:,.2f} ha uncertain (below the {gate['threshold']} gate)"
        if gate["applied"]
        else "; no confidence gate (no probabilities)"
    )
    out.print(
        f"changed {a['changed']:,.2f} ha of {a['compared']:,.2f} ha{gated}; "
        f"{r['polygons']['polygons']} change polygons ({res.seconds:.1f} s)"
    )
    for note in r["notes"]:
        out.print(f"[yellow]note:[/] {note}", highlight=False)
    out.print(f"[green]wrote[/] {res.outputs['report_json']} (+ rasters, polygons, tables)")
