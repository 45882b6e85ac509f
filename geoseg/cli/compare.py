"""``geoseg compare``: maps side by side on one reference, McNemar per pair."""

from __future__ import annotations

from pathlib import Path

import typer

from geoseg.cli.common import (
    CLASS_MAP,
    OLD_FIELD,
    OLD_LAYER,
    REFERENCE,
    REFERENCE_FIELD,
    REFERENCE_LAYER,
    SCHEDULER_HELP,
    WORKERS_HELP,
    list_option,
    one_line_errors,
    out,
    reference_options,
)
from geoseg.cli.single import check_report_free, single_report


def _p(p: float) -> str:
    return "< 1e-300" if p == 0 else f"{p:.3g}"  # below the smallest double: underflow


def compare_cmd(
    maps: list[Path] = typer.Argument(..., help="Two or more class maps on one grid."),
    reference: str = REFERENCE,
    out_dir: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="Folder for compare.json, CSV tables, the chart and the disagreement maps.",
    ),
    names: list[str] = list_option("--names", "Names of the maps, in order (default: file names)."),
    classes: Path = typer.Option(None, help="classes.json, for maps without a CLASSES tag."),
    reference_field: str = REFERENCE_FIELD,
    reference_layer: str = REFERENCE_LAYER,
    field: str = OLD_FIELD,
    layer: str = OLD_LAYER,
    class_map: list[str] = CLASS_MAP,
    block: int = typer.Option(2048, help="Block size in pixels; one Dask task per block."),
    workers: int = typer.Option(None, help=WORKERS_HELP),
    scheduler: str = typer.Option(None, help=SCHEDULER_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    html: bool = typer.Option(
        False,
        "--report",
        help="Also write report.html: the maps, the tables, the chart and the notes in one page.",
    ),
):
    """Maps side by side on the same reference units: metrics, per-class differences,
    McNemar's test per pair, disagreement maps."""
    from geoseg.accuracy.evaluate import parse_class_map
    from geoseg.compare.compare import compare

    with one_line_errors():
        if html:
            check_report_free(out_dir, overwrite)
        reference, field, layer = reference_options(
            reference, reference_field, reference_layer, old_field=field, old_layer=layer
        )
        rep = compare(
            maps,
            reference,
            out_dir,
            names=names,
            classes=classes,
            field=field,
            layer=layer,
            class_map=parse_class_map(class_map),
            block=block,
            workers=workers,
            scheduler=scheduler,
            overwrite=overwrite,
        )
    for note in rep["notes"]:
        if note.startswith("map "):  # a map read on the first one's grid
            out.print(f"[yellow]note:[/] {note}", highlight=False)
    out.print(f"{rep['compared']:,} {rep['unit']} compared")
    for m in rep["per_map"]:
        out.print(f"  {m['name']}: OA {m['overall_accuracy']:.3f}, mIoU {m['mean_iou']:.3f}")
    for p in rep["pairs"]:
        t = p["mcnemar"]
        out.print(
            f"  {p['a']} vs {p['b']}: OA difference {p['oa_difference']:+.3f}, McNemar "
            f"z {t['z']:.2f}, p {_p(t['p'])} ({t['a_only']:,} vs {t['b_only']:,} "
            "discordant)"
        )
    out.print(
        f"[green]wrote[/] {rep['files']['compare_json']} (+ CSV tables, chart"
        f"{', disagreement maps' if rep['unit'] == 'pixels' else ''})"
    )
    if html:
        inputs = {f"map {i + 1}": str(m) for i, m in enumerate(maps)} | {"reference": reference}
        files = {k.replace("_", " "): v for k, v in rep["files"].items() if isinstance(v, str)}
        title = "Comparison of " + ", ".join(m["name"] for m in rep["per_map"])
        page = single_report(out_dir, title, inputs, files, compare=rep)
        if page:
            out.print(f"[green]wrote[/] {page}")
