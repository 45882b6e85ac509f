"""Outputs unchanged by a refactoring: the demo and change workflows run by an earlier commit
and by the working tree, file by file.

    python benchmarks/identical.py [--base 1ab2057]

The base commit is checked out into a temporary git worktree and run with this virtual
environment (PYTHONPATH) on the working tree's workflow files and inputs; the working tree
runs as it is. Both write into one folder (paths are in tags and stage hashes), moved to
bench-output/identical/{base,head} after each run. Rasters, shapefiles, styles and CSV tables
must be byte-identical; GeoPackages (their header holds a write time) are compared feature by
feature; JSON files without the keys that hold times or durations. Prints one line per file
and exits 1 if any differs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-output" / "identical"
WORKFLOWS = ["workflows/landcover.yaml", "workflows/change.yaml"]
BYTES = {".tif", ".shp", ".shx", ".dbf", ".prj", ".cpg", ".qml", ".csv", ".png", ".xml"}
# run times, durations, worker memory, absolute paths: they differ between any two runs
VOLATILE = ("seconds", "time", "mpx_per_s", "rss", "created", "datetime", "started", "ended")
VOLATILE_EXACT = {"staging", "interval"}  # a staging folder, a collection's processing time


def _absolute(doc, base: Path):
    """The workflow with every input path absolute (relative to its file), output moved."""
    inputs = ("scene", "map", "model", "config", "classes", "reference")

    def fix(v):
        if isinstance(v, list):
            return [fix(x) for x in v]
        return str((base / v).resolve()) if isinstance(v, str) else v

    def walk(d):
        for k, v in list(d.items()):
            if isinstance(v, dict):
                walk(v)
            elif k in inputs:
                d[k] = fix(v)

    walk(doc)
    return doc


def run(code: Path, workflow: Path, out: Path) -> None:
    doc = _absolute(yaml.safe_load(workflow.read_text()), workflow.parent)
    doc["output"] = str(out)
    doc.pop("train", None)  # the committed bundle is used; nothing is trained
    shutil.rmtree(out, ignore_errors=True)
    spec = out.parent / f"{out.name}.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(yaml.safe_dump(doc))
    env = {**os.environ, "PYTHONPATH": str(code)}
    cmd = [sys.executable, "-c", "from geoseg.cli.main import app; app()", "run", str(spec)]
    r = subprocess.run(cmd, env=env, cwd=code, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"{code}: geoseg run {workflow.name} failed:\n{r.stderr[-2000:]}")


def _clean(obj):
    if isinstance(obj, dict):
        return {
            k: _clean(v)
            for k, v in obj.items()
            if k not in VOLATILE_EXACT and not any(w in k.lower() for w in VOLATILE)
        }
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def same(a: Path, b: Path) -> bool:
    if a.suffix in BYTES:
        return a.read_bytes() == b.read_bytes()
    if a.suffix == ".gpkg":
        import pyogrio

        da, db = (pyogrio.read_dataframe(p, layer=p.stem) for p in (a, b))
        return da.equals(db)
    if a.suffix == ".json":
        return _clean(json.loads(a.read_text())) == _clean(json.loads(b.read_text()))
    return True  # HTML (times, absolute paths): not compared


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="1ab2057")
    args = ap.parse_args()
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(base), args.base],
            check=True,
            cwd=ROOT,
            capture_output=True,
        )
        try:
            for wf in WORKFLOWS:
                name = Path(wf).stem
                # the same inputs and the same output folder (tags and stage hashes name
                # them), moved aside after each run
                for code, side in ((base, "base"), (ROOT, "head")):
                    run(code, ROOT / wf, OUT / "run" / name)
                    shutil.rmtree(OUT / side / name, ignore_errors=True)
                    (OUT / side).mkdir(parents=True, exist_ok=True)
                    (OUT / "run" / name).rename(OUT / side / name)
                files = sorted(p for p in (OUT / "base" / name).rglob("*") if p.is_file())
                for a in files:
                    rel = a.relative_to(OUT / "base")
                    b = OUT / "head" / rel
                    ok = b.exists() and same(a, b)
                    bad += not ok
                    print(f"{'same' if ok else 'DIFFERENT'}  {rel}")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT)
    print(f"{bad} file(s) differ" if bad else "every output is identical")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
