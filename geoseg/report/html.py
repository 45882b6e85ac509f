"""The HTML report: one self-contained file (inline CSS, PNGs as data URIs, no external URL).

:func:`write_report` takes the run summary and whichever results a workflow produced (the
predicted map, an evaluate report, a change report, a comparison) and renders
``templates/report.html.j2`` with jinja2 (autoescaped). Paths are shown relative to the
report's folder (and products linked so), so the folder can be moved or copied as a whole;
only remote URLs, GDAL ``/vsi`` paths and paths on another drive stay as they are.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape

from geoseg.io.files import atomic_write
from geoseg.report.figures import class_preview, data_uri, file_uri
from geoseg.report.tables import (
    accuracy_tables,
    change_tables,
    compare_tables,
    key_values,
    link,
    radiometry_table,
    swatches,
    table,
)
from geoseg.report.webmap import assets, web_map
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
    out = Path(out_html)
    html = render(
        summary=summary,
        predict=predict,
        evaluate=evaluate,
        change=change,
        compare=compare,
        preview_px=preview_px,
        folder=out.parent,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, html.encode("utf-8"))
    return out


def render(
    *,
    summary: dict,
    predict: dict | None = None,
    evaluate: dict | None = None,
    change: dict | None = None,
    compare: dict | None = None,
    preview_px: int = 1024,
    folder: str | Path = ".",
) -> str:
    """The report's HTML; ``folder``: where it will be, which paths are shown relative to."""
    where = Where(folder)
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
        "summary": _summary(summary, where),
        "map": _map(predict, preview_px, where) if predict else None,
        "accuracy": _accuracy(evaluate, where) if evaluate else None,
        "change": _change(change, preview_px, where) if change else None,
        "compare": _compare(compare, preview_px, where) if compare else None,
    }
    if any((ctx[k] or {}).get("webmap") for k in ("map", "change")):
        ctx["assets"] = assets()
    return env.get_template("report.html.j2").render(**ctx)


# an absolute path inside a text: POSIX (not GDAL's /vsi...) or a Windows drive, not part of
# a URL or a relative path
_ABSOLUTE = re.compile(r"(?<![\w.:/\\~+-])(?:/(?!vsi)|[A-Za-z]:\\)[^\s,;'\"()<>\[\]]+")
MAIN_PX, SIDE_PX = 1000, 640  # widths of the main map figures and of the smaller ones


