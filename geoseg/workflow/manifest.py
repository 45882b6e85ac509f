"""Which stages are current: input fingerprints, stage hashes and the run manifest.

A stage's hash covers its parameters, fingerprints of its input files and the hashes of the
stages it reads from. Small files are fingerprinted by content, large ones by size and mtime;
a model bundle by its ``bundle.json`` (which holds the weights' SHA-256); a Shapefile with its
sidecars. ``<output>/.geoseg-workflow.json`` records, per stage, the hash it ran with, its
outputs and what it reported; a stage whose hash matches and whose outputs all exist is
skipped. The manifest is rewritten (atomically) after every stage, so a workflow that stops
half-way resumes at the stage that did not finish.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from geoseg.io.files import atomic_write

MANIFEST = ".geoseg-workflow.json"
FORMAT = 1
SMALL = 4 << 20  # files up to this size are hashed by content
SHP_SIDECARS = (".shx", ".dbf", ".prj", ".cpg")


def _file(p: Path) -> dict:
    st = p.stat()
    if st.st_size <= SMALL:
        return {"sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def fingerprint(path: str | os.PathLike) -> Any:
    """What identifies an input: content or size+mtime, a bundle's metadata, a folder's files.
    Remote paths and missing files are identified by their name only (the stage that reads
    them reports a missing file)."""
    p = Path(path)
    s = str(path)
    if s.startswith("/vsi") or "://" in s or not p.exists():
        return {"path": s}
    if p.is_dir():
        meta = p / "bundle.json"
        if meta.exists():
            return {"bundle": _file(meta)}
        return {f.relative_to(p).as_posix(): _file(f) for f in sorted(p.rglob("*")) if f.is_file()}
    fp = {"file": _file(p)}
    if p.suffix.lower() == ".shp":
        for ext in SHP_SIDECARS:
            side = p.with_suffix(ext)
            if side.exists():
                fp[ext] = _file(side)
    return fp


def stage_hash(name: str, params: Any, inputs: list, upstream: list[str]) -> str:
    doc = {
        "stage": name,
        "params": params,
        "inputs": [fingerprint(i) for i in inputs],
        "upstream": upstream,
    }
    blob = json.dumps(doc, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


class Manifest:
    """The record of finished stages in an output folder."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / MANIFEST
        self.stages: dict[str, dict] = {}
        if self.path.exists():
            try:
                doc = json.loads(self.path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                doc = {}  # damaged: every stage runs again
            if doc.get("format") == FORMAT:
                self.stages = doc.get("stages", {})

    def current(self, name: str, h: str) -> dict | None:
        """The stage's record if it ran with hash ``h`` and its outputs are all there."""
        rec = self.stages.get(name)
        if not rec or rec.get("hash") != h:
            return None
        if not all(Path(o).exists() for o in rec.get("outputs", [])):
            return None
        return rec

    def forget(self, name: str) -> None:
        """The stage is about to rewrite its outputs: its record no longer holds."""
        if self.stages.pop(name, None) is not None:
            self.save()

    def record(self, name: str, h: str, outputs: list[str], seconds: float, result: dict) -> dict:
        rec = {"hash": h, "outputs": outputs, "seconds": round(seconds, 3), "result": result}
        self.stages[name] = rec
        self.save()
        return rec

    def save(self) -> None:
        doc = json.dumps({"format": FORMAT, "stages": self.stages}, indent=2, default=str)
        atomic_write(self.path, doc.encode())  # an OSError: one line naming the file
