"""Guard rails at the edges (issue 27), through real ``geoseg`` processes: each case is one
``error:`` line on the whole of stderr, exit status 2, and nothing left where the output would
go."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pytest
import rasterio
import yaml
from rasterio.errors import RasterioIOError

from geoseg.cli.common import os_error_message
from geoseg.engine.predict import job_bytes, plan, predict
from geoseg.harmonize.harmonize import harmonize
from geoseg.io.files import output_lock
from geoseg.io.stats import band_moments
from tests.conftest import predict_cmd
from tests.engine.test_interrupts import _cmd, _leftovers, _quiet, _wait_for


def _run(cmd: list, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout)


def _cli(*args) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-m", "geoseg.cli.main", *args])


def _one_error_line(r: subprocess.CompletedProcess, match: str) -> str:
    """The whole of stderr is one ``error:`` line matching ``match``; exit status 2."""
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert re.search(match, lines[0]), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def small(synth, bundles):
    scene, _ = synth(96, 128, seed=27)
    return Path(scene), Path(bundles("pixelnet", tile=64, overlap=16))


# ---- item 7: one job per output, never replacing an input, suffix matches the format ----


def test_output_equal_to_the_input_is_refused_even_with_overwrite(small, tmp_path):
    scene, bundle = small
    own = tmp_path / "scene.tif"
    own.write_bytes(scene.read_bytes())
    before = own.read_bytes()
    r = _run(predict_cmd(own, bundle, own, "--overwrite"))
    _one_error_line(r, r"output .*scene\.tif is the input .*choose another --out")
    assert own.read_bytes() == before
    link = tmp_path / "link.tif"  # the same file by another name
    link.symlink_to(own)
    r = _run(predict_cmd(own, bundle, link, "--overwrite"))
    _one_error_line(r, r"is the input")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.tif", "scene.tif"]


@pytest.mark.parametrize("name", ["map.jpg", "map.png", "map", "map.gpkg"])
def test_raster_output_suffix_must_name_its_format(small, tmp_path, name):
    scene, bundle = small
    r = _run(predict_cmd(scene, bundle, tmp_path / name))
    _one_error_line(r, r"\.tif, \.tiff.*\.zarr.*rename the output")
    assert list(tmp_path.iterdir()) == []


def test_a_second_job_for_the_same_output_fails_at_once(small, tmp_path):
    scene, bundle = small
    out = tmp_path / "map.tif"
    with output_lock(out) as lock:  # the first job, as far as the second can tell
        assert lock.name == ".map.tif.lock"
        r = _run(predict_cmd(scene, bundle, out, "--staging", tmp_path / "staging"))
        _one_error_line(
            r,
            rf"^error: another geoseg job is writing {re.escape(str(out))} \(pid {os.getpid()}\)"
            r": wait for it or choose another --out$",
        )
        assert not out.exists() and not (tmp_path / "staging").exists()
    assert list(tmp_path.iterdir()) == []  # the lock goes with its job


def test_the_lock_is_released_and_removed_by_a_finished_job(small, tmp_path, client):
    scene, bundle = small
    out = tmp_path / "map.tif"
    cmd = predict_cmd(scene, bundle, out, "--scheduler", client.scheduler.address)
    r = _run(cmd)
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / ".map.tif.lock").exists()
    r = _run(cmd + ["--overwrite"])  # the next job takes the output
    assert r.returncode == 0, r.stderr


# ---- item 4: NaN and +-Inf are one and the same nodata, in every command ----------------


@pytest.fixture(scope="module")
def nonfinite(synth, tmp_path_factory):
    """The same float32 scene twice: a few pixels +Inf / -Inf, and those pixels NaN."""
    scene, _ = synth(160, 192, seed=44)
    root = tmp_path_factory.mktemp("nonfinite")
    with rasterio.open(scene) as src:
        prof, data = src.profile, src.read().astype(np.float32)
    prof.update(dtype="float32", nodata=None)
    bad = np.zeros(data.shape[1:], dtype=bool)
    bad[40:44, 50:60] = bad[100, 10:20] = bad[150:155, 180] = True
    paths = {}
    for name, values in (("inf", (np.inf, -np.inf)), ("nan", (np.nan, np.nan))):
        d = data.copy()
        d[0][bad], d[2][bad] = values  # +Inf in one band, -Inf in another
        paths[name] = root / f"{name}.tif"
        with rasterio.open(paths[name], "w", **prof) as dst:
            dst.write(d)
    return paths["inf"], paths["nan"], bad


def test_predict_maps_inf_pixels_as_nodata_like_nan(client, bundles, nonfinite, tmp_path):
    inf, nan, bad = nonfinite
    bundle = bundles("pixelnet", tile=64, overlap=16)
    a = predict(inf, bundle, tmp_path / "inf.tif", block=128, client=client).path
    b = predict(nan, bundle, tmp_path / "nan.tif", block=128, client=client).path
    with rasterio.open(a) as sa, rasterio.open(b) as sb:
        ca, cb = sa.read(1), sb.read(1)
        assert (ca[bad] == sa.nodata).all()
    np.testing.assert_array_equal(ca, cb)  # the neighbours' classes too


def test_band_statistics_ignore_inf_like_nan(nonfinite):
    inf, nan, bad = nonfinite
    a, b = band_moments(inf, [1, 2, 3, 4]), band_moments(nan, [1, 2, 3, 4])
    assert np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert a[0, 0] == bad.size - bad.sum()  # the count of valid pixels


def test_training_and_obia_reads_treat_inf_as_nodata(bundles, nonfinite):
    from geoseg.baseline.config import Slic
    from geoseg.baseline.segment import segment, zscore
    from geoseg.core.grid import Window
    from geoseg.io.scene import Scene
    from geoseg.model.bundle import read_meta
    from geoseg.model.runner import normalize

    inf, nan, bad = nonfinite
    meta = read_meta(bundles("pixelnet", tile=64, overlap=16))
    w, bands = Window(0, 0, 160, 192), [1, 2, 3, 4]
    (xa, va), (xb, vb) = Scene.of(inf).read(w, bands), Scene.of(nan).read(w, bands)
    np.testing.assert_array_equal(va, ~bad)
    np.testing.assert_array_equal(va, vb)
    # training normalises what it reads (train.train) and OBIA z-scores and segments it
    np.testing.assert_array_equal(normalize(xa.copy(), va, meta), normalize(xb.copy(), vb, meta))
    za, zb = (
        zscore(xa, va, meta.normalization.mean, meta.normalization.std),
        zscore(xb, vb, meta.normalization.mean, meta.normalization.std),
    )
    np.testing.assert_array_equal(za, zb)
    seg = Slic(method="slic")
    np.testing.assert_array_equal(segment(za, va, seg), segment(zb, vb, seg))


def test_harmonize_writes_inf_pixels_as_nodata_like_nan(client, nonfinite, tmp_path):
    inf, nan, bad = nonfinite
    a = harmonize(inf, nan, tmp_path / "a.tif", client=client, block=128).path
    b = harmonize(nan, nan, tmp_path / "b.tif", client=client, block=128).path
    with rasterio.open(a) as sa, rasterio.open(b) as sb:
        ga, gb = sa.read(), sb.read()
    assert np.isnan(ga[:, bad]).all()
    np.testing.assert_array_equal(ga, gb)


# ---- item 6: SIGTERM and SIGHUP end a command as Ctrl-C does ------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_ends_predict_like_ctrl_c(synth, bundles, tmp_path, sig):
    scene, _ = synth(1024, 1280, seed=31)
    bundle = bundles("deeplabv3plus", tile=128, overlap=32, encoder="resnet34")
    staging, out = tmp_path / "staging", tmp_path / "map.tif"
    proc = subprocess.Popen(
        _cmd(scene, bundle, out, staging),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    _wait_for(lambda: len(list(staging.glob("*/b*.npz"))) >= 4)
    os.kill(proc.pid, sig)  # the command only, as `kill PID` or a service manager does
    _, err = proc.communicate(timeout=120)
    err = err.decode()
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    m = re.fullmatch(
        r"interrupted: (\d+) of (\d+) blocks staged; run the same command again to resume",
        lines[-1],
    )
    assert m, err
    assert _quiet(err) == [] and "leaked" not in err and "Traceback" not in err, err
    assert not out.exists() and _leftovers(tmp_path, "map") == []
    assert len(list(staging.glob("*/b*.npz"))) >= int(m.group(1)) >= 4


# ---- item 3: operating-system errors are one line naming the path and the cause -----------


def test_staging_under_a_file_is_one_line(small, tmp_path):
    scene, bundle = small
    (tmp_path / "somefile.txt").write_text("x")
    r = subprocess.run(
        [
            str(c)
            for c in predict_cmd(
                scene, bundle, tmp_path / "map.tif", "--workers", 1, "--staging", "somefile.txt/st"
            )
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    _one_error_line(
        r,
        r"^error: cannot write somefile\.txt/st/\w+ \(a part of the path is a file, not a "
        r"folder\): choose another path$",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["somefile.txt"]


def test_output_under_a_file_is_one_line(small, tmp_path):
    scene, bundle = small
    (tmp_path / "somefile.txt").write_text("x")
    r = _run(predict_cmd(scene, bundle, tmp_path / "somefile.txt" / "out.tif"))
    _one_error_line(r, r"cannot create the output folder .*somefile\.txt \(a file is in the way\)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["somefile.txt"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a folder of mode 0o555")
def test_read_only_staging_folder_is_one_line(small, tmp_path):
    scene, bundle = small
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        r = _run(
            predict_cmd(scene, bundle, tmp_path / "map.tif", "--workers", 1, "--staging", ro / "st")
        )
        _one_error_line(r, r"cannot write .*ro/st.* \(permission denied\): choose a folder")
    finally:
        ro.chmod(0o755)


@pytest.mark.parametrize(
    "exc, expect",
    [
        (
            OSError(errno.ENOSPC, "No space left on device", "/data/map.tif"),
            "cannot write /data/map.tif (no space left on the device): free some space",
        ),
        (
            OSError(errno.EDQUOT, "Disk quota exceeded", "/home/u/x"),
            "cannot write /home/u/x (disk quota exceeded): free some space",
        ),
        (
            OSError(errno.EROFS, "Read-only file system", "/mnt/ro/a.tif"),
            "cannot write /mnt/ro/a.tif (read-only file system): choose a folder on a writable",
        ),
        (
            PermissionError(errno.EACCES, "Permission denied", "/root/x"),
            "cannot write /root/x (permission denied): choose a folder you can write to",
        ),
        (
            RasterioIOError("Write failed. No space left on device"),
            "a file could not be written (no space left on the device): free some space",
        ),
        (
            RasterioIOError("/x/y.tif: Permission denied"),
            "a file could not be written (permission denied)",
        ),
        (ValueError("x"), None),
        (RasterioIOError("not recognized as a supported file format"), None),
    ],
)
def test_os_error_classes_become_one_line_with_advice(exc, expect):
    msg = os_error_message(exc)
    assert msg == expect if expect is None else msg.startswith(expect), msg


# ---- item 2: workflow outputs stay inside the output folder, links followed ----------------


def test_a_link_inside_the_output_folder_cannot_lead_a_product_out(small, tmp_path):
    scene, bundle = small
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / "maps").symlink_to(outside, target_is_directory=True)
    doc = {
        "name": "links",
        "output": "out",
        "model": str(bundle),
        "predict": {"scene": str(scene), "block": 64, "out": "maps/lc.tif"},
    }
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(doc))
    r = _cli("run", path)
    _one_error_line(
        r,
        r"^error: workflow: predict\.out: 'maps/lc\.tif' leads outside the output folder .*out "
        r"through a symbolic link \(to .*outside/lc\.tif\): give a path inside it",
    )
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in out.iterdir()) == ["maps"]  # no stage ran, no manifest


# ---- item 5: bundle fields are validated as the CLI validates its options -------------------


@pytest.mark.parametrize(
    "edit, expect",
    [
        ({"tile": 40}, "tile must be a multiple of 32 (>= 32), got 40"),
        ({"tile": 16}, "tile must be a multiple of 32 (>= 32), got 16"),
        ({"overlap": 40}, "overlap must be between 0 and tile/2 (32), got 40"),
        ({"overlap": -1}, "overlap must be between 0 and tile/2 (32), got -1"),
        ({"in_channels": 0, "bands": []}, "in_channels must be at least 1, got 0"),
        ({"bands": [0, 1, 2, 3]}, "bands are 1-based band numbers (>= 1)"),
        ({"normalization.mean": [float("nan")] * 4}, "normalization.mean must be finite"),
        ({"normalization.std": [1.0, 0.0, 1.0, 1.0]}, "normalization.std must be finite positive"),
        ({"normalization.std": [float("inf")] * 4}, "normalization.std must be finite positive"),
    ],
)
def test_hand_edited_bundle_fields_are_one_line_errors(small, tmp_path, edit, expect):
    scene, bundle = small
    edited = tmp_path / "bundle"
    shutil.copytree(bundle, edited)
    meta = json.loads((edited / "bundle.json").read_text())
    for k, v in edit.items():
        if k.startswith("normalization."):
            meta["normalization"][k.split(".")[1]] = v
        else:
            meta[k] = v
    (edited / "bundle.json").write_text(json.dumps(meta))
    r = _run(predict_cmd(scene, edited, tmp_path / "map.tif"))
    line = _one_error_line(r, r"bundle metadata .*bundle\.json is invalid: ")
    assert expect in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


# ---- item 1: a job that cannot fit on the disk is refused before any block runs -------------


def _huge_vrt(scene: Path, path: Path, size: int = 1_000_000, nodata: int | None = None) -> Path:
    """A VRT that declares ``size`` x ``size`` pixels with ``scene``'s data in one corner
    (elsewhere 0: data too, unless ``nodata`` says 0 is none)."""
    with rasterio.open(scene) as src:
        h, w, count, dtype = src.height, src.width, src.count, src.dtypes[0]
        wkt, gt = src.crs.to_wkt(), ", ".join(str(v) for v in src.transform.to_gdal())
    gdal_type = {"uint16": "UInt16", "uint8": "Byte", "float32": "Float32"}[dtype]
    bands = "".join(
        f'<VRTRasterBand dataType="{gdal_type}" band="{b}">'
        + ("" if nodata is None else f"<NoDataValue>{nodata}</NoDataValue>")
        + "<SimpleSource>"
        f'<SourceFilename relativeToVRT="0">{scene}</SourceFilename><SourceBand>{b}</SourceBand>'
        f'<SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>'
        f'<DstRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/></SimpleSource></VRTRasterBand>'
        for b in range(1, count + 1)
    )
    head = f"<SRS>{escape(wkt)}</SRS><GeoTransform>{gt}</GeoTransform>"
    path.write_text(
        f'<VRTDataset rasterXSize="{size}" rasterYSize="{size}">{head}{bands}</VRTDataset>'
    )
    return path


def test_a_job_larger_than_the_free_space_is_refused_up_front(small, tmp_path):
    scene, bundle = small
    vrt = _huge_vrt(scene, tmp_path / "huge.vrt")
    out, staging = tmp_path / "maps" / "map.tif", tmp_path / "staging"
    r = _run(predict_cmd(vrt, bundle, out, "--staging", staging))
    _one_error_line(
        r,
        r"^error: not enough free space for map\.tif: the job may stage up to [\d.]+ [TP]B and "
        r"write up to [\d.]+ [TP]B \(1000000x1000000 pixels\) but the free space is "
        r"[\d.]+ \w+ in .*staging: free some space, pass "
        r"--staging DIR on a larger disk, or --no-space-check to start anyway$",
    )
    assert not staging.exists()
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_the_estimate_counts_only_the_blocks_with_data(small, tmp_path):
    from geoseg.engine.predict import footprint

    scene, bundle = small
    job, _, meta = plan(
        _huge_vrt(scene, tmp_path / "full.vrt", 100_000), bundle, tmp_path / "a.tif"
    )
    whole = job_bytes(job, meta)
    assert footprint(job) is None  # no nodata, no mask: every block has data, nothing read
    sparse = _huge_vrt(scene, tmp_path / "corner.vrt", 100_000, nodata=0)
    job, _, meta = plan(sparse, bundle, tmp_path / "b.tif")
    with_data = footprint(job)
    assert with_data.sum() == 1 and with_data[0, 0]  # the 96 x 128 scene: in the first block
    staged, written = job_bytes(job, meta, with_data)
    assert staged < whole[0] / 100 and written < whole[1] / 100
    assert staged < 10**9  # a marker per empty block, not its pixels


def test_no_space_check_is_accepted(small, tmp_path, client):
    scene, bundle = small
    out = tmp_path / "map.tif"
    r = _run(
        predict_cmd(scene, bundle, out, "--no-space-check", "--scheduler", client.scheduler.address)
    )
    assert r.returncode == 0, r.stderr
    assert out.exists()


@pytest.mark.parametrize("probabilities", [False, True])
def test_the_space_estimate_bounds_what_a_job_stages_and_writes(
    synth, bundles, client, tmp_path, probabilities
):
    scene, _ = synth(300, 420, seed=45)
    bundle = bundles("pixelnet", tile=64, overlap=16)
    out, staging = tmp_path / "map.tif", tmp_path / "staging"
    job, _, meta = plan(scene, bundle, out, block=128, probabilities=probabilities)
    staged_max, written_max = job_bytes(job, meta)
    res = predict(
        scene,
        bundle,
        out,
        client=client,
        block=128,
        probabilities=probabilities,
        staging=staging,
        keep_staging=True,
    )
    staged = sum(p.stat().st_size for p in staging.rglob("*.npz"))
    written = sum(Path(p).stat().st_size for p in res.outputs.values())
    assert staged <= staged_max and written <= written_max
    assert staged > staged_max / 4  # near, not a wild guess


def test_a_large_job_says_its_size_before_it_starts(small, client, tmp_path, capsys, monkeypatch):
    import geoseg.engine.predict as engine_predict

    scene, bundle = small
    monkeypatch.setattr(engine_predict, "LARGE_JOB_BYTES", 1)
    predict(scene, bundle, tmp_path / "map.tif", client=client, progress=True)
    err = capsys.readouterr().err
    assert re.search(
        r"a large job: 96x128 pixels in \d+ blocks may stage up to [\d.]+ \w+ in .* and write "
        r"up to [\d.]+ \w+",
        err,
    ), err


@pytest.mark.parametrize("probabilities", [False, True])
def test_blocks_without_a_valid_pixel_stage_a_marker_and_the_map_is_unchanged(
    synth, bundles, client, tmp_path, probabilities
):
    scene, _ = synth(200, 300, seed=46)
    with rasterio.open(scene) as src:
        prof, data = src.profile, src.read().astype(np.float32)
    data[:, :, :170] = np.nan  # whole blocks of 96 pixels hold no valid pixel
    data[:, 150:, :] = np.nan
    prof.update(dtype="float32", nodata=None)
    holed = tmp_path / "holed.tif"
    with rasterio.open(holed, "w", **prof) as dst:
        dst.write(data)
    bundle = bundles("pixelnet", tile=64, overlap=16)
    kw = dict(client=client, probabilities=probabilities)
    st = tmp_path / "st"
    small_blocks = predict(
        holed,
        bundle,
        tmp_path / "a.tif",
        block=96,
        staging=st,
        keep_staging=True,
        **kw,
    )
    one_block = predict(holed, bundle, tmp_path / "b.tif", block=4096, **kw)
    zarr = predict(holed, bundle, tmp_path / "c.zarr", block=96, **kw)
    sizes = sorted(p.stat().st_size for p in st.rglob("b*.npz"))
    assert len(sizes) == small_blocks.blocks and sizes[0] < 1000 < sizes[-1]  # markers and data
    for k, path in small_blocks.outputs.items():
        with rasterio.open(path) as a, rasterio.open(one_block.outputs[k]) as b:
            np.testing.assert_array_equal(a.read(), b.read())
    import xarray as xr

    with rasterio.open(one_block.path) as b:
        z = xr.open_zarr(zarr.path, mask_and_scale=False)
        np.testing.assert_array_equal(np.asarray(z["classes"]), b.read(1))
