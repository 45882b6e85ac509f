"""``geoseg.xarray.open``: a class map (COG or Zarr store) as a DataArray with its classes, so
that areas per class, zonal statistics and plots are one xarray line away."""

from __future__ import annotations

from pathlib import Path

from geoseg.io.classmap import list_attrs


def open_map(path: str | Path, *, chunks="auto"):
    """The class map at ``path`` as a dask-backed (y, x) DataArray: CRS and transform on
    ``.rio``, nodata masked by nothing (class ids stay integers; ``attrs["nodata"]`` says which
    value), the class list in ``attrs`` (``classes`` JSON, CF ``flag_values`` /
    ``flag_meanings``, ``flag_colors``)."""
    import rioxarray

    p = str(path)
    if p.rstrip("/").endswith(".zarr"):
        from geoseg.io.zarr import read_classes_zarr

        return read_classes_zarr(p, chunks=chunks)
    from geoseg.io.classmap import ClassMap

    cmap = ClassMap.open(p)  # one-line errors for a missing or unreadable file
    da = rioxarray.open_rasterio(p, chunks=chunks, masked=False).squeeze("band", drop=True)
    da.attrs = {**{k: v for k, v in da.attrs.items() if k.isupper()}, **list_attrs(cmap.classes)}
    da.name = "classes"
    return da.rio.write_nodata(cmap.classes.nodata, encoded=False)
