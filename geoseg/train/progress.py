"""A rich progress bar for training: samples of the epoch, samples/s, running loss, and one
line of validation figures per epoch."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class TrainProgress:
    def __init__(self, epochs: int, samples_per_epoch: int):
        self.epochs, self.samples = epochs, samples_per_epoch
        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:.1f} samples/s"),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        self.progress.start()
        self.task = None
        self.epoch = 0
        self.t0 = time.perf_counter()
        self.done = 0
        self.loss = float("nan")

    def advance(self, epoch: int, n: int, loss: float) -> None:
        if epoch != self.epoch:
            if self.task is not None:
                self.progress.remove_task(self.task)
            self.epoch, self.done, self.t0 = epoch, 0, time.perf_counter()
            self.loss = loss
            self.task = self.progress.add_task(
                "train", total=self.samples, epoch=epoch, epochs=self.epochs, rate=0.0, loss=loss
            )
        self.done += n
        self.loss = 0.9 * self.loss + 0.1 * loss
        rate = self.done / max(time.perf_counter() - self.t0, 1e-9)
        self.progress.update(self.task, advance=n, rate=rate, loss=self.loss)

    def report(self, row: dict, best: bool) -> None:
        self.progress.console.print(
            f"epoch {row['epoch']:>3}: loss {row['train_loss']:.4f}  val OA {row['val_oa']:.3f}"
            f"  mIoU {row['val_miou']:.3f}  ({row['samples_per_s']:.1f} samples/s)"
            f"{'  [green]best[/]' if best else ''}",
            highlight=False,
        )

    def stop(self) -> None:
        self.progress.stop()
