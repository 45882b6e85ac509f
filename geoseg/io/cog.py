"""Cloud-optimised GeoTIFF output, built in one step from blocks written to a staging file.

Workers never write into one GeoTIFF: blocks are staged separately and a single process streams
them into a tiled temporary GeoTIFF, which GDAL's COG driver turns into the final file (internal
overviews, 512-pixel blocks). The final name appears only when everything, sidecars included,
is complete.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import rasterio
from rasterio.shutil import copy as rio_copy
from rasterio.transform import Affine
from rasterio.windows import Window as RioWindow

from geoseg.core import pyramid as levels_of
from geoseg.core.classes import ClassList
from geoseg.core.grid import Window
from geoseg.errors import GeoSegError
from geoseg.io.crs import with_authority
from geoseg.io.files import atomic_files
from geoseg.io.style import category_aux_xml, check_style_free, raster_qml

RASTER_SUFFIXES = (".tif", ".tiff")
COG_BLOCK = 512  # the COG's internal tiles (and its overviews': halved until one tile)


def check_raster_suffix(path: str | Path) -> None:
    """A raster output is a COG (``.tif``/``.tiff``) or a Zarr store (``.zarr``): any other
    suffix would put a GeoTIFF under a name that says another format."""
    suffix = Path(str(path).rstrip("/")).suffix.lower()
    if suffix not in (*RASTER_SUFFIXES, ".zarr"):
        raise GeoSegError(
            f"{path}: a raster output is written as a Cloud-Optimised GeoTIFF (.tif, .tiff) "
            f"or a Zarr store (.zarr), not {suffix or 'a name without suffix'}: rename the output"
        )


def check_output(path: str | Path, overwrite: bool) -> Path:
    """Fail early (before any work) if ``path`` cannot be written as a new final output."""
    p = Path(path)
    if p.exists() and not overwrite:
        raise GeoSegError(f"{p} already exists: pass --overwrite to replace it")
    if p.exists() and p.is_dir():
        raise GeoSegError(f"{p} is a directory: pass a file name for the output")
    parent = p.parent if str(p.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        why = "a file is in the way" if e.errno in (errno.EEXIST, errno.ENOTDIR) else e.strerror
        raise GeoSegError(
            f"cannot create the output folder {parent} ({why}): choose another --out"
        ) from None
    if not os.access(parent, os.W_OK):
        raise GeoSegError(f"output folder {parent} is not writable: choose another --out")
    return p


@dataclass
class RasterSpec:
    height: int
    width: int
    count: int
    crs: object
    transform: object
    nodata: float
    dtype: str = "uint8"
    descriptions: list[str] = field(default_factory=list)
    scales: list[float] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    classes: ClassList | None = None  # a class raster: palette, names and QGIS style
    palette: dict[int, tuple[int, int, int, int]] | None = None  # a palette without classes


class CogWriter:
    """Stream blocks into a temporary tiled GeoTIFF, then :meth:`finish` it into a COG."""

    def __init__(
        self,
        spec: RasterSpec,
        scratch: str | Path,
        name: str = "stage",
        compress: str = "ZSTD",
        pyramid: bool = True,
    ):
        # the scratch file is compressed (ZSTD level 1): uncompressed it was ~20 % faster for
        # a class map, but a scene mostly nodata (a huge VRT with data in a corner) would
        # write every empty pixel to disk
        self.spec = spec
        self.scratch = Path(scratch)
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.tmp = self.scratch / f"{name}.{os.getpid()}.tif"
        profile = dict(
            driver="GTiff",
            width=spec.width,
            height=spec.height,
            count=spec.count,
            dtype=spec.dtype,
            nodata=spec.nodata,
            tiled=True,
            blockxsize=512,
            blockysize=512,
            BIGTIFF="IF_SAFER",
            compress=compress,
            NUM_THREADS="ALL_CPUS",  # GDAL compresses the tiles of each block write in parallel
        )
        if compress == "ZSTD":
            profile["zstd_level"] = 1
        if spec.crs is not None:  # with its EPSG code where the definition matches one
            profile["crs"] = with_authority(spec.crs)
        if spec.transform is not None and not spec.transform.is_identity:
            profile["transform"] = spec.transform
        self.ds = rasterio.open(self.tmp, "w", **profile)
        # TIFF needs the palette before any pixel is written (UInt16 too: 65,536 entries)
        palette = spec.classes.colormap() if spec.classes is not None else spec.palette
        if palette:
            self.ds.write_colormap(1, palette)
        # a class raster's MODE overviews, level by level as the blocks arrive
        # (core.pyramid); dropped (GDAL computes them) at the first block off the lattice,
        # or with pyramid=False
        self.shapes = levels_of.level_shapes(spec.height, spec.width, COG_BLOCK)
        self.levels: list = []
        if pyramid and spec.classes is not None and spec.count == 1 and self.shapes:
            for i, (h, w) in enumerate(self.shapes, 1):
                lp = {**profile, "height": h, "width": w}
                if "transform" in lp:  # georeferenced like the map (the VRT places them)
                    lp["transform"] = lp["transform"] @ Affine.scale(2**i)
                self.levels.append(rasterio.open(self.tmp.with_suffix(f".ov{i}.tif"), "w", **lp))

    def write(self, window: Window, data: np.ndarray) -> None:
        if data.ndim == 2:
            data = data[None]
        self.ds.write(data, window=RioWindow(window.col, window.row, window.width, window.height))
        if self.levels:
            self._write_levels(window, data[0])

    def _write_levels(self, window: Window, block: np.ndarray) -> None:
        n, shape = len(self.levels), (self.spec.height, self.spec.width)
        if not levels_of.aligned(window.row, window.col, window.height, window.width, shape, n):
            self._drop_levels()
            return
        nodata = None if self.spec.nodata is None else int(self.spec.nodata)
        parts = levels_of.block_levels(block, n, nodata)
        for i, (ds, a) in enumerate(zip(self.levels, parts, strict=True), 1):
            r, c = window.row >> i, window.col >> i
            ds.write(a[None], window=RioWindow(c, r, a.shape[1], a.shape[0]))

    def _drop_levels(self) -> None:
        for ds in self.levels:
            ds.close()
            with contextlib.suppress(FileNotFoundError):
                Path(ds.name).unlink()
        self.levels = []

    def close(self) -> None:
        if not self.ds.closed:
            self.ds.close()
        for ds in self.levels:
            if not ds.closed:
                ds.close()

    def abort(self) -> None:
        self.close()
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()
        self._drop_levels()
        with contextlib.suppress(FileNotFoundError):
            self.tmp.with_suffix(".vrt").unlink()

    def _source(self, resampling: str) -> tuple[str, dict]:
        """What the COG driver copies: the scratch file, or with the pyramid a VRT of it whose
        band lists the level files as its overviews (used as they are)."""
        if resampling != "MODE" or not self.levels:
            return str(self.tmp), {}
        vrt = self.tmp.with_suffix(".vrt")
        with rasterio.open(self.tmp) as src:
            rio_copy(src, vrt, driver="VRT")
        overviews = "".join(
            f'<Overview><SourceFilename relativeToVRT="0">{escape(ds.name)}</SourceFilename>'
            "<SourceBand>1</SourceBand></Overview>"
            for ds in self.levels
        )
        xml = vrt.read_text()
        vrt.write_text(xml.replace("</VRTRasterBand>", overviews + "</VRTRasterBand>", 1))
        return str(vrt), {"OVERVIEWS": "FORCE_USE_EXISTING"}

    def finish(
        self,
        out: str | Path,
        *,
        resampling: str = "MODE",
        compress: str = "DEFLATE",
        before_rename: Callable[[], None] | None = None,
        creation: dict | None = None,
    ) -> Path:
        """Build the COG at ``out`` (with category names and QGIS style for a class raster)
        and rename it into place; the temporary file is removed. ``before_rename`` is called
        when everything is written, before anything is renamed: raising there (a cancelled
        job) leaves no output."""
        out = Path(out)
        ds, spec, classes = self.ds, self.spec, self.spec.classes
        try:
            for i, d in enumerate(spec.descriptions, 1):
                ds.set_band_description(i, d)
            if spec.scales:
                ds.scales = tuple(spec.scales)
            if spec.tags:
                ds.update_tags(**spec.tags)
            if classes is not None:
                ds.update_tags(
                    1,
                    CLASSES=classes.to_json(),
                )
            self.close()
            source, given = self._source(resampling)
            with atomic_files(out) as add:  # the COG is renamed last, after its sidecars
                part = add(out)
                with rasterio.open(source) as src:
                    options = dict(
                        COMPRESS=compress,
                        BLOCKSIZE=COG_BLOCK,
                        OVERVIEW_RESAMPLING=resampling,
                        RESAMPLING="NEAREST",
                        BIGTIFF="IF_SAFER",
                        NUM_THREADS="ALL_CPUS",
                    )
                    # other COG creation options, any of these replaced
                    rio_copy(src, part, driver="COG", **{**options, **given, **(creation or {})})
                with contextlib.suppress(FileNotFoundError):  # GDAL may copy PAM; ours rules
                    Path(f"{part}.aux.xml").unlink()
                if classes is not None:
                    check_style_free(out, "raster")
                    add(Path(f"{out}.aux.xml")).write_text(
                        category_aux_xml(classes.category_names())
                    )
                    add(out.with_suffix(".qml")).write_text(raster_qml(classes))
                if before_rename is not None:
                    before_rename()
        finally:
            self.abort()
        return out
