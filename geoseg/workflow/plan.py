"""From a validated workflow config to the ordered list of stages, every path resolved.

Everything that can be checked without doing the work is checked here (input files exist,
outputs stay inside the output folder, the training config and its overrides are valid), so a
mistake is reported before a long stage runs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from geoseg.errors import GeoSegError
from geoseg.io.vector import vector_format
from geoseg.workflow import stages as st
from geoseg.workflow.config import WorkflowConfig, input_path, output_path

HELDOUT = "heldout"  # compare.reference: the labels the baseline's training config held out


@dataclass
class Plan:
    stages: list[st.Stage]
    model: str | None  # the bundle predictions use
    inputs: dict[str, str] = field(default_factory=dict)  # shown in the report
    notes: list[str] = field(default_factory=list)


def make_plan(cfg: WorkflowConfig, base: Path, out_dir: Path) -> Plan:
    def inp(p: str, key: str, must_exist: bool = True) -> str:
        q = input_path(p, base)
        if must_exist and not q.startswith("/vsi") and "://" not in q and not Path(q).exists():
            raise GeoSegError(f"workflow: {key}: {q} does not exist")
        return q

    def outp(p: str, key: str) -> Path:
        return output_path(p, out_dir, key)

    def vout(p: str, key: str) -> Path:  # a vector layer: its suffix names its format
        q = outp(p, key)
        try:
            vector_format(q)
        except GeoSegError as e:
            raise GeoSegError(f"workflow: {key}: {e}") from None
        return q

    plan = Plan([], None)
    add = plan.stages.append
    model_stage: list[str] = []
    if cfg.model:
        plan.model = inp(cfg.model, "model", must_exist=cfg.train is None)
    if cfg.train and (
        cfg.train.when == "always" or not (Path(plan.model or "") / "bundle.json").exists()
    ):
        tcfg, files = _train_config(cfg.train, base, outp(cfg.train.out, "train.out"))
        if cfg.train.when == "missing":
            plan.notes.append(
                f"model {plan.model} not found: using one trained from "
                f"{cfg.train.config} (with train.set) instead"
            )
        params = tcfg.model_dump(mode="json")
        if not params["keep_checkpoint"]:  # at its default: stage hashes as before it existed
            del params["keep_checkpoint"]
        add(st.Stage("train", partial(st.train_stage, cfg=tcfg), params, files))
        plan.model, model_stage = tcfg.output, ["train"]
        plan.inputs["training config"] = inp(cfg.train.config, "train.config")
    if plan.model:
        plan.inputs["model"] = plan.model
    model_inputs = [] if model_stage else [plan.model]

    def predict(name: str, scene, out: Path, **kw) -> None:
        if not model_stage:  # the bundle is there: its bands checked now, not when it runs
            _check_bands(scene, plan.model, name)
        # normalize, device and strict hashed only where not at their values before they
        # existed, so that workflows written before them keep their stage hashes
        hashed = _without(kw, normalize="bundle", device="auto", strict=False)
        params = {"scene": scene, "model": plan.model, "out": str(out), **hashed}
        add(
            st.Stage(
                name,
                partial(st.predict_stage, scene=scene, model=plan.model, out=out, **kw),
                params,
                _flat(scene) + model_inputs,
                model_stage,
            )
        )

    if cfg.predict:
        p = cfg.predict
        scene = _scene(p.scene, inp, "predict.scene")
        plan.inputs["scene"] = ", ".join(_flat(scene))
        cog = outp(p.out, "predict.out")
        predict("predict", scene, cog, **p.model_dump(exclude={"scene", "out"}))
        if cfg.vectorize:
            v = cfg.vectorize
            outs = [vout(o, f"vectorize.outputs[{i}]") for i, o in enumerate(v.outputs)]
            kw = v.model_dump(exclude={"outputs"})
            add(
                st.Stage(
                    "vectorize",
                    partial(st.vectorize_stage, raster=str(cog), outputs=outs, **kw),
                    {**kw, "raster": str(cog), "outputs": [str(o) for o in outs]},
                    upstream=["predict"],
                )
            )
        if cfg.instances:
            i = cfg.instances
            kw = i.model_dump(exclude={"out", "polygons"})
            hashed = _without(kw, split=True, border_threshold=0.5, grow=3)
            ids = outp(i.out, "instances.out")
            poly = vout(i.polygons, "instances.polygons") if i.polygons else None
            add(
                st.Stage(
                    "instances",
                    partial(st.instances_stage, raster=str(cog), out=ids, polygons=poly, **kw),
                    {**hashed, "raster": str(cog), "out": str(ids), "polygons": poly and str(poly)},
                    upstream=["predict"],
                )
            )
        if cfg.evaluate:
            e = cfg.evaluate
            ref = inp(e.reference, "evaluate.reference")
            plan.inputs["reference"] = ref
            kw = e.model_dump(exclude={"reference", "out"})
            out = outp(e.out, "evaluate.out")
            add(
                st.Stage(
                    "evaluate",
                    partial(st.evaluate_stage, raster=str(cog), reference=ref, out=out, **kw),
                    {**kw, "raster": str(cog), "reference": ref, "out": str(out)},
                    [ref],
                    ["predict"],
                )
            )
    if cfg.change:
        _change(cfg, plan, inp, outp, predict)
    if cfg.baseline:
        b = cfg.baseline
        conf = b.config if isinstance(b.config, dict) else inp(b.config, "baseline.config")
        plan.inputs["baseline config"] = conf if isinstance(conf, str) else "(inline)"
        out = outp(b.out, "baseline.out")
        add(
            st.Stage(
                "baseline",
                partial(st.baseline_stage, config=conf, out=out),
                {"config": conf, "out": str(out)},
                _referenced(conf, base),
            )
        )
    if cfg.compare:
        _compare(cfg, plan, inp, outp)
    return plan


def _compare(cfg: WorkflowConfig, plan: Plan, inp, outp) -> None:
    """Compare the predicted map with the baseline's, on a reference file or, for
    ``reference: heldout``, on the labels the training config held out (a stage of its own)."""
    c = cfg.compare
    classes = c.classes and inp(c.classes, "compare.classes")
    out = outp(c.out, "compare.out")
    kw = {
        **c.model_dump(exclude={"reference", "out", "classes"}),
        "classes": classes,
        "names": c.names or ["deeplabv3plus", "obia"],
    }
    cog = str(outp(cfg.predict.out, "predict.out"))
    upstream, files = ["predict", "baseline"], [classes] if classes else []
    if c.reference == HELDOUT:
        baseline = next(s for s in plan.stages if s.name == "baseline")
        conf = baseline.params["config"]
        ref = str(outp("heldout.tif", "compare.reference"))
        plan.inputs["reference"] = "labels held out by the training config"
        plan.stages.append(
            st.Stage(
                "heldout",
                partial(st.heldout_stage, config=conf, out=Path(ref)),
                {"config": conf, "out": ref},
                baseline.inputs,
            )
        )
        upstream.append("heldout")
    else:
        ref = inp(c.reference, "compare.reference")
        plan.inputs["reference"] = ref
        files.append(ref)

    def run_compare(ctx: st.Context) -> tuple[list[str], dict]:
        maps = [cog, ctx.results["baseline"]["map_path"]]
        return st.compare_stage(ctx, maps, ref, out, **kw)

    plan.stages.append(
        st.Stage("compare", run_compare, {**kw, "reference": ref, "out": str(out)}, files, upstream)
    )


def _change(cfg: WorkflowConfig, plan: Plan, inp, outp, predict) -> None:
    c = cfg.change
    maps, probs, files, upstream = [], [], [], []
    for which in ("before", "after"):
        d = getattr(c, which)
        if d.scene is not None:
            scene = _scene(d.scene, inp, f"change.{which}.scene")
            plan.inputs[f"{which} scene"] = ", ".join(_flat(scene))
            out = outp(d.out or f"{which}.tif", f"change.{which}.out")
            predict(
                f"predict_{which}",
                scene,
                out,
                block=c.block,
                tile=None,
                overlap=None,
                probabilities=True,
                batch_size=None,
                torch_threads=1,
                tta="none",
            )
            maps.append(str(out))
            probs.append(None)
            upstream.append(f"predict_{which}")
        else:
            m = inp(d.map, f"change.{which}.map")
            plan.inputs[f"{which} map"] = m
            prob = d.probabilities and inp(d.probabilities, f"change.{which}.probabilities")
            sibling = Path(m).with_name(f"{Path(m).stem}_probabilities.tif")
            files += [m, prob or str(sibling)] if (prob or sibling.exists()) else [m]
            maps.append(m)
            probs.append(prob)
    classes = c.classes and inp(c.classes, "change.classes")
    ref = c.reference and inp(c.reference, "change.reference")
    grid = c.grid if c.grid in (None, "before", "after") else inp(c.grid, "change.grid")
    files += [x for x in (classes, ref) if x] + (
        [grid] if grid not in (None, "before", "after") else []
    )
    out = outp(c.out, "change.out")
    kw = {
        "probabilities": tuple(probs),
        "dates": (c.before.date, c.after.date),
        "classes": classes,
        "threshold": c.threshold,
        "mmu": c.mmu,
        "grid": grid,
        "reference": ref,
        "reference_field": c.reference_field,
        "design": c.design,
        "block": c.block,
    }
    plan.stages.append(
        st.Stage(
            "change",
            partial(st.change_stage, before=maps[0], after=maps[1], out=out, **kw),
            {**kw, "maps": maps, "out": str(out)},
            files,
            upstream,
        )
    )


def _check_bands(scene, model: str | None, stage: str) -> None:
    """The scene holds the bands the bundle reads (local files; remote ones when they run)."""
    paths = _flat(scene)
    if not model or any(p.startswith("/vsi") or "://" in p or p.endswith(".json") for p in paths):
        return
    from geoseg.io.scene import Scene
    from geoseg.model.bundle import read_meta

    try:
        Scene.of(scene).check_bands(read_meta(model).bands)
    except GeoSegError as e:
        raise GeoSegError(f"workflow: {stage} stage: {e}") from None


def _scene(scene, inp, key: str):
    if isinstance(scene, list):
        return [inp(s, f"{key}[{i}]") for i, s in enumerate(scene)]
    return inp(scene, key)


def _flat(x) -> list[str]:
    return list(x) if isinstance(x, list) else [x]


def _merge(a: dict, b: dict) -> dict:
    out = copy.deepcopy(a)
    for k, v in b.items():
        out[k] = (
            _merge(out[k], v)
            if isinstance(v, dict) and isinstance(out.get(k), dict)
            else copy.deepcopy(v)
        )
    return out


def _train_config(t, base: Path, out: Path):
    """The training config with ``train.set`` merged in and its bundle written to ``out``;
    and the files it reads (for the stage's hash)."""
    from geoseg.train.config import parse_config, resolve

    path = Path(input_path(t.config, base))
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise GeoSegError(f"workflow: train.config: {path} does not exist") from None
    except yaml.YAMLError as e:
        raise GeoSegError(f"workflow: train.config: {path} is not valid YAML ({e})") from None
    if not isinstance(raw, dict):
        raise GeoSegError(f"workflow: train.config: {path} is not a mapping of keys")
    given = _merge(raw, t.set)
    given.update(output=str(out), checkpoint_dir=str(out / "checkpoint"))
    cfg = resolve(parse_config(given, f"training config {path} (with train.set)"), path.parent)
    cfg._given = given  # provenance: the config as the workflow gave it
    files = [str(path)]
    for s in cfg.scenes:
        files += _flat(s.image) + ([s.labels] if s.labels else [])
    if isinstance(cfg.classes, str):
        files.append(cfg.classes)
    if cfg.model.encoder_weights:
        files.append(cfg.model.encoder_weights)
    return cfg, files


def _referenced(conf: Any, base: Path) -> list[str]:
    """A config file and the existing files its string values name (relative to it)."""
    if isinstance(conf, str):
        try:
            doc = yaml.safe_load(Path(conf).read_text())
        except (OSError, yaml.YAMLError):
            return [conf]
        return [conf, *_referenced_in(doc, Path(conf).parent)]
    return _referenced_in(conf, base)


def _referenced_in(doc: Any, base: Path) -> list[str]:
    found: list[str] = []
    if isinstance(doc, dict):
        for v in doc.values():
            found += _referenced_in(v, base)
    elif isinstance(doc, list):
        for v in doc:
            found += _referenced_in(v, base)
    elif isinstance(doc, str) and 0 < len(doc) < 4096:
        q = Path(input_path(doc, base))
        if q.is_file():
            found.append(str(q))
    return found


def _without(kw: dict, **former) -> dict:
    """``kw`` for a stage's hash: options at the value the stage had before they existed left
    out, so that workflows written before them keep their stage hashes."""
    return {k: v for k, v in kw.items() if not (k in former and v == former[k])}
