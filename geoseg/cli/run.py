"""``geoseg run WORKFLOW.yaml``: a whole workflow, skipping current stages."""

from __future__ import annotations

from pathlib import Path

import typer

from geoseg.cli.common import err, one_line_errors, out
from geoseg.errors import GeoSegError


def run_cmd(
    workflow: Path = typer.Argument(..., help="Workflow YAML, e.g. workflows/landcover.yaml."),
    force: bool = typer.Option(
        False, "--force", help="Run every stage, even those whose outputs are current."
    ),
    out_dir: Path = typer.Option(
        None, "--out", "-o", help="Output folder (default: the workflow's 'output')."
    ),
    workers: int = typer.Option(
        None,
        "--workers",
        min=1,
        help="Local Dask worker processes (instead of the workflow's cluster section).",
    ),
    scheduler: str = typer.Option(
        None,
        "--scheduler",
        metavar="tcp://HOST:PORT",
        help="Run on an existing Dask scheduler (instead of the workflow's cluster section).",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the stages that would run and why; run nothing."
    ),
    sets: list[str] = typer.Option(
        None,
        "--set",
        metavar="KEY=VALUE",
        help="Change one workflow key (dotted, e.g. predict.block=1024; the value is read as "
        "YAML); repeat for several.",
    ),
):
    """Run a workflow: train -> predict -> vectorize -> evaluate / change / compare -> report.
    Stages whose outputs are current (same inputs and parameters) are skipped."""
    from geoseg.cli.sets import parse_sets
    from geoseg.workflow.config import merge_keys
    from geoseg.workflow.runner import dry_run as plan_only
    from geoseg.workflow.runner import run

    with one_line_errors():
        overrides = parse_sets(sets, "predict.block=1024")
        if workers is not None and scheduler is not None:
            raise GeoSegError("give --workers (a local cluster) or --scheduler, not both")
        if workers is not None:  # replaces the cluster section's choice of cluster
            overrides = merge_keys(overrides, {"cluster": {"workers": workers, "scheduler": None}})
        if scheduler is not None:
            cluster = {"scheduler": scheduler, "workers": None, "gpus": False}
            overrides = merge_keys(overrides, {"cluster": cluster})
        if dry_run:
            folder, stages, notes = plan_only(
                workflow, force=force, out=out_dir, overrides=overrides
            )
        else:
            res = run(workflow, force=force, out=out_dir, progress=True, overrides=overrides)
    if dry_run:
        _print_plan(folder, stages, notes)
        return
    kept = f", {len(res.skipped)} current and skipped" if res.skipped else ""
    err.print(f"[green]done[/] in {res.seconds:.1f} s ({len(res.ran)} stages ran{kept})")
    width = max((len(k) for k in res.products), default=0)
    for name, path in res.products.items():
        out.print(f"  {name:<{width}}  {_shown(path)}", highlight=False)


def _shown(path: str) -> str:
    p = Path(path)
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def _print_plan(folder: Path, stages, notes: list[str]) -> None:
    n = sum(s.runs for s in stages)
    out.print(
        f"dry run: {n} of {len(stages)} stages would run in {_shown(str(folder))} "
        "(nothing was run or written)",
        highlight=False,
    )
    width = max((len(s.name) for s in stages), default=0)
    for s in stages:
        what = "run " if s.runs else "skip"
        out.print(f"  {what}  {s.name:<{width}}  {s.why}", highlight=False)
    for note in notes:
        out.print(f"note: {note}", highlight=False)
