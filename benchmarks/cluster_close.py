"""How long a local cluster takes to close after a job that loaded the model.

    python benchmarks/cluster_close.py            # 3 rounds each way (~2 min on 2 cores)

Each round starts a LocalCluster of 2 workers (geoseg's defaults), maps the bundled NC sample
with the torch runtime (torch and the model in every worker) and times leaving the cluster.
"before" unregisters the workers' fast exit (engine/preload.py), which is how workers ended
before it: the interpreter's finalisation freed torch and the model, beyond the nanny's 4 s
grace on a busy machine. Printed: the median of each, and their ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-output" / "close"
NC = [ROOT / f"examples/data/nc/lsat7_2000_{b}.tif" for b in (10, 20, 30, 40, 50, 70)]
MODEL = ROOT / "examples/models/nc-deeplabv3plus"


def _slow_exit() -> None:
    import atexit

    import geoseg.engine.preload as preload

    atexit.unregister(preload._leave_at_once)


def one_round(fast: bool) -> float:
    from geoseg.cluster.setup import ClusterOptions, connect
    from geoseg.engine.predict import predict

    with connect(ClusterOptions(workers=2)) as c:
        if not fast:
            c.run(_slow_exit)
        predict(NC, MODEL, OUT / "map.tif", client=c, block=256, runtime="torch", overwrite=True)
        t = time.perf_counter()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from geoseg.model.runtime import cpu_name

    OUT.mkdir(parents=True, exist_ok=True)
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores")
    times = {"before (full finalisation)": [], "now (fast exit)": []}
    for _ in range(args.rounds):
        for label, fast in (("before (full finalisation)", False), ("now (fast exit)", True)):
            times[label].append(one_round(fast))
    for label, ts in times.items():
        each = ", ".join(f"{t:.2f}" for t in ts)
        print(f"{label:<28} close {statistics.median(ts):.2f} s  ({each})")
    before, now = (statistics.median(v) for v in times.values())
    print(f"close time, before / now: {before / now:.1f}x")


if __name__ == "__main__":
    main()
