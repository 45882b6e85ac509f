"""The ``geoseg`` command line: a thin layer over the Python API."""

from __future__ import annotations

import json
import logging
import sys
import warnings
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from geoseg.errors import GeoSegError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Land-cover maps from large scenes on a Dask cluster.",
)
bundle_app = typer.Typer(no_args_is_help=True, help="Create and inspect model bundles.")
app.add_typer(bundle_app, name="bundle")
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)
_state = {"debug": False}


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors.")):
    _state["debug"] = debug
    logging.basicConfig(
        level=logging.INFO if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    warnings.showwarning = _show_warning
    if not debug:
        # distributed sets its loggers to INFO on import; after basicConfig their cluster
        # start/stop lines would reach the root handler: only with --debug
        import distributed  # noqa: F401

        logging.getLogger("distributed").setLevel(logging.WARNING)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    err.print(f"[yellow]warning:[/] {escape(str(message))}")


def _fail(e: BaseException) -> None:
    if _state["debug"]:
        raise e
    if isinstance(e, GeoSegError):
        msg = str(e)
    else:
        first = str(e).splitlines()[0] if str(e) else ""
        msg = f"{type(e).__name__}: {first} (run with --debug for the traceback)"
    err.print(f"[red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)  # [..] is text
    raise typer.Exit(2)


@app.command()
def predict(
    scene: list[str] = typer.Argument(
        ..., help="Raster to predict, or single-band files to stack in order."
    ),
    model: str = typer.Option(..., "--model", "-m", help="Model bundle directory."),
    out_path: str = typer.Option(
        ...,
        "--out",
        "-o",
        help="Output class COG (.tif), or an "
        "s3:// or /vsis3/ URL (written locally, then uploaded).",
    ),
    block: int = typer.Option(
        2048,
        help="Output block size in pixels (rounded to a whole "
        "number of tile strides); one Dask task per block.",
    ),
    tile: int = typer.Option(None, help="Tile size (default: the bundle's)."),
    overlap: int = typer.Option(None, help="Tile overlap (default: the bundle's)."),
    workers: int = typer.Option(None, help="Local worker processes (default: one per core)."),
    scheduler: str = typer.Option(None, help="Use an existing Dask scheduler, tcp://HOST:PORT."),
    gpus: bool = typer.Option(False, "--gpus", help="One dask-cuda worker per GPU."),
    probabilities: bool = typer.Option(
        False, "--probabilities", help="Also write per-class probability and confidence COGs."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    staging: str = typer.Option(None, help="Staging folder (default: beside the output)."),
    keep_staging: bool = typer.Option(False, help="Keep staged blocks after success."),
    batch_size: int = typer.Option(
        None, help="Tiles per model call (default: 1 on CPU, 16 on GPU)."
    ),
    torch_threads: int = typer.Option(
        1, help="Model threads per CPU worker (1 keeps results bit-identical for any worker count)."
    ),
    tta: str = typer.Option(
        "none",
        help="Test-time augmentation: none, flips (4 views, 4x the model time) or d4 (8 views).",
    ),
):
    """Predict a scene into a georeferenced class COG (with palette, class names, .qml)."""
    from geoseg.engine.predict import predict as run

    try:
        res = run(
            scene if len(scene) > 1 else scene[0],
            model,
            out_path,
            block=block,
            tile=tile,
            overlap=overlap,
            workers=workers,
            scheduler=scheduler,
            gpus=gpus,
            probabilities=probabilities,
            overwrite=overwrite,
            staging=staging,
            keep_staging=keep_staging,
            batch_size=batch_size,
            torch_threads=torch_threads,
            tta=tta,
            progress=True,
        )
    except (GeoSegError, Exception) as e:  # noqa: BLE001 - one line for the user
        _fail(e)
        return
    out.print(
        f"[green]wrote[/] {res.path}  ({res.megapixels:.1f} Mpx in {res.seconds:.1f} s, "
        f"{res.mpx_per_s:.2f} Mpx/s; {res.tiles} tiles, {res.tiles_skipped} all-nodata "
        f"skipped; {res.blocks_reused}/{res.blocks} blocks reused)"
    )
    for k, v in res.outputs.items():
        if k != "classes":
            out.print(f"[green]wrote[/] {v}")


@bundle_app.command("create")
def bundle_create(
    out_dir: Path = typer.Option(..., "--out", "-o", help="Bundle directory to write."),
    classes: Path = typer.Option(..., help="classes.json: [{id, name, color}]."),
    bands: int = typer.Option(..., help="Number of input bands (bands 1..N of the scene)."),
    arch: str = typer.Option("deeplabv3plus", help="deeplabv3plus, unet, fpn, pspnet, ..."),
    encoder: str = typer.Option("resnet34", help="smp encoder name."),
    state_dict: Path = typer.Option(None, help="Weights: .safetensors or an smp state_dict."),
    stats_from: str = typer.Option(None, help="Compute band mean/std from this raster."),
    tile: int = typer.Option(512),
    overlap: int = typer.Option(64),
    name: str = typer.Option("geoseg-model"),
    seed: int = typer.Option(0),
):
    """Make a bundle with fresh (untrained) weights, or from a state_dict file."""
    from geoseg.model.bundle import create_bundle

    try:
        mean = std = None
        if stats_from:
            from geoseg.io.stats import band_stats

            mean, std = band_stats(stats_from, list(range(1, bands + 1)))
        meta = create_bundle(
            out_dir,
            classes=classes,
            bands=bands,
            architecture=arch,
            encoder=encoder,
            state_dict=state_dict,
            mean=mean,
            std=std,
            tile=tile,
            overlap=overlap,
            name=name,
            seed=seed,
        )
    except (GeoSegError, Exception) as e:  # noqa: BLE001
        _fail(e)
        return
    out.print(
        f"[green]wrote[/] {out_dir} ({meta.architecture}/{meta.encoder}, "
        f"{meta.in_channels} bands, {meta.n_classes} classes"
        f"{'' if state_dict else ', untrained weights'})"
    )


@bundle_app.command("info")
def bundle_info(path: Path = typer.Argument(..., help="Bundle directory.")):
    """Print a bundle's metadata."""
    from geoseg.model.bundle import describe, read_meta

    try:
        out.print_json(json.dumps(describe(read_meta(path))))
    except GeoSegError as e:
        _fail(e)


@app.command("train")
def train_cmd(
    config: Path = typer.Argument(..., help="Training config (YAML), see examples/train/."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue an interrupted run from its last checkpoint."
    ),
):
    """Train a land-cover model from scenes and labels into a model bundle."""
    from geoseg.model.train import train as run

    try:
        res = run(config, resume=resume, progress=True)
    except (GeoSegError, Exception) as e:  # noqa: BLE001 - one line for the user
        _fail(e)
        return
    out.print(
        f"[green]wrote[/] {res.bundle} (best epoch {res.best_epoch}/{res.epochs_run}, "
        f"validation mIoU {res.best_miou:.3f}"
        f"{', stopped early' if res.stopped_early else ''}; {res.seconds:.0f} s)"
    )
    out.print(f"[green]wrote[/] {res.history_csv}\n[green]wrote[/] {res.curves_png}")


# Commands kept in their own modules register on `app` when imported (after the helpers above).
from geoseg import cli_baseline, cli_maps, cli_run  # noqa: E402,F401,I001


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
