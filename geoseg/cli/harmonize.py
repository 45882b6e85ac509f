"""``geoseg harmonize``: a later scene's bands fitted onto an earlier scene's radiometry."""

from __future__ import annotations

import typer

from geoseg.cli.common import SCHEDULER_HELP, WORKERS_HELP, one_line_errors, out


def harmonize_cmd(
    later: list[str] = typer.Argument(..., help="Later scene: a raster, or band files to stack."),
    to: list[str] = typer.Option(
        ..., "--to", help="Earlier scene to fit onto (repeat for band files)."
    ),
    out_path: str = typer.Option(..., "--out", "-o", help="Output float32 COG (.tif)."),
    block: int = typer.Option(2048, help="Block size in pixels; one Dask task per block."),
    workers: int = typer.Option(None, help=WORKERS_HELP),
    scheduler: str = typer.Option(None, help=SCHEDULER_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
):
    """Relative radiometric normalisation: one gain and offset per band from pseudo-invariant
    pixels over the common footprint, applied to the later scene block by block."""
    from geoseg.harmonize.harmonize import harmonize

    with one_line_errors():
        res = harmonize(
            later if len(later) > 1 else later[0],
            to if len(to) > 1 else to[0],
            out_path,
            block=block,
            workers=workers,
            scheduler=scheduler,
            overwrite=overwrite,
        )
    r = res.report
    fits = ", ".join(f"{b['gain']:.3f}x{b['offset']:+.2f}" for b in r["bands"])
    out.print(
        f"{r['pif_pixels']:,} pseudo-invariant pixels ({r['pif_fraction']:.0%} of "
        f"{r['sampled_pixels']:,} sampled, {r['iterations']} iterations); per band "
        f"gain x offset: {fits}"
    )
    out.print(f"[green]wrote[/] {res.path} ({res.seconds:.1f} s)")
