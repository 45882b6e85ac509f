"""The package layout ARCHITECTURE.md describes, checked on the source: the module import
graph (built with ast, every import counted, function-level and TYPE_CHECKING ones too) has no
cycle, nor has the package graph built from it; the pure core imports neither dask nor torch;
each package imports only packages of its own layer or below (LAYERS), and the top of geoseg/
stays small."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "geoseg"
HEAVY = {"dask", "distributed", "dask_cuda", "torch", "torchvision", "segmentation_models_pytorch"}
# The layers of ARCHITECTURE.md, from the bottom. A package imports only packages of its own
# layer or below, and there is no cycle between packages: so generic code never reaches into
# a feature, a feature can be added or removed without touching the layers below, and
# features may use one another only one way. synth (synthetic scenes for tests and
# benchmarks) is imported by no geoseg module: it sits at the top; "geoseg" is the package's
# own __init__ (geoseg.predict, geoseg.open).
LAYERS = [
    {"geoseg.errors", "geoseg.version"},
    {"geoseg.core"},
    {"geoseg.io"},
    {"geoseg.model"},
    {"geoseg.cluster"},
    {"geoseg.engine", "geoseg.train"},
    {
        "geoseg.vector",
        "geoseg.accuracy",
        "geoseg.change",
        "geoseg.harmonize",
        "geoseg.compare",
        "geoseg.baseline",
        "geoseg.xarray",
        "geoseg.instances",
    },
    {"geoseg.report", "geoseg.workflow"},
    {"geoseg.cli", "geoseg", "geoseg.synth"},
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> tuple[set[str], set[str]]:
    """(geoseg modules, top-level external packages) that ``name`` imports anywhere."""
    internal, external = set(), set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            # ``from pkg import mod`` imports the module pkg.mod; ``from mod import f`` mod
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            continue
        for t in targets:
            if t == "geoseg" or t.startswith("geoseg."):
                internal.add(t)
            else:
                external.add(t.split(".")[0])
    internal.discard(name)
    return internal, external


@pytest.fixture(scope="module")
def graph():
    mods = _modules()
    known = set(mods)
    edges, ext = {}, {}
    for name, path in mods.items():
        edges[name], ext[name] = _imports(name, path, known)
        unknown = edges[name] - known
        assert not unknown, f"{name} imports {sorted(unknown)}, which do not exist"
    return edges, ext


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the DFS stack, 2 done
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(edges[n]):
            if state.get(m) == 1:
                return [*stack[stack.index(m) :], m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(edges):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_no_import_cycle(graph):
    edges, _ = graph
    cycle = _cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_cycle_finder_finds_a_planted_cycle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycle(edges) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def _within(name: str, layer: str) -> bool:
    return name == layer or name.startswith(layer + ".")


def test_pure_core_imports_neither_dask_nor_torch(graph):
    edges, ext = graph
    core = [n for n in edges if _within(n, "geoseg.core")]
    assert len(core) >= 5
    for start in core:
        seen, todo = set(), [start]
        while todo:  # everything the core module pulls in, transitively
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo.extend(edges[n])
        heavy = {(n, e) for n in seen for e in ext[n] & HEAVY}
        assert not heavy, f"{start} imports {sorted(heavy)}"


def _package(module: str) -> str:
    """geoseg.io.scene -> geoseg.io; geoseg.errors and geoseg stay themselves."""
    return ".".join(module.split(".")[:2])


@pytest.fixture(scope="module")
def packages(graph):
    """Package -> the other packages its modules import (every import counted)."""
    edges, _ = graph
    out: dict[str, set[str]] = {}
    for name, targets in edges.items():
        p = _package(name)
        out.setdefault(p, set()).update(_package(t) for t in targets)
        out[p].discard(p)
    return out


def _upward(packages: dict[str, set[str]], layers: list[set[str]]) -> list[str]:
    """Imports of a package from a layer above its own, as 'a -> b'."""
    level = {p: i for i, layer in enumerate(layers) for p in layer}
    top = len(layers)  # a package in no layer: test_every_package_has_a_layer names it
    return [
        f"{a} -> {b}"
        for a in sorted(packages)
        for b in sorted(packages[a])
        if level.get(b, top) > level.get(a, top)
    ]


def test_every_package_has_a_layer(packages):
    known = set().union(*LAYERS)
    missing = sorted(p for p in set(packages).union(*packages.values()) if p not in known)
    assert not missing, f"add {missing} to LAYERS (and to ARCHITECTURE.md's layers)"


def test_no_package_cycle(packages):
    cycle = _cycle(packages)
    assert cycle is None, "package cycle: " + " -> ".join(cycle)


def test_packages_import_only_their_layer_or_below(packages):
    bad = _upward(packages, LAYERS)
    assert not bad, f"imports from an upper layer: {bad}"


def test_upward_finder_finds_a_planted_upward_import():
    layers = [{"core"}, {"io"}, {"a", "b"}]
    assert _upward({"core": {"io"}, "io": {"core"}, "a": {"b", "io"}, "b": set()}, layers) == [
        "core -> io"
    ]


def test_top_of_the_package_stays_small():
    top = sorted(p.name for p in PKG.glob("*.py") if p.name != "__init__.py")
    assert len(top) <= 8, top
    packages = {p.name for p in PKG.iterdir() if (p / "__init__.py").exists()}
    for stage in ("core", "io", "model", "train", "engine", "vector", "accuracy", "change"):
        assert stage in packages
