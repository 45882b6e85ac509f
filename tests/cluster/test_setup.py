"""Local clusters as geoseg starts them: workers that leave at once when closed, every socket
on 127.0.0.1 unless told otherwise, and the dashboard address checked in one line."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


class _SlowToFinalise:
    """Sleeps when the interpreter finalises it, like a worker holding torch and a model."""

    sleep = time.sleep  # bound now: imports fail while the interpreter shuts down

    def __del__(self):
        self.sleep(6)


def _hold_slow_object() -> None:
    import geoseg.engine.preload as preload

    preload._slow = _SlowToFinalise()  # freed only when the process finalises its modules


def test_local_cluster_closes_without_killing_its_workers():
    """A worker whose process is slow to finalise leaves at once after a clean close: the
    nanny never waits out its grace and kills it ("Worker process still alive ... killing")."""
    from geoseg.cluster.setup import ClusterOptions, connect

    class Records(logging.Handler):
        def __init__(self):
            super().__init__(logging.WARNING)
            self.messages: list[str] = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    nanny, seen = logging.getLogger("distributed.nanny"), Records()
    level = nanny.level
    nanny.addHandler(seen)
    try:
        with connect(ClusterOptions(workers=1)) as c:
            nanny.setLevel(logging.WARNING)  # LocalCluster silenced distributed to ERROR
            c.run(_hold_slow_object)
            pids = list(c.run(os.getpid).values())
    finally:
        nanny.removeHandler(seen)
        nanny.setLevel(level)
    assert not [m for m in seen.messages if "still alive" in m], seen.messages
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def _listening(pids: list[int]) -> set[tuple[str, int]]:
    import psutil

    return {
        (s.laddr.ip, s.laddr.port)
        for p in pids
        for s in psutil.Process(p).net_connections(kind="inet")
        if s.status == psutil.CONN_LISTEN
    }


def test_local_cluster_listens_on_loopback_only_unless_told():
    """Scheduler, dashboard, nannies and workers of a local cluster bind to 127.0.0.1; the
    dashboard goes elsewhere only when asked (--dashboard-address)."""
    import geoseg.cluster.setup as cluster

    before = _listening([os.getpid()])  # other clusters of this test session
    with cluster.connect(cluster.ClusterOptions(workers=1)) as c:
        pids = [os.getpid(), *c.run(os.getpid).values()]
        assert {ip for ip, _ in _listening(pids) - before} == {"127.0.0.1"}
        assert c.dashboard_link.startswith("http://127.0.0.1:")
    cluster.configure(dashboard="0.0.0.0:0")
    try:
        with cluster.connect(cluster.ClusterOptions(workers=1)) as c:
            new = _listening([os.getpid()]) - before
            assert "0.0.0.0" in {ip for ip, _ in new}  # the dashboard, on purpose
    finally:
        cluster.configure(dashboard=cluster.LOCAL_DASHBOARD)


def test_dashboard_address_option(tmp_path):
    r = subprocess.run(
        [str(BIN / "geoseg"), "--dashboard-address", "localhost", "predict", "x.tif"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: dashboard address 'localhost' is not HOST:PORT: e.g. 127.0.0.1:8787 (this "
        "machine only) or 0.0.0.0:8787 (every interface, on purpose)"
    ], r.stderr


def _busy(seconds: float) -> int:
    end, n = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        n += 1
    return n


def test_workers_profile_tasks_only_with_debug():
    """The workers' statistical profiler (the dashboard's Profile page, CPU time taken from the
    model) is off on a local cluster, and on with --debug; their event loop checks its latency
    once a second."""
    import dask

    import geoseg.cluster.setup as cluster

    counts = []
    for verbose in (False, True):
        cluster.configure(verbose=verbose)
        try:
            with cluster.connect(cluster.ClusterOptions(workers=1)) as c:
                ticks = c.run(lambda: dask.config.get("distributed.admin.tick.interval"))
                assert set(ticks.values()) == {"1s"}  # not 50 latency checks a second
                c.submit(_busy, 0.5, pure=False).result()
                time.sleep(1.2)  # the profiler hands its samples over once a second
                counts.append(c.profile()["count"])
        finally:
            cluster.configure(verbose=False)
    assert counts[0] == 0 < counts[1]
