"""``geoseg evaluate --instances``: panoptic quality of a class map's instances against a
reference class raster on the same grid, whose instances are the connected components of its
thing classes (stated in the report). Reference components below ``reference_min_pixels`` are
void, as the PQ paper treats void and crowd regions: they are no instance to find, and a
predicted instance mostly (> 50 %) on void or unlabelled pixels is no false positive (the
Dubai labels' colour fringes make half their Building components 1-4 px specks).

Both maps' instances come from :func:`geoseg.instances.label.instances` (the same seam
pass, so an object cut by blocks counts once); one task per block then counts the overlaps of
predicted and reference instances and the class confusion, summed on the client into PQ, SQ,
RQ, precision, recall, F1 at IoU 0.5 and the count error per thing class
(:mod:`geoseg.core.panoptic`), and PQ per stuff class.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from geoseg.cluster.setup import ClusterOptions, connect
from geoseg.cluster.tasks import name_windows, run_tasks
from geoseg.core import panoptic
from geoseg.core.grid import Window
from geoseg.errors import GeoSegError
from geoseg.instances.blocks import read_window
from geoseg.instances.label import instances
from geoseg.instances.options import InstanceOptions
from geoseg.io.classmap import ClassMap
from geoseg.io.files import atomic_write, csv_bytes


def overlap_task(
    pred_ids: str, ref_ids: str, pred: ClassMap, ref: ClassMap, thing: np.ndarray, w: Window
) -> dict:
    """Instance overlaps and the class confusion (reference rows x map columns) of block w;
    ``thing``: per class index, whether it is a thing class (its pixels without a reference id
    are void)."""
    p_idx, _ = pred.read_index(w)
    r_idx, _ = ref.read_index(w)
    valid = r_idx >= 0
    r_ids = read_window(ref_ids, w)
    counted = valid & ~(thing[np.maximum(r_idx, 0)] & (r_ids == 0))
    counts = panoptic.overlaps(read_window(pred_ids, w), r_ids, counted)
    both = valid & (p_idx >= 0)
    n = pred.n
    counts["matrix"] = np.bincount(
        r_idx[both].astype(np.int64) * n + p_idx[both], minlength=n * n
    ).reshape(n, n)
    return counts


def evaluate_instances(
    classmap: str | Path,
    reference: str | Path,
    out_dir: str | Path,
    options: InstanceOptions | None = None,
    *,
    classes: str | Path | None = None,
    client=None,
    workers: int | None = None,
    scheduler: str | None = None,
    overwrite: bool = False,
    reference_min_pixels: int = 1,
    **changes,
) -> dict:
    """Write ``instances.json`` and ``instances.csv`` (and both instance COGs) in ``out_dir``
    and return the report; ``options``, ``changes``: as :func:`instances`'s (``min_pixels``
    applies to the map); ``reference_min_pixels``: the smallest reference component that is an
    instance (smaller ones are void)."""
    if reference_min_pixels < 1:
        raise GeoSegError(f"reference_min_pixels is {reference_min_pixels}: give 1 or more")
    o = InstanceOptions.of(options, **changes)
    things, connectivity, block = o.things, o.connectivity, o.block
    out_dir = Path(out_dir)
    report_path = out_dir / "instances.json"
    if report_path.exists() and not overwrite:
        raise GeoSegError(f"{report_path} exists: pass --overwrite to replace it")
    pred = ClassMap.open(classmap, classes)
    ref = ClassMap.open(reference, pred.classes if classes is None else classes)
    if (ref.height, ref.width) != (pred.height, pred.width):
        raise GeoSegError(
            f"the reference {reference} is {ref.height} x {ref.width} pixels and the map "
            f"{pred.height} x {pred.width}: --instances needs a reference raster on the map's grid"
        )
    if ref.ids != pred.ids:
        ref = ClassMap.open(reference, pred.classes)  # the map's list names the reference's ids
    cl = pred.classes.with_things(things) if things else pred.classes
    out_dir.mkdir(parents=True, exist_ok=True)
    with connect(ClusterOptions(workers=workers, scheduler=scheduler), client) as c:
        kw = dict(
            things=[str(k) for k in cl.things] or None,
            connectivity=connectivity,
            block=block,
            client=c,
            overwrite=True,
        )
        # the map's objects below min_pixels are dropped and its border head (if any) splits
        # them; the reference's components below reference_min_pixels are void
        split = dict(split=o.split, border_threshold=o.border_threshold, grow=o.grow)
        p = instances(
            classmap,
            out_dir / "instances_map.tif",
            classes=classes,
            min_pixels=o.min_pixels,
            **split,
            **kw,
        )
        r = instances(
            reference,
            out_dir / "instances_reference.tif",
            classes=ref.classes,
            split=False,
            min_pixels=reference_min_pixels,
            **kw,
        )
        thing = np.array([k in cl.things for k in pred.ids], dtype=bool)
        windows = pred.windows(block)
        total: dict = {}
        matrix = np.zeros((pred.n, pred.n), dtype=np.int64)

        def take(_, part):
            nonlocal matrix
            matrix = matrix + part.pop("matrix")
            panoptic.add(total, part)

        run_tasks(
            c,
            overlap_task,
            [(w,) for w in windows],
            args=(p.path, r.path, pred, ref, thing),
            on_result=take,
            describe=name_windows(windows),
        )
    pc = {i + 1: int(k) for i, k in enumerate(p.per_instance["class"])}
    rc = {i + 1: int(k) for i, k in enumerate(r.per_instance["class"])}
    per = panoptic.panoptic_quality(total, pc, rc, cl.things)
    stuff_pq = panoptic.stuff_quality(matrix)
    names = {k: cl.name_of(k) for k in cl.ids}
    report = {
        "map": str(classmap),
        "reference": str(reference),
        "reference_instances": "connected components of the reference's thing classes "
        f"({connectivity}-connected)"
        + (
            f" of {reference_min_pixels} px and more; smaller ones are void"
            if reference_min_pixels > 1
            else ""
        ),
        "reference_min_pixels": reference_min_pixels,
        "connectivity": connectivity,
        "min_pixels": o.min_pixels,
        "split": json.loads(Path(p.summary).read_text())["split"],
        "iou_match": panoptic.IOU_MATCH,
        "things": {names[k]: _round(v) for k, v in per.items()},
        "stuff": {
            names[k]: round(float(stuff_pq[i]), 4)
            for i, k in enumerate(cl.ids)
            if k not in cl.things
        },
    }
    all_pq = [v["pq"] for v in per.values()] + [
        float(stuff_pq[i]) for i, k in enumerate(cl.ids) if k not in cl.things
    ]
    report["pq"] = round(float(np.mean(all_pq)), 4) if all_pq else None
    cols = ["pq", "sq", "rq", "precision", "recall", "f1", "tp", "fp", "fn", "count"]
    rows = [["class", *cols, "reference", "count_error"]]
    for name, v in report["things"].items():
        rows.append([name, *[v[k] for k in cols], v["reference"], v["count_error"]])
    atomic_write(out_dir / "instances.csv", csv_bytes(rows))
    atomic_write(report_path, (json.dumps(report, indent=2) + "\n").encode())
    report["files"] = {"json": str(report_path), "csv": str(out_dir / "instances.csv")}
    return report


def _round(v: dict) -> dict:
    return {k: round(x, 4) if isinstance(x, float) else x for k, x in v.items()}
