"""``geoseg run WORKFLOW.yaml``: run a workflow's stages in order, skipping current ones.

All stages of a run share one Dask client: the one passed in (any ``distributed.Client``:
dask-jobqueue, dask-kubernetes, ...), else one made from the ``cluster`` section, started only
when a stage needs it, so re-running a finished workflow starts no cluster at all.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from geoseg.errors import GeoSegError
from geoseg.workflow.config import WorkflowConfig, input_path, load_workflow, output_path
from geoseg.workflow.manifest import Manifest, stage_hash
from geoseg.workflow.plan import make_plan
from geoseg.workflow.stages import Context, Stage
from geoseg.workflow.summary import products, report_stage


@dataclass
class StageRun:
    name: str
    ran: bool  # False: its outputs were current and it was skipped
    seconds: float  # this run's time if it ran, else the time recorded when it did
    result: dict


@dataclass
class WorkflowResult:
    output: Path
    stages: list[StageRun]
    products: dict[str, str]  # name -> path
    seconds: float
    notes: list[str]

    @property
    def ran(self) -> list[str]:
        return [s.name for s in self.stages if s.ran]

    @property
    def skipped(self) -> list[str]:
        return [s.name for s in self.stages if not s.ran]

    @property
    def report(self) -> Path | None:
        p = self.products.get("HTML report")
        return Path(p) if p else None


def run(
    workflow: str | os.PathLike | dict,
    *,
    force: bool = False,
    client=None,
    out: str | os.PathLike | None = None,
    progress: bool = False,
    overrides: dict | None = None,
) -> WorkflowResult:
    """Run the workflow (a YAML path, or a dict whose relative paths start from the current
    folder). ``force``: run every stage even if current. ``client``: run on this
    ``distributed.Client`` instead of the ``cluster`` section's. ``out``: another output
    folder than the workflow's ``output``. ``progress``: stage lines and progress bars on
    stderr. ``overrides``: nested keys merged into the workflow (``geoseg run --set``)."""
    t0 = time.perf_counter()
    cfg, out_dir, plan = _planned(workflow, out, overrides)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GeoSegError(f"cannot create the output folder {out_dir} ({e.strerror})") from None
    say = _Say(progress)
    for note in plan.notes:
        say.note(note)
    manifest = Manifest(out_dir)
    runs: list[StageRun] = []
    with _LazyClient(cfg, client) as lazy:
        ctx = Context(client=lazy.get, gpus=cfg.cluster.gpus, progress=progress)
        hashes: dict[str, str] = {}
        for stage in plan.stages:
            h = stage_hash(
                stage.name, stage.params, stage.inputs, [hashes[u] for u in stage.upstream]
            )
            hashes[stage.name] = h
            rec = None if force else manifest.current(stage.name, h)
            if rec is not None:
                ctx.results[stage.name] = rec["result"]
                ctx.status[stage.name] = {"status": "current (kept)", "seconds": rec["seconds"]}
                runs.append(StageRun(stage.name, False, rec["seconds"], rec["result"]))
                say.skipped(stage.name)
                continue
            manifest.forget(stage.name)
            say.start(stage.name)
            t = time.perf_counter()
            outputs, result = stage.run(ctx)
            seconds = time.perf_counter() - t
            if lazy.start_seconds is not None:  # the cluster started within this stage
                what = (
                    "connecting to the cluster"
                    if cfg.cluster.scheduler
                    else "starting the local Dask cluster"
                )
                plan.notes.append(
                    f"{what} took {lazy.start_seconds:.1f} s, counted in the "
                    f"{stage.name} stage's time"
                )
                lazy.start_seconds = None
            manifest.record(stage.name, h, outputs, seconds, result)
            ctx.results[stage.name] = result
            ctx.status[stage.name] = {"status": "ran", "seconds": round(seconds, 3)}
            runs.append(StageRun(stage.name, True, seconds, result))
            say.done(stage.name, seconds)
    found = products(ctx.results)
    collection = _collection(out_dir, cfg.name)
    if collection is not None:  # listed too, before the report (which stays last)
        report = found.pop("HTML report", None)
        found["STAC collection"] = str(collection)
        if report is not None:
            found["HTML report"] = report
    return WorkflowResult(out_dir, runs, found, time.perf_counter() - t0, plan.notes)


@dataclass
class PlannedStage:
    name: str
    runs: bool  # False: current, would be skipped
    why: str


def dry_run(
    workflow: str | os.PathLike | dict,
    *,
    force: bool = False,
    out: str | os.PathLike | None = None,
    overrides: dict | None = None,
) -> tuple[Path, list[PlannedStage], list[str]]:
    """What :func:`run` would do, decided exactly as it decides, with nothing run or written:
    the output folder, each stage with whether it would run and why, and the plan's notes."""
    _, out_dir, plan = _planned(workflow, out, overrides)
    manifest = Manifest(out_dir) if out_dir.is_dir() else None
    hashes: dict[str, str] = {}
    stages: list[PlannedStage] = []
    running: set[str] = set()
    for stage in plan.stages:
        h = stage_hash(stage.name, stage.params, stage.inputs, [hashes[u] for u in stage.upstream])
        hashes[stage.name] = h
        rec = manifest.stages.get(stage.name) if manifest else None
        if force:
            why = "--force runs every stage"
        elif rec is None:
            why = "it has not run in this output folder"
        elif rec.get("hash") != h:
            changed = [u for u in stage.upstream if u in running]
            why = (
                f"the {', '.join(changed)} stage{'s' if len(changed) > 1 else ''} it reads "
                "from will run"
                if changed
                else "its parameters or input files changed since it ran"
            )
        elif manifest.current(stage.name, h) is None:
            gone = next(o for o in rec.get("outputs", []) if not Path(o).exists())
            why = f"its output {gone} is missing"
        else:
            stages.append(PlannedStage(stage.name, False, "current: same inputs and parameters"))
            continue
        running.add(stage.name)
        stages.append(PlannedStage(stage.name, True, why))
    return out_dir, stages, plan.notes


