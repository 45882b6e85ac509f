"""Accuracy of the change map against reference change labels.

The reference is a raster or points (any OGR layer) holding either **change** labels (0 =
unchanged, 1 = changed; detected when every labelled value is 0 or 1) or **from-to codes**
(``from_id * 100 + to_id``). Figures (:mod:`geoseg.core.metrics`; rows = map, columns =
reference):

* ``change``: the gated map (changed vs unchanged or uncertain, i.e. what the product claims)
  against reference change; ``change_without_gate``: plain post-classification comparison
  (the two dates' classes differ) against the same labels, to show what the gate buys;
* ``transitions`` (code references): the map's from-to transitions against the reference's;
* ``stratified`` (points from a stratified sample): Olofsson et al. (2014) estimators. With
  the change-mask classes as strata (points from ``geoseg sample change_mask.tif``, fields
  ``map_class``/``stratum_px``, or ``design="stratified"``, post-stratified): overall
  accuracy, user's and producer's accuracy of change and the change area, each with SE. The
  "uncertain" stratum claims no change; its reference-unchanged points are entered on its own
  diagonal so that the estimators' diagonal is "the map's claim is right" for every stratum.
  With code references and ``design="stratified"``, also the transitions as strata.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyogrio

from geoseg.accuracy.reference import VectorReference, _read_strata
from geoseg.change.blocks import RasterRef
from geoseg.change.style import CHANGED, STATUS_CLASSES, UNCERTAIN, UNCHANGED, code
from geoseg.core import metrics as mx
from geoseg.errors import GeoSegError
from geoseg.io.classmap import NO_VALUE, ClassMap, lookup
from geoseg.io.grid import Layer, RasterGrid
from geoseg.io.scene import open_raster

FIELDS = (
    "ref_change",
    "change",
    "changed",
    "ref_code",
    "from_to",
    "ref_class",
    "reference",
    "code",
    "class",
)
STATUS_CLAIM = {UNCHANGED: 0, CHANGED: 1, UNCERTAIN: 0}  # what each map status claims
CATEGORIES = ["no change", "change"]


@dataclass
class PointRef:
    path: str
    field: str
    kind: str  # "change" or "transitions"
    rows: np.ndarray
    cols: np.ndarray
    inside: np.ndarray
    values: np.ndarray  # category per point (NO_VALUE: unlabelled)
    strata: np.ndarray | None = None  # status class index recorded by `geoseg sample`
    stratum_pixels: dict[int, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def code_table(ids: tuple[int, ...]) -> dict[int, int]:
    """From-to code -> transition index (from * n + to)."""
    n = len(ids)
    return {code(a, b): i * n + j for i, a in enumerate(ids) for j, b in enumerate(ids)}


def _kind(values: np.ndarray, ids, source: str) -> tuple[str, dict[int, int]]:
    vals = set(np.unique(values).astype(np.int64).tolist())
    if vals <= {0, 1}:
        return "change", {0: 0, 1: 1}
    table = code_table(ids)
    bad = sorted(vals - set(table))
    if bad:
        raise GeoSegError(
            f"reference {source} holds values {bad[:10]} that are neither change "
            f"labels (0/1) nor from-to codes (from_id * 100 + to_id) of classes "
            f"{list(ids)}"
        )
    return "transitions", table


def open_change_reference(
    source: str,
    ids: tuple[int, ...],
    grid: RasterGrid,
    *,
    field_name: str | None = None,
    layer: str | None = None,
) -> RasterRef | PointRef:
    try:
        layers = [(str(n), g) for n, g in pyogrio.list_layers(source)]
    except Exception:  # not a vector data set
        layers = []
    spatial = [n for n, g in layers if g is not None]
    if not spatial:
        return _raster_reference(source, ids, grid)
    return _points(source, ids, grid, field_name, layer or spatial[0], [n for n, _ in layers])


def _raster_reference(source: str, ids, grid: RasterGrid) -> RasterRef:
    with open_raster(source) as src:  # a decimated look tells change labels from codes
        f = max(1, max(src.height, src.width) // 1024)
        data = src.read(1, out_shape=(max(1, src.height // f), max(1, src.width // f)), masked=True)
    values = data.compressed()
    if values.size == 0:
        raise GeoSegError(f"reference {source} has no labelled pixel")
    kind, table = _kind(values, ids, source)
    return RasterRef(Layer.on(source, grid), kind, table)


def _points(path: str, ids, grid: RasterGrid, field_name, layer, all_layers) -> PointRef:
    names = [str(f) for f in pyogrio.read_info(path, layer=layer)["fields"]]
    lower = {f.lower(): f for f in names}
    if field_name is None:
        field_name = next((lower[f] for f in FIELDS if f in lower), None)
        if field_name is None:
            raise GeoSegError(
                f"cannot tell which field of {path} holds the reference change "
                f"(fields: {names}): pass --reference-field"
            )
    elif field_name not in names:
        raise GeoSegError(f"{path} has no field {field_name!r}: its fields are {names}")
    extra = [f for f in ("map_class", "stratum_px") if f in names and f != field_name]
    gdf = pyogrio.read_dataframe(path, layer=layer, columns=[field_name, *extra])
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    if not set(gdf.geometry.geom_type) <= {"Point"}:
        raise GeoSegError(
            f"reference layer {layer!r} of {path} must hold points (a raster "
            "serves wall-to-wall reference change)"
        )
    notes = []
    if gdf.crs is not None and gdf.crs != grid.crs:
        gdf = gdf.to_crs(grid.crs)
        notes.append("reference points reprojected to the grid CRS")
    gdf = gdf.reset_index(drop=True)
    raw = gdf[field_name].to_numpy(dtype=float, na_value=np.nan)
    labelled = np.isfinite(raw)
    if not labelled.any():
        raise GeoSegError(
            f"no point of {path} has a value in field {field_name!r}: label "
            "them first (0/1 change, or from-to codes)"
        )
    if (raw[labelled] != np.round(raw[labelled])).any():
        raise GeoSegError(f"field {field_name!r} of {path} has non-integer values")
    kind, table = _kind(raw[labelled], ids, path)
    values = np.where(
        labelled, lookup(np.where(labelled, raw, 0).astype(np.int64), table), NO_VALUE
    ).astype(np.int32)
    cols, rows = ~grid.transform * (gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy())
    rows, cols = np.floor(rows).astype(np.int64), np.floor(cols).astype(np.int64)
    inside = (rows >= 0) & (rows < grid.height) & (cols >= 0) & (cols < grid.width)
    ref = PointRef(path, field_name, kind, rows, cols, inside, values, notes=notes)
    if {"map_class", "stratum_px"} <= set(names):
        status_map = ClassMap("", 0, 0, None, None, STATUS_CLASSES)
        vref = VectorReference(path, layer, field_name, "points", gdf.geometry, values)
        try:
            _read_strata(vref, gdf, status_map, path, all_layers)
        except GeoSegError as e:
            notes.append(f"strata not used: {e}")
        else:
            ref.strata, ref.stratum_pixels = vref.strata, vref.stratum_pixels
            notes.extend(vref.notes)
    return ref


def points_by_window(ref: PointRef, windows) -> list[tuple[np.ndarray, tuple] | None]:
    """For each window: (indices of the points in it, (rows, cols)) or None."""
    out = []
    for w in windows:
        sel = np.flatnonzero(
            ref.inside
            & (ref.rows >= w.row)
            & (ref.rows < w.row_end)
            & (ref.cols >= w.col)
            & (ref.cols < w.col_end)
        )
        out.append((sel, (ref.rows[sel], ref.cols[sel])) if sel.size else None)
    return out


def _binary(cm: np.ndarray, excluded: dict) -> dict:
    acc = mx.accuracy(cm)
    return {
        "orientation": mx.ORIENTATION,
        "categories": CATEGORIES,
        "counts": cm.tolist(),
        "compared": int(cm.sum()),
        "excluded": excluded,
        "overall_accuracy": acc.oa,
        "change_users_accuracy": acc.ua[1],
        "change_producers_accuracy": acc.pa[1],
        "change_f1": acc.f1[1],
    }


def _transitions(cm: np.ndarray, ids) -> dict:
    n = len(ids)
    used = np.flatnonzero(cm.sum(axis=0) + cm.sum(axis=1))
    acc = mx.accuracy(cm)
    codes = [code(ids[t // n], ids[t % n]) for t in used]
    return {
        "orientation": mx.ORIENTATION,
        "codes": codes,
        "counts": cm[np.ix_(used, used)].tolist(),
        "overall_accuracy": acc.oa,
        "per_transition": [
            {"code": c, "users_accuracy": acc.ua[t], "producers_accuracy": acc.pa[t]}
            for c, t in zip(codes, used, strict=True)
        ],
    }


def _ci(v, se) -> dict:
    return {"estimate": v, "se": se, "ci95": mx.Z95 * se}


def assess(
    ref: RasterRef | PointRef,
    totals: dict,
    ids,
    design: str,
    pixel_ha: float,
    status_pixels: dict[int, int],
) -> dict:
    """The accuracy section of the report from the merged block counts."""
    out: dict = {"kind": ref.kind, "notes": []}
    if isinstance(ref, RasterRef):
        out.update(unit="pixels", path=ref.layer.path)
        for key, name in (
            ("ref_change_gated", "change"),
            ("ref_change_raw", "change_without_gate"),
        ):
            p = totals[key]
            out[name] = _binary(
                p[:2, :2],
                {"map_nodata": int(p[2, :2].sum()), "reference_missing": int(p[:2, 2].sum())},
            )
        if ref.kind == "transitions":
            out["transitions"] = _transitions(totals["ref_transitions"], ids)
        out["stratified"] = None
        return out
    out.update(unit="points", path=ref.path, field=ref.field, notes=list(ref.notes))
    n = len(ids)
    status, trans = totals["point_status"], totals["point_transition"]
    labelled = ref.values >= 0
    used = ref.inside & labelled & (status > 0)
    r_change = (
        ref.values
        if ref.kind == "change"
        else np.where(ref.values >= 0, (ref.values // n) != (ref.values % n), -1)
    )
    excluded = {
        "unlabelled": int((~labelled).sum()),
        "outside_grid": int((labelled & ~ref.inside).sum()),
        "map_nodata": int((labelled & ref.inside & (status == 0)).sum()),
    }
    gated = (status[used] == CHANGED).astype(np.int64)
    raw = (trans[used] // n != trans[used] % n).astype(np.int64)
    out["change"] = _binary(mx.confusion_matrix(gated, r_change[used], 2), excluded)
    out["change_without_gate"] = _binary(mx.confusion_matrix(raw, r_change[used], 2), excluded)
    if ref.kind == "transitions":
        out["transitions"] = _transitions(
            mx.confusion_matrix(trans[used], ref.values[used], n * n), ids
        )
    out["stratified"] = _stratified(
        ref, used, status[used], r_change[used], design, pixel_ha, status_pixels, out["notes"]
    )
    if ref.kind == "transitions" and design == "stratified":
        out["stratified_transitions"] = _by_transitions(
            trans[used], ref.values[used], totals["transition_pixels"], pixel_ha, ids, out["notes"]
        )
    return out


def _stratified(
    ref: PointRef,
    used: np.ndarray,
    status: np.ndarray,
    r_change: np.ndarray,
    design: str,
    pixel_ha: float,
    status_pixels: dict[int, int],
    notes: list[str],
) -> dict | None:
    """Olofsson estimators with the change-mask classes as strata (see the module doc)."""
    if design == "none" or (design == "auto" and ref.strata is None):
        if design == "auto":
            notes.append(
                "points carry no strata (map_class, stratum_px): sample counts "
                "without area weighting; pass design='stratified' for a "
                "post-stratified estimate"
            )
        return None
    order = STATUS_CLASSES.ids  # stratum index = position among the status classes
    now = np.searchsorted(order, status)
    pixels = np.array([status_pixels[c] for c in order], dtype=np.int64)
    how = "post-stratified by change status (points taken as a probability sample)"
    if ref.strata is not None:
        moved = int((ref.strata[used] != now).sum())
        if moved:
            notes.append(
                f"{moved} points lie on another change status than in the map they "
                "were drawn from: stratified estimators not applied"
            )
            return None
        recorded = np.array([ref.stratum_pixels.get(i, pixels[i]) for i in range(len(order))])
        if (recorded != pixels).any():
            notes.append(
                "the stratum sizes recorded with the sample differ from this change "
                "map's: the recorded ones are used"
            )
        pixels = recorded.astype(np.int64)
        how = "stratified random sample by change status (geoseg sample of the change mask)"
    claim = np.array([STATUS_CLAIM[c] for c in order])
    canon = np.array([order.index(UNCHANGED), order.index(CHANGED)])
    col = np.where(r_change == claim[now], now, canon[r_change])
    try:
        est = mx.stratified_estimates(mx.confusion_matrix(now, col, len(order)), pixels)
    except ValueError as e:
        notes.append(f"stratified estimators not applied: {e}")
        return None
    c = order.index(CHANGED)
    total_ha = float(pixels.sum()) * pixel_ha
    return {
        "estimator": "Olofsson et al. (2014) eq. 1-7, 9-11; strata = change status",
        "design": how,
        "confidence_level": 0.95,
        "strata": [
            {
                "id": s.id,
                "name": s.name,
                "pixels": int(pixels[i]),
                "sample_size": int(est.sample_sizes[i]),
                "users_accuracy": _ci(est.ua[i], est.ua_se[i]),
            }
            for i, s in enumerate(STATUS_CLASSES.classes)
        ],
        "overall_accuracy": _ci(est.oa, est.oa_se),
        "change_users_accuracy": _ci(est.ua[c], est.ua_se[c]),
        "change_producers_accuracy": _ci(est.pa[c], est.pa_se[c]),
        "change_area_ha": _ci(
            est.area_proportion[c] * total_ha, est.area_proportion_se[c] * total_ha
        ),
    }


def _by_transitions(
    trans: np.ndarray, ref_t: np.ndarray, pixels: np.ndarray, pixel_ha: float, ids, notes: list[str]
) -> dict | None:
    """Olofsson estimators with the map's transitions as strata (post-stratified)."""
    n = len(ids)
    try:
        est = mx.stratified_estimates(mx.confusion_matrix(trans, ref_t, n * n), pixels)
    except ValueError as e:
        notes.append(f"transition-stratified estimators not applied: {e}")
        return None
    total_ha = float(pixels.sum()) * pixel_ha
    rows = []
    for t in np.flatnonzero((pixels > 0) | (est.counts.sum(axis=0) > 0)):
        rows.append(
            {
                "code": code(ids[t // n], ids[t % n]),
                "mapped_ha": pixels[t] * pixel_ha,
                "sample_size": int(est.sample_sizes[t]),
                "users_accuracy": _ci(est.ua[t], est.ua_se[t]),
                "area_ha": _ci(
                    est.area_proportion[t] * total_ha, est.area_proportion_se[t] * total_ha
                ),
            }
        )
    return {
        "estimator": "Olofsson et al. (2014); strata = map transitions (post-stratified)",
        "overall_accuracy": _ci(est.oa, est.oa_se),
        "per_transition": rows,
    }
