"""Report files every feature writes: atomic writes, JSON-ready values, CSV and PNG bytes.

Every file is written under a temporary name and renamed when complete. Matrices are labelled
"rows = map, columns = reference" in every file. Numbers that are undefined (a class never
mapped has no user's accuracy) are JSON null and empty CSV cells.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
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


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` under a temporary name, then rename it into place."""
    tmp = path.with_name(f".{path.name}.part{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise GeoSegError(
            f"cannot write {path} ({e.strerror or e}): check free space and permissions"
        ) from None


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
