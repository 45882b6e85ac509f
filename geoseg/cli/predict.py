"""``geoseg predict``: a scene to a class COG on the cluster."""

from __future__ import annotations

from pathlib import Path

import typer

from geoseg.cli.common import SCHEDULER_HELP, list_option, one_line_errors, out
from geoseg.cli.options import with_options
from geoseg.cli.single import check_report_free, single_report
from geoseg.engine.options import PredictOptions


@with_options(PredictOptions)
def predict(
    scene: list[str] = typer.Argument(
        ...,
        help="Raster to predict, single-band files to stack in order, or a STAC Item (.json "
        "file or URL) with --assets.",
    ),
    model: str = typer.Option(..., "--model", "-m", help="Model bundle directory."),
    out_path: str = typer.Option(
        ...,
        "--out",
        "-o",
        help="Output class COG (.tif), a Zarr store (.zarr, written by the block tasks in "
        "parallel), or an s3:// or /vsis3/ URL (written locally, then uploaded).",
    ),
    assets: list[str] = list_option(
        "--assets",
        "With a STAC Item as the scene: the assets to stack as bands, in order "
        "(e.g. red,green,blue,nir).",
        "ASSET,...",
    ),
    date: str = typer.Option(
        None, help="Acquisition date YYYY-MM-DD to record (default: from the scene or Item)."
    ),
    workers: int = typer.Option(None, help="Local worker processes (default: one per core)."),
    scheduler: str = typer.Option(None, help=SCHEDULER_HELP),
    gpus: bool = typer.Option(False, "--gpus", help="One dask-cuda worker per GPU."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    staging: str = typer.Option(None, help="Staging folder (default: beside the output)."),
    keep_staging: bool = typer.Option(False, help="Keep staged blocks after success."),
    no_space_check: bool = typer.Option(
        False,
        "--no-space-check",
        help="Start even where the staging or output folder looks short of free space.",
    ),
    html: bool = typer.Option(
        False,
        "--report",
        help="Also write <map>_report.html beside the map: the map over the scene in an "
        "interactive view, the prediction's figures and products, in one page.",
    ),
    opts: PredictOptions = None,
):
    """Predict a scene into a georeferenced class COG (with palette, class names, .qml)."""
    from geoseg.engine.predict import predict as run
    from geoseg.errors import GeoSegError

    page_name = f"{Path(out_path).stem}_report.html"
    with one_line_errors():
        if html:
            if "://" in out_path or out_path.startswith("/vsi") or out_path.endswith(".zarr"):
                raise GeoSegError(
                    "--report needs a local .tif output: predict to a file, then run "
                    "`geoseg evaluate --report` or a workflow on it"
                )
            check_report_free(Path(out_path).parent, overwrite, page_name)
        res = run(
            scene if len(scene) > 1 else scene[0],
            model,
            out_path,
            opts,
            workers=workers,
            scheduler=scheduler,
            gpus=gpus,
            overwrite=overwrite,
            staging=staging,
            keep_staging=keep_staging,
            progress=True,
            assets=assets,
            date=date,
            space_check=not no_space_check,
        )
    out.print(
        f"[green]wrote[/] {res.path}  ({res.megapixels:.1f} Mpx in {res.seconds:.1f} s, "
        f"{res.mpx_per_s:.2f} Mpx/s, {res.runtime}; {res.tiles} tiles, "
        f"{res.tiles_skipped} all-nodata skipped; {res.blocks_reused}/{res.blocks} blocks reused)"
    )
    for k, v in res.outputs.items():
        if k != "classes":
            out.print(f"[green]wrote[/] {v}")
    if res.normalize_reason:  # --normalize auto: what it chose and why, last
        out.print(f"normalize auto: {res.normalize} ({res.normalize_reason})", highlight=False)
    if html:
        figures = res.figures(scene[0] if len(scene) == 1 and not assets else None)
        inputs = {"scene": ", ".join(scene), "model": model}
        title = f"Prediction of {Path(str(res.path)).name}"
        page = single_report(
            Path(str(res.path)).parent, title, inputs, res.outputs, page_name, predict=figures
        )
        if page:
            out.print(f"[green]wrote[/] {page}")