def _planned(workflow, out, overrides):
    """The validated config, the output folder and the plan (the report stage last)."""
    cfg, base, _ = load_workflow(workflow, overrides)
    out_dir = Path(os.path.abspath(out if out is not None else input_path(cfg.output, base)))
    if out_dir.exists() and not out_dir.is_dir():
        raise GeoSegError(f"workflow output {out_dir} is a file: give a folder as 'output'")
    plan = make_plan(cfg, base, out_dir)
    report_html = output_path(cfg.report.out, out_dir, "report.out")
    wf_path = None if isinstance(workflow, dict) else str(Path(workflow).resolve())
    params = cfg.model_dump(mode="json", exclude={"cluster", "output"}, exclude_none=True)
    plan.stages.append(
        Stage(
            "report",
            partial(
                report_stage,
                out_html=report_html,
                title=cfg.report.title or cfg.name,
                workflow=wf_path,
                out_dir=out_dir,
                model=plan.model,
                inputs=plan.inputs,
                parameters={k: _flat_params(v) for k, v in params.items() if isinstance(v, dict)},
                notes=plan.notes,
                preview_px=cfg.report.preview_px,
            ),
            {
                "title": cfg.report.title or cfg.name,
                "out": str(report_html),
                "preview_px": cfg.report.preview_px,
                "params": params,
                "inputs": plan.inputs,
            },
            upstream=[s.name for s in plan.stages],
        )
    )
    return cfg, out_dir, plan


def _collection(out_dir: Path, name: str) -> Path | None:
    """A STAC Collection of every raster product's Item in the output folder (None: none)."""
    from geoseg.io.stac import STAC_SUFFIX, write_collection

    items = sorted(out_dir.rglob(f"*{STAC_SUFFIX}"))
    if not items:
        return None
    return write_collection(out_dir, items, title=name, description=f"geoseg workflow: {name}")


def _flat_params(d: dict, prefix: str = "") -> dict:
    """Nested section parameters as dotted keys (for the report's parameter tables)."""
    out: dict = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flat_params(v, f"{key}."))
        else:
            out[key] = v
    return out


class _LazyClient:
    """The run's client: the one given, or one from the cluster section on first use."""

    def __init__(self, cfg: WorkflowConfig, client):
        self.cfg, self.client = cfg, client
        self.start_seconds: float | None = None  # when this run started the cluster
        self.stack = contextlib.ExitStack()

    def get(self):
        if self.client is None:
            from geoseg.cluster.setup import ClusterOptions, connect

            c = self.cfg.cluster
            opts = ClusterOptions(
                workers=c.workers,
                scheduler=c.scheduler,
                gpus=c.gpus,
                threads_per_worker=c.threads_per_worker,
            )
            t0 = time.perf_counter()
            self.client = self.stack.enter_context(connect(opts))
            self.start_seconds = time.perf_counter() - t0
        return self.client

    def __enter__(self) -> _LazyClient:
        return self

    def __exit__(self, *exc) -> None:
        self.stack.close()


class _Say:
    """One line per stage on stderr (when asked for)."""

    def __init__(self, on: bool):
        self.con = None
        if on:
            from rich.console import Console

            self.con = Console(stderr=True, highlight=False)

    def note(self, text: str) -> None:
        if self.con:
            self.con.print(f"[yellow]note:[/] {text}")

    def start(self, name: str) -> None:
        if self.con:
            self.con.print(f"[bold]{name}[/] ...")

    def done(self, name: str, seconds: float) -> None:
        if self.con:
            self.con.print(f"[bold]{name}[/] [green]done[/] ({seconds:.1f} s)")

    def skipped(self, name: str) -> None:
        if self.con:
            self.con.print(f"[bold]{name}[/] current, skipped")
