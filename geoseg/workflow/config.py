"""Workflow configuration: one YAML, safe-loaded and validated (unknown keys are errors).

Input paths are relative to the workflow file (a dict passed from Python: the current
folder); output paths (every ``out`` / ``outputs`` key) are relative to the workflow's
``output`` folder and must stay inside it. A section that is present adds its stage:
train -> predict -> vectorize / instances / evaluate, change (two dates), baseline -> compare,
report.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from geoseg.accuracy.options import EvaluateOptions
from geoseg.change.options import ChangeOptions
from geoseg.core.options import option
from geoseg.engine.options import PredictOptions
from geoseg.errors import GeoSegError
from geoseg.instances.options import InstanceOptions
from geoseg.vector.options import VectorizeOptions
from geoseg.workflow.messages import describe_errors


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class ClusterSection(_Strict):
    """Where the stages run; results do not depend on it (not part of any stage's hash)."""

    workers: int | None = Field(None, ge=1)  # local cluster: worker processes (default: cores)
    scheduler: str | None = None  # an existing Dask scheduler, tcp://HOST:PORT
    gpus: bool = False  # dask-cuda: one worker per GPU
    threads_per_worker: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _one(self) -> ClusterSection:
        if self.scheduler and (self.workers or self.gpus):
            raise ValueError(
                "give scheduler (an existing cluster) or workers / gpus (a local one), not both"
            )
        return self


class TrainSection(_Strict):
    config: str  # a training YAML (see examples/train/); its `output` is replaced by `out`
    set: dict[str, Any] = Field(default_factory=dict)  # overrides, e.g. {training: {epochs: 5}}
    when: Literal["always", "missing"] = "always"  # missing: only if `model` has no bundle
    out: str = "model"


class PredictSection(PredictOptions):
    """``geoseg predict``'s options (:class:`~geoseg.engine.options.PredictOptions`), with
    the scene, the output and probabilities on by default (vectorize and the report use
    them)."""

    model_config = ConfigDict(extra="forbid", frozen=False, protected_namespaces=())
    scene: str | list[str]  # a raster, or single-band files stacked in order
    out: str = "landcover.tif"
    probabilities: bool = option(True, "Also write per-class probability and confidence COGs.")


class VectorizeSection(VectorizeOptions):
    """``geoseg vectorize``'s options (:class:`VectorizeOptions`) and the layers to write."""

    model_config = ConfigDict(extra="forbid", frozen=False, protected_namespaces=())
    outputs: list[str] = Field(default_factory=lambda: ["landcover.gpkg"], min_length=1)
    attrs: dict[str, str] = Field(default_factory=dict)
    # unset: vectorize's default (absent from the stage hash, as before this option class)
    block: int | None = Field(None, ge=64)


class InstancesSection(InstanceOptions):
    """``geoseg instances`` on the predicted map (:class:`InstanceOptions`), its outputs."""

    model_config = ConfigDict(extra="forbid", frozen=False, protected_namespaces=())
    out: str = "instances.tif"
    polygons: str | None = "instances.gpkg"  # one polygon per instance (null: none)


class EvaluateSection(EvaluateOptions):
    """``geoseg evaluate``'s options (:class:`EvaluateOptions`), the reference and the
    folder to write."""

    model_config = ConfigDict(extra="forbid", frozen=False, protected_namespaces=())
    reference: str  # a class raster, or polygons / points with a class field
    field: str | None = None
    layer: str | None = None
    class_map: dict[int, int] | None = None  # {reference id: map id}
    out: str = "accuracy"


class DateSection(_Strict):
    """One date of a change workflow: a class map, or a scene predicted with the model."""

    map: str | None = None
    scene: str | list[str] | None = None
    probabilities: str | None = None  # of `map` (default: <stem>_probabilities.tif beside it)
    date: str | None = None  # YYYY-MM-DD (default: from the file name)
    out: str | None = None  # where a predicted scene's map goes (default: <before|after>.tif)

    @field_validator("date", mode="before")
    @classmethod
    def _date(cls, v):
        return v.isoformat() if isinstance(v, dt.date) else v  # YAML reads 2020-08-31 as a date

    @model_validator(mode="after")
    def _one(self) -> DateSection:
        if (self.map is None) == (self.scene is None):
            raise ValueError("give map (a class raster) or scene (predicted with the model)")
        return self


class ChangeSection(ChangeOptions):
    """``geoseg change``'s options (:class:`ChangeOptions`), the two dates, the reference and
    the folder to write. A scene date is predicted by the workflow's own stage, so
    ``normalize`` and ``adapt`` (which need ``geoseg change --model``) stay at their
    defaults here."""

    model_config = ConfigDict(extra="forbid", frozen=False, protected_namespaces=())
    before: DateSection
    after: DateSection
    classes: str | None = None  # classes.json for class maps without a CLASSES tag
    reference: str | None = None
    reference_field: str | None = None
    out: str = "change"

    @model_validator(mode="after")
    def _no_model_options(self) -> ChangeSection:
        for name in ("normalize", "adapt"):
            if getattr(self, name) != type(self).model_fields[name].default:
                raise ValueError(
                    f"{name} applies to 'geoseg change --model', not to a workflow: the "
                    "workflow predicts scene dates in its own stages (leave it out)"
                )
        return self


class BaselineSection(_Strict):
    config: str | dict[str, Any]  # an OBIA config (geoseg baseline obia), file or inline
    out: str = "obia"


class CompareSection(_Strict):
    reference: str  # a class raster or vector reference, or heldout: the labels that the
    #                 baseline's training config held out (written to <output>/heldout.tif)
    names: list[str] | None = None  # default: deeplabv3plus, obia
    classes: str | None = None
    field: str | None = None
    layer: str | None = None
    class_map: dict[int, int] | None = None
    block: int = Field(2048, ge=64)
    out: str = "compare"


class ReportSection(_Strict):
    out: str = "report.html"
    title: str | None = None
    preview_px: int = Field(1024, ge=64, le=4096)  # longest side of the map previews


class WorkflowConfig(_Strict):
    name: str = "geoseg workflow"
    output: str  # the folder every product goes to
    cluster: ClusterSection = Field(default_factory=ClusterSection)
    model: str | None = None  # a model bundle folder
    train: TrainSection | None = None
    predict: PredictSection | None = None
    vectorize: VectorizeSection | None = None
    instances: InstancesSection | None = None
    evaluate: EvaluateSection | None = None
    change: ChangeSection | None = None
    baseline: BaselineSection | None = None
    compare: CompareSection | None = None
    report: ReportSection = Field(default_factory=ReportSection)

    @model_validator(mode="after")
    def _stages(self) -> WorkflowConfig:
        for key in ("vectorize", "instances", "evaluate", "compare"):
            if getattr(self, key) is not None and self.predict is None:
                raise ValueError(f"{key} works on the predicted map: add a predict section")
        if self.compare is not None and self.baseline is None:
            raise ValueError("compare needs a baseline section (the map to compare against)")
        scenes = self.change is not None and (
            self.change.before.scene is not None or self.change.after.scene is not None
        )
        if (self.predict is not None or scenes) and not (self.model or self.train):
            raise ValueError(
                "predicting needs a model: give model (a bundle folder) or a train section"
            )
        if self.train and self.train.when == "missing" and not self.model:
            raise ValueError(
                "train.when is 'missing' but there is no model to look for: "
                "give model, or remove 'when'"
            )
        if self.train and self.train.when == "always" and self.model:
            raise ValueError(
                "train (when: always) writes the model: remove 'model', or set "
                "train.when: missing to train only when it is absent"
            )
        if not any((self.predict, self.change, self.baseline, self.train)):
            raise ValueError("nothing to do: add a predict, change, baseline or train section")
        return self


def _is_remote(p: str) -> bool:
    return p.startswith("/vsi") or "://" in p


def input_path(p: str, base: Path) -> str:
    """An input path resolved against ``base`` (GDAL virtual paths and URLs as they are)."""
    if _is_remote(p):
        return p
    return os.path.normpath(base / os.path.expanduser(p))


def output_path(p: str, out_dir: Path, key: str) -> Path:
    """``p`` inside the output folder, or a one-line error naming ``key``."""
    if _is_remote(p):
        raise GeoSegError(
            f"workflow: {key}: {p!r} is not a local path: outputs go inside the "
            f"output folder {out_dir}"
        )
    q = Path(os.path.normpath(out_dir / os.path.expanduser(p)))
    if q == out_dir or not q.is_relative_to(out_dir):
        raise GeoSegError(
            f"workflow: {key}: {p!r} is outside the output folder {out_dir}: "
            "give a path inside it (relative to 'output')"
        )
    # compared again with symbolic links followed: a link inside the folder may lead out of it
    real, real_dir = q.resolve(), out_dir.resolve()
    if real == real_dir or not real.is_relative_to(real_dir):
        raise GeoSegError(
            f"workflow: {key}: {p!r} leads outside the output folder {out_dir} through a "
            f"symbolic link (to {real}): give a path inside it without links that lead out"
        )
    return q


def load_workflow(
    source: str | os.PathLike | dict, overrides: dict | None = None
) -> tuple[WorkflowConfig, Path, str]:
    """The validated config, the folder its relative input paths start from, and a label for
    messages. ``overrides``: nested keys (``geoseg run --set``) merged in before validation."""
    if isinstance(source, dict):
        data = merge_keys(source, overrides) if overrides else source
        return parse(data, "workflow"), Path.cwd(), "workflow"
    path = Path(source)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise GeoSegError(
            f"workflow {path} does not exist: pass a workflow YAML such as workflows/landcover.yaml"
        ) from None
    except IsADirectoryError:
        raise GeoSegError(f"workflow {path} is a folder: pass a workflow YAML file") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise GeoSegError(
            f"workflow {path} is not valid YAML{at}: {getattr(e, 'problem', None) or e}"
        ) from None
    where = f"workflow {path}"
    if overrides and isinstance(raw, dict):
        raw, where = merge_keys(raw, overrides), f"{where} (with --set)"
    return parse(raw, where), path.resolve().parent, where


def merge_keys(a: dict, b: dict) -> dict:
    """``a`` with ``b``'s keys in, nested mappings merged key by key (``a`` is not changed)."""
    out = dict(a)
    for k, v in b.items():
        sub = out.get(k)
        out[k] = merge_keys(sub, v) if isinstance(v, dict) and isinstance(sub, dict) else v
    return out


def parse(data: Any, where: str) -> WorkflowConfig:
    """The validated config; every key found wrong is reported, one line each."""
    if not isinstance(data, dict):
        raise GeoSegError(
            f"{where}: expected a mapping of sections (output, model, predict, "
            f"...), got {type(data).__name__}"
        )
    try:
        return WorkflowConfig.model_validate(data)
    except ValidationError as e:
        lines = describe_errors(e, WorkflowConfig, where)
        if len(lines) == 1:
            raise GeoSegError(lines[0]) from None
        listed = "\n".join(f"  {line}" for line in lines)
        raise GeoSegError(f"{where}: {len(lines)} errors, fix them all:\n{listed}") from None