class Where:
    """Paths as the report shows them: relative to its folder, so the folder can move."""

    def __init__(self, folder: str | Path):
        self.folder = os.path.abspath(folder)

    def path(self, p: str | Path) -> str:
        p = str(p)
        if "://" in p or p.startswith("/vsi") or not os.path.isabs(p):
            return p
        try:
            return Path(os.path.relpath(p, self.folder)).as_posix()
        except ValueError:  # on another drive
            return p

    def text(self, s: str) -> str:
        """``s`` with every absolute path in it made relative: ``s`` itself, the paths of a
        comma-separated list, or those found in a sentence (not with spaces in them)."""
        parts = s.split(", ")
        if all(os.path.isabs(p) or "://" in p for p in parts):
            return ", ".join(self.path(p) for p in parts)

        def rel(m: re.Match) -> str:
            p = m.group(0).rstrip(".:")
            return self.path(p) + m.group(0)[len(p) :]

        return _ABSOLUTE.sub(rel, s)

    def values(self, v):
        """Every string in ``v`` (dicts, lists) through :meth:`text`."""
        if isinstance(v, str):
            return self.text(v)
        if isinstance(v, dict):
            return {k: self.values(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [self.values(x) for x in v]
        return v

    def link(self, p: str | Path) -> dict:
        """A cell linking to a local file or folder by its relative path (text alone when it
        is not there)."""
        shown = self.path(p)
        here = os.path.join(self.folder, shown)
        local = "://" not in shown and not os.path.isabs(shown) and os.path.exists(here)
        return link(shown, quote(shown) if local else None)


def _images(*items: tuple[str, str | None, str | None]) -> list[dict]:
    """Figures for the template: title, data URI and caption (the title when None)."""
    return [{"title": t, "uri": u, "caption": c or t} for t, u, c in items if u]


def _preview(path, name: str, *, width_px: int, **kw) -> list[dict]:
    """A class map's figure, ``name`` its caption's start (and its title where ``title``)."""
    p = class_preview(path, width_px=width_px, **kw)
    if p is None:
        return []
    return _images((name, data_uri(p.png()), p.caption(name)))


def _summary(s: dict, where: Where) -> dict:
    out_dir = s.get("output")
    products = [  # summary paths of products are relative to the output folder
        {**p, "path": os.path.join(out_dir, p["path"]) if out_dir else p["path"]}
        for p in s.get("products") or []
    ]
    s = where.values({k: v for k, v in s.items() if k not in ("title", "products")})
    tables = []
    if s.get("inputs"):
        tables.append(key_values("Inputs", s["inputs"]))
    stages = s.get("stages") or []
    if stages:
        tables.append(
            table(
                "Stages",
                ["stage", "status", "seconds", "megapixels"],
                [
                    [st["name"], st.get("status"), st.get("seconds"), st.get("megapixels")]
                    for st in stages
                ],
                [None, None, "seconds", "megapixels"],
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
        if m.get("class_list"):  # colour squares, not hex codes
            m["classes"] = swatches(m["class_list"])
        m.pop("class_list", None)
        tables.append(key_values("Model bundle", m))
    params = [  # settings as given, not numbers
        table(f"Parameters: {name}", ["key", "value"], [[k, v] for k, v in p.items()])
        for name, p in (s.get("parameters") or {}).items()
        if p
    ]
    if products:
        tables.append(
            table(
                "Products",
                ["product", "file", "size"],
                [[p["name"], where.link(p["path"]), p.get("size")] for p in products],
            )
        )
    return {
        "tables": tables,
        "parameters": params,
        "notes": list(s.get("notes") or []),
        "workflow": s.get("workflow"),
        "output": s.get("output"),
    }


def _map(p: dict, px: int, where: Where) -> dict:
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
            "normalize_reason",
            "runtime",
            "runtime_reason",
        )
        if p.get(k) is not None
    }
    tables = [key_values("Prediction", figures)] if figures else []
    notes = []
    if "mpx_per_s" in figures:  # the run's one throughput figure, defined where it is shown
        notes.append(
            "Mpx/s: the scene's megapixels over the prediction's wall-clock seconds, from "
            "connecting to the cluster to the COG written (reading, the model, blending and "
            "writing included)."
        )
    if p.get("radiometry"):
        tables.append(radiometry_table(p["radiometry"]))
    title = "Land-cover map (overview)"
    return {
        "webmap": web_map([("Land-cover map", p["path"])], scene=p.get("scene"), max_px=px),
        "images": _preview(p["path"], title, max_px=px, width_px=MAIN_PX),
        "path": where.path(p["path"]),
        "tables": tables,
        "notes": notes,
    }


def _accuracy(rep: dict, where: Where) -> dict:
    files = rep.get("files") or {}
    images = _images(
        *(
            (t, file_uri(files.get(k)), None)
            for t, k in (
                ("Confusion matrix", "confusion_matrix_png"),
                ("Per-class accuracy", "per_class_png"),
            )
        )
    )
    return {
        "tables": accuracy_tables(rep),
        "images": images,
        "notes": where.values(rep.get("notes") or []),
        "reference": _reference(rep, where),
    }


def _reference(rep: dict, where: Where) -> str | None:
    path = (rep.get("reference") or {}).get("path")
    return where.text(str(path)) if path else None


def _change(rep: dict, px: int, where: Where) -> dict:
    files = rep.get("files") or {}
    images = []
    if files.get("mask") and Path(files["mask"]).exists():  # its legend from its CLASSES tag
        images += _preview(files["mask"], "Change mask", max_px=px, width_px=MAIN_PX)
    for kind, title in (("before_classes", "Earlier date"), ("after_classes", "Later date")):
        if files.get(kind) and Path(files[kind]).exists():
            images += _preview(files[kind], title, max_px=px, width_px=SIDE_PX, title=title)
    images += _images(("Transitions", file_uri(files.get("transitions_png")), None))
    layers = [("Change mask", files.get("mask"))]
    for key, title in (("after", "Later date"), ("before", "Earlier date")):
        d = rep.get(key) or {}
        layers.append((f"{title} ({d['date']})" if d.get("date") else title, d.get("map")))
    layers = [(t, p) for t, p in layers if p and Path(p).exists()]
    return {
        "webmap": web_map(layers, max_px=px) if layers else None,
        "tables": change_tables(rep),
        "images": images,
        "notes": where.values(rep.get("notes") or []),
    }


def _compare(rep: dict, px: int, where: Where) -> dict:
    files = rep.get("files") or {}
    images = _images(("Methods compared", file_uri(files.get("chart_png")), None))
    maps = [(m["name"], m["path"]) for m in rep.get("maps", [])]
    maps += [
        (f"Disagreement {p['a']} vs {p['b']}", p["disagreement_map"])
        for p in rep.get("pairs", [])
        if p.get("disagreement_map")
    ]
    for title, path in maps:
        if Path(path).exists():
            images += _preview(path, title, max_px=px, width_px=SIDE_PX, title=title)
    return {
        "tables": compare_tables(rep, rep.get("method_seconds")),
        "images": images,
        "notes": where.values(rep.get("notes") or []),
        "reference": _reference(rep, where),
    }
