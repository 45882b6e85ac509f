"""The ``geoseg`` command line: a thin layer over the Python API.

Each command lives in the module of its group and is registered here, so no command module
imports this one.
"""

from __future__ import annotations

import sys

import typer

from geoseg.cli import (
    accuracy,
    adapt,
    baseline,
    bundle,
    change,
    compare,
    harmonize,
    instances,
    predict,
    run,
    serve,
    train,
    vector,
)
from geoseg.cli.common import setup


def _plain_flags() -> None:
    """Show on/off options as plain flags in --help (``--force``, not ``--force <bool>``):
    typer 0.29 prints a type for every option; a flag takes no value, so it gets none."""
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "_geoseg_plain", False):
        return

    def display_type_rich(self, ctx):
        return None if self.is_flag and self.metavar is None else shown(self, ctx)

    display_type_rich._geoseg_plain = True
    TyperOption.display_type_rich = display_type_rich


_plain_flags()

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Land-cover maps from large scenes on a Dask cluster.",
)


@app.callback()
def _main(
    debug: bool = typer.Option(
        False, "--debug", help="Show tracebacks on errors, and Dask's and the workers' logs."
    ),
    dashboard_address: str = typer.Option(
        None,
        "--dashboard-address",
        metavar="HOST:PORT",
        envvar="GEOSEG_DASHBOARD_ADDRESS",
        help="Where a local cluster's dashboard listens (default 127.0.0.1 on a free port: "
        "this machine only). 0.0.0.0:8787 exposes it on every interface, on purpose.",
    ),
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=lambda given: _version(given),
        help="Print geoseg's version and exit.",
    ),
):
    setup(debug, dashboard_address)


def _version(given: bool) -> None:
    if given:
        from geoseg.version import __version__

        typer.echo(f"geoseg {__version__}")
        raise typer.Exit()


app.command()(predict.predict)
app.add_typer(bundle.bundle_app, name="bundle")
app.command("train")(train.train_cmd)
app.command("adapt")(adapt.adapt_cmd)
app.command()(vector.vectorize)
app.command()(accuracy.evaluate)
app.command()(accuracy.sample)
app.command("instances")(instances.instances_cmd)
app.command("change")(change.change_cmd)
app.command("harmonize")(harmonize.harmonize_cmd)
app.add_typer(baseline.baseline_app, name="baseline")
app.command("compare")(compare.compare_cmd)
app.command("run")(run.run_cmd)
app.command("serve")(serve.serve_cmd)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
