"""``geoseg run WORKFLOW.yaml``: a whole workflow, skipping current stages."""

from __future__ import annotations

from pathlib import Path

import typer

from geoseg.cli.common import err, fail, out
from geoseg.errors import GeoSegError


def run_cmd(
    workflow: Path = typer.Argument(..., help="Workflow YAML, e.g. workflows/landcover.yaml."),
    force: bool = typer.Option(
        False, "--force", help="Run every stage, even those whose outputs are current."
    ),
    out_dir: Path = typer.Option(
        None, "--out", "-o", help="Output folder (default: the workflow's 'output')."
    ),
):
    """Run a workflow: train -> predict -> vectorize -> evaluate / change / compare -> report.
    Stages whose outputs are current (same inputs and parameters) are skipped."""
    from geoseg.workflow.runner import run

    try:
        res = run(workflow, force=force, out=out_dir, progress=True)
    except (GeoSegError, Exception, KeyboardInterrupt) as e:  # noqa: BLE001 - one line for the user
        fail(e)
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
