"""``geoseg predict``: a scene to a class COG on the cluster."""

from __future__ import annotations

import typer

from geoseg.cli.common import fail, out
from geoseg.errors import GeoSegError


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
    assets: str = typer.Option(
        None,
        "--assets",
        help="With a STAC Item as the scene: the assets to stack as bands, in order "
        "(e.g. red,green,blue,nir).",
    ),
    date: str = typer.Option(
        None, help="Acquisition date YYYY-MM-DD to record (default: from the scene or Item)."
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
    precision: str = typer.Option(
        "auto",
        help="Model arithmetic: auto (bf16 on GPUs and on CPUs with AMX or AVX-512 BF16, "
        "else fp32), fp32, bf16 or fp16 (GPUs).",
    ),
    runtime: str = typer.Option(
        "auto",
        help="Model runtime: auto (OpenVINO on CPUs where installed, else torch), torch or "
        "openvino (CPU; converted once and cached under ~/.cache/geoseg/openvino).",
    ),
    normalize: str = typer.Option(
        "auto",
        help="Band radiometry: auto (bundle where the scene's band quantiles are near the "
        "training ones, else scene; says which and why), bundle (the training mean/std as "
        "they are), scene (the scene's "
        "robust band statistics moved onto the training ones: another date or sensor) or "
        "match (band quantiles matched to the training quantiles).",
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
            normalize=normalize,
            precision=precision,
            runtime=runtime,
            progress=True,
            assets=[a.strip() for a in assets.split(",") if a.strip()] if assets else None,
            date=date,
        )
    except (GeoSegError, Exception, KeyboardInterrupt) as e:  # noqa: BLE001 - one line for the user
        fail(e)
        return
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
