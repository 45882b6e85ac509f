"""A warm local cluster that later commands attach to: ``geoseg serve``.

A command starts its own local cluster (3-4 s on 2 cores) and loads its model in every
worker (and converts it to OpenVINO once per weights); a service keeps both between commands.
``geoseg serve`` starts the cluster as every command would (:func:`geoseg.cluster.setup
.local_cluster`), writes where it listens to a small JSON file (:func:`service_file`) and waits
for Ctrl-C, SIGTERM or ``geoseg serve --stop``. A later command with neither ``--scheduler`` nor
``--workers`` attaches to it when it runs and was started in the same folder
(:func:`geoseg.cluster.registry.find_service`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import asdict

from geoseg.cluster.registry import Service, read_service, service_file
from geoseg.errors import GeoSegError
from geoseg.io.files import atomic_write


def serve(workers: int | None, on_ready=None) -> None:
    """Run a local cluster until interrupted, announced in :func:`service_file`; ``on_ready``
    gets the :class:`Service` once it listens."""
    from distributed import Client

    from geoseg.cluster.setup import ClusterOptions, local_cluster

    path = service_file()
    running = read_service(path)
    if running is not None:
        raise GeoSegError(
            f"a geoseg service already runs (pid {running.pid}, {running.address}, started in "
            f"{running.cwd}): stop it with 'geoseg serve --stop' first"
        )
    stop = {"now": False}

    def _stop(signum, frame):
        stop["now"] = True

    old = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    cluster = local_cluster(ClusterOptions(workers=workers))
    try:
        with Client(cluster) as c:
            n = len(c.scheduler_info()["workers"])
            svc = Service(
                address=cluster.scheduler_address,
                pid=os.getpid(),
                cwd=os.getcwd(),
                workers=n,
                dashboard=cluster.dashboard_link,
                started=time.time(),
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, (json.dumps(asdict(svc), indent=2) + "\n").encode())
            if on_ready is not None:
                on_ready(svc)
            while not stop["now"]:
                time.sleep(0.2)
    finally:
        with contextlib.suppress(OSError, ValueError, TypeError):
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()
        cluster.close()
        for s, h in old.items():
            signal.signal(s, h)


def stop_service(timeout: float = 30.0) -> Service | None:
    """Stop the running service (SIGTERM, then wait for its file to go); None if none runs."""
    svc = read_service()
    if svc is None:
        return None
    os.kill(svc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    path = service_file()  # removed by the service once its cluster is closed
    while path.exists() and svc.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    if path.exists() and svc.alive():
        raise GeoSegError(
            f"the geoseg service (pid {svc.pid}) did not stop within {timeout:.0f} s: "
            f"end it with 'kill {svc.pid}'"
        )
    return svc
