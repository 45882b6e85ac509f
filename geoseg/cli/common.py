"""What every command shares: the consoles, the --debug state, one-line errors and warnings."""

from __future__ import annotations

import contextlib
import errno
import logging
import signal
import threading
import warnings
from collections.abc import Iterator

import typer
from rich.console import Console
from rich.markup import escape

from geoseg.errors import GeoSegError, Interrupted

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)
_state = {"debug": False}

WORKERS_HELP = "Local worker processes (default: one per core)."
SCHEDULER_HELP = (
    "The Dask scheduler, tcp://HOST:PORT; auto (the default): the running 'geoseg serve' "
    "started in this folder, else a new local cluster; local: always a new local cluster."
)
BLOCK_HELP = "Block size in pixels; one Dask task per block."
REFERENCE_HELP = (
    "Reference (required): a class raster, or polygons or points with a class field "
    "(GeoPackage, Shapefile, ...)."
)
REFERENCE_FIELD_HELP = "Class field of a vector reference (ids or names)."
REFERENCE_LAYER_HELP = "Layer of a vector reference."


def setup(debug: bool, dashboard_address: str | None = None) -> None:
    """The app's callback: logging and warnings for this run (Dask's and the workers' log lines
    only with --debug), and where local clusters put their dashboard."""
    _state["debug"] = debug
    from geoseg.cluster.setup import configure

    try:
        configure(dashboard=dashboard_address, verbose=debug)
    except GeoSegError as e:
        fail(e)
    logging.basicConfig(
        level=logging.INFO if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    warnings.showwarning = _show_warning
    _end_like_ctrl_c()
    if not debug:
        # distributed sets its loggers to INFO on import; after basicConfig their cluster
        # start/stop lines, retired workers and closed comms would reach the terminal: geoseg
        # reports what matters in its own words, Dask's lines only with --debug
        import distributed  # noqa: F401

        for name in ("distributed", "tornado", "asyncio"):
            logging.getLogger(name).setLevel(logging.CRITICAL)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _end_like_ctrl_c() -> None:
    """SIGTERM and SIGHUP (a scheduler's stop, a closed terminal) end a command as Ctrl-C
    does: KeyboardInterrupt in the main thread, so staged blocks stay, the local cluster is
    closed and one ``interrupted:`` line is printed (exit 130)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, _interrupt):  # not if someone set one
            signal.signal(sig, _interrupt)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    err.print(f"[yellow]warning:[/] {escape(str(message))}")


def fail(e: BaseException) -> None:
    """Print ``e`` as one ``error:`` line and exit 2 (the traceback only with --debug); an
    interrupt (Ctrl-C) as one ``interrupted:`` line and exit 130, as after SIGINT."""
    if isinstance(e, KeyboardInterrupt | Interrupted):
        text = str(e) if isinstance(e, Interrupted) else "interrupted"
        err.print(escape(text), highlight=False, soft_wrap=True)
        raise typer.Exit(130)
    if _state["debug"]:
        raise e
    if isinstance(e, GeoSegError):
        msg = str(e)
    elif (os_msg := os_error_message(e)) is not None:
        msg = os_msg
    else:
        first = str(e).splitlines()[0] if str(e) else ""
        msg = f"{type(e).__name__}: {first} (run with --debug for the traceback)"
    err.print(f"[red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)  # [..] is text
    raise typer.Exit(2)


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """A command's work: any error (or Ctrl-C) that leaves it is :func:`fail`'s one line."""
    try:
        yield
    except (GeoSegError, Exception, KeyboardInterrupt) as e:  # noqa: BLE001 - one line for the user
        fail(e)


_SPACE = "free some space, or choose a folder on a larger disk (--out, --staging)"
_WRITABLE = "choose a folder you can write to (--out, --staging) or fix its permissions"
_OS_CAUSES = {  # errno: (the cause in words, what to do)
    errno.ENOSPC: ("no space left on the device", _SPACE),
    errno.EDQUOT: ("disk quota exceeded", _SPACE),
    errno.EROFS: ("read-only file system", "choose a folder on a writable disk"),
    errno.EACCES: ("permission denied", _WRITABLE),
    errno.EPERM: ("operation not permitted", _WRITABLE),
    errno.ENOENT: (
        "no such file or folder",
        "check the path (a missing input, or a folder that could not be made)",
    ),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "choose another path"),
}
# GDAL reports the same causes in the text of a RasterioIOError
_GDAL_CAUSES = {
    "no space left on device": errno.ENOSPC,
    "disk quota exceeded": errno.EDQUOT,
    "read-only file system": errno.EROFS,
    "permission denied": errno.EACCES,
}


def os_error_message(e: BaseException) -> str | None:
    """One line naming the path and the cause, with advice, for the operating-system errors a
    user can meet (no space, quota, read-only, permission, a missing or blocked folder), raised
    as ``OSError`` or as rasterio's ``RasterioIOError``; None for anything else."""
    code, path = None, None
    if isinstance(e, OSError) and e.errno in _OS_CAUSES:
        code, path = e.errno, e.filename
    else:
        from rasterio.errors import RasterioIOError

        if isinstance(e, RasterioIOError):
            text = str(e).lower()
            code = next((c for k, c in _GDAL_CAUSES.items() if k in text), None)
    if code is None:
        return None
    cause, advice = _OS_CAUSES[code]
    where = f"cannot write {path}" if path else "a file could not be written"
    if code == errno.ENOENT and path:
        where = f"cannot open {path}"
    return f"{where} ({cause}): {advice}"


def renamed(new, old, new_name: str, old_name: str):
    """The value of an option given by its new name or by its old, hidden spelling (kept for
    one release); both at once is an error."""
    if new is not None and old is not None:
        raise GeoSegError(f"{old_name} is the old spelling of {new_name}: give only {new_name}")
    return new if new is not None else old


# The reference is passed the same way to evaluate, compare and change: --reference, with
# --reference-field and --reference-layer for a vector reference. The old spellings (evaluate's
# second argument, --field, --layer) stay as hidden aliases for one release.
LIST_HELP = " A list: repeat the flag or separate the values with commas."


def split_list(values: list[str] | None) -> list[str] | None:
    """A list option's values, one convention for every command: ``--x a --x b``, ``--x a,b``
    and ``--x a,b --x c`` are all lists (empty items dropped); None when none is given."""
    items = [v.strip() for given in values or [] for v in str(given).split(",")]
    return [v for v in items if v] or None


def list_option(flag: str, help: str, metavar: str = "NAME,..."):
    """A list option of :func:`split_list`'s convention, its help saying so."""
    return typer.Option(None, flag, help=help + LIST_HELP, callback=split_list, metavar=metavar)


CLASS_MAP = list_option(
    "--class-map",
    "REF=MAP: reference id REF is map class MAP (MAP 0: leave it out).",
    "REF=MAP,...",
)
REFERENCE = typer.Option(None, "--reference", "-r", help=REFERENCE_HELP)
REFERENCE_FIELD = typer.Option(None, "--reference-field", help=REFERENCE_FIELD_HELP)
REFERENCE_LAYER = typer.Option(None, "--reference-layer", help=REFERENCE_LAYER_HELP)
OLD_FIELD = typer.Option(None, "--field", hidden=True)
OLD_LAYER = typer.Option(None, "--layer", hidden=True)


def reference_options(
    reference, field, layer, *, old_reference=None, old_field=None, old_layer=None
) -> tuple[str, str | None, str | None]:
    """(reference, field, layer) from the options and their old spellings; a reference is
    required."""
    ref = renamed(reference, old_reference, "--reference", "the REFERENCE argument")
    if ref is None:
        raise GeoSegError(
            "missing --reference REF: a class raster, or polygons or points with a class field"
        )
    return (
        ref,
        renamed(field, old_field, "--reference-field", "--field"),
        renamed(layer, old_layer, "--reference-layer", "--layer"),
    )
