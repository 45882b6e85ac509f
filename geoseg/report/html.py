"""The HTML report: one self-contained file (inline CSS, PNGs as data URIs, no external URL).

:func:`write_report` takes the run summary and whichever results a workflow produced (the
predicted map, an evaluate report, a change report, a comparison) and renders
``templates/report.html.j2`` with jinja2 (autoescaped).
"""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from geoseg.errors import GeoSegError
from geoseg.report.figures import class_preview, data_uri, file_uri
from geoseg.report.tables import (
    accuracy_tables,
    change_tables,
    compare_tables,
    key_values,
    radiometry_table,
    table,
)
from geoseg.version import __version__


def write_report(
    out_html: str | Path,
    *,
    summary: dict,
    predict: dict | None = None,
    evaluate: dict | None = None,
    change: dict | None = None,
    compare: dict | None = None,
    preview_px: int = 1024,
) -> Path:
    """Write the report to ``out_html`` (under a temporary name, then renamed).

    ``summary``: title, inputs, model (a bundle description), parameters, stages (name,
    status, seconds, megapixels) and products. ``predict``: ``{"path": class COG, ...}`` with
    the prediction's figures (megapixels, seconds, mpx_per_s, tiles, blocks). ``evaluate`` /
    ``change``: the dicts returned by :func:`geoseg.accuracy.evaluate.evaluate` and
    :func:`geoseg.change.change.change` (``.report``). ``compare``: the dict of
    :func:`geoseg.compare.compare.compare`.
    """
    html = render(
        summary=summary,
        predict=predict,
        evaluate=evaluate,
        change=change,
        compare=compare,
        preview_px=preview_px,
    )
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.part{os.getpid()}")
    try:
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, out)
    except OSError as e:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise GeoSegError(
            f"cannot write {out} ({e.strerror or e}): check free space and permissions"
        ) from None
    return out


def render(
    *,
    summary: dict,
    predict: dict | None = None,
    evaluate: dict | None = None,
    change: dict | None = None,
    compare: dict | None = None,
    preview_px: int = 1024,
) -> str:
    env = Environment(
        loader=PackageLoader("geoseg.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    ctx = {
        "title": summary.get("title") or "geoseg report",
        "created": summary.get("created") or datetime.now(UTC).isoformat(timespec="seconds"),
        "version": __version__,
        "summary": _summary(summary),
        "map": _map(predict, preview_px) if predict else None,
        "accuracy": _accuracy(evaluate) if evaluate else None,
        "change": _change(change, preview_px) if change else None,
        "compare": _compare(compare, preview_px) if compare else None,
    }
    return env.get_template("report.html.j2").render(**ctx)


def _summary(s: dict) -> dict:
    tables = []
    if s.get("inputs"):
        tables.append(key_values("Inputs", s["inputs"]))
    stages = s.get("stages") or []
    if stages:
        tables.append(
            table(
                "Stages",
                ["stage", "status", "seconds", "megapixels", "Mpx/s"],
                [
                    [
                        st["name"],
                        st.get("status"),
                        st.get("seconds"),
                        st.get("megapixels"),
                        _rate(st),
                    ]
                    for st in stages
                ],
                2,
            )
        )
    model = s.get("model")
    if model:
        m = dict(model)
        prov = m.pop("provenance", None) or {}
        for k in ("best_epoch", "best_val_miou", "best_val_oa", "wall_seconds", "created"):
            if k in prov:
                m[k] = prov[k]
        m["trained"] = prov.get("trained")
        tables.append(key_values("Model bundle", m))
    params = [
        table(f"Parameters: {name}", ["key", "value"], [[k, v] for k, v in p.items()])
        for name, p in (s.get("parameters") or {}).items()
        if p
    ]
    products = s.get("products") or []
    if products:
        tables.append(
            table(
                "Products",
                ["product", "file", "size"],
                [[p["name"], p["path"], p.get("size")] for p in products],
            )
        )
    return {
        "tables": tables,
        "parameters": params,
        "notes": list(s.get("notes") or []),
        "workflow": s.get("workflow"),
        "output": s.get("output"),
    }


def _rate(st: dict) -> float | None:
    mpx, sec = st.get("megapixels"), st.get("seconds")
    return mpx / sec if mpx and sec else None


def _map(p: dict, px: int) -> dict:
    png = class_preview(p["path"], max_px=px)
    figures = {
        k: p.get(k)
        for k in (
            "megapixels",
            "seconds",
            "mpx_per_s",
            "tiles",
            "tiles_skipped",
            "blocks",
            "blocks_reused",
            "normalize",
            "runtime",
            "runtime_reason",
        )
        if p.get(k) is not None
    }
    tables = [key_values("Prediction", figures, 2)] if figures else []
    if p.get("radiometry"):
        tables.append(radiometry_table(p["radiometry"]))
    return {"preview": data_uri(png) if png else None, "path": p["path"], "tables": tables}


def _accuracy(rep: dict) -> dict:
    files = rep.get("files") or {}
    images = [
        (t, file_uri(files.get(k)))
        for t, k in (
            ("Confusion matrix", "confusion_matrix_png"),
            ("Per-class accuracy", "per_class_png"),
        )
    ]
    return {
        "tables": accuracy_tables(rep),
        "images": [(t, u) for t, u in images if u],
        "notes": rep.get("notes") or [],
        "reference": (rep.get("reference") or {}).get("path"),
    }


def _change(rep: dict, px: int) -> dict:
    from geoseg.change.style import STATUS_CLASSES

    files = rep.get("files") or {}
    images = []
    if files.get("mask") and Path(files["mask"]).exists():
        png = class_preview(files["mask"], classes=STATUS_CLASSES, max_px=px)
        images.append(("Change mask", data_uri(png)))
    for kind, title in (("before_classes", "Earlier date"), ("after_classes", "Later date")):
        if files.get(kind) and Path(files[kind]).exists():
            png = class_preview(files[kind], max_px=min(px, 640), title=title)
            if png:
                images.append((title, data_uri(png)))
    uri = file_uri(files.get("transitions_png"))
    if uri:
        images.append(("Transitions", uri))
    return {"tables": change_tables(rep), "images": images, "notes": rep.get("notes") or []}


def _compare(rep: dict, px: int) -> dict:
    files = rep.get("files") or {}
    images = []
    uri = file_uri(files.get("chart_png"))
    if uri:
        images.append(("Methods compared", uri))
    maps = [(m["name"], m["path"]) for m in rep.get("maps", [])]
    maps += [
        (f"Disagreement {p['a']} vs {p['b']}", p["disagreement_map"])
        for p in rep.get("pairs", [])
        if p.get("disagreement_map")
    ]
    for title, path in maps:
        if Path(path).exists():
            png = class_preview(path, max_px=min(px, 640), title=title)
            if png:
                images.append((title, data_uri(png)))
    return {
        "tables": compare_tables(rep, rep.get("method_seconds")),
        "images": images,
        "notes": rep.get("notes") or [],
        "reference": (rep.get("reference") or {}).get("path"),
    }
