"""``geoseg change``: land-cover change between two dates."""

from __future__ import annotations

from pathlib import Path

import typer

from geoseg.change.options import ChangeOptions
from geoseg.cli.common import SCHEDULER_HELP, fail, out
from geoseg.cli.options import with_options
from geoseg.cli.single import check_report_free, single_report
from geoseg.errors import GeoSegError


@with_options(ChangeOptions)
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
        "--reference",
        "-r",
        help="Reference change to assess against: a raster "
        "or points of 0/1 change or from-to codes.",
    ),
    reference_field: str = typer.Option(None, help="Field of the reference points."),
    workers: int = typer.Option(None, help="Local worker processes (default: one per core)."),
    scheduler: str = typer.Option(None, help=SCHEDULER_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    html: bool = typer.Option(
        False,
        "--report",
        help="Also write report.html: the change tables, maps and caveats in one page.",
    ),
    opts: ChangeOptions = None,
):
    """Land-cover change between two dates: from-to raster, change mask, transition table,
    change polygons (code = from_id * 100 + to_id)."""
    import warnings

    from geoseg.change.change import change as run

    shown: list[str] = []  # advice already printed as a warning is not repeated as a note
    show = warnings.showwarning

    def remember(message, *args, **kwargs):
        shown.append(str(message))
        show(message, *args, **kwargs)

    warnings.showwarning = remember
    try:
        if html:
            check_report_free(out_dir, overwrite)
        res = run(
            before,
            after,
            out_dir,
            opts,
            model=model,
            before_probabilities=before_probabilities,
            after_probabilities=after_probabilities,
            classes=classes,
            dates=(date_before, date_after),
            reference=reference,
            reference_field=reference_field,
            workers=workers,
            scheduler=scheduler,
            overwrite=overwrite,
        )
    except (GeoSegError, Exception, KeyboardInterrupt) as e:  # noqa: BLE001 - one line for the user
        fail(e)
        return
    finally:
        warnings.showwarning = show
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
        if note not in shown:
            out.print(f"[yellow]note:[/] {note}", highlight=False)
    out.print(f"[green]wrote[/] {res.outputs['report_json']} (+ rasters, polygons, tables)")
    if html:
        inputs = {"before": before, "after": after, "model": model, "reference": reference}
        files = {k.replace("_", " "): v for k, v in res.outputs.items()}
        title = f"Change {Path(str(before)).name} → {Path(str(after)).name}"
        page = single_report(out_dir, title, inputs, files, change=r)
        out.print(f"[green]wrote[/] {page}")
