"""Is a scene like the ones the model was trained on? Checked before any block runs.

A model applied to another sensor, resolution or band order is accepted by the band count
alone and gives a confident, wrong map (a Landsat 30 m model on NAIP 5 m labelled every pixel
one class). The bundle records what it was trained on (:class:`geoseg.model.bundle.TrainedOn`):
the pixel size (a scene more than ``pixel_factor`` times finer or coarser is flagged), the
data type of its bands, and its band names (the same names in another order are flagged).
Value ranges are ``--normalize``'s business (``auto`` maps a scene whose band quantiles are
far from the training ones). ``predict`` warns in one line, or refuses with ``--strict``.
"""

from __future__ import annotations

from geoseg.io.scene import SceneInfo
from geoseg.model.bundle import BundleMeta


def mismatches(meta: BundleMeta, info: SceneInfo) -> list[str]:
    """What sets the scene apart from the model's training scenes (empty: nothing known)."""
    out = []
    names = [info.band_names[b - 1] for b in meta.bands]
    if meta.band_names and names != meta.band_names and sorted(names) == sorted(meta.band_names):
        out.append(
            f"its bands {', '.join(names)} are the model's {', '.join(meta.band_names)} in "
            "another order (stack them in the model's order)"
        )
    t = meta.trained_on
    if t is None:
        return out
    px = info.pixel_m
    if t.pixel_m and px:
        ratio = px / t.pixel_m
        if ratio > t.pixel_factor or ratio < 1 / t.pixel_factor:
            out.append(
                f"its pixels are {px:.3g} m and the model's training pixels {t.pixel_m:.3g} m "
                f"({max(ratio, 1 / ratio):.1f}x {'coarser' if ratio > 1 else 'finer'})"
            )
    dtypes = {info.dtypes[b - 1] for b in meta.bands}
    if t.dtype and dtypes != {t.dtype}:
        out.append(
            f"its bands are {'/'.join(sorted(dtypes))} and the model was trained on {t.dtype}"
        )
    return out
