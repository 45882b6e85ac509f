"""``geoseg train``: scenes and labels to a model bundle."""

from __future__ import annotations

from pathlib import Path

import typer

from geoseg.cli.common import fail, out
from geoseg.errors import GeoSegError


def train_cmd(
    config: Path = typer.Argument(..., help="Training config (YAML), see examples/train/."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue an interrupted run from its last checkpoint."
    ),
    precision: str = typer.Option(
        None,
        help="auto (bf16 on GPUs and on CPUs with AMX or AVX-512 BF16, else fp32), fp32 or "
        "bf16 (default: the config's training.precision).",
    ),
):
    """Train a land-cover model from scenes and labels into a model bundle."""
    from geoseg.train.train import train as run

    try:
        res = run(config, resume=resume, progress=True, precision=precision)
    except (GeoSegError, Exception, KeyboardInterrupt) as e:  # noqa: BLE001 - one line for the user
        fail(e)
        return
    out.print(
        f"[green]wrote[/] {res.bundle} (best epoch {res.best_epoch}/{res.epochs_run}, "
        f"validation mIoU {res.best_miou:.3f}"
        f"{', stopped early' if res.stopped_early else ''}; {res.seconds:.0f} s)"
    )
    out.print(f"[green]wrote[/] {res.history_csv}\n[green]wrote[/] {res.curves_png}")
