"""``geoseg bundle create|info``: make and inspect model bundles."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from geoseg.cli.common import fail, one_line_errors, out
from geoseg.errors import GeoSegError

bundle_app = typer.Typer(no_args_is_help=True, help="Create and inspect model bundles.")


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
    from geoseg.model.factory import create_bundle

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
    except (GeoSegError, Exception, KeyboardInterrupt) as e:  # noqa: BLE001
        fail(e)
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
        fail(e)


@bundle_app.command("stats")
def bundle_stats(
    path: Path = typer.Argument(..., help="Bundle directory."),
    scenes: list[str] = typer.Option(
        ...,
        "--from",
        help="Training scene(s) to take the band quantiles from: rasters, or single-band "
        "files stacked as one scene (as geoseg predict takes them); repeatable.",
    ),
):
    """Add the training band quantiles (and, from several scenes, how far they spread) that
    --normalize match and auto need to an older bundle (the weights and the mean/std the
    model was trained with stay as they are)."""
    from geoseg.io.scene import Scene
    from geoseg.io.stats import band_quantiles, spread_of
    from geoseg.model.bundle import Normalization, read_meta, set_normalization

    with one_line_errors():
        meta = read_meta(path)
        # single-band files for a several-band model are one stacked scene, as in predict
        single = all(Scene.of(s).info.count == 1 for s in scenes)
        groups = [scenes] if single and meta.in_channels > 1 else [[s] for s in scenes]
        opened = [Scene.of(g if len(g) > 1 else g[0]) for g in groups]
        for sc in opened:
            sc.check_bands(meta.bands)
        q = band_quantiles(opened, meta.bands)
        spread = spread_of(opened, meta.bands, q)
        norm = Normalization.model_validate(
            {**meta.normalization.model_dump(), "quantiles": q.tolist(), "spread": spread}
        )
        names = [[Path(p).name for p in sc.paths] for sc in opened]
        set_normalization(path, norm, quantiles_from=names)
    out.print(
        f"[green]wrote[/] {Path(path) / 'bundle.json'} (band quantiles of {len(opened)} "
        f"scene{'s' if len(opened) > 1 else ''}; weights unchanged)"
    )
