"""``geoseg.xarray.predict``: a (band, y, x) DataArray in, a lazy class DataArray out.

The same engine as ``geoseg predict``: the job's global tile grid and blocks
(:mod:`geoseg.core.grid`), each block predicted by :func:`geoseg.engine.blocks.block_arrays`
(the file path's code, reading an :class:`~geoseg.xarray.scene.ArraySlab` instead of a file)
and completed from its neighbours' spilled sums by :func:`~geoseg.engine.blocks.complete_block`.
Only the plumbing differs: the blocks are tasks of a dask graph whose inputs are slices of the
input array (any chunking) and whose outputs are the chunks of the result, one per block, so
the classes equal the file path's to the bit.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from geoseg.core.radiometry import quantiles_of
from geoseg.engine.blocks import block_arrays, complete_block
from geoseg.engine.job import make_job
from geoseg.engine.options import PredictOptions
from geoseg.engine.radiometry import check_normalize, mapping_for
from geoseg.errors import GeoSegError
from geoseg.model.bundle import read_meta
from geoseg.model.runtime import choose, probe
from geoseg.xarray.attrs import class_attrs
from geoseg.xarray.scene import ArraySlab, as_bands, georeference, nodata_of, source_span


def predict(
    data,
    model: str | Path,
    options: PredictOptions | None = None,
    *,
    nodata: float | None = None,
    client=None,
    **changes,
):
    """Classify ``data`` (a (band, y, x) DataArray, numpy- or dask-backed, any chunking) with
    the bundle ``model``. Returns a lazy, dask-backed DataArray (y, x) of class ids with the
    input's coordinates, CRS and transform (``.rio``), nodata, class names and colours in
    ``attrs`` (also as CF ``flag_values`` / ``flag_meanings``); with ``probabilities``, a
    second DataArray (class, y, x) of probabilities (uint8, scale 1/254, 255 = nodata).

    ``options`` and ``changes`` are :func:`geoseg.predict`'s
    (:class:`~geoseg.engine.options.PredictOptions`), planned by the same code. The runtime
    and precision are chosen once, from every worker of ``client`` (default: the current
    distributed client, else this process), as for ``geoseg predict``. ``normalize`` other
    than ``bundle`` computes the array's band quantiles first (a strided sample).
    """
    import dask
    import dask.array as dsa

    opts = PredictOptions.of(options, **changes)
    data = as_bands(data)
    meta = read_meta(model)
    mode = check_normalize(opts.normalize, meta, str(model))
    n_bands, height, width = data.shape
    bad = [b for b in meta.bands if not 1 <= b <= n_bands]
    if bad:
        raise GeoSegError(
            f"the model reads bands {meta.bands} but the array has {n_bands}: pass the bands "
            "the model was trained on, in its order (see 'geoseg bundle info')"
        )
    choice = choose(opts.precision, opts.runtime, _probes(client, opts.device))
    ran = PredictOptions.of(
        opts, device=choice.device, precision=choice.precision, runtime=choice.runtime
    )
    nd = nodata_of(data, nodata)
    radiometry = None
    if mode != "bundle":
        radiometry, mode, _ = mapping_for(
            meta, mode, lambda: quantiles_of(_sample(data, meta.bands, nd))
        )
    job = make_job(None, height, width, str(model), meta, ran, radiometry=radiometry)
    blocks = job.blocks  # the blocks read ArraySlabs
    source = data.data if isinstance(data.data, dsa.Array) else dsa.from_array(data.values)
    staged = {}
    for b in blocks:
        r0, r1, c0, c1 = source_span(b.read, height, width)
        staged[b.bi, b.bj] = dask.delayed(_stage, pure=True)(
            job, b.bi, b.bj, source[:, r0:r1, c0:c1], (r0, c0), nd
        )
    class_ids = np.asarray(meta.class_list.ids)
    rows_cls, rows_probs = [], []
    n_rows, n_cols = blocks.shape
    for bi in range(n_rows):
        row_cls, row_probs = [], []
        for bj in range(n_cols):
            b = blocks.block(bi, bj)
            near = {
                k: staged[k] for k in ((bi, bj - 1), (bi - 1, bj), (bi - 1, bj - 1)) if k in staged
            }
            done = dask.delayed(_finish, pure=True, nout=2)(
                job, bi, bj, staged[bi, bj], near, class_ids, meta.class_list.nodata
            )
            h, w = b.region.height, b.region.width
            row_cls.append(dsa.from_delayed(done[0], (h, w), dtype=np.uint8))
            if opts.probabilities:
                shape = (len(class_ids), h, w)
                row_probs.append(dsa.from_delayed(done[1], shape, dtype=np.uint8))
        rows_cls.append(row_cls)
        rows_probs.append(row_probs)
    crs, transform = georeference(data)
    size = blocks.tiles_per_block * job.grid.stride
    # one chunk per block, but a last block may reach up to an overlap beyond the block size,
    # and Zarr (to_zarr) takes no last chunk larger than the others: that one is split
    classes = _wrap(_regular(dsa.block(rows_cls), size), data, crs, transform, meta, ("y", "x"))
    if not opts.probabilities:
        return classes
    # np.block semantics: two levels of nesting join the last two axes (y, x)
    probs = _regular(dsa.block(rows_probs), size)
    probs = _wrap(probs, data, crs, transform, meta, ("class", "y", "x"))
    return classes, probs


def _sample(data, bands: list[int], nodata) -> np.ndarray:
    """Valid values of ``bands`` (1-based) on a strided sample of about a million pixels."""
    _, h, w = data.shape
    step = max(1, int(np.sqrt(h * w / 1e6)))
    v = np.asarray(data[[b - 1 for b in bands], ::step, ::step].values, dtype=np.float32)
    ok = np.isfinite(v).all(axis=0)
    if nodata is not None:
        ok &= ~(v == nodata).all(axis=0)
    return v[:, ok]


def _regular(arr, size: int):
    """``arr`` with chunks of ``size`` along y and x except a smaller last one."""
    chunks = [(arr.shape[0],)] if arr.ndim == 3 else []
    for n in arr.shape[-2:]:
        chunks.append((size,) * (n // size) + ((n % size,) if n % size else ()))
    return arr if arr.chunks == tuple(chunks) else arr.rechunk(tuple(chunks))


def _probes(client, device: str) -> list[dict]:
    """What every worker can run: the given or current distributed client's, else ours."""
    if client is None:
        with contextlib.suppress(ImportError, ValueError):
            from distributed import default_client

            client = default_client()
    if client is None:
        return [probe(device)]
    return list(client.run(probe, device).values())


