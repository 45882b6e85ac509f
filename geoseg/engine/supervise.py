"""Running a prediction job's block tasks on the cluster and stopping them cleanly: the
progress bar, Ctrl-C (cancel, say what is staged), a block that keeps killing its worker (one
line naming it), and an assembly stopped before it renames anything."""

from __future__ import annotations

import contextlib
from pathlib import Path

from distributed import Client, KilledWorker, as_completed
from distributed import wait as distributed_wait

from geoseg.engine.blocks import predict_block
from geoseg.engine.cluster import ALLOWED_FAILURES
from geoseg.engine.job import PredictJob
from geoseg.engine.progress import BlockProgress
from geoseg.errors import Interrupted, Resumable


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
    blocks = list(job.blocks)
    futures = {
        c.submit(predict_block, job, b.bi, b.bj, key=f"geoseg-{key}-{b.key}"): b for b in blocks
    }
    total_px = sum(b.region.size for b in blocks)
    stats: list[dict] = []
    bar = BlockProgress(len(blocks), total_px) if progress else None
    fut = None
    try:
        for fut in as_completed(futures):
            s = fut.result()
            stats.append(s)
            if bar:
                bar.advance(s)
    except KeyboardInterrupt:
        with contextlib.suppress(BaseException):
            c.cancel(list(futures))
        raise Interrupted(
            f"interrupted: {_staged(job, blocks)} of {len(blocks)} blocks staged; run the same "
            "command again to resume"
        ) from None
    except KilledWorker as e:
        with contextlib.suppress(BaseException):
            c.cancel(list(futures))
        deaths = (getattr(e, "allowed_failures", None) or ALLOWED_FAILURES) + 1
        b = futures[fut]
        w = b.region
        raise Resumable(
            f"block {b.key} (rows {w.row}-{w.row_end - 1}, columns {w.col}-{w.col_end - 1}) "
            f"killed its worker {deaths} times, a crash in native code or out "
            f"of memory while reading or predicting that window: {_staged(job, blocks)} of "
            f"{len(blocks)} blocks stay staged; check the scene there (or try a smaller "
            "--block), then run the same command again to resume"
        ) from None
    finally:
        if bar:
            bar.close()
    return stats


def _staged(job: PredictJob, blocks) -> int:
    return sum(job.block_path(b.key).exists() for b in blocks)
