"""Pictures for the HTML report: class-map previews with a legend, and PNGs as data URIs.

A preview reads the raster's overview nearest the wanted size (rasterio picks it from
``out_shape``), so a map of any size costs one small read; classes are coloured with the class
list (the CLASSES tag geoseg writes, or one given) and nodata is transparent. It is drawn one
raster pixel to one screen pixel where it can, at the width the report shows it, with map
coordinates on the axes, a scale bar (matplotlib's ``AnchoredSizeBar``) and the CRS's name and
EPSG code, which :class:`Preview` also gives for the caption.
"""

from __future__ import annotations

import base64
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geoseg.core.classes import ClassInfo, ClassList, load_classes
from geoseg.io.scene import open_raster


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def file_uri(path: str | Path | None) -> str | None:
    """A PNG file as a data URI, or None when it is absent."""
    if not path or not Path(path).is_file():
        return None
    return data_uri(Path(path).read_bytes())


def _classes_of(src) -> ClassList | None:
    tag = src.tags(1).get("CLASSES")
    if tag:
        try:
            return load_classes(json.loads(tag))
        except Exception:  # noqa: BLE001 - a damaged tag: fall back to the palette
            pass
    try:
        cmap = src.colormap(1)
    except ValueError:
        return None
    return ClassList.model_construct(
        classes=[
            ClassInfo.model_construct(
                id=v, name=str(v), color="#{:02x}{:02x}{:02x}".format(*rgba[:3])
            )
            for v, rgba in cmap.items()
            if rgba[3] and v != src.nodata
        ]
    )


DPI = 100
MAX_MAP_HEIGHT = 640  # pixels on screen
MIN_MAP_SIDE = 360  # the map box is at least this wide; small rasters are enlarged to fill it
MARGIN = (90, 30)  # left (northings and their label), right of the legend, in pixels


@dataclass(frozen=True)
class Preview:
    """A class-map figure and what its caption says: the CRS (name and EPSG code) and the
    scale bar's length, or why there is none."""

    figure: object  # a matplotlib Figure
    crs: str
    scale: str | None = None
    note: str | None = None

    def png(self) -> bytes:
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.1)
        return buf.getvalue()

    def caption(self, title: str) -> str:
        bar = f"scale bar {self.scale}" if self.scale else self.note
        return " · ".join(x for x in (title, f"CRS: {self.crs}", bar) if x)


def crs_label(crs) -> str:
    """``WGS 84 / UTM zone 12N (EPSG:32612)``: the CRS's name and EPSG code where it has one."""
    if crs is None:
        return "none"
    from pyproj import CRS

    try:
        name = CRS.from_user_input(crs.to_wkt()).name
    except Exception:  # noqa: BLE001 - a CRS pyproj cannot read: its own string
        name = crs.to_string()
    epsg = crs.to_epsg()
    return f"{name} (EPSG:{epsg})" if epsg else f"{name} (no EPSG code)"


def round_length(metres: float) -> float:
    """The longest 1, 2 or 5 x 10^k metres not above ``metres``."""
    k = 10 ** math.floor(math.log10(metres))
    return max(m * k for m in (1, 2, 5) if m * k <= metres)


def length_label(metres: float) -> str:
    return f"{metres / 1000:g} km" if metres >= 1000 else f"{metres:g} m"


def metres_per_unit(crs, bounds) -> tuple[float | None, float, str | None]:
    """Metres per x-axis unit (None: unknown), the y/x aspect of a data unit, and a note
    when there is no scale bar."""
    if crs is None:
        return None, 1.0, "no scale bar: the raster has no CRS"
    if crs.is_geographic:
        from pyproj import Geod

        lat = (bounds.bottom + bounds.top) / 2
        lon = (bounds.left + bounds.right) / 2
        if abs(lat) > 85:
            return None, 1.0, "no scale bar: too near a pole for one scale"
        metres = Geod(ellps="WGS84").inv(lon - 0.5, lat, lon + 0.5, lat)[2]
        return metres, 1 / math.cos(math.radians(lat)), None
    try:
        return float(crs.linear_units_factor[1]), 1.0, None
    except Exception:  # noqa: BLE001 - no linear units (e.g. an engineering CRS)
        return None, 1.0, "no scale bar: the CRS has no linear units"


