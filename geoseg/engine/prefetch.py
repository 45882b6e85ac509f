"""A block's pixels read and normalised by a background thread, in row bands, while the model
predicts the tile rows already there.

Reading (decompression) and normalising a 2048-pixel block cost ~1 s next to ~15 s of model
time on one CPU core; done up front they were most of the engine's overhead when a worker had a
core to spare (1 worker on 2 cores: end-to-end 0.85x model-only). rasterio and numpy release
the GIL, so the thread runs beside the model. Each band is read with :meth:`Scene.read`, which
mirrors outside the scene by global pixel index, so the assembled arrays are identical to one
read of the whole window.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from geoseg.core.grid import Window


class RowPrefetch:
    """Read ``window`` (bands ``bands`` of ``scene``) in row bands ending at ``cuts`` (rows
    relative to the window, increasing, the last one = its height), applying ``prepare(data,
    valid)`` to each band in place. :meth:`wait` blocks until the first ``rows`` rows are in."""

    def __init__(
        self,
        scene,
        window: Window,
        bands: list[int],
        cuts: list[int],
        prepare: Callable[[np.ndarray, np.ndarray], object] | None = None,
    ):
        self.data = np.empty((len(bands), window.height, window.width), dtype=np.float32)
        self.valid = np.empty((window.height, window.width), dtype=bool)
        self._ready = 0
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(
            target=self._run,
            name="geoseg-prefetch",
            daemon=True,
            args=(scene, window, bands, cuts, prepare),
        )
        self._thread.start()

    def _run(self, scene, window: Window, bands, cuts, prepare) -> None:
        start = 0
        try:
            for end in cuts:
                if end <= start:
                    continue
                band = Window(window.row + start, window.col, end - start, window.width)
                d, v = scene.read(band, bands)
                if prepare is not None:
                    prepare(d, v)
                self.data[:, start:end] = d
                self.valid[start:end] = v
                start = end
                with self._cond:
                    self._ready = end
                    self._cond.notify_all()
        except BaseException as e:  # re-raised in the task's thread by wait()
            with self._cond:
                self._error = e
                self._cond.notify_all()

    def wait(self, rows: int) -> None:
        with self._cond:
            while self._ready < rows and self._error is None:
                self._cond.wait()
            if self._error is not None:
                raise self._error

    def join(self) -> None:
        self.wait(self.data.shape[1])
        self._thread.join()
