"""``geoseg adapt``: a bundle fitted to a new date or scene without labels."""

from __future__ import annotations

from pathlib import Path

import typer

from geoseg.cli.common import one_line_errors, out


def adapt_cmd(
    bundle: Path = typer.Argument(..., help="The model bundle to adapt."),
    scene: list[str] = typer.Option(
        ...,
        "--scene",
        help="The new date or scene: a raster, or single-band files stacked in order "
        "(repeat --scene).",
    ),
    out_dir: Path = typer.Option(..., "--out", help="The adapted bundle's directory."),
    threshold: float = typer.Option(
        0.9, help="Confidence a predicted pixel needs to become a pseudo-label."
    ),
    epochs: int = typer.Option(8, min=1, help="Fine-tuning epochs."),
    samples: int = typer.Option(512, min=8, help="Crops per epoch."),
    lr: float = typer.Option(2e-4, help="Fine-tuning learning rate (cosine schedule)."),
    normalize: str = typer.Option(
        "auto", help="The scene's band radiometry while pseudo-labelling: auto, bundle or scene."
    ),
    workers: int = typer.Option(None, help="Local workers for the prediction."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out."),
):
    """Fit a bundle to a new date or scene without labels: predict it on the cluster, keep
    the confident pixels as pseudo-labels, fine-tune on them (self-training)."""
    from geoseg.train.adapt import adapt

    with one_line_errors():
        res = adapt(
            bundle,
            scene if len(scene) > 1 else scene[0],
            out_dir,
            threshold=threshold,
            epochs=epochs,
            samples_per_epoch=samples,
            lr=lr,
            normalize=normalize,
            workers=workers,
            overwrite=overwrite,
            progress=True,
        )
    out.print(
        f"[green]wrote[/] {res['bundle']} (pseudo-labels on {res['pseudo_labelled_share']:.1%} "
        f"of the pixels at confidence >= {threshold}; validation mIoU on them "
        f"{res['best_val_miou']:.3f})"
    )
    out.print(
        f"normalize {normalize}: {res['normalize']} ({res['normalize_reason']})", highlight=False
    )
