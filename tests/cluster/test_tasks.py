"""The task runner on a real LocalCluster: results in item order, each handed over as it comes,
an error's one line passed on with the other tasks cancelled, Ctrl-C in one line, and a task
that kills its worker (a worker process that exits) named in one line; long tasks handed out
as workers free up."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time

import dask
import pytest
from distributed import Client, LocalCluster

from geoseg.cluster.tasks import Staged, name_windows, run_tasks
from geoseg.core.grid import Window
from geoseg.errors import GeoSegError, Interrupted, Resumable

RAN: list[int] = []  # what the tasks of a thread cluster ran
LOCK = threading.Lock()


def _power(base: int, exp: int) -> int:
    time.sleep(0.01 * (exp % 3))  # completion order differs from item order
    return base**exp


def _fail_or_sleep(i: int) -> int:
    if i == 0:
        raise GeoSegError("scene.tif: block 0 has no valid pixel; check the scene")
    time.sleep(0.2)
    with LOCK:
        RAN.append(i)
    return i


def _exit_on(i: int, crash: int) -> int:
    if i == crash:
        os._exit(1)  # as a segfault in native code or the kernel's OOM killer would
    return i


def _released(c: Client) -> bool:
    """Whether the client holds no future (a release reaches it on its event loop)."""
    deadline = time.time() + 5
    while c.futures and time.time() < deadline:
        time.sleep(0.02)
    return not c.futures


@contextlib.contextmanager
def _thread_cluster(workers: int):
    """A client of ``workers`` single-threaded workers in this process."""
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=False,
            protocol="tcp://",
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            silence_logs=logging.CRITICAL,
        ) as cluster,
        Client(cluster) as c,
    ):
        c.wait_for_workers(workers)
        yield c


@pytest.fixture(scope="module")
def threads():
    with _thread_cluster(1) as c:
        yield c


def test_results_in_item_order(threads):
    items = [(i,) for i in range(10)]
    assert run_tasks(threads, _power, items, args=(2,)) == [2**i for i in range(10)]
    assert run_tasks(threads, _power, []) == []


def test_on_result_gets_every_item_and_nothing_is_kept(threads):
    seen: dict[int, int] = {}

    class Bar:
        advanced = closed = 0

        def advance(self, r):
            self.advanced += 1

        def close(self):
            self.closed += 1

    bar = Bar()
    items = [(i,) for i in range(7)]
    out = run_tasks(threads, _power, items, args=(3,), on_result=seen.__setitem__, progress=bar)
    assert out == [] and seen == {i: 3**i for i in range(7)}
    assert (bar.advanced, bar.closed) == (7, 1)
    assert _released(threads)


def test_keys_are_the_tasks_keys(threads):
    keys = [f"geoseg-test-{i}" for i in range(3)]
    seen = []

    def took(i, r):
        seen.append(i)

    run_tasks(threads, _power, [(i,) for i in range(3)], args=(5,), keys=keys, on_result=took)
    assert sorted(seen) == [0, 1, 2]


def test_an_error_passes_on_unchanged_and_cancels_the_rest(threads):
    RAN.clear()
    items = [(i,) for i in range(20)]
    with pytest.raises(GeoSegError) as e:
        run_tasks(threads, _fail_or_sleep, items)
    assert type(e.value) is GeoSegError
    assert str(e.value) == "scene.tif: block 0 has no valid pixel; check the scene"
    time.sleep(1.0)
    assert len(RAN) < 19  # the tasks still queued never ran
    scheduler = threads.cluster.scheduler
    deadline = time.time() + 10
    while scheduler.tasks and time.time() < deadline:
        time.sleep(0.05)
    assert not scheduler.tasks and _released(threads)


def test_ctrl_c_cancels_and_says_so_in_one_line(threads):
    def interrupt(i, r):
        raise KeyboardInterrupt

    items = [(i,) for i in range(6)]
    with pytest.raises(Interrupted) as e:
        run_tasks(threads, _power, items, args=(2,), on_result=interrupt)
    assert str(e.value) == "interrupted: no output was written"
    with pytest.raises(Interrupted) as e:
        run_tasks(threads, _power, items, args=(2,), on_result=interrupt, resume=Staged(lambda: 4))
    assert str(e.value) == (
        "interrupted: 4 of 6 blocks staged; run the same command again to resume"
    )
    assert _released(threads)


def _sleep_where(seconds: float) -> str:
    from distributed import get_worker

    time.sleep(seconds)
    return get_worker().address


def test_long_tasks_go_to_the_worker_free_first():
    """Four long tasks on two single-threaded workers: the first takes 1.6 s, the others 0.6 s.
    Handed out as workers free up, the second worker runs the three short ones (at 0, 0.6 and
    1.2 s) while the first is still busy; handed out at submission, two tasks each."""
    with _thread_cluster(2) as c:
        where = run_tasks(c, _sleep_where, [(1.6,), (0.6,), (0.6,), (0.6,)])
    assert where[1] == where[2] == where[3] != where[0]


def test_window_names():
    name = name_windows([Window(0, 0, 256, 256), Window(0, 256, 256, 100)])
    assert name(1) == "block 2 of 2 (rows 0-255, columns 256-355)"


def test_a_task_that_kills_its_worker_is_named():
    # one task at a time on the worker, so that a death is blamed on the crashing task alone
    config = {
        "distributed.scheduler.allowed-failures": 1,
        "distributed.scheduler.worker-saturation": 1.0,
    }
    windows = [Window(0, 256 * k, 256, 256) for k in range(4)]
    with (
        dask.config.set(config),
        LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            silence_logs=logging.CRITICAL,
        ) as cluster,
        Client(cluster) as c,
    ):
        items = [(k, 2) for k in range(4)]
        with pytest.raises(GeoSegError) as e:
            run_tasks(c, _exit_on, items, describe=name_windows(windows))
        assert type(e.value) is GeoSegError
        assert str(e.value) == (
            "block 3 of 4 (rows 0-255, columns 512-767) killed its worker 2 times, a crash in "
            "native code or out of memory: no output was written; check the input there"
        )
        with pytest.raises(Resumable) as e:
            run_tasks(
                c,
                _exit_on,
                items,
                describe=name_windows(windows),
                doing="reading that window",
                advice="check the scene there",
                resume=Staged(lambda: 3),
            )
        assert str(e.value) == (
            "block 3 of 4 (rows 0-255, columns 512-767) killed its worker 2 times, a crash in "
            "native code or out of memory while reading that window: 3 of 4 blocks stay "
            "staged; check the scene there, then run the same command again to resume"
        )
