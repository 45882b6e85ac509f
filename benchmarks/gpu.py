"""GPU benchmark: DeepLabV3+ resnet34 on one GPU, the model alone and geoseg end to end.

    python benchmarks/gpu.py                  # on a CUDA machine: 8192 x 8192 scene, < 8 min
    python benchmarks/gpu.py --device cpu     # the same stages on a CPU, 1024 x 1024 (~1.5 min)
    python benchmarks/gpu.py --device cpu --model pixelnet   # the host path's ceiling

Random weights, a synthetic uint16 scene, nothing from the network. Model-only: TilePredictor
on random normalised tiles, warm (bf16 batch 16/32, fp32, cudnn.benchmark; the bare forward on
device tensors, NCHW and channels_last; torch.compile last, if time is left). End to end:
``predict(..., gpus=True)`` on one cluster (dask-cuda where it runs, else geoseg's CPU-cluster
fallback: which one is reported) at block sizes 2048, 4096 and 2048 again, nvidia-smi sampled
every 0.5 s; the class rasters compared with the first. No stage starts after --budget s (420);
a watchdog prints what was measured and exits at budget + 60 s. Figures: OUT/gpu.json, and a
Markdown table for BENCHMARKS.md on stdout and in OUT/gpu.md.

The nvidia-h200 device run: wheels from ``bash benchmarks/gpu_wheels.sh`` (what that machine
lacks, dask-cuda included, ~33 MiB); run with carry [".whl"] and timeout_s 540, one line:

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD || exit; set -o pipefail; PYTHONUNBUFFERED=1 python3 benchmarks/gpu.py --out $OUT 2>&1 | tee $OUT/log
"""  # noqa: E501

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from concurrent.futures import ProcessPoolExecutor
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLASSES = [{"id": i + 1, "name": f"class{i + 1}"} for i in range(7)]
TILE, BANDS = 512, 4
PACKAGES = "rasterio dask distributed dask-cuda segmentation-models-pytorch timm huggingface-hub"
T0 = time.perf_counter()
R: dict = {"argv": sys.argv[1:], "machine": {}, "model_only": {}, "e2e": {}, "identity": []}
R.update(skipped=[], errors={})
BUDGET = [420.0]  # seconds after which no stage starts (--budget)


def elapsed() -> float:
    return time.perf_counter() - T0


def log(msg: str) -> None:
    print(f"[{elapsed():5.0f} s] {msg}", flush=True)


def stage(name: str, need: float | None, fn, *a, **kw):
    """``fn(*a, **kw)`` unless fewer than ``need`` s of the budget are left (None: always);
    errors are recorded, not raised."""
    left = BUDGET[0] - elapsed()
    if need is not None and left < need:
        R["skipped"].append(f"{name} (needs ~{need:.0f} s, {max(left, 0):.0f} s left)")
        return log(f"skipped {name}: out of time")
    t = time.perf_counter()
    try:
        out = fn(*a, **kw)
    except Exception as e:
        R["errors"][name] = f"{type(e).__name__}: {str(e)[:300]}"
        traceback.print_exc()
        return log(f"{name} FAILED")
    log(f"{name}: {time.perf_counter() - t:.1f} s")
    return out