def _axis_labels(crs) -> tuple[str, str]:
    if crs is None:
        return "x (no CRS)", "y (no CRS)"
    if crs.is_geographic:
        return "longitude (°)", "latitude (°)"
    unit = crs.linear_units
    unit = {"metre": "m", "meter": "m", "foot": "ft", "US survey foot": "US ft"}.get(unit, unit)
    return f"easting ({unit})", f"northing ({unit})"


def class_preview(
    path: str | Path,
    *,
    classes: ClassList | None = None,
    max_px: int = 1024,
    title: str | None = None,
    width_px: int = 1000,
) -> Preview | None:
    """A figure about ``width_px`` wide of the class raster ``path`` (:meth:`Preview.png`),
    with map coordinates, a scale bar, the CRS and a legend of the classes present; None when
    its classes are unknown. ``max_px``: at most this many raster pixels on the longer side."""
    with open_raster(path) as src:
        cl = classes or _classes_of(src)
        if cl is None:
            return None
        crs, bounds = src.crs, src.bounds
        per_unit, aspect, note = metres_per_unit(crs, bounds)
        legend_px = 60 + 7 * max((len(c.name) for c in cl.classes), default=8)
        box_w = max(MIN_MAP_SIDE, width_px - MARGIN[0] - MARGIN[1] - legend_px)
        # screen pixels per raster pixel: the map fills the box (height scaled by aspect)
        zoom = min(box_w / src.width, MAX_MAP_HEIGHT / (src.height * aspect))
        scale = min(1.0, max_px / max(src.height, src.width), zoom)
        shape = (max(1, round(src.height * scale)), max(1, round(src.width * scale)))
        data = src.read(1, out_shape=shape)
        nodata = src.nodata
        size = (round(src.width * zoom), round(src.height * zoom * aspect))  # on screen
    fig, bar = _draw(data, nodata, cl, crs, bounds, per_unit, aspect, size, title)
    return Preview(fig, crs_label(crs), bar, None if bar else note)


def _draw(data, nodata, cl, crs, bounds, per_unit, aspect, size, title):
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator, ScalarFormatter
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    rgba = np.zeros((*data.shape, 4), dtype=np.uint8)
    present = []
    valid = np.ones(data.shape, bool) if nodata is None else data != nodata
    for c in cl.classes:
        mask = valid & (data == c.id)
        if mask.any():
            rgba[mask] = (*c.rgb, 255)
            present.append(c)
    ww, hh = size
    fig_w, fig_h = MARGIN[0] + ww + 300, hh + 120
    fig = Figure(figsize=(fig_w / DPI, fig_h / DPI), dpi=DPI)
    ax = fig.add_axes((MARGIN[0] / fig_w, 80 / fig_h, ww / fig_w, hh / fig_h))
    extent = (bounds.left, bounds.right, bounds.bottom, bounds.top)  # pixels without a CRS
    ax.imshow(rgba, interpolation="nearest", extent=extent, aspect=aspect)
    xlabel, ylabel = _axis_labels(crs)
    ax.set_xlabel(f"{xlabel}\nCRS: {crs_label(crs)}", fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    for axis in (ax.xaxis, ax.yaxis):
        fmt = ScalarFormatter(useOffset=False)
        fmt.set_scientific(False)
        axis.set_major_formatter(fmt)
        axis.set_major_locator(MaxNLocator(nbins=4 if axis is ax.xaxis else 5))
    ax.tick_params(labelsize=9)
    if title:
        ax.set_title(title, fontsize=11)
    bar = None
    if per_unit:
        span = abs(extent[1] - extent[0]) * per_unit
        metres = round_length(span / 4)
        bar = length_label(metres)
        sb = AnchoredSizeBar(
            ax.transData,
            metres / per_unit,
            bar,
            loc="lower left",
            pad=0.4,
            borderpad=0.8,
            sep=4,
            frameon=True,
            size_vertical=abs(extent[3] - extent[2]) / 120,
            fontproperties={"size": 9},
        )
        sb.patch.set_alpha(0.85)
        ax.add_artist(sb)
    ax.legend(
        handles=[Patch(facecolor=c.color, edgecolor="#555", label=c.name) for c in present]
        or [Patch(facecolor="none", label="(no classes)")],
        loc="upper left",
        bbox_to_anchor=(1.02, 1),
        fontsize=9,
        frameon=False,
        ncols=max(1, math.ceil(len(present) / 30)),
    )
    return fig, bar
