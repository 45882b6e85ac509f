"""Report files every feature writes: atomic writes, JSON-ready values, CSV and PNG bytes.

Every file is written under a temporary name and renamed when complete. Matrices are labelled
"rows = map, columns = reference" in every file. Numbers that are undefined (a class never
mapped has no user's accuracy) are JSON null and empty CSV cells.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import math
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from geoseg.errors import GeoSegError

CORNER = "map \\ reference"


def clean(obj):
    """JSON-ready copy: numpy scalars and arrays to Python, NaN and inf to None."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return clean(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def part_path(path: Path, suffix: str | None = None) -> Path:
    """The hidden temporary name ``path`` is written under, beside it: ``.NAME.partPID-TID``,
    or ``.STEM.partPID-TID{suffix}`` for writers that tell a format by the file's suffix."""
    tag = f"part{os.getpid()}-{threading.get_ident()}"
    if suffix is not None:
        return path.with_name(f".{path.stem}.{tag}{suffix}")
    return path.with_name(f".{path.name}.{tag}")


@contextlib.contextmanager
def atomic_files(out: Path, *, user_error: bool = True) -> Iterator[Callable[..., Path]]:
    """Files written under hidden temporary names and renamed into place together when the
    ``with`` block completes (the first one added last). It yields ``add(final,
    suffix=None)``, which returns the temporary path of ``final`` (:func:`part_path`).
    If the block fails, every file whose name starts with a temporary name (a Shapefile's
    parts, GDAL's ``.aux.xml``) is removed, and with ``user_error`` an ``OSError`` becomes a
    one-line :class:`GeoSegError` about ``out``."""
    pairs: list[tuple[Path, Path, str]] = []  # temporary, final, start of the temporaries

    def add(final: Path, suffix: str | None = None) -> Path:
        tmp = part_path(Path(final), suffix)
        pairs.append((tmp, Path(final), tmp.name.removesuffix(suffix or "")))
        return tmp

    try:
        yield add
        for tmp, final, _ in reversed(pairs):
            os.replace(tmp, final)
    except BaseException as e:
        for tmp, _, start in pairs:
            for p in [tmp, *tmp.parent.glob(glob.escape(start) + ".*")]:
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        p.unlink()
        if user_error and isinstance(e, OSError):
            raise GeoSegError(
                f"cannot write {out} ({e.strerror or e}): check free space and permissions"
            ) from None
        raise


@contextlib.contextmanager
def atomic_path(path: Path, *, suffix: str | None = None, user_error: bool = True):
    """A temporary path to write ``path`` to, renamed into place when the ``with`` block
    completes (:func:`atomic_files` with one file)."""
    with atomic_files(path, user_error=user_error) as add:
        yield add(path, suffix)


def check_not_an_input(out: str | os.PathLike, inputs) -> None:
    """An output may never replace one of its own inputs (``--overwrite`` included): paths
    are compared resolved, symbolic links followed."""
    target = Path(out).resolve()
    for p in inputs:
        if os.path.exists(p) and Path(p).resolve() == target:
            raise GeoSegError(
                f"the output {out} is the input {p}: the map would replace its own scene; "
                "choose another --out"
            )


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[Path]:
    """One job per output: an exclusive, non-blocking ``flock`` on ``.NAME.lock`` beside
    ``out`` for the ``with`` block (the file holds the owner's pid and is removed at the end).
    A second job for the same output fails at once with a one-line :class:`GeoSegError`."""
    import fcntl

    out = Path(out)
    lock = out.with_name(f".{out.name}.lock")
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                pid = os.read(fd, 32).decode(errors="replace").strip() or "?"
            finally:
                os.close(fd)
            raise GeoSegError(
                f"another geoseg job is writing {out} (pid {pid}): wait for it or choose "
                "another --out"
            ) from None
        try:  # the holder before us may have removed the file we locked: lock the new one
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield lock
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` under a temporary name, then rename it into place."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _cell(v) -> str:
    v = clean(v)
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}" if abs(v) < 1e6 else f"{v:.1f}"
    return str(v)


def csv_bytes(rows: list[list]) -> bytes:
    """CSV text of ``rows`` (numbers to 6 significant digits, None as an empty cell)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([[_cell(v) for v in r] for r in rows])
    return buf.getvalue().encode()


def matrix_csv(names: list[str], matrix, totals: bool) -> bytes:
    """A labelled matrix (rows = map, columns = reference) as CSV, with totals if asked."""
    m = np.asarray(matrix, dtype=float)
    as_int = np.allclose(m, np.round(m))

    def fmt(v):
        return int(round(v)) if as_int else float(v)

    rows = [[CORNER, *names] + (["total"] if totals else [])]
    for name, r in zip(names, m, strict=True):
        rows.append([name, *map(fmt, r)] + ([fmt(r.sum())] if totals else []))
    if totals:
        rows.append(["total", *map(fmt, m.sum(axis=0)), fmt(m.sum())])
    return csv_bytes(rows)


def png_bytes(fig) -> bytes:
    """A matplotlib figure as PNG bytes (120 dpi)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    return buf.getvalue()
