"""``geoseg evaluate`` and ``geoseg sample``: accuracy of a class map."""

from __future__ import annotations

from pathlib import Path

import typer

from geoseg.accuracy.options import EvaluateOptions
from geoseg.cli.common import (
    CLASS_MAP,
    OLD_FIELD,
    OLD_LAYER,
    REFERENCE,
    REFERENCE_FIELD,
    REFERENCE_LAYER,
    SCHEDULER_HELP,
    list_option,
    one_line_errors,
    out,
    reference_options,
    renamed,
)
from geoseg.cli.options import with_options
from geoseg.cli.single import check_report_free, single_report


@with_options(EvaluateOptions)
def evaluate(
    map_path: Path = typer.Argument(
        ..., help="Class map (a geoseg class COG, or any class raster with --classes)."
    ),
    old_reference: str = typer.Argument(None, hidden=True, metavar="[REFERENCE]"),
    reference: str = REFERENCE,
    out_dir: Path = typer.Option(
        ..., "--out", "-o", help="Folder for report.json, CSV tables and PNG plots."
    ),
    classes: Path = typer.Option(None, help="classes.json, if the map has no CLASSES tag."),
    reference_field: str = REFERENCE_FIELD,
    reference_layer: str = REFERENCE_LAYER,
    field: str = OLD_FIELD,
    layer: str = OLD_LAYER,
    class_map: list[str] = CLASS_MAP,
    workers: int = typer.Option(None, help="Local worker processes (default: one per core)."),
    scheduler: str = typer.Option(None, help=SCHEDULER_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing report."),
    instances: bool = typer.Option(
        False,
        "--instances",
        help="Also panoptic quality (PQ, SQ, RQ), F1 at IoU 0.5 and counts of the thing "
        "classes' instances, against the reference raster's connected components.",
    ),
    things: list[str] = list_option(
        "--things", "With --instances: the countable classes (names or ids)."
    ),
    min_pixels: int = typer.Option(
        1, "--min-pixels", min=1, help="With --instances: the map's smallest instance in pixels."
    ),
    border_threshold: float = typer.Option(
        0.5,
        "--border-threshold",
        min=0.0,
        max=1.0,
        help="With --instances: the border probability from which a pixel separates the "
        "map's objects (where <map>_boundary.tif is beside it); depends on the bundle.",
    ),
    reference_min_pixels: int = typer.Option(
        1,
        "--reference-min-pixels",
        min=1,
        help="With --instances: the reference's smallest instance in pixels; smaller "
        "components (label speckle) are void: neither to find nor false positives.",
    ),
    html: bool = typer.Option(
        False,
        "--report",
        help="Also write report.html: the map, the accuracy tables and plots in one page.",
    ),
    opts: EvaluateOptions = None,
):
    """Accuracy of a class map against reference data: report.json, CSV tables, plots."""
    from geoseg.accuracy.evaluate import evaluate as run
    from geoseg.accuracy.evaluate import parse_class_map

    with one_line_errors():
        if html:
            check_report_free(out_dir, overwrite)
        reference, field, layer = reference_options(
            reference,
            reference_field,
            reference_layer,
            old_reference=old_reference,
            old_field=field,
            old_layer=layer,
        )
        rep = run(
            map_path,
            reference,
            out_dir,
            opts,
            classes=classes,
            field=field,
            layer=layer,
            class_map=parse_class_map(class_map),
            workers=workers,
            scheduler=scheduler,
            overwrite=overwrite,
        )
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
    if html:
        inputs = {"map": map_path, "reference": reference}
        files = {k.replace("_", " "): v for k, v in rep["files"].items()}
        title = f"Accuracy of {Path(map_path).name}"
        page = single_report(
            out_dir, title, inputs, files, predict={"path": str(map_path)}, evaluate=rep
        )
        out.print(f"[green]wrote[/] {page}")
    if instances:
        sizes = (min_pixels, reference_min_pixels, border_threshold)
        _instances(
            map_path, reference, out_dir, classes, things, sizes, opts.block, workers, scheduler
        )


def _instances(map_path, reference, out_dir, classes, things, sizes, block, workers, scheduler):
    from geoseg.instances.evaluate import evaluate_instances

    with one_line_errors():
        rep = evaluate_instances(
            map_path,
            reference,
            out_dir,
            classes=classes,
            things=things or None,
            min_pixels=sizes[0],
            reference_min_pixels=sizes[1],
            border_threshold=sizes[2],
            block=block,
            workers=workers,
            scheduler=scheduler,
            overwrite=True,  # the accuracy report above already answered for the folder
        )
    for name, v in rep["things"].items():
        out.print(
            f"{name}: PQ {v['pq']:.3f} (SQ {v['sq']:.3f} x RQ {v['rq']:.3f}), F1@0.5 "
            f"{v['f1']:.3f}, {v['count']} instances for {v['reference']} in the reference",
            highlight=False,
        )
    out.print(f"[green]wrote[/] {rep['files']['json']} (+ instances.csv)")


def sample(
    map_path: Path = typer.Argument(..., help="Class map to sample; its classes are strata."),
    out_path: Path = typer.Option(..., "--out", "-o", help="Points to write (.gpkg)."),
    points: int = typer.Option(
        None,
        "--points",
        help="Total points (default: from --target-se and "
        "--expected-ua, Olofsson et al. 2014 eq. 13).",
    ),
    old_n: int = typer.Option(None, "--n", hidden=True),
    min_per_class: int = typer.Option(50, help="Minimum points per mapped class."),
    seed: int = typer.Option(0, help="Random seed (same map, block and seed: same points)."),
    expected_ua: float = typer.Option(
        0.8, help="Expected user's accuracy, for the default --points."
    ),
    target_se: float = typer.Option(
        0.01, help="Target standard error of overall accuracy, for the default --points."
    ),
    classes: Path = typer.Option(None, help="classes.json, if the map has no CLASSES tag."),
    block: int = typer.Option(2048, help="Block size in pixels; one Dask task per block."),
    workers: int = typer.Option(None, help="Local worker processes (default: one per core)."),
    scheduler: str = typer.Option(None, help=SCHEDULER_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing file."),
):
    """Stratified random sample of a class map (points for the analyst to label)."""
    from geoseg.accuracy.sample import sample as run

    with one_line_errors():
        n = renamed(points, old_n, "--points", "--n")
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
    per = ", ".join(f"{k}: {v}" for k, v in res.allocation.items())
    out.print(
        f"[green]wrote[/] {res.path} ({res.n} points; per class {per}); fill in "
        "ref_class, then run 'geoseg evaluate MAP --reference POINTS'"
    )
