"""Five predict jobs on one long-lived cluster, two of them failing (the loop of
benchmarks/soak.py, which runs 30): no staging or partial file left behind, worker memory and
open descriptors flat."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from geoseg.cluster.setup import ClusterOptions, connect

ROOT = Path(__file__).resolve().parents[2]


def _soak_module():
    spec = importlib.util.spec_from_file_location("soak", ROOT / "benchmarks" / "soak.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_five_jobs_on_one_cluster_leave_nothing_behind(tmp_path):
    soak = _soak_module()
    inputs = soak.make_inputs(tmp_path / "inputs", sides=(768, 384))
    with connect(ClusterOptions(workers=2)) as c:
        rows = soak.soak(c, inputs, 5, tmp_path / "maps", log=lambda line: None)
    s = soak.summary(rows)
    assert [r["failed"] for r in rows] == [False, False, True, False, False]
    maps = {f"map_{r['job'] % 4}" for r in rows if not r["failed"]}
    expect = sorted(f"{m}{x}" for m in maps for x in (".qml", ".stac.json", ".tif", ".tif.aux.xml"))
    assert s["leftovers"] == [] and sorted(p.name for p in (tmp_path / "maps").iterdir()) == expect
    assert all(0.9 <= r <= 1.1 for r in s["rss_last_over_first"]), s
    # descriptors: only a library's database opened on first use (PROJ's) may be new
    assert {Path(f).name for f in s["worker_new_files"]} <= {"proj.db"}, s["worker_new_files"]
    # ... and a few sockets: the comm pools' connections to the peer worker, scheduler and
    # client, opened once (benchmarks/soak.py shows them flat after the first cycle)
    assert all(g <= 3 for g in s["worker_fd_growth"]), s["worker_fd_growth"]
