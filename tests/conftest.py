"""Shared fixtures: a real local Dask cluster of processes, synthetic scenes, real data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def predict_cmd(scene, bundle, out, *options) -> list[str]:
    """The argv of a real ``geoseg predict SCENE --model BUNDLE --out OUT OPTIONS...``."""
    return [
        str(BIN / "geoseg"),
        "predict",
        str(scene),
        "--model",
        str(bundle),
        "--out",
        str(out),
    ] + [str(o) for o in options]


DATA = Path(os.environ.get("GEOSEG_DATA", ROOT.parent / "shared" / "data"))

# a `geoseg serve` the developer left running must not take the suite's jobs
os.environ["GEOSEG_NO_SERVICE"] = "1"

CLASSES5 = [{"id": i + 1, "name": f"class{i + 1}"} for i in range(5)]


@pytest.fixture(scope="session")
def client():
    """A LocalCluster of two worker processes, shared by the whole test session."""
    from geoseg.cluster.setup import ClusterOptions, connect

    with connect(ClusterOptions(workers=2)) as c:
        yield c


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data sets in ../shared/data (tests using it skip where it is absent)."""
    if not DATA.exists():
        pytest.skip(f"real data not found at {DATA}")
    return DATA


@pytest.fixture(scope="session")
def synth(tmp_path_factory):
    """Factory: synth(height, width, **spec) -> (scene path, labels path), cached per spec."""
    from geoseg.synth import SynthSpec, make_scene

    root = tmp_path_factory.mktemp("synth")
    cache: dict = {}

    def make(height: int, width: int, **kw):
        key = (height, width, tuple(sorted(kw.items())))
        if key not in cache:
            spec = SynthSpec(height, width, **kw)
            name = f"s{len(cache)}"
            scene, labels = root / f"{name}.tif", root / f"{name}_labels.tif"
            make_scene(scene, spec, labels)
            cache[key] = (scene, labels)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def bundles(tmp_path_factory):
    """Factory: bundles(arch, bands=4, n_classes=5, tile=128, overlap=32, encoder=...) -> dir."""
    from geoseg.model.factory import create_bundle

    root = tmp_path_factory.mktemp("bundles")
    cache: dict = {}

    def make(
        arch: str = "pixelnet",
        bands: int = 4,
        n_classes: int = 5,
        tile: int = 128,
        overlap: int = 32,
        encoder: str = "resnet18",
        mean: float = 2000.0,
        std: float = 1000.0,
    ):
        key = (arch, bands, n_classes, tile, overlap, encoder, mean, std)
        if key not in cache:
            d = root / f"b{len(cache)}"
            classes = [{"id": i + 1, "name": f"class{i + 1}"} for i in range(n_classes)]
            create_bundle(
                d,
                classes=classes,
                bands=bands,
                architecture=arch,
                encoder=encoder,
                mean=[mean] * bands,
                std=[std] * bands,
                tile=tile,
                overlap=overlap,
                seed=3,
            )
            cache[key] = d
        return cache[key]

    return make


class _Unpickled:
    """Loading a pickle of this creates ``marker``: proof that something unpickled it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="session")
def evil_pickle():
    """Factory: evil_pickle(marker) -> bytes of a pickle whose loading creates ``marker``."""
    import pickle

    return lambda marker: pickle.dumps({"weight": _Unpickled(marker)})