def machine(device: str) -> dict:
    import torch

    info = Path("/proc/cpuinfo").read_text()
    names = [ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model n")]
    m = {"cpu": names[0] if names else platform.processor(), "cores": os.cpu_count()}
    m.update(python=platform.python_version(), torch=torch.__version__, cuda=torch.version.cuda)
    m["cpu_bf16"] = "amx_bf16" in info or "avx512_bf16" in info
    if device == "cuda":
        p = torch.cuda.get_device_properties(0)
        m.update(gpu=p.name, gpu_mem_gib=round(p.total_memory / 2**30, 1))
        m.update(cudnn=torch.backends.cudnn.version(), tf32_conv=torch.backends.cudnn.allow_tf32)
    for name in PACKAGES.split():
        with contextlib.suppress(metadata.PackageNotFoundError):
            m[name] = metadata.version(name)
    return m


MODELS = {"resnet34": ("deeplabv3plus", "resnet34"), "pixelnet": ("pixelnet", "none")}


def make_bundle(work: Path, model: str = "resnet34") -> Path:
    from geoseg.model.factory import create_bundle

    arch, encoder = MODELS[model]
    kw = dict(classes=CLASSES, bands=BANDS, architecture=arch, encoder=encoder)
    kw.update(mean=[2000.0] * BANDS, std=[1000.0] * BANDS, tile=TILE, overlap=64, seed=0)
    create_bundle(work / "bundle", **kw)
    return work / "bundle"


def _synth_window(spec, r: int, c: int, h: int, w: int):
    from geoseg.synth import SynthScene

    return SynthScene(spec).window(r, c, h, w)[0]


def make_scene(path: Path, side: int) -> Path:
    """geoseg.synth's scene (it depends only on the seed), its windows made in parallel."""
    import rasterio
    from rasterio.windows import Window

    from geoseg.synth import SynthSpec

    spec = SynthSpec(side, side, bands=BANDS, n_classes=7, patch=160, seed=42)
    prof = dict(driver="GTiff", height=side, width=side, count=BANDS, dtype=spec.dtype)
    prof.update(nodata=spec.nodata, crs=spec.crs, transform=spec.transform, tiled=True)
    prof.update(blockxsize=256, blockysize=256, BIGTIFF="IF_SAFER")
    g = range(0, side, 1024)
    wins = [(r, c, min(1024, side - r), min(1024, side - c)) for r in g for c in g]
    pool = ProcessPoolExecutor(min(len(wins), os.cpu_count() or 1), mp_context=get_context("spawn"))
    with rasterio.open(path, "w", **prof) as ds, pool:
        futs = [pool.submit(_synth_window, spec, *w) for w in wins]
        for (r, c, h, w), f in zip(wins, futs, strict=True):
            ds.write(f.result(), window=Window(c, r, w, h))
    return path


def precision_kw(fn, precision: str) -> dict:
    """``precision=`` (and ``runtime="torch"``) where ``fn`` takes them, else ``amp=``."""
    params = inspect.signature(fn).parameters
    kw = {"runtime": "torch"} if "runtime" in params else {}
    if "precision" in params:
        return {**kw, "precision": precision}
    return {**kw, "amp": "none" if precision == "fp32" else precision}


def timed(step, per_call: int, device: str, min_s: float) -> dict:
    """Tiles/s of ``step()`` (``per_call`` tiles) after two warm-up calls, >= ``min_s`` s."""
    import torch

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    t = time.perf_counter()
    for _ in range(2):  # cudnn's choices, torch.compile's compilation
        step(warm=True)
    sync()
    warm, n, t = time.perf_counter() - t, 0, time.perf_counter()
    while n == 0 or time.perf_counter() - t < min_s:
        step()
        n += per_call
    sync()
    dt = time.perf_counter() - t
    return {"tiles": n, "seconds": dt, "warmup_s": warm, "tiles_per_s": n / dt,
            "mpx_per_s": n * TILE * TILE / 1e6 / dt}  # fmt: skip


def model_only(bundle, device, precision, batch, tiles, min_s, compile_=False, cudnn_bench=False):
    """TilePredictor.predict on numpy tiles: host to device, model, softmax, back to host."""
    import torch

    from geoseg.model.runner import TilePredictor

    torch.backends.cudnn.benchmark = cudnn_bench
    kw = precision_kw(TilePredictor, precision)
    pred = TilePredictor(str(bundle), device=device, batch_size=batch, **kw)
    if compile_:
        pred.model = torch.compile(pred.model)
    try:
        out = timed(lambda warm=False: pred.predict(tiles[:batch] if warm else tiles),
                    len(tiles), device, min_s)  # fmt: skip
    finally:
        torch.backends.cudnn.benchmark = False
    out.update(precision=precision, batch=batch, compiled=compile_, cudnn_benchmark=cudnn_bench)
    return {**out, "oom_retries": pred.oom_retries}


def forward_only(bundle, device, batch, min_s, channels_last: bool) -> dict:
    """The bare model on a tensor already on the device (bf16 autocast on a GPU)."""
    import torch

    from geoseg.model.factory import load_model

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = load_model(str(bundle), device=device)[0].to(memory_format=fmt)
    x = torch.randn(batch, BANDS, TILE, TILE, device=device).contiguous(memory_format=fmt)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else None
    with torch.inference_mode(), amp or contextlib.nullcontext():
        out = timed(lambda warm=False: model(x), batch, device, min_s)
    return {**out, "batch": batch, "channels_last": channels_last}


@contextlib.contextmanager
def gpu_sampler(period: float = 0.5):
    """nvidia-smi's utilisation (%) and memory used (MiB) every ``period`` s in a thread;
    yields a dict that holds their summary once the block is left."""
    cmd = ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits"]
    samples, done, summary = [], threading.Event(), {}

    def run() -> None:
        while not done.is_set():
            with contextlib.suppress(Exception):
                out = subprocess.run(cmd, capture_output=True, text=True, timeout=5).stdout
                samples.append([float(v) for v in out.splitlines()[0].split(",")])
            done.wait(period)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield summary
    finally:
        done.set()
        thread.join(timeout=10)
        u = [s[0] for s in samples]
        if u:
            summary.update(samples=len(u), util_mean=sum(u) / len(u), util_max=max(u))
            summary["mem_max_mib"] = max(s[1] for s in samples)


def _worker_device() -> str:
    import torch

    env = os.environ.get("CUDA_VISIBLE_DEVICES", "-")
    return f"CUDA_VISIBLE_DEVICES={env} cuda={torch.cuda.is_available()}"


def end_to_end(args, scene: Path, bundle: Path, work: Path, blocks: list[int]) -> None:
    """predict() at each block size in turn on one cluster, started (and timed) once."""
    from geoseg.cluster.setup import ClusterOptions, connect
    from geoseg.engine.predict import predict

    cuda, e = args.device == "cuda", R["e2e"]
    opts = ClusterOptions(gpus=True, dashboard=None) if cuda else ClusterOptions(workers=2)
    kw = precision_kw(predict, "bf16" if cuda else "fp32")
    kw.update({"gpus": True} if cuda else {"device": "cpu"})
    with contextlib.ExitStack() as stack:
        t = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:  # geoseg's fallback warns
            warnings.simplefilter("always")
            c = stack.enter_context(connect(opts))
        e.update(cluster=type(c.cluster).__name__, cluster_start_s=time.perf_counter() - t)
        e["dask_cuda_used"] = e["cluster"] == "LocalCUDACluster"
        e["fallback_warnings"] = [str(w.message) for w in caught if "--gpus" in str(w.message)]
        devs = c.run(_worker_device)
        e.update(n_workers=len(devs), workers=sorted(set(devs.values())), runs=[])
        log(f"cluster: {e['cluster']}, {e['n_workers']} workers, {e['workers']}")
        need = 60.0 if cuda else 20.0
        for i, block in enumerate(blocks):
            if BUDGET[0] - elapsed() < need:
                R["skipped"].append(f"end to end #{i + 1}, block {block}")
                continue
            out = work / f"classes_{i}_b{block}.tif"
            kw.update(block=block, batch_size=args.batch, staging=str(work / f"staging{i}"))
            sample = cuda and shutil.which("nvidia-smi")
            with gpu_sampler() if sample else contextlib.nullcontext({}) as gpu:
                res = predict(str(scene), str(bundle), out, client=c, overwrite=True, **kw)
            run = {"block": block, "path": str(out), "seconds": res.seconds, "blocks": res.blocks}
            run.update(mpx_per_s=res.mpx_per_s, tiles=res.tiles, assembly_s=res.assembly_seconds)
            run.update(block_task_s=sum(res.block_seconds), peak_rss_mb=res.peak_rss_mb)
            e["runs"].append({**run, "gpu": gpu})
            log(f"end to end, block {block}: {res.seconds:.1f} s, {res.mpx_per_s:.3g} Mpx/s")
            need = 1.3 * res.seconds + 5


def identity() -> None:
    """Each later map against the first: another block size, then the same block again."""
    import numpy as np
    import rasterio

    runs = R["e2e"].get("runs", [])
    for r in runs[1:]:
        with rasterio.open(runs[0]["path"]) as a, rasterio.open(r["path"]) as b:
            x, y = a.read(1), b.read(1)
        d = int(np.count_nonzero(x != y)) if x.shape == y.shape else -1
        R["identity"].append({"blocks": [runs[0]["block"], r["block"]], "differ": d})
        R["identity"][-1]["pixels"] = int(x.size)


def speedups(prec: str, b: int) -> list[tuple[str, str]]:
    """What helped: tiles/s of one configuration over another's, both from this run."""
    mo, rows = R["model_only"], []
    for new, old, what in [
        (f"bf16 b{b}", f"fp32 b{b}", "bf16 over fp32"),
        ("bf16 b32", "bf16 b16", "batch 32 over 16"),
        ("bf16 b32 cudnn.benchmark", "bf16 b32", "cudnn.benchmark"),
        (f"forward-only b{b}", f"{prec} b{b}", "bare forward over TilePredictor"),
        (f"forward-only b{b} channels_last", f"forward-only b{b}", "channels_last (forward)"),
        (f"{prec} b{b} torch.compile", f"{prec} b{b}", "torch.compile"),
    ]:
        if new in mo and old in mo:
            x = R.setdefault("speedups", {})[what] = mo[new]["tiles_per_s"] / mo[old]["tiles_per_s"]
            rows.append((f"speed-up: {what}", f"{x:.2f}x ({'helped' if x > 1.05 else 'no gain'})"))
    return rows


def summarise(args) -> str:
    """The Markdown table; derives end to end over model-only on the job's tile count."""
    m, e, cuda, b = R["machine"], R["e2e"], args.device == "cuda", args.batch
    prec = "bf16" if cuda else "fp32"
    gpu = f"{m['gpu']} ({m['gpu_mem_gib']} GiB)" if "gpu" in m else "no GPU"
    rows = [("machine", f"{gpu}; {m.get('cpu')}, {m.get('cores')} cores; torch {m.get('torch')}")]
    for name, r in R["model_only"].items():
        what = name if name.startswith("forward") else f"TilePredictor {name}"
        rows.append((what, f"{r['mpx_per_s']:.3g} Mpx/s ({r['tiles_per_s']:.3g} tiles/s)"))
    rows += speedups(prec, b)
    if "cluster" in e:
        how = "dask-cuda" if e["dask_cuda_used"] else ("NOT dask-cuda" if cuda else "CPU")
        txt = (
            f"{e['cluster']} ({how}), {e['n_workers']} workers, up in {e['cluster_start_s']:.1f} s"
        )
        rows.append(("cluster", txt))
    ref, procs = R["model_only"].get(f"{prec} b{b}"), 1 if cuda else 2
    for i, r in enumerate(e.get("runs", [])):
        txt = f"{r['mpx_per_s']:.3g} Mpx/s ({r['seconds']:.1f} s, {r['tiles']} tiles)"
        if ref and r["tiles"]:  # the model alone on the job's tiles, as BENCHMARKS.md does
            r["model_only_mpx_per_s"] = R["scene_mpx"] * ref["tiles_per_s"] * procs / r["tiles"]
            r["ratio"] = r["mpx_per_s"] / r["model_only_mpx_per_s"]
            txt += f"; model-only {r['model_only_mpx_per_s']:.3g} Mpx/s; ratio {r['ratio']:.3f}"
        if (g := r.get("gpu") or {}).get("samples"):
            txt += f"; GPU util mean {g['util_mean']:.0f} %, max {g['util_max']:.0f} %"
            txt += f", memory max {g['mem_max_mib']:.0f} MiB"
        rows.append((f"end to end #{i + 1}, block {r['block']}", txt))
    for d in R["identity"]:
        pair = f"block {d['blocks'][0]} vs {d['blocks'][1]}"
        rows.append((f"bit identity, {pair}", f"{d['differ']} of {d['pixels']} pixels differ"))
    rows += [("skipped", s) for s in R["skipped"]]
    rows += [(f"error: {k}", v) for k, v in R["errors"].items()]
    model = {"resnet34": "DeepLabV3+ resnet34", "pixelnet": "pixelnet (the engine alone)"}
    head = f"{model[args.model]} (random weights), {BANDS} bands, 7 classes, tile {TILE}/64; "
    head += f"scene {R.get('scene_side')}² ({R.get('scene_mpx', 0):.1f} Mpx); e2e {prec} b{b}\n\n"
    table = "".join(f"| {a} | {b} |\n" for a, b in rows)
    return head + "| measurement | figure |\n|---|---|\n" + table


def report(args, partial: bool = False) -> None:
    R.update(seconds=elapsed(), partial=partial)
    table = summarise(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu.json").write_text(json.dumps(R, indent=2, default=str))
    (args.out / "gpu.md").write_text(table)
    print(("\n(PARTIAL: stopped by the watchdog)\n" if partial else "\n") + table, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--quick", action="store_true", help="a smaller scene (4096² on cuda)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench-output" / "gpu")
    ap.add_argument("--work", type=Path, help="scene, bundle, maps (default: a temp dir)")
    ap.add_argument("--budget", type=float, default=420.0, help="no stage starts after (s)")
    ap.add_argument("--batch", type=int, help="end-to-end batch (default: 16 cuda, 1 cpu)")
    ap.add_argument(
        "--model",
        choices=list(MODELS),
        default="resnet34",
        help="pixelnet: a near-free per-pixel model, so the host path's ceiling shows",
    )
    ap.add_argument("--compile", choices=["auto", "on", "off"], default="auto", help="auto: cuda")
    args = ap.parse_args()
    cuda = args.device == "cuda"
    b = args.batch = args.batch or (16 if cuda else 1)
    BUDGET[0] = args.budget
    prec = "bf16" if cuda else "fp32"

    def watchdog() -> None:
        log("watchdog: out of time")
        report(args, partial=True)
        os._exit(3)

    timer = threading.Timer(args.budget + 60, watchdog)
    timer.daemon = True
    timer.start()
    import numpy as np
    import torch

    if cuda and not torch.cuda.is_available():
        sys.exit("gpu.py: torch sees no CUDA device (use --device cpu)")
    if not cuda:
        torch.set_num_threads(1)  # as in one local worker (geoseg's torch_threads=1)
    work = args.work or Path(tempfile.mkdtemp(prefix="geoseg-gpu-"))
    work.mkdir(parents=True, exist_ok=True)
    R["machine"] = machine(args.device)
    log(f"machine: {R['machine']}")
    bundle = stage("bundle", None, make_bundle, work, args.model)
    side = (4096 if args.quick else 8192) if cuda else (768 if args.quick else 1024)
    R.update(scene_side=side, scene_mpx=side * side / 1e6)
    scene = stage("scene", None, make_scene, work / "scene.tif", side)
    if bundle is None or scene is None:
        return report(args)

    n, min_s = (64, 3.0) if cuda else (4, 0.5)
    tiles = np.random.default_rng(0).standard_normal((n, BANDS, TILE, TILE), dtype=np.float32)
    configs = [("bf16", 16, False), ("bf16", 32, False), ("fp32", 16, False), ("bf16", 32, True)]
    if not cuda:  # batch 1 is geoseg's CPU default; bf16 only where the CPU has it natively
        configs = [("fp32", 1, False)] + ([("bf16", 1, False)] if R["machine"]["cpu_bf16"] else [])
    mo, dev = R["model_only"], args.device
    for p, bs, bench in configs:
        name = f"{p} b{bs}" + (" cudnn.benchmark" if bench else "")
        run = (bundle, dev, p, bs, tiles, min_s, False, bench)
        if r := stage(f"model-only {name}", 15, model_only, *run):
            mo[name] = r
    for cl in (False, True):
        name = f"forward-only b{b}" + (" channels_last" if cl else "")
        if r := stage(name, 15, forward_only, bundle, dev, b, min_s, cl):
            mo[name] = r
    if cuda:
        torch.cuda.empty_cache()

    blocks = [2048, 4096, 2048] if cuda else [512, 1024, 512]
    stage("end to end", 60, end_to_end, args, scene, bundle, work, blocks)
    stage("bit identity", None, identity)
    if args.compile == "on" or (args.compile == "auto" and cuda):  # last: compiling takes long
        name, run = f"{prec} b{b} torch.compile", (bundle, dev, prec, b, tiles, min_s, True)
        if r := stage(f"model-only {name}", 150, model_only, *run):
            mo[name] = r
    timer.cancel()
    report(args)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