def _stage(job, bi: int, bj: int, values: np.ndarray, origin, nodata) -> dict:
    b = job.blocks.block(bi, bj)
    slab = ArraySlab(np.asarray(values), origin, job.height, job.width, nodata)
    stats = {"tiles": 0, "tiles_skipped": 0, "runtime": None}
    return block_arrays(job, b, slab, stats)


def _finish(job, bi: int, bj: int, staged: dict, near: dict, class_ids, nodata: int):
    b = job.blocks.block(bi, bj)
    own = {k: v.copy() if k in ("cls", "probs", "heads") else v for k, v in staged.items()}
    cls, probs = complete_block(
        job, b, own, lambda nb: contextlib.nullcontext(near[nb.bi, nb.bj]), class_ids, nodata
    )
    return cls, probs


def _wrap(arr, data, crs, transform, meta, dims):
    """The result as a DataArray on the input's grid, with its classes and georeference."""
    import xarray as xr

    _, ydim, xdim = data.dims
    coords = {d: data[s] for d, s in (("y", ydim), ("x", xdim)) if s in data.coords}
    if dims[0] == "class":
        coords["class"] = [c.name for c in meta.class_list.classes]
    out = xr.DataArray(
        arr, dims=dims, coords=coords, name=dims[0] if dims[0] == "class" else "classes"
    )
    out.attrs.update(class_attrs(meta, probabilities=dims[0] == "class"))
    try:
        import rioxarray  # noqa: F401

        out = out.rio.set_spatial_dims(x_dim="x", y_dim="y")
        if crs is not None:
            out = out.rio.write_crs(crs)
        if transform is not None:
            out = out.rio.write_transform(transform)
        out = out.rio.write_nodata(out.attrs["nodata"], encoded=False)
    except ImportError:
        pass
    return out
