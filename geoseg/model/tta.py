"""Test-time augmentation: which symmetric views of a tile the model sees (torch-free, so the
client can validate a job without importing torch; :mod:`geoseg.model.runner` applies them).

Each view is (k quarter turns, then a left-right flip); the probabilities of every view,
turned back, are averaged. ``flips``: identity, the two mirror images and the half turn
(4 forward passes); ``d4``: all eight symmetries of the square (8 passes).
"""

from __future__ import annotations

from geoseg.errors import GeoSegError

TTA_VIEWS: dict[str, list[tuple[int, bool]]] = {
    "none": [(0, False)],
    "flips": [(0, False), (0, True), (2, False), (2, True)],
    "d4": [(k, f) for k in range(4) for f in (False, True)],
}


def check_tta(tta: str) -> str:
    if tta not in TTA_VIEWS:
        raise GeoSegError(
            f"unknown test-time augmentation {tta!r}: use one of {', '.join(TTA_VIEWS)}"
        )
    return tta
