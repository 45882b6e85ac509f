"""The progress bar of a job's blocks on stderr."""

from __future__ import annotations

import time


class BlockProgress:
    """Blocks done, Mpx/s (of blocks computed in this run) and ETA, on stderr."""

    def __init__(self, n_blocks: int, total_px: int):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.p = Progress(
            TextColumn("[bold]predict"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("blocks"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self.task = self.p.add_task("predict", total=n_blocks, rate="")
        self.t0 = time.perf_counter()
        self.px = 0
        self.p.start()

    def advance(self, s: dict) -> None:
        if not s["reused"]:
            self.px += s["pixels"]
        dt = time.perf_counter() - self.t0
        self.p.update(self.task, advance=1, rate=f"{self.px / 1e6 / dt:.2f} Mpx/s" if dt else "")

    def close(self) -> None:
        self.p.stop()
