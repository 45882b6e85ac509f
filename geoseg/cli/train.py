"""``geoseg train``: scenes and labels to a model bundle."""

from __future__ import annotations

from pathlib import Path

import typer

from geoseg.cli.common import one_line_errors, out


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
    out_dir: Path = typer.Option(
        None, "--out", "-o", help="The bundle folder (default: the config's 'output')."
    ),
    sets: list[str] = typer.Option(
        None,
        "--set",
        metavar="KEY=VALUE",
        help="Change one config key (dotted, e.g. training.epochs=5; the value is read as "
        "YAML); repeat for several.",
    ),
    keep_checkpoint: bool = typer.Option(
        False,
        "--keep-checkpoint",
        help="Keep the resume checkpoint (<output>.checkpoint, beside the bundle) once "
        "training ends, to continue the run later with --resume (default: removed).",
    ),
):
    """Train a land-cover model from scenes and labels into a model bundle."""
    from geoseg.cli.sets import parse_sets
    from geoseg.train.config import load_config
    from geoseg.train.train import train as run

    with one_line_errors():
        overrides = parse_sets(sets)
        if out_dir is not None:  # relative to where the command runs, not to the config
            overrides["output"] = str(out_dir.expanduser().resolve())
        cfg = load_config(config, overrides) if overrides else config
        res = run(
            cfg,
            resume=resume,
            progress=True,
            precision=precision,
            keep_checkpoint=keep_checkpoint or None,
        )
    out.print(
        f"[green]wrote[/] {res.bundle} (best epoch {res.best_epoch}/{res.epochs_run}, "
        f"validation mIoU {res.best_miou:.3f}"
        f"{', stopped early' if res.stopped_early else ''}; {res.seconds:.0f} s)"
    )
    out.print(f"[green]wrote[/] {res.history_csv}\n[green]wrote[/] {res.curves_png}")
