"""The HTML report of one command (``geoseg predict|evaluate|change|compare --report``):
the workflow report's sections for what that command made, its inputs and products."""

from __future__ import annotations

from pathlib import Path

from geoseg.report.html import write_report


def command_report(
    out_html: str | Path,
    *,
    title: str,
    inputs: dict[str, str],
    products: dict[str, str],
    predict: dict | None = None,
    evaluate: dict | None = None,
    change: dict | None = None,
    compare: dict | None = None,
) -> Path:
    """``report.html`` for one command: ``inputs`` and ``products`` (name -> path) in the run
    summary, then the sections of ``predict`` (``{"path": class map}``: its overview),
    ``evaluate``, ``change`` and ``compare`` (the commands' report dicts)."""

    def shown(v) -> str:  # local paths absolute: the report shows them relative to itself
        s = str(v)
        return s if s.startswith("/vsi") or "://" in s else str(Path(s).resolve())

    summary = {
        "title": title,
        "inputs": {k: shown(v) for k, v in inputs.items() if v is not None},
        "products": [
            {"name": k, "path": shown(v), "size": _size(Path(v))}
            for k, v in products.items()
            if v and Path(v).is_file()
        ],
    }
    return write_report(
        out_html,
        summary=summary,
        predict=predict,
        evaluate=evaluate,
        change=change,
        compare=compare,
    )


def _size(p: Path) -> str:
    n = float(p.stat().st_size)
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
