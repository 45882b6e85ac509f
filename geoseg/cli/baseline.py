"""``geoseg baseline obia|pixel-rf|otsu|heldout``: the traditional baselines."""

from __future__ import annotations

from pathlib import Path

import typer

from geoseg.cli.common import SCHEDULER_HELP, WORKERS_HELP, fail, one_line_errors, out
from geoseg.errors import GeoSegError

baseline_app = typer.Typer(
    no_args_is_help=True,
    help="Traditional baselines: object-based (OBIA), pixel random forest, Otsu threshold.",
)

CONFIG_HELP = (
    "Baseline config (YAML, see examples/baseline/), or a training config (baseline defaults)."
)
OUT_HELP = "A .tif for one mapped scene, else a folder (default: <output>/<method> of the config)."


def _print(res) -> None:
    for p in res.map_paths:
        out.print(f"[green]wrote[/] {p}")
    out.print(f"[green]wrote[/] {res.report_path} ({res.seconds:.1f} s)")


@baseline_app.command("obia")
def obia_cmd(
    config: Path = typer.Argument(..., help=CONFIG_HELP),
    out_path: Path = typer.Option(None, "--out", "-o", help=OUT_HELP),
    workers: int = typer.Option(None, help=WORKERS_HELP),
    scheduler: str = typer.Option(None, help=SCHEDULER_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
):
    """Object-based baseline: segment, describe objects, random forest; the training config's
    labels and split."""
    from geoseg.baseline.obia import run_obia

    with one_line_errors():
        res = run_obia(config, out_path, workers=workers, scheduler=scheduler, overwrite=overwrite)
    o = res.report["objects"]
    ceiling = res.report["segmentation_ceiling"]["oa"]
    out.print(
        f"{o['mapped']:,} objects (mean {o['mean_size_px']:.0f} px), trained on "
        f"{o['training']:,} objects"
        + (
            f"; segmentation ceiling on held-out labels: OA {ceiling:.3f}"
            if ceiling is not None
            else ""
        )
    )
    _print(res)


@baseline_app.command("pixel-rf")
def pixel_rf_cmd(
    config: Path = typer.Argument(..., help=CONFIG_HELP),
    out_path: Path = typer.Option(None, "--out", "-o", help=OUT_HELP),
    workers: int = typer.Option(None, help=WORKERS_HELP),
    scheduler: str = typer.Option(None, help=SCHEDULER_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
):
    """Pixel-based random forest on band values (and NDVI / NDWI); same labels and split."""
    from geoseg.baseline.pixel import run_pixel_rf

    try:
        res = run_pixel_rf(
            config, out_path, workers=workers, scheduler=scheduler, overwrite=overwrite
        )
    except (GeoSegError, Exception, KeyboardInterrupt) as e:  # noqa: BLE001
        fail(e)
        return
    out.print(f"trained on {res.report['training_pixels']['total']:,} pixels")
    _print(res)


@baseline_app.command("otsu")
def otsu_cmd(
    scene: list[str] = typer.Argument(..., help="Raster, or single-band files to stack."),
    out_path: Path = typer.Option(..., "--out", "-o", help="Two-class COG (.tif)."),
    index: str = typer.Option("ndwi", help="ndwi (water) or ndvi (vegetation)."),
    bands: str = typer.Option(
        ...,
        help="Scene band numbers of the index's roles, e.g. "
        "green=2,nir=4 (ndwi) or red=3,nir=4 (ndvi).",
    ),
    threshold: float = typer.Option(None, help="A fixed threshold instead of Otsu's."),
    block: int = typer.Option(2048, help="Block size in pixels; one Dask task per block."),
    workers: int = typer.Option(None, help=WORKERS_HELP),
    scheduler: str = typer.Option(None, help=SCHEDULER_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
):
    """Water or vegetation by Otsu's threshold on NDWI or NDVI."""
    from geoseg.baseline.otsu import run_otsu

    try:
        res = run_otsu(
            scene if len(scene) > 1 else scene[0],
            out_path,
            index=index,
            bands=bands,
            threshold=threshold,
            block=block,
            workers=workers,
            scheduler=scheduler,
            overwrite=overwrite,
        )
    except (GeoSegError, Exception, KeyboardInterrupt) as e:  # noqa: BLE001
        fail(e)
        return
    r = res.report
    out.print(
        f"{index.upper()} threshold {r['threshold']:.4f}"
        f"{' (given)' if r['threshold_given'] else ' (Otsu)'}: "
        f"{r['target_fraction']:.1%} of valid pixels are {r['classes'][0]['name']}"
    )
    _print(res)


@baseline_app.command("heldout")
def heldout_cmd(
    config: Path = typer.Argument(..., help=CONFIG_HELP),
    out_path: Path = typer.Option(None, "--out", "-o", help=OUT_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
):
    """The held-out labels of the mapped scenes (where geoseg train did not train), as
    reference rasters for geoseg compare."""
    from geoseg.baseline.heldout import write_heldout_reference

    try:
        paths = write_heldout_reference(config, out_path, overwrite=overwrite)
    except (GeoSegError, Exception, KeyboardInterrupt) as e:  # noqa: BLE001
        fail(e)
        return
    for p in paths:
        out.print(f"[green]wrote[/] {p}")
