"""Getting a Dask client: a local cluster (default), an existing scheduler, or dask-cuda GPUs.

Local workers are processes with one task thread each, one per core, and the model in each
runs on one thread (``torch_threads``): on this machine that was the fastest layout, and a fixed
thread count keeps results bit-identical for any number of workers (oneDNN's sums depend on
the thread count). The nanny's default
``MALLOC_TRIM_THRESHOLD_=65536`` disables glibc's adaptive mmap threshold, so every large tensor
is mmap'ed and faulted in afresh: the model ran ~40-55 % slower in such workers. geoseg's local
clusters start workers without it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import dask
from distributed import Client, LocalCluster
from distributed.security import Security

from geoseg.errors import GeoSegError

log = logging.getLogger(__name__)

ALLOWED_FAILURES = 3

CLUSTER_CONFIG = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    # GDAL's block cache defaults to 5 % of RAM per process and fills with decoded blocks of
    # every window a worker reads, so worker memory grew with the scene (12 % from 17 to 268
    # Mpx); each block is read once, so a small cache costs nothing
    "distributed.nanny.pre-spawn-environ.GDAL_CACHEMAX": "128",
    # a block whose worker dies is re-run elsewhere (never for an error it raises: that is
    # deterministic); after 3 deaths the block is taken for the cause and the job ends
    "distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
    # one task at a time per single-threaded worker (the default 1.1 sends two): a worker that
    # dies then takes down only the block it was running, so a crash is charged to that block
    # alone, not to a block merely queued behind it
    "distributed.scheduler.worker-saturation": 1.0,
    # the event loop's latency check, 50 times a second by default, competed with the model
    # for the GIL: warm jobs of 16.8 Mpx on 2 workers took 13.5-14.2 s with Dask's defaults and
    # 13.1-13.7 s with these (medians of 4, benchmarks/overheads.py), and an idle worker's
    # event loop 2 % of a core against 0.8 %; its warning still fires at 3 s of blocking
    "distributed.admin.tick.interval": "1s",
}


PRELOAD = "geoseg.engine.preload"


# Process-wide defaults for local clusters, set by the CLI (--dashboard-address, --debug) or
# by a program: the dashboard listens on the loopback interface only unless told otherwise
# (on a shared login node anyone could read it), and workers log nothing below CRITICAL, so
# a user error surfaces once, as geoseg's own message, not as worker tracebacks.
LOCAL_DASHBOARD = "127.0.0.1:0"
_settings = {"dashboard": os.environ.get("GEOSEG_DASHBOARD_ADDRESS") or LOCAL_DASHBOARD}
_settings["verbose"] = False

# The workers' statistical profiler (the dashboard's Profile page) samples the running task's
# stack 100 times a second: 0.49-0.54 CPU s per worker in a 13.8 s job, against 0.27-0.28
# without it, on two workers sharing two cores with the model. On with --debug.
PROFILER = "distributed.worker.profile.enabled"


def cluster_config() -> dict:
    """The Dask config local clusters start with: :data:`CLUSTER_CONFIG`, and the workers'
    profiler off unless ``--debug``."""
    return {**CLUSTER_CONFIG, PROFILER: _settings["verbose"]}


def configure(*, dashboard: str | None = None, verbose: bool | None = None) -> None:
    """Defaults of the local clusters this process starts: the dashboard's ``HOST:PORT``
    (port 0: any free one) and whether workers log (``verbose``: distributed's INFO lines)."""
    if dashboard is not None:
        _settings["dashboard"] = check_address(dashboard)
    if verbose is not None:
        _settings["verbose"] = bool(verbose)


def check_address(address: str) -> str:
    """``HOST:PORT`` (``:PORT`` = every interface), or a one-line error."""
    host, sep, port = str(address).rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise GeoSegError(
            f"dashboard address {address!r} is not HOST:PORT: e.g. 127.0.0.1:8787 (this "
            "machine only) or 0.0.0.0:8787 (every interface, on purpose)"
        )
    return f"{host}:{port}"


def _silence() -> int:
    return logging.INFO if _settings["verbose"] else logging.CRITICAL


def unset_malloc_trim() -> None:
    """Drop ``MALLOC_TRIM_THRESHOLD_`` from this process's environment before spawning workers.

    Distributed's nanny copies its pre-spawn environment into the *parent's* ``os.environ``
    (``os.environ.update`` before each spawn) and never removes it, so one cluster started with
    the default config leaks ``MALLOC_TRIM_THRESHOLD_=65536`` into every worker spawned later
    by this process, whatever their config says (seen in benchmarks/predict.py).
    """
    os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)


