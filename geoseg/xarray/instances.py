"""``geoseg.xarray.instances``: a class DataArray in, its thing classes' instance ids out.

The file path's seam pass (:mod:`geoseg.core.instances`) on the array's chunks: every chunk is
labelled by a task that returns only what the pass needs (its edges and per-object counts),
the client joins the objects across chunk edges, and a lazy ``map_blocks`` writes each chunk's
scene-wide ids, so the ids equal ``geoseg instances`` on the same map whatever the chunking.
The class array is computed twice (once to label, once to relabel): persist it first where
that costs more than labelling.
"""

from __future__ import annotations

import json

import numpy as np

from geoseg.core.classes import load_classes
from geoseg.core.instances import keep_large, label_block, resolve
from geoseg.errors import GeoSegError
from geoseg.instances.options import InstanceOptions


def _objects(block, things, origin, width, connectivity):
    return label_block(np.asarray(block), things, origin, width, connectivity)[1]


def instances(classes, options: InstanceOptions | None = None, **changes):
    """Instance ids (a lazy uint32 DataArray, 0 = none) of ``classes`` (a (y, x) class
    DataArray with geoseg's ``classes`` attribute, e.g. :func:`geoseg.xarray.predict`'s);
    ``options``/``changes`` as :func:`geoseg.instances.instances` (``things``,
    ``connectivity``, ``min_pixels``; ``block`` does not apply: the chunks are the blocks)."""
    import dask
    import dask.array as dsa

    o = InstanceOptions.of(options, **changes)
    if "classes" not in classes.attrs:
        raise GeoSegError("the array has no 'classes' attribute: pass geoseg's class map")
    cl = load_classes(json.loads(classes.attrs["classes"]))
    cl = cl.with_things(o.things) if o.things else cl
    if not cl.things:
        raise GeoSegError("no class is a thing: name the countable classes with things=[...]")
    arr = classes.data if isinstance(classes.data, dsa.Array) else dsa.from_array(classes.values)
    rows = np.cumsum((0, *arr.chunks[0]))
    cols = np.cumsum((0, *arr.chunks[1]))
    width = arr.shape[1]
    grid = [(i, j) for i in range(len(arr.chunks[0])) for j in range(len(arr.chunks[1]))]
    tasks = [
        dask.delayed(_objects)(
            arr.blocks[i, j], cl.things, (int(rows[i]), int(cols[j])), width, o.connectivity
        )
        for i, j in grid
    ]
    objs = dask.compute(*tasks)
    maps, _ = keep_large(*resolve(list(objs), o.connectivity), o.min_pixels)
    lut = dict(zip(grid, maps, strict=True))

    def relabel(block, block_info=None):
        i, j = block_info[0]["chunk-location"]
        labels, _ = label_block(
            block, cl.things, (int(rows[i]), int(cols[j])), width, o.connectivity
        )
        return lut[i, j][labels]

    ids = arr.map_blocks(relabel, dtype=np.uint32)
    out = classes.copy(data=ids)
    out.name = "instances"
    out.attrs = {
        "long_name": "instance id",
        "nodata": 0,
        "thing_classes": json.dumps([cl.name_of(k) for k in cl.things]),
    }
    return out
