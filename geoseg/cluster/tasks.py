"""One task per item on the cluster, followed to a clean end: every stage that fans work out
runs it here.

Results come back in item order (or one by one to ``on_result``, so that big ones need not be
kept), and each future is released once its result is taken. An error a task raises reaches
the caller unchanged (a GeoSegError's one line) and cancels the other tasks; Ctrl-C cancels
every task and raises :class:`~geoseg.errors.Interrupted`; a task that keeps killing its worker
(after ``ALLOWED_FAILURES`` re-runs) cancels the rest and ends the stage in one line naming it.
Nothing here logs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from distributed import Client, KilledWorker, as_completed

from geoseg.cluster.setup import ALLOWED_FAILURES
from geoseg.errors import GeoSegError, Interrupted, Resumable

if TYPE_CHECKING:
    from geoseg.core.grid import Window


class Progress(Protocol):
    """A progress display: told of each result as it comes, closed at the end."""

    def advance(self, result: Any) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Staged:
    """A stage whose tasks stage their results, so that running it again resumes: how many
    items are staged now (``count()``, read when it stops) and what they are called."""

    count: Callable[[], int]
    unit: str = "blocks"


def run_tasks(
    c: Client,
    fn: Callable,
    items: Sequence[tuple],
    *,
    args: tuple = (),
    keys: Sequence[str] | None = None,
    progress: Progress | None = None,
    on_result: Callable[[int, Any], None] | None = None,
    describe: Callable[[int], str] | None = None,
    doing: str = "",
    advice: str = "check the input there",
    resume: Staged | None = None,
) -> list:
    """Run ``fn(*args, *items[i])`` as one task per item; return the results in item order,
    or, with ``on_result``, call ``on_result(i, result)`` as each completes and return [].

    ``keys``: the tasks' keys (default: unique ones, ``pure=False``). ``progress`` is advanced
    by each result and closed at the end. For the line a worker's death ends the stage with:
    ``describe(i)`` names item i (``block 3 of 12 (rows ..., columns ...)``), ``doing`` says
    what its task was doing and ``advice`` what to check. ``resume``: the stage stages its
    work, so both that line and Ctrl-C's say how many items stay staged and to run the same
    command again; without it they say that no output was written.
    """
    items = list(items)
    futures: dict = {}  # the futures whose result is not taken yet -> their item's index
    results: list = [] if on_result else [None] * len(items)
    done = as_completed()
    ahead = iter(range(len(items)))
    threads = _Threads(c)

    started: dict = {}  # future -> when it was submitted
    short = False  # a task took under SHORT_TASK_S: SHORT_AHEAD tasks per thread are out

    def submit(slots: int) -> None:
        """Submit the next items in order until ``slots`` tasks are out."""
        while len(futures) < slots and (k := next(ahead, None)) is not None:
            key = {} if keys is None else {"key": keys[k]}
            fut = c.submit(fn, *args, *items[k], pure=False, **key)
            futures[fut], started[fut] = k, time.monotonic()
            done.add(fut)

    i = -1
    try:
        # One task per worker thread is out, the next submitted as one ends. The scheduler
        # queues only large groups of tasks; a few, as a job's blocks are, it hands to workers
        # at submission, so two long blocks could fall to one worker while the other idled
        # (jobs of 4 blocks on 2 workers took 14.7 or 15.7 s by turns, 13.6-14.5 s this way).
        # Short tasks would wait on the round trip (400 tasks of 10 ms: 4.4 s against 3.0
        # submitted at once): after one, a few per thread are out. (Not all at once: a burst of
        # submissions still reaching the scheduler when Ctrl-C closed the client made it log
        # its failed replies on the terminal.)
        submit(threads())
        for fut in done:
            i = futures[fut]
            short = short or time.monotonic() - started.pop(fut) < SHORT_TASK_S
            r = fut.result()
            del futures[fut]
            fut.release()
            submit(threads() * (SHORT_AHEAD if short else 1))
            if on_result:
                on_result(i, r)
            else:
                results[i] = r
            if progress:
                progress.advance(r)
    except KeyboardInterrupt:
        _cancel(c, futures)
        raise Interrupted(_interrupted(resume, len(items))) from None
    except KilledWorker as e:
        _cancel(c, futures)
        allowed = getattr(e, "allowed_failures", None)
        deaths = (ALLOWED_FAILURES if allowed is None else allowed) + 1
        what = describe(i) if describe else f"task {i + 1} of {len(items)}"
        raise _killed(what, deaths, doing, advice, resume, len(items)) from None
    except BaseException:
        _cancel(c, futures)
        raise
    finally:
        if progress:
            progress.close()
    return results


SHORT_TASK_S = 0.5  # a task this short pays a round trip to the client for its successor
SHORT_AHEAD = 4  # tasks out per worker thread once one was that short


class _Threads:
    """The cluster's worker threads (workers may come and go during a stage), asked of the
    scheduler at most once a second: a stage of many short tasks pays no round trip each."""

    def __init__(self, c: Client):
        self.c, self.at, self.n = c, -1.0, 1

    def __call__(self) -> int:
        now = time.monotonic()
        if now - self.at >= 1.0:
            self.at, self.n = now, max(1, sum(self.c.nthreads().values()))
        return self.n


def name_windows(windows: Sequence[Window]) -> Callable[[int], str]:
    """``describe`` for items that are windows, in order: ``block 3 of 12 (rows ..., ...)``."""
    return lambda i: f"block {i + 1} of {len(windows)} ({rows_columns(windows[i])})"


def rows_columns(w: Window) -> str:
    """``rows A-B, columns C-D`` (inclusive) of window ``w``."""
    return f"rows {w.row}-{w.row_end - 1}, columns {w.col}-{w.col_end - 1}"


def _cancel(c: Client, futures: dict) -> None:
    with contextlib.suppress(BaseException):
        c.cancel(list(futures))


def _interrupted(resume: Staged | None, n: int) -> str:
    if resume is None:
        return "interrupted: no output was written"
    return (
        f"interrupted: {resume.count()} of {n} {resume.unit} staged; run the same command "
        "again to resume"
    )


def _killed(
    what: str, deaths: int, doing: str, advice: str, resume: Staged | None, n: int
) -> GeoSegError:
    crash = f"{what} killed its worker {deaths} times, a crash in native code or out of memory"
    if doing:
        crash += f" while {doing}"
    if resume is None:
        return GeoSegError(f"{crash}: no output was written; {advice}")
    return Resumable(
        f"{crash}: {resume.count()} of {n} {resume.unit} stay staged; {advice}, then run the "
        "same command again to resume"
    )