@dataclass(frozen=True)
class ClusterOptions:
    workers: int | None = None  # local workers; None: chosen for the machine
    scheduler: str | None = None  # address of an existing scheduler
    gpus: bool = False  # dask-cuda LocalCUDACluster, one worker per GPU
    threads_per_worker: int = 1  # dask task threads per worker
    dashboard: str | None = None  # local dashboard HOST:PORT; None: configure()'s default
    memory_limit: str | float | None = "auto"
    # TLS between client, scheduler and workers (e.g. Security.temporary() for a local
    # cluster); None: plain TCP, or whatever the dask config's distributed.comm.tls sets
    security: Security | None = None


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def default_workers() -> int:
    """Workers for a local CPU cluster: one per core (measured faster than one worker with all
    cores for the model, see BENCHMARKS.md)."""
    return max(1, usable_cores())


@contextlib.contextmanager
def connect(
    options: ClusterOptions | None = None,
    client: Client | None = None,
) -> Iterator[Client]:
    """Yield a client: ``client`` as given, else one for ``options`` (closed afterwards).
    Without a scheduler (or with ``auto``) and without a worker count, a running ``geoseg
    serve`` started in this folder is used (:mod:`geoseg.cluster.registry`); ``local``: always a
    new local cluster."""
    if client is not None:
        yield client
        return
    o = options or ClusterOptions()
    scheduler = None if o.scheduler in (None, "", "auto", "local") else o.scheduler
    if scheduler is None and o.scheduler != "local" and _may_attach(o):
        from geoseg.cluster.registry import find_service

        svc = find_service()
        scheduler = svc.address if svc is not None else None
    if scheduler:
        try:
            c = Client(scheduler, timeout="20s", security=o.security)
        except (OSError, TimeoutError) as e:
            raise GeoSegError(
                f"cannot reach the Dask scheduler at {scheduler} ({e}): check "
                "the address and that 'dask scheduler' is running"
            ) from None
        try:
            yield c
        finally:
            c.close()
        return
    cluster = _gpu_cluster(o) if o.gpus else None
    if cluster is None:
        cluster = local_cluster(o)
    try:
        with Client(cluster, security=o.security) as c:
            yield c
    finally:
        cluster.close()


def _may_attach(o: ClusterOptions) -> bool:
    """A service fits when the command asks for no particular cluster."""
    return o.workers is None and not o.gpus and o.security is None


def local_cluster(o: ClusterOptions) -> LocalCluster:
    """A local CPU cluster as every command starts it (workers on 127.0.0.1, quiet, with the
    worker preload and without ``MALLOC_TRIM_THRESHOLD_``)."""
    unset_malloc_trim()
    with dask.config.set(cluster_config()):
        return LocalCluster(
            n_workers=o.workers or default_workers(),
            threads_per_worker=o.threads_per_worker,
            processes=True,
            host="127.0.0.1",
            dashboard_address=check_address(o.dashboard or _settings["dashboard"]),
            memory_limit=o.memory_limit,
            silence_logs=_silence(),
            preload=[PRELOAD],
            security=o.security,
        )


def _gpu_cluster(o: ClusterOptions):
    """dask-cuda's LocalCUDACluster, or None (with a warning) where it cannot run."""
    try:
        from dask_cuda import LocalCUDACluster
    except Exception as e:  # ImportError, or cuda-bindings missing underneath
        warnings.warn(
            f"--gpus: dask-cuda is not usable ({type(e).__name__}: {e}); install "
            "geoseg[gpu] on a CUDA machine. Falling back to a local CPU cluster.",
            stacklevel=3,
        )
        return None
    # a GPU worker outruns one decoding thread: GDAL decodes its reads with several
    gpu_config = {**cluster_config(), "distributed.nanny.pre-spawn-environ.GDAL_NUM_THREADS": "4"}
    try:
        with dask.config.set(gpu_config):
            return LocalCUDACluster(
                host="127.0.0.1",
                dashboard_address=check_address(o.dashboard or _settings["dashboard"]),
                threads_per_worker=1,
                silence_logs=_silence(),
                preload=[PRELOAD],
                security=o.security,
            )
    except Exception as e:  # NVML errors without a GPU
        warnings.warn(
            f"--gpus: no usable GPU ({type(e).__name__}: {str(e)[:120]}); falling "
            "back to a local CPU cluster.",
            stacklevel=3,
        )
        return None
