"""Running a prediction job's block tasks on the cluster (:func:`geoseg.cluster.tasks.run_tasks`:
the progress bar, Ctrl-C, a block that keeps killing its worker) and an assembly stopped
before it renames anything."""

from __future__ import annotations

import contextlib
from pathlib import Path

from distributed import Client
from distributed import wait as distributed_wait

from geoseg.cluster.progress import BlockProgress
from geoseg.cluster.tasks import Staged, rows_columns, run_tasks
from geoseg.engine.blocks import predict_block
from geoseg.engine.job import PredictJob


def stop_assembly(c: Client, fut, flag: Path, wait_s: float = 60.0) -> None:
    """Stop a running assembly before the command returns: the flag makes it abort before it
    renames anything (it checks between blocks and before each rename); waits for it to end
    (a second Ctrl-C stops waiting; a local cluster is closed next, which ends it anyway)."""
    with contextlib.suppress(OSError):
        flag.touch()
    with contextlib.suppress(BaseException):  # a cancelled future would not wait for its task
        distributed_wait(fut, timeout=wait_s)
    if fut.done():  # it has stopped: the flag has served
        flag.unlink(missing_ok=True)
    else:  # still running (a second Ctrl-C, or a long GDAL call): the flag stays for it
        with contextlib.suppress(BaseException):
            c.cancel(fut)


def run_blocks(c: Client, job: PredictJob, key: str, progress: bool) -> list[dict]:
    """Every block task of ``job`` (keys ``geoseg-KEY-BLOCK``), with the progress bar; their
    statistics, in block order."""
    blocks = list(job.blocks)
    bar = BlockProgress(len(blocks), sum(b.region.size for b in blocks)) if progress else None
    return run_tasks(
        c,
        predict_block,
        [(b.bi, b.bj) for b in blocks],
        args=(job,),
        keys=[f"geoseg-{key}-{b.key}" for b in blocks],
        progress=bar,
        doing="reading or predicting that window",
        advice="check the scene there (or try a smaller --block)",
        **block_naming(job, blocks),
    )


def block_naming(job: PredictJob, blocks: list) -> dict:
    """``run_tasks``' ``describe`` and ``resume`` for tasks one per block of ``job``, in the
    order of ``blocks``: each named by its key and window, their staged files counted."""
    return {
        "describe": lambda i: f"block {blocks[i].key} ({rows_columns(blocks[i].region)})",
        "resume": Staged(lambda: sum(job.block_path(b.key).exists() for b in blocks)),
    }
