"""Bad inputs through the real CLI: each gives one line naming the problem (a traceback only
with --debug), exit status 2, and no partial output (nor temporary files) where it would go.

Most cases run in-process with typer's CliRunner; a few run ``python -m geoseg.cli.main`` as the
user would. Everything that reaches Dask uses the session's cluster (``--scheduler``).
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
from rasterio.shutil import copy as rio_copy
from typer.testing import CliRunner

from geoseg.cli.main import app
from geoseg.engine.predict import predict
from geoseg.model.bundle import META_FILE, WEIGHTS_FILE, sha256_file

runner = CliRunner()


@pytest.fixture(scope="module")
def ctx(client, synth, bundles, evil_pickle, tmp_path_factory):
    scene, _ = synth(160, 200, seed=41)
    bundle = bundles("pixelnet", tile=64, overlap=16)
    root = tmp_path_factory.mktemp("bad-inputs")
    cmap = predict(scene, bundle, root / "map.tif", block=128, client=client).path
    paths = {"scene": Path(scene), "bundle": Path(bundle), "map": Path(cmap)}
    return SimpleNamespace(**paths, scheduler=client.scheduler.address, evil_pickle=evil_pickle)


def _snapshot(d: Path) -> dict[str, bytes]:
    """Every file under ``d`` (hidden ones included) with its content."""
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _one_line_error(code: int, stderr: str, match: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert code == 2, stderr
    assert len(errors) == 1 and lines[-1] == errors[0], stderr
    assert "Traceback" not in stderr
    assert not re.search(r"distributed\.|Compute Failed|CommClosedError", stderr), stderr
    assert re.search(match, errors[0], re.IGNORECASE), errors[0]
    return errors[0]


# ---- inputs ---------------------------------------------------------------------------------


def _raster(path: Path, data: np.ndarray, **kw) -> Path:
    tf = rasterio.transform.from_origin(500000, 4200000, 10, 10)
    prof = dict(driver="GTiff", height=data.shape[1], width=data.shape[2], count=len(data))
    prof.update({"dtype": data.dtype.name, "crs": "EPSG:32612", "transform": tf, **kw})
    if prof["crs"] is None:
        del prof["crs"], prof["transform"]
    with rasterio.open(path, "w", **prof) as d:
        d.write(data)
    return path


def _like(src: Path, dst: Path, data=None, **kw) -> Path:
    """A copy of ``src`` (pixels, nodata and tags) with other ``data`` or profile values."""
    with rasterio.open(src) as s:
        arr = s.read() if data is None else data
        tags = s.tags(1)
        nodata = s.nodata
    _raster(dst, arr, nodata=nodata, **kw)
    with rasterio.open(dst, "r+") as d:
        d.update_tags(1, **tags)
    return dst


def _compressed_cog(c, name: str) -> Path:
    p = c.tmp / name
    rio_copy(str(c.ctx.scene), str(p), driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=128)
    return p


def truncated_tiff(c):
    p = _compressed_cog(c, "truncated.tif")
    with open(p, "r+b") as f:
        f.truncate(int(p.stat().st_size * 0.6))
    return c.predict(p)


def corrupt_tiff(c):
    p = _compressed_cog(c, "corrupt.tif")
    size = p.stat().st_size
    with open(p, "r+b") as f:  # garbage over the compressed tiles, header intact
        f.seek(size // 2)
        f.write(np.random.default_rng(0).bytes(size // 4))
    return c.predict(p)


def zero_byte(c):
    (c.tmp / "empty.tif").write_bytes(b"")
    return c.predict(c.tmp / "empty.tif")


def not_a_raster(c):
    (c.tmp / "notes.tif").write_text("field notes, not a raster\n")
    return c.predict(c.tmp / "notes.tif")


def wrong_band_count(c):
    return c.predict(_raster(c.tmp / "rgb.tif", np.ones((3, 60, 70), np.uint16)))


def all_nodata(c):
    return c.predict(_raster(c.tmp / "void.tif", np.zeros((4, 90, 110), np.uint16), nodata=0))


def nan_bands(c):
    data = np.full((4, 90, 110), 2000, np.float32)
    data[2] = np.nan  # one band entirely NaN: no pixel has all the bands the model reads
    return c.predict(_raster(c.tmp / "nan.tif", data))


def _tampered_bundle(c, name: str) -> Path:
    d = c.tmp / name
    shutil.copytree(c.ctx.bundle, d)
    return d


def _reseal(d: Path) -> None:
    """Make the checksum in bundle.json match the (tampered) weights, so the loader sees them."""
    meta = json.loads((d / META_FILE).read_text())
    meta["weights_sha256"] = sha256_file(d / WEIGHTS_FILE)
    (d / META_FILE).write_text(json.dumps(meta))


def bundle_bad_json(c):
    d = _tampered_bundle(c, "badjson")
    (d / META_FILE).write_text('{"format": "geoseg-bundle", ')
    return c.predict(c.ctx.scene, bundle=d)


def bundle_wrong_shape(c):
    from safetensors.numpy import load_file, save_file

    d = _tampered_bundle(c, "shape")
    state = load_file(d / WEIGHTS_FILE)
    k = next(iter(state))
    state[k] = np.zeros((state[k].shape[0], 7) + state[k].shape[2:], state[k].dtype)
    save_file(state, d / WEIGHTS_FILE)
    _reseal(d)
    return c.predict(c.ctx.scene, bundle=d)


def bundle_pickle(c):
    d = _tampered_bundle(c, "pickle")
    (d / WEIGHTS_FILE).write_bytes(c.ctx.evil_pickle(c.tmp / "unpickled"))
    _reseal(d)
    return c.predict(c.ctx.scene, bundle=d)


def _train_yaml(c, extra: str) -> list[str]:
    y = c.tmp / "train.yaml"
    y.write_text(
        f"classes: [{{id: 1, name: water}}, {{id: 2, name: land}}]\n"
        f"scenes: [{{image: {c.ctx.scene}, labels: {c.ctx.map}}}]\n"
        f"output: {c.out / 'bundle'}\n{extra}"
    )
    return ["train", str(y)]


def yaml_unknown_key(c):
    return _train_yaml(c, "training: {epochs: 1, learning_rate: 0.01}\n")


def yaml_wrong_type(c):
    return _train_yaml(c, "training: {epochs: many}\n")


def change_crs_mismatch(c):
    after = _like(c.ctx.map, c.tmp / "after_2020.tif", crs="EPSG:32633")
    return c.change(after)


def change_no_crs(c):
    return c.change(_like(c.ctx.map, c.tmp / "after_2020.tif", crs=None))


def reference_no_crs(c):
    ref = _raster(c.tmp / "ref.tif", np.ones((1, 50, 60), np.uint8), crs=None)
    return c.evaluate(ref)


def reference_other_crs(c):
    return c.evaluate(_like(c.ctx.map, c.tmp / "ref.tif", crs="EPSG:32633"))


def reference_unknown_ids(c):
    with rasterio.open(c.ctx.map) as s:
        ref = s.read()
    ref[:, :40, :50] = 9
    return c.evaluate(_like(c.ctx.map, c.tmp / "ref.tif", data=ref))


def output_under_a_file(c):
    (c.out / "afile").write_text("x")
    return c.predict(c.ctx.scene, out=c.out / "afile" / "map.tif")


def existing_output(c):
    (c.out / "map.tif").write_bytes(b"an earlier map")
    return c.predict(c.ctx.scene)


def fp16_on_cpu(c):
    return c.predict(extra=("--precision", "fp16"))


def unknown_runtime(c):
    return c.predict(extra=("--runtime", "tensorrt"))


# name: (make the input, returning the CLI arguments; what the one-line error must match)
CASES = {
    "truncated_tiff": (truncated_tiff, r"pixels of .*truncated\.tif .*truncated or damaged"),
    "corrupt_tiff": (corrupt_tiff, r"pixels of .*corrupt\.tif .*TIFFReadEncodedTile"),
    "zero_byte": (zero_byte, r"empty\.tif.*empty \(0 bytes\)"),
    "not_a_raster": (not_a_raster, r"cannot read .*notes\.tif as a raster"),
    "wrong_band_count": (wrong_band_count, r"reads bands \[1, 2, 3, 4\] .* has 3 band"),
    "all_nodata": (all_nodata, r"void\.tif has no valid pixel"),
    "nan_bands": (nan_bands, r"nan\.tif has no valid pixel .*NaN"),
    "bundle_bad_json": (bundle_bad_json, r"bundle\.json is not valid JSON"),
    "bundle_wrong_shape": (bundle_wrong_shape, r"weights in .* do not fit a pixelnet"),
    "bundle_pickle": (bundle_pickle, r"not a safetensors file.*never loads pickle"),
    "yaml_unknown_key": (yaml_unknown_key, r"unknown key 'training\.learning_rate'"),
    "yaml_wrong_type": (yaml_wrong_type, r"training\.epochs: .*integer"),
    "change_crs_mismatch": (change_crs_mismatch, r"dates do not overlap.*EPSG:32633"),
    "change_no_crs": (change_no_crs, r"needs georeferenced rasters.*no CRS"),
    "reference_no_crs": (reference_no_crs, r"not on the map's grid and it has no CRS"),
    "reference_other_crs": (reference_other_crs, r"reference .*ref\.tif do not overlap"),
    "reference_unknown_ids": (reference_unknown_ids, r"class ids \[9\] .*--class-map"),
    "output_under_a_file": (output_under_a_file, r"output folder .*afile \(a file is in"),
    "existing_output": (existing_output, r"map\.tif already exists: pass --overwrite"),
    "fp16_on_cpu": (fp16_on_cpu, r"--precision fp16 runs on GPUs only .* use bf16"),
    "unknown_runtime": (unknown_runtime, r"unknown runtime 'tensorrt': use one of auto"),
}


class Ctx:
    """Paths for one case: inputs under ``tmp``, outputs under ``out``."""

    def __init__(self, ctx, tmp: Path):
        self.ctx, self.tmp, self.out = ctx, tmp / "in", tmp / "out"
        self.tmp.mkdir()
        self.out.mkdir()

    def _args(self, *parts, scheduler=None) -> list[str]:
        return [str(p) for p in (*parts, "--scheduler", scheduler or self.ctx.scheduler)]

    def predict(self, scene=None, bundle=None, out=None, extra=(), scheduler=None) -> list[str]:
        scene, bundle = scene or self.ctx.scene, bundle or self.ctx.bundle
        out = out or self.out / "map.tif"
        args = ["predict", scene, "--model", bundle, "--out", out, "--block", 128, *extra]
        return self._args(*args, scheduler=scheduler)

    def change(self, after: Path) -> list[str]:
        return self._args("change", "--before", self.ctx.map, "--after", after, "--out", self.out)

    def evaluate(self, ref: Path) -> list[str]:
        return self._args("evaluate", self.ctx.map, "--reference", ref, "--out", self.out)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gives_one_line_error_and_no_output(ctx, tmp_path, name):
    (make, match), c = CASES[name], Ctx(ctx, tmp_path)
    args = make(c)
    before = _snapshot(c.out)
    r = runner.invoke(app, args)
    _one_line_error(r.exit_code, r.stderr, match)
    assert _snapshot(c.out) == before  # nothing new, nothing partial, nothing replaced
    assert not (c.tmp / "unpickled").exists()  # the pickle offered as weights was not loaded


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "geoseg.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_real_process_one_line_and_traceback_only_with_debug(ctx, tmp_path):
    c = Ctx(ctx, tmp_path)
    args = corrupt_tiff(c)  # fails inside a Dask worker, not while planning
    r = _cli(*args)
    _one_line_error(r.returncode, r.stderr, CASES["corrupt_tiff"][1])
    r = _cli("--debug", *args)
    assert r.returncode != 0 and "Traceback" in r.stderr and "corrupt.tif" in r.stderr
    assert _snapshot(c.out) == {}


def test_local_cluster_worker_error_is_one_line_and_not_retried(ctx, tmp_path):
    """On geoseg's own local cluster the workers share the terminal: a block that fails on
    bad input prints no worker log or traceback, and is not re-run (the error would recur)."""
    c = Ctx(ctx, tmp_path)
    args = [a for a in corrupt_tiff(c)]
    i = args.index("--scheduler")
    del args[i : i + 2]
    r = _cli(*args, "--workers", "1", timeout=300)
    _one_line_error(r.returncode, r.stderr, CASES["corrupt_tiff"][1])
    others = [ln for ln in r.stderr.splitlines() if ln.strip()][:-1]
    assert all(  # besides the error, only geoseg's own dashboard link and progress bar
        ln.startswith(("Dask dashboard: http://127.0.0.1:", "predict ")) for ln in others
    ), r.stderr
    r = _cli("--debug", *args, "--workers", "1", timeout=300)
    # no block re-run: each failed block's key once (a second block may start and fail on
    # the worker before the cancellation that follows the first failure reaches it)
    keys = re.findall(r"Key:\s+(\S+)", r.stderr)
    assert r.stderr.count("Compute Failed") == len(keys) >= 1, r.stderr
    assert len(keys) == len(set(keys)), r.stderr
    assert _snapshot(c.out) == {}


def test_no_crs_warns_and_still_predicts(ctx, tmp_path):
    with rasterio.open(ctx.scene) as s:
        data = s.read()
    scene = _raster(tmp_path / "photo.tif", data, crs=None, nodata=0)
    out = tmp_path / "out" / "photo_classes.tif"
    r = _cli(*Ctx(ctx, tmp_path).predict(scene, out=out))
    assert r.returncode == 0, r.stderr
    assert re.search(r"^warning: .*photo\.tif has no CRS", r.stderr, re.MULTILINE), r.stderr
    assert "Traceback" not in r.stderr
    with rasterio.open(out) as s:
        assert s.crs is None and s.shape == data.shape[1:]
        assert s.transform.is_identity  # pixel coordinates kept


def test_existing_output_is_replaced_only_with_overwrite(ctx, tmp_path):
    c = Ctx(ctx, tmp_path)
    args = existing_output(c)
    r = runner.invoke(app, [*args, "--overwrite"])
    assert r.exit_code == 0, r.output
    with rasterio.open(c.out / "map.tif") as s, rasterio.open(ctx.map) as ref:
        np.testing.assert_array_equal(s.read(), ref.read())
    assert sorted(p.name for p in c.out.iterdir()) == [
        "map.qml",
        "map.stac.json",
        "map.tif",
        "map.tif.aux.xml",
    ]


@pytest.fixture
def threads_cluster():
    """A cluster whose worker is a thread of this process, so monkeypatches reach it."""
    import torch
    from distributed import LocalCluster

    n = torch.get_num_threads()
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address="127.0.0.1:0"
    ) as cluster:
        yield cluster.scheduler_address
    torch.set_num_threads(n)  # the worker's predictor set it for this process


def test_disk_full_simulated_no_partial_file_and_resumes(
    ctx, tmp_path, monkeypatch, threads_cluster
):
    import geoseg.engine.blocks as blocks
    import geoseg.io.cog as cog

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    def full_after_some_bytes(src, dst, **kw):
        Path(dst).write_bytes(b"II*\x00" + b"\x00" * 4096)  # GDAL got this far
        full()

    c, staging = Ctx(ctx, tmp_path), tmp_path / "staging"
    out = c.out / "map.tif"
    args = c.predict(extra=["--staging", staging], scheduler=threads_cluster)
    with monkeypatch.context() as m:  # staging a block fails
        m.setattr(blocks.np, "savez", full)
        r = runner.invoke(app, args)
    _one_line_error(r.exit_code, r.stderr, r"no space left .*staging folder .*--staging")
    with monkeypatch.context() as m:  # the blocks stage; writing the COG fails
        m.setattr(cog, "rio_copy", full_after_some_bytes)
        r = runner.invoke(app, args)
    _one_line_error(r.exit_code, r.stderr, r"write .*map\.tif \(No space left on device\): check")
    assert _snapshot(c.out) == {}
    staged = list(staging.glob("*/b*.npz"))
    assert staged  # finished blocks are kept for the re-run
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert f"{len(staged)}/{len(staged)} blocks reused" in r.stdout
    with rasterio.open(out) as s, rasterio.open(ctx.map) as ref:
        np.testing.assert_array_equal(s.read(), ref.read())


def _mount_tmpfs(mnt: Path, options: str) -> bool:
    """Mount a tmpfs at ``mnt`` (root only); False where that is not allowed here."""
    mnt.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mnt)], capture_output=True, text=True
    )
    return r.returncode == 0


def test_read_only_output_folder(ctx, tmp_path):
    ro = tmp_path / "ro"
    mounted = _mount_tmpfs(ro, "ro,size=64k")
    if not mounted:
        if os.geteuid() == 0:
            pytest.skip("root writes anywhere and no read-only tmpfs can be mounted here")
        ro.chmod(0o555)
    try:
        r = runner.invoke(app, Ctx(ctx, tmp_path).predict(ctx.scene, out=ro / "map.tif"))
        _one_line_error(r.exit_code, r.stderr, r"output folder .*ro is not writable")
        assert not any(ro.iterdir())
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(ro)], check=False)


@pytest.fixture
def small_fs(tmp_path):
    """A 1 MiB tmpfs, almost full (root only; skipped where mounting is not allowed)."""
    mnt = tmp_path / "small"
    if not _mount_tmpfs(mnt, "size=1m"):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        st = os.statvfs(mnt)
        with open(mnt / "filler", "wb") as f:  # leave ~12 KiB: less than the map needs
            f.write(b"\0" * (st.f_bavail * st.f_frsize - 12 * 1024))
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_on_a_real_small_file_system(ctx, tmp_path, small_fs):
    out = small_fs / "maps" / "map.tif"
    extra = ["--staging", tmp_path / "staging", "--probabilities"]
    r = runner.invoke(app, Ctx(ctx, tmp_path).predict(out=out, extra=extra))
    _one_line_error(r.exit_code, r.stderr, r"map.*\.tif.*(no space|free space)")
    assert _snapshot(small_fs / "maps") == {}
