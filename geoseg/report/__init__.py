"""The self-contained HTML report of a workflow run (see :mod:`geoseg.report.html`)."""

from __future__ import annotations


def write_report(*args, **kwargs):
    """Write the HTML report; see :func:`geoseg.report.html.write_report`."""
    from geoseg.report.html import write_report as _write

    return _write(*args, **kwargs)


__all__ = ["write_report"]
