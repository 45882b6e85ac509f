"""What the baselines return and write beside their maps: a result object and a JSON report."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from geoseg.baseline.config import Baseline
from geoseg.baseline.scenes import Plan
from geoseg.io.cog import check_output
from geoseg.io.dates import acquisition_date
from geoseg.io.files import atomic_write, clean
from geoseg.version import __version__


@dataclass
class BaselineResult:
    map_path: Path  # the (first) class COG
    seconds: float  # wall time of the whole run
    report: dict  # as written to report_path
    map_paths: list[Path] = field(default_factory=list)  # one per mapped scene
    report_path: Path | None = None


def report_path(out: Path, method: str, overwrite: bool) -> Path:
    """``<map stem>.json`` beside a single map, else ``<method>.json`` in the output folder."""
    p = (
        out.with_suffix(".json")
        if out.suffix.lower() in (".tif", ".tiff")
        else out / f"{method}.json"
    )
    return check_output(p, overwrite)


def tags(method: str, **extra: str) -> dict[str, str]:
    """GeoTIFF tags of a baseline map: GEOSEG_METHOD and GEOSEG_<KEY> for each extra."""
    return {"GEOSEG_METHOD": method, **{f"GEOSEG_{k.upper()}": v for k, v in extra.items()}}


def scene_tags(paths) -> dict[str, str]:
    """GEOSEG_SOURCE and, where the scene says when it was taken, GEOSEG_DATE: what
    ``geoseg predict`` records, so that a baseline's map carries its date the same way."""
    paths = [str(p) for p in paths]
    when = acquisition_date(paths)
    return {"GEOSEG_SOURCE": ",".join(paths), **({"GEOSEG_DATE": when} if when else {})}


def base_report(method: str, b: Baseline, p: Plan, maps: list[Path]) -> dict:
    return {
        "geoseg": {"version": __version__, "created": datetime.now(UTC).isoformat()},
        "method": method,
        "config": b.source,
        "train_config": b.cfg.train_config if isinstance(b.cfg.train_config, str) else "<dict>",
        "classes": [{"id": c.id, "name": c.name, "color": c.color} for c in p.classes.classes],
        "bands": p.bands,
        "scenes": [
            {
                "index": s.index,
                "name": s.name,
                "role": s.role,
                "trains": s.trains,
                "mapped": s.mapped,
            }
            for s in p.scenes
        ],
        "maps": [str(m) for m in maps],
    }


def finish(report: dict, path: Path, maps: list[Path], seconds: float) -> BaselineResult:
    report = clean({**report, "files": {"maps": [str(m) for m in maps], "report_json": str(path)}})
    atomic_write(path, json.dumps(report, indent=2).encode())
    return BaselineResult(maps[0], seconds, report, maps, path)
