"""``--report`` of single commands (predict, evaluate, change, compare): one HTML page beside
their outputs (``report.html`` in their folder; ``<map>_report.html`` beside a predicted map)."""

from __future__ import annotations

from pathlib import Path

from geoseg.cli.common import fail
from geoseg.errors import GeoSegError

REPORT_HTML = "report.html"


def check_report_free(out_dir: Path, overwrite: bool, name: str = REPORT_HTML) -> None:
    """``--report``: its page must not replace one without --overwrite (checked before work)."""
    page = Path(out_dir) / name
    if page.exists() and not overwrite:
        raise GeoSegError(f"{page} already exists: pass --overwrite to replace it")


def single_report(
    out_dir, title: str, inputs: dict, files: dict, name: str = REPORT_HTML, **sections
) -> Path | None:
    """Write ``OUT/report.html`` (or ``name``) for one command; an error is one line, the
    results stay."""
    from geoseg.report.single import command_report

    try:
        return command_report(
            Path(out_dir) / name,
            title=title,
            inputs=inputs,
            products=files,
            **sections,
        )
    except (GeoSegError, Exception) as e:  # noqa: BLE001 - one line for the user
        fail(e)
        return None
