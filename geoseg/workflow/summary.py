"""The report stage: the run summary and every stage's results, rendered by geoseg.report."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from geoseg.workflow.stages import Context

LABELS = {
    "train": "model bundle",
    "predict": "class map",
    "predict_before": "earlier map",
    "predict_after": "later map",
    "vectorize": "polygons",
    "instances": "instances",
    "evaluate": "accuracy report",
    "change": "change report",
    "baseline": "OBIA map",
    "compare": "comparison",
    "report": "HTML report",
}


def products(results: dict[str, dict]) -> dict[str, str]:
    """What a user opens, by name, from the stages' results."""
    out: dict[str, str] = {}
    for name, r in results.items():
        if name == "train":
            out["model bundle"] = r["bundle"]
        elif name.startswith("predict"):
            label = LABELS[name]
            out[label] = r["path"]
            for k, v in r["outputs"].items():
                if k != "classes":
                    out[f"{label} ({'probabilities' if k == 'probs' else 'confidence'})"] = v
        elif name == "vectorize":
            out.update({f"polygons ({k})": v for k, v in r["outputs"].items()})
        elif name == "instances":
            out["instances"] = r["path"]
            out["instance polygons"] = r.get("polygons") or ""
        elif name in ("evaluate", "change"):
            out[LABELS[name]] = r["report_json"]
            if name == "change":
                out.update(
                    {
                        f"change {k}": v
                        for k, v in r["outputs"].items()
                        if k in ("fromto", "mask", "polygons")
                    }
                )
        elif name == "baseline":
            out["OBIA map"] = r["map_path"]
        elif name == "compare":
            out["comparison"] = r.get("out", "")
        elif name == "report":
            out["HTML report"] = r["html"]
    return {k: v for k, v in out.items() if v}


def report_stage(
    ctx: Context,
    out_html: Path,
    *,
    title: str,
    workflow: str | None,
    out_dir: Path,
    model: str | None,
    inputs: dict,
    parameters: dict,
    notes: list[str],
    preview_px: int,
) -> tuple[list[str], dict]:
    from geoseg.report.html import write_report

    res = ctx.results
    inst = res.get("instances")
    if inst:  # the count per thing class, where the analyst reads the run's figures
        per = ", ".join(f"{n:,} {k}" for k, n in inst["counts"].items())
        notes = [*notes, f"Instances (geoseg instances): {inst['count']:,} objects ({per})."]
    summary = {
        "title": title,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "workflow": workflow,
        "output": str(out_dir),
        "inputs": inputs,
        "model": _model(model),
        "parameters": parameters,
        "notes": notes,
        "stages": [
            {
                "name": n,
                "status": s["status"],
                "seconds": s["seconds"],
                "megapixels": (res.get(n) or {}).get("megapixels"),
            }
            for n, s in ctx.status.items()
        ],
        "products": [
            {"name": k, "path": _rel(v, out_dir), "size": _size(v)}
            for k, v in products(res).items()
        ],
    }
    predict = res.get("predict")
    if predict is None and "predict_after" in res:
        predict = res["predict_after"]
    compare = res.get("compare", {}).get("compare")
    if compare is not None:  # each method's wall time: its training and mapping stages
        names = [m["name"] for m in compare["maps"]]
        spent = {n: s["seconds"] for n, s in ctx.status.items()}
        deep = spent.get("train", 0.0) + spent.get("predict", 0.0)
        compare = {**compare, "method_seconds": {names[0]: deep, names[1]: spent.get("baseline")}}
    write_report(
        out_html,
        summary=summary,
        predict=predict,
        evaluate=_json(res.get("evaluate")),
        change=_json(res.get("change")),
        compare=compare,
        preview_px=preview_px,
    )
    return [str(out_html)], {"html": str(out_html)}


def _model(path: str | None) -> dict | None:
    if not path:
        return None
    from geoseg.model.bundle import describe, read_meta

    meta = read_meta(path)
    d = describe(meta)
    d["class_list"] = [{"id": c.id, "name": c.name, "color": c.color} for c in meta.classes]
    d["path"] = path
    return d


def _json(result: dict | None) -> dict | None:
    if not result:
        return None
    return json.loads(Path(result["report_json"]).read_text())


def _rel(path: str, out_dir: Path) -> str:
    p = Path(path)
    return str(p.relative_to(out_dir)) if p.is_relative_to(out_dir) else str(p)


def _size(path: str) -> str | None:
    p = Path(path)
    if p.is_dir():
        n = sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    elif p.is_file():
        n = p.stat().st_size
    else:
        return None
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return None
