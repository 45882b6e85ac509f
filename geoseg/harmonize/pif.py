"""Relative radiometric normalisation of a later date onto an earlier one from
pseudo-invariant features (PIF): pixels whose spectra did not change between the dates.

Pairs of pixels are sampled over the dates' common footprint (on the earlier date's grid; a
later date on another grid is warped onto it with nearest neighbour) by the workers. The fit,
on the client, is a trimmed regression: the first PIF set is the quarter of the pixels whose
robust z-scores (median, IQR) changed least over all bands; then each band's reduced major
axis through the set (symmetric in the dates), the residuals of all pixels standardised by
the set's spread and summed in squares over the bands, and the quarter with the smallest sum
is the next set, until it stops changing. Changed land cover (planted or real) leaves the set,
so one gain and offset per band describe the radiometric difference alone; a quarter keeps
the fit robust with up to three quarters of the area changed. Written here because no
packaged Python library does PIF normalisation block-wise on a cluster (IR-MAD exists in the
Orfeo Toolbox and in scripts); the fit itself is a few lines of numpy.
"""

from __future__ import annotations

import numpy as np
from distributed import Client
from rasterio.windows import Window as RioWindow

from geoseg.cluster.tasks import run_tasks
from geoseg.core.grid import Window
from geoseg.core.radiometry import BandMapping, affine_mapping
from geoseg.errors import GeoSegError
from geoseg.io.grid import Layer, RasterGrid, common_grid, nearest_vrt
from geoseg.io.scene import Scene, open_raster
from geoseg.io.stats import sample_windows

PIF_FRACTION = 0.25  # share of the sampled pixels kept as pseudo-invariant
MAX_ITER = 30
SAMPLE_PIXELS = 2_000_000
SAMPLE_TASKS = 8
MIN_PIF = 1000


def pair_grid(later, earlier) -> tuple[RasterGrid, Layer, Layer]:
    """The earlier date's grid cropped to the common footprint, and how each date is read
    onto it (by offset, or warped)."""
    e, l_ = Scene.of(earlier), Scene.of(later)
    base = RasterGrid.of(e.paths[0])
    grid = common_grid(
        base,
        [(f"earlier {e.paths[0]}", base), (f"later {l_.paths[0]}", RasterGrid.of(l_.paths[0]))],
    )
    layers = Layer.on(e.paths[0], grid), Layer.on(l_.paths[0], grid)
    for scene, layer in zip((e, l_), layers, strict=True):
        if layer.warp and len(scene.paths) > 1:
            raise GeoSegError(
                f"{scene.paths[0]} is not on the earlier date's pixel grid and is given as "
                "band files: stack them into one raster (gdalbuildvrt -separate) first"
            )
    return grid, layers[0], layers[1]


