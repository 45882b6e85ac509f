"""Change polygons: the changed pixels' from-to codes polygonized by
:func:`geoseg.vector.vectorize.vectorize`.

Only pixels whose status is "changed" are polygonized (unchanged and uncertain pixels are
nodata there), with the minimum mapping unit applied to the change patches: a patch below it
joins the neighbouring change patch it shares most boundary with, or is dropped when it
touches no other change (an isolated small change). The layer carries from_id, to_id,
from_name, to_name, code, area_ha, perim_m, date_from and date_to, and a QGIS style.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyogrio
from distributed import Client

from geoseg.change.style import CODE_FACTOR, transition_legend
from geoseg.core.classes import ClassList
from geoseg.io.style import vector_qml
from geoseg.io.vector import GEOM, date_column, id_column, vector_format, write_polygons
from geoseg.vector.vectorize import vectorize


def change_polygons(
    changed_codes: str,
    out: Path,
    staging: Path,
    classes: ClassList,
    *,
    dates: tuple[str | None, str | None],
    mmu_ha: float,
    client: Client,
    block: int,
) -> dict:
    """Write the change polygons of the raster ``changed_codes`` to ``out``; returns counts."""
    tmp = staging / "change_polygons.gpkg"
    with warnings.catch_warnings():  # isolated patches below the MMU: reported, not warned
        warnings.filterwarnings("ignore", message="--mmu: dropped")
        vectorize(
            changed_codes,
            tmp,
            mmu_ha=mmu_ha,
            probabilities=False,
            client=client,
            block=block,
            overwrite=True,
        )
    meta, table = pyogrio.read_arrow(tmp, layer=tmp.stem)
    geom = table[meta["geometry_name"] or GEOM]
    codes = table["class_id"].to_numpy().astype(np.int64)
    from_id, to_id = np.divmod(codes, CODE_FACTOR)
    names = {c.id: c.name for c in classes.classes}
    n = len(codes)

    def name_col(v: np.ndarray) -> pa.Array:
        return pa.array([names.get(int(i), f"class {int(i)}") for i in v], pa.string())

    out_table = pa.table(
        {
            "poly_id": id_column(n),
            "from_id": pa.array(from_id.astype(np.int32)),
            "to_id": pa.array(to_id.astype(np.int32)),
            "from_name": name_col(from_id),
            "to_name": name_col(to_id),
            "code": pa.array(codes.astype(np.int32)),
            "area_ha": table["area_ha"],
            "perim_m": table["perim_m"],
            "date_from": date_column(dates[0], n),
            "date_to": date_column(dates[1], n),
            GEOM: geom,
        }
    )
    fmt = vector_format(out)
    gtype = meta.get("geometry_type") or "Polygon"
    write_polygons(
        out,
        out_table,
        fmt=fmt,
        crs_wkt=meta.get("crs"),
        geometry_type=gtype,
        qml=vector_qml(transition_legend(classes, changes_only=True), field="code"),
    )
    area = table["area_ha"].to_numpy()
    return {
        "path": str(out),
        "polygons": n,
        "area_ha": float(area.sum()) if n else 0.0,
        "mmu_ha": mmu_ha,
    }
