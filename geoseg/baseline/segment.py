"""Segmentation of a block of bands into objects with scikit-image.

Bands are z-scored with fixed (scene-wide) means and standard deviations first, so that every
block of a scene is segmented on the same scale and the colour parameters of the methods are
in standard deviations. Object labels are int32: -1 for invalid (nodata) pixels, 0..k-1 for
the objects, numbered in raster order of their first pixel.
"""

from __future__ import annotations

import numpy as np

from geoseg.baseline.config import Felzenszwalb, Quickshift, Slic, Watershed

# Invalid pixels are filled with this z-score, far from any data, so that no segment mixes
# them with valid pixels; they are dropped afterwards. (SLIC's own mask places its seeds by
# k-means over the mask's pixels, which costs minutes on a 1024-pixel block.)
NODATA_FILL = -10.0


def zscore(x: np.ndarray, valid: np.ndarray, mean, std) -> np.ndarray:
    """(bands x h x w) float32 z-scores; invalid pixels are 0 (the mean)."""
    m = np.asarray(mean, dtype=np.float32)[:, None, None]
    s = np.asarray(std, dtype=np.float32)[:, None, None]
    z = (x - m) / s
    z[:, ~valid] = 0.0
    return z


def segment(z: np.ndarray, valid: np.ndarray, seg) -> np.ndarray:
    """Objects of the z-scored bands ``z`` (bands x h x w) within ``valid``."""
    if not valid.any():
        return np.full(valid.shape, -1, dtype=np.int32)
    img = np.ascontiguousarray(np.moveaxis(z, 0, -1), dtype=np.float64)
    img[~valid] = NODATA_FILL
    if isinstance(seg, Slic):
        from skimage.segmentation import slic

        n = max(1, round(valid.size / seg.size**2))
        lab = slic(
            img,
            n_segments=n,
            compactness=seg.compactness,
            sigma=seg.sigma,
            max_num_iter=seg.max_num_iter,
            convert2lab=False,
            enforce_connectivity=True,
            start_label=1,
            channel_axis=-1,
        )
    elif isinstance(seg, Felzenszwalb):
        from skimage.segmentation import felzenszwalb

        lab = (
            felzenszwalb(
                img, scale=seg.scale, sigma=seg.sigma, min_size=seg.min_size, channel_axis=-1
            )
            + 1
        )
    elif isinstance(seg, Quickshift):
        from skimage.segmentation import quickshift

        lab = (
            quickshift(
                img,
                ratio=seg.ratio,
                kernel_size=seg.kernel_size,
                max_dist=seg.max_dist,
                sigma=seg.sigma,
                convert2lab=False,
                rng=0,
                channel_axis=-1,
            )
            + 1
        )
    elif isinstance(seg, Watershed):
        lab = _watershed(img, valid, seg)
    else:  # pragma: no cover - the config admits no other method
        raise TypeError(f"unknown segmentation {seg!r}")
    lab = np.asarray(lab, dtype=np.int64)
    lab[~valid] = 0
    return relabel(lab)


def _watershed(img: np.ndarray, valid: np.ndarray, seg: Watershed) -> np.ndarray:
    from skimage.filters import gaussian, sobel
    from skimage.segmentation import watershed

    smooth = gaussian(img, sigma=seg.sigma, channel_axis=-1) if seg.sigma else img
    grad = np.max([sobel(smooth[..., c]) for c in range(smooth.shape[-1])], axis=0)
    n = max(1, round(int(valid.sum()) / seg.size**2))
    return watershed(
        grad, markers=n, compactness=seg.compactness, mask=None if valid.all() else valid
    )


def relabel(lab: np.ndarray) -> np.ndarray:
    """Labels > 0 renumbered 0..k-1 in raster order of each label's first pixel; 0 -> -1."""
    flat = lab.ravel()
    uniq, first, inv = np.unique(flat, return_index=True, return_inverse=True)
    keep = uniq > 0
    order = np.argsort(np.where(keep, first, -1), kind="stable")  # background sorts first
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[order] = np.arange(len(uniq)) - (~keep).sum()
    rank[~keep] = -1
    return rank[inv].reshape(lab.shape).astype(np.int32)