def read_on_grid(
    scene: Scene, layer: Layer, grid: RasterGrid, w: Window, bands: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Bands and validity of ``scene`` over grid window ``w``."""
    if not layer.warp:
        shifted = Window(w.row + layer.offset[0], w.col + layer.offset[1], w.height, w.width)
        return scene.read(shifted, bands)
    with open_raster(scene.paths[0]) as src:
        nodata = src.nodata if src.nodata is not None else 0
        with nearest_vrt(src, grid, nodata) as vrt:
            rw = RioWindow(w.col, w.row, w.width, w.height)
            data = vrt.read(bands, window=rw, out_dtype="float32")
            valid = vrt.read_masks(1, window=rw) > 0
    valid &= np.isfinite(data).all(axis=0)
    return data, valid


def sample_pairs(later, earlier, bands: list[int], windows: list[Window]) -> np.ndarray:
    """(2, bands, n) values of both dates where both are valid: a worker task."""
    grid, le, ll = pair_grid(later, earlier)
    e, l_ = Scene.of(earlier), Scene.of(later)
    parts = [np.zeros((2, len(bands), 0), np.float32)]
    for w in windows:
        x, vx = read_on_grid(e, le, grid, w, bands)
        y, vy = read_on_grid(l_, ll, grid, w, bands)
        ok = (vx & vy)[::2, ::2]
        parts.append(np.stack([x[:, ::2, ::2][:, ok], y[:, ::2, ::2][:, ok]]))
    return np.concatenate(parts, axis=2)


def fit_pif(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Gains and offsets with ``x ~ gain * y + offset`` per band (x: earlier, y: later; bands
    x n), the final PIF mask and the iterations it took."""
    b, n = x.shape
    k = int(PIF_FRACTION * n)
    if k < MIN_PIF:
        raise GeoSegError(
            f"the dates share only {n} valid sampled pixels: too few to find pseudo-invariant "
            "ones; use --normalize scene"
        )

    def smallest(d: np.ndarray) -> np.ndarray:
        keep = np.zeros(n, dtype=bool)
        keep[np.argpartition(d, k)[:k]] = True
        return keep

    # first PIF set: pixels whose robust z-scores changed least, in every band together
    keep = smallest((((x - _median(x)) / _iqr(x) - (y - _median(y)) / _iqr(y)) ** 2).sum(axis=0))
    for it in range(1, MAX_ITER + 1):  # noqa: B007 - the count is returned
        gain, offset = _rma(x[:, keep], y[:, keep])
        r = x - (gain[:, None] * y + offset[:, None])
        z = r / np.maximum(r[:, keep].std(axis=1), 1e-9)[:, None]
        new = smallest((z**2).sum(axis=0))
        if np.array_equal(new, keep):
            break
        keep = new
    return gain, offset, keep, it


def _median(a: np.ndarray) -> np.ndarray:
    return np.median(a, axis=1)[:, None]


def _iqr(a: np.ndarray) -> np.ndarray:
    q = np.percentile(a, [25, 75], axis=1)
    return np.maximum(q[1] - q[0], 1e-9)[:, None]


def _rma(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reduced major axis per band: gain = sd(x) / sd(y), through the means. Symmetric in
    the dates, and unlike ordinary or orthogonal regression it does not collapse towards a
    flat or vertical line when a band's PIFs are weakly correlated."""
    r = np.array([np.corrcoef(a, c)[0, 1] for a, c in zip(x, y, strict=True)])
    if np.any(~(r > 0)):
        bad = [int(i) + 1 for i in np.flatnonzero(~(r > 0))]
        raise GeoSegError(
            f"band(s) {bad} of the two dates are not positively related on their most stable "
            "pixels: are they the same bands of the same area?"
        )
    gain = x.std(axis=1) / np.maximum(y.std(axis=1), 1e-12)
    return gain, x.mean(axis=1) - gain * y.mean(axis=1)


def pif_mapping(client: Client, later, earlier, bands: list[int]) -> tuple[BandMapping, dict]:
    """The later date's bands mapped onto the earlier date's radiometry, and a report."""
    grid, _, _ = pair_grid(later, earlier)
    cut = sample_windows(
        Scene.of(earlier), SAMPLE_PIXELS, 512, [Window(0, 0, grid.height, grid.width)]
    )
    n = max(1, min(SAMPLE_TASKS, len(cut)))
    doing = "reading sample windows of both dates"
    items = [(cut[i::n],) for i in range(n)]
    parts = run_tasks(client, sample_pairs, items, args=(later, earlier, bands), doing=doing)
    pairs = np.concatenate(parts, axis=2).astype(np.float64)
    if pairs.shape[2] < MIN_PIF:
        raise GeoSegError(
            f"the dates share only {pairs.shape[2]} valid pixels: they must overlap with data"
        )
    gain, offset, keep, iterations = fit_pif(pairs[0], pairs[1])
    mapping = affine_mapping(gain, offset, mode="pif")
    report = {
        "method": "reduced major axis on the quarter of pixels with the smallest residuals",
        "sampled_pixels": int(pairs.shape[2]),
        "pif_pixels": int(keep.sum()),
        "pif_fraction": float(keep.mean()),
        "iterations": iterations,
        "bands": [
            {
                "band": int(bd),
                "gain": float(g),
                "offset": float(o),
                "r": float(np.corrcoef(pairs[0, i, keep], pairs[1, i, keep])[0, 1]),
            }
            for i, (bd, g, o) in enumerate(zip(bands, gain, offset, strict=True))
        ],
    }
    return mapping, report
