"""``geoseg serve``: a warm local cluster that later commands in this folder attach to."""

from __future__ import annotations

import typer

from geoseg.cli.common import WORKERS_HELP, one_line_errors, out


def serve_cmd(
    workers: int = typer.Option(None, help=WORKERS_HELP),
    stop: bool = typer.Option(False, "--stop", help="Stop the running service and exit."),
    status: bool = typer.Option(
        False, "--status", help="Say whether a service runs (exit 1 if not) and exit."
    ),
):
    """Keep a local cluster running: later commands started in this folder use it (no
    cluster start; each model is loaded once per worker and kept) until Ctrl-C or --stop."""
    from geoseg.cluster.registry import read_service, service_file
    from geoseg.cluster.service import serve, stop_service

    if status:
        svc = read_service()
        if svc is None:  # exit 1, as a check in a script would want
            out.print(f"no geoseg service runs ({service_file()})", highlight=False)
            raise typer.Exit(1)
        out.print(
            f"geoseg service at {svc.address}: {svc.workers} workers, started in {svc.cwd} "
            f"(pid {svc.pid})",
            highlight=False,
        )
        return

    def ready(svc):
        out.print(
            f"geoseg service at {svc.address} ({svc.workers} workers; dashboard "
            f"{svc.dashboard}): commands started in {svc.cwd} use it. Ctrl-C or "
            "'geoseg serve --stop' ends it.",
            highlight=False,
        )

    with one_line_errors():
        if stop:
            svc = stop_service()
            out.print("no geoseg service runs" if svc is None else f"stopped {svc.address}")
            return
        serve(workers, on_ready=ready)
    out.print("geoseg service stopped")
