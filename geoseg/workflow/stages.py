"""What each workflow stage does: thin calls into geoseg's APIs on the run's one client.

Every stage function takes the run context and its resolved parameters and returns the files
it wrote (checked for existence before a stage is skipped) and a JSON-able result, which the
manifest keeps so that later stages and the report can use it when this stage is skipped.
Stages overwrite their own earlier outputs: everything they write lies inside the workflow's
output folder.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geoseg.errors import GeoSegError
from geoseg.io.files import clean


@dataclass
class Context:
    client: Callable[[], Any]  # the run's distributed.Client, started on first use
    gpus: bool = False
    progress: bool = False
    results: dict[str, dict] = field(default_factory=dict)  # stage -> result (run or kept)
    status: dict[str, dict] = field(default_factory=dict)  # stage -> {status, seconds}


@dataclass
class Stage:
    name: str
    run: Callable[[Context], tuple[list[str], dict]]
    params: dict  # hashed with the inputs' fingerprints and the upstream stages' hashes
    inputs: list[str] = field(default_factory=list)
    upstream: list[str] = field(default_factory=list)


def train_stage(ctx: Context, cfg) -> tuple[list[str], dict]:
    """``cfg``: a resolved TrainConfig whose output lies in the workflow's folder."""
    from geoseg.train.train import train

    res = train(cfg, progress=ctx.progress)
    out = Path(res.bundle)
    return [str(out / "bundle.json"), str(out / "weights.safetensors")], {
        "bundle": str(out),
        "best_epoch": res.best_epoch,
        "best_miou": res.best_miou,
        "epochs_run": res.epochs_run,
        "stopped_early": res.stopped_early,
        "seconds": round(res.seconds, 1),
        "history_csv": str(res.history_csv),
        "curves_png": str(res.curves_png),
    }


def predict_stage(ctx: Context, scene, model: str, out: Path, **options) -> tuple[list[str], dict]:
    """``options``: :class:`~geoseg.engine.options.PredictOptions` fields."""
    from geoseg.engine.predict import predict

    options.setdefault("device", "cuda" if ctx.gpus else "auto")
    res = predict(
        scene, model, out, client=ctx.client(), overwrite=True, progress=ctx.progress, **options
    )
    return list(res.outputs.values()), res.figures(scene)


def vectorize_stage(
    ctx: Context,
    raster: str,
    outputs: list[Path],
    *,
    mmu: float,
    simplify: float,
    connectivity: int,
    attrs: dict,
    block: int | None,
) -> tuple[list[str], dict]:
    import pyogrio

    from geoseg.vector.vectorize import vectorize

    written, counts = {}, {}
    for out in outputs:
        path = vectorize(
            raster,
            out,
            mmu=mmu,
            simplify=simplify,
            connectivity=connectivity,
            attrs=attrs,
            **({"block": block} if block else {}),
            client=ctx.client(),
            overwrite=True,
        )
        written[path.suffix.lstrip(".")] = str(path)
        counts[path.suffix.lstrip(".")] = int(pyogrio.read_info(path, layer=path.stem)["features"])
    return list(written.values()), {
        "outputs": written,
        "polygons": counts,
        "megapixels": _megapixels(raster),
    }


def instances_stage(
    ctx: Context, raster: str, out: Path, polygons: Path | None, **options
) -> tuple[list[str], dict]:
    """``options``: :class:`~geoseg.instances.options.InstanceOptions` fields."""
    from geoseg.instances.label import instances

    res = instances(raster, out, polygons=polygons, client=ctx.client(), overwrite=True, **options)
    files = [res.path, res.summary] + ([res.polygons] if res.polygons else [])
    return files, {
        "path": res.path,
        "polygons": res.polygons,
        "summary": res.summary,
        "count": res.total,
        "counts": res.counts,
        "areas": res.areas,
    }


def evaluate_stage(
    ctx: Context,
    raster: str,
    reference: str,
    out: Path,
    *,
    field: str | None,
    layer: str | None,
    class_map: dict | None,
    design: str,
    block: int,
) -> tuple[list[str], dict]:
    from geoseg.accuracy.evaluate import evaluate

    rep = evaluate(
        raster,
        reference,
        out,
        client=ctx.client(),
        block=block,
        class_map=class_map,
        overwrite=True,
        field=field,
        layer=layer,
        design=design,
    )
    return [rep["files"]["report_json"]], {
        "report_json": rep["files"]["report_json"],
        "overall_accuracy": rep["overall"]["overall_accuracy"],
        "mean_iou": rep["overall"]["mean_iou"],
        "megapixels": rep["run"]["megapixels"],
    }


def change_stage(
    ctx: Context,
    before: str,
    after: str,
    out: Path,
    *,
    probabilities: tuple,
    dates: tuple,
    classes: str | None,
    threshold: float,
    mmu: float,
    grid: str | None,
    reference: str | None,
    reference_field: str | None,
    design: str,
    block: int,
) -> tuple[list[str], dict]:
    from geoseg.change.change import change

    res = change(
        before,
        after,
        out,
        threshold=threshold,
        mmu=mmu,
        grid=grid,
        client=ctx.client(),
        block=block,
        reference=reference,
        reference_field=reference_field,
        design=design,
        before_probabilities=probabilities[0],
        after_probabilities=probabilities[1],
        classes=classes,
        dates=dates,
        overwrite=True,
    )
    return [res.outputs["report_json"]], {
        "report_json": res.outputs["report_json"],
        "outputs": res.outputs,
        "changed_ha": res.changed_ha,
        "uncertain_ha": res.uncertain_ha,
        "megapixels": res.report["run"]["megapixels"],
        "seconds": round(res.seconds, 3),
    }


def baseline_stage(ctx: Context, config, out: Path) -> tuple[list[str], dict]:
    from geoseg.baseline.obia import run_obia  # written alongside; imported only when used

    res = run_obia(config, out, client=ctx.client(), overwrite=True)
    return [str(res.map_path)], {
        "map_path": str(res.map_path),
        "seconds": res.seconds,
        "report": clean(_plain(res.report)),
    }


def heldout_stage(ctx: Context, config, out: Path) -> tuple[list[str], dict]:
    from geoseg.baseline.heldout import write_heldout_reference

    paths = write_heldout_reference(config, out, overwrite=True)
    if len(paths) != 1:
        raise GeoSegError(
            f"the baseline maps {len(paths)} scenes: a workflow compares one "
            "(choose it with map: in the baseline config)"
        )
    return [str(paths[0])], {"path": str(paths[0])}


def compare_stage(
    ctx: Context,
    maps: list[str],
    reference: str,
    out: Path,
    *,
    names: list[str],
    classes: str | None,
    field: str | None,
    layer: str | None,
    class_map: dict | None,
    block: int,
) -> tuple[list[str], dict]:
    from geoseg.compare.compare import compare

    res = compare(
        maps,
        reference,
        out,
        names=names,
        classes=classes,
        field=field,
        layer=layer,
        class_map=class_map,
        block=block,
        client=ctx.client(),
        overwrite=True,
    )
    return [str(out)], {"compare": clean(_plain(res)), "out": str(out)}


def _plain(obj: Any) -> Any:
    """JSON-able: paths as strings, dataclass-like objects as their dicts."""
    return json.loads(
        json.dumps(
            obj, default=lambda o: str(o) if isinstance(o, Path) else getattr(o, "__dict__", str(o))
        )
    )


def _megapixels(raster: str) -> float | None:
    from geoseg.io.scene import open_raster

    with contextlib.suppress(Exception), open_raster(raster) as src:
        return src.height * src.width / 1e6
    return None
