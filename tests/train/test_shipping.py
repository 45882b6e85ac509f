"""A finished training ships as it is: its resume checkpoint lives beside the bundle
(``<output>.checkpoint``) while it trains and is gone once the bundle is written, unless
``--keep-checkpoint``; ``geoseg train --set KEY=VALUE --out DIR`` change a config without
editing it. Run as ``geoseg`` processes, the whole terminal asserted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from geoseg.model.bundle import read_meta
from geoseg.train.checkpoint import read_state
from tests.train.tiny import tiny_config

GEOSEG = str(Path(sys.executable).with_name("geoseg"))


def _geoseg(*args, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [GEOSEG, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env
    )


def test_bundle_folder_holds_no_checkpoint_and_set_out_override(synth, tmp_path):
    scene, labels = synth(160, 160, patch=40, seed=7)
    cfg = tiny_config("from-config", scene, labels, {"architecture": "pixelnet"})
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(cfg))
    r = _geoseg(
        "train", path, "--out", "runs/m", "--set", "training.epochs=1", "--set", "name=m1",
        cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    bundle = tmp_path / "runs" / "m"  # --out is relative to where the command runs
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"wrote {bundle} (best epoch 1/1, validation mIoU "), r.stdout
    assert lines[1:] == [
        f"wrote {bundle / 'training_history.csv'}",
        f"wrote {bundle / 'training_curves.png'}",
    ]
    assert read_meta(bundle).name == "m1"
    assert sorted(p.name for p in bundle.iterdir()) == [
        "bundle.json", "training_curves.png", "training_history.csv", "weights.safetensors",
    ]  # fmt: skip
    assert not (tmp_path / "runs" / "m.checkpoint").exists()
    assert not (tmp_path / "from-config").exists()

    # a finished training cannot be resumed once its checkpoint is gone: one line says why
    r = _geoseg("train", path, "--out", "runs/m", "--resume", cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines() == [
        f"error: no checkpoint to resume from in {tmp_path / 'runs' / 'm.checkpoint'}: "
        f"{bundle} is a finished training, whose checkpoint was removed: run without "
        "--resume to train again (--keep-checkpoint, or keep_checkpoint: true, keeps it to "
        "continue a run later)"
    ]

    # kept on request, beside the bundle, and resumed from
    r = _geoseg(
        "train", path, "-o", "runs/k", "--set", "training.epochs=1", "--keep-checkpoint",
        cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    ck = tmp_path / "runs" / "k.checkpoint"
    assert read_state(ck)["epoch"] == 1 and not (tmp_path / "runs" / "k" / "checkpoint").exists()
    r = _geoseg("train", path, "-o", "runs/k", "--resume", cwd=tmp_path)  # epochs: 2
    assert r.returncode == 0, r.stderr
    assert "best epoch" in r.stdout and "/2," in r.stdout
    assert not ck.exists()  # this run did not ask to keep it


def test_bad_set_is_one_line(tmp_path):
    (tmp_path / "t.yaml").write_text("output: m\n")
    r = _geoseg("train", "t.yaml", "--set", "training.epochs", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.splitlines() == [
        "error: --set takes KEY=VALUE with a dotted key, e.g. --set training.epochs=5, "
        "got 'training.epochs'"
    ]
    r = _geoseg("train", "t.yaml", "--set", "training.epochz=5", cwd=tmp_path)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    assert r.stderr.startswith("error: config t.yaml (with --set): "), r.stderr
