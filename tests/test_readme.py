"""README's Python examples run as written, on the bundled NC sample.

Each ```python block is executed in a fresh folder that sees the repository's examples/ (read
only, through a link) and a copy of workflows/, so every output lands in the test's folder.
A block whose first line is ``# not run by the tests: ...`` (a batch scheduler's) is skipped,
and must say why.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT

BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
SKIP = "# not run by the tests:"


def _blocks() -> list[str]:
    return BLOCK.findall((ROOT / "README.md").read_text())


def test_readme_has_python_examples():
    blocks = _blocks()
    assert len(blocks) >= 3
    run = [b for b in blocks if not b.startswith(SKIP)]
    assert len(run) >= 2, "the README's examples should run, not only be shown"
    for b in blocks:
        assert "from geoseg" in b or "import geoseg" in b
        if b.startswith(SKIP):
            assert len(b.splitlines()[0]) > len(SKIP) + 5, "say why the block is not run"


@pytest.fixture(scope="module")
def tour(tmp_path_factory):
    d = tmp_path_factory.mktemp("readme")
    (d / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    shutil.copytree(ROOT / "workflows", d / "workflows")
    old = Path.cwd()
    os.chdir(d)
    yield d
    os.chdir(old)


@pytest.mark.parametrize("index", range(len(_blocks())))
def test_readme_python_example_runs(tour, index):
    code = _blocks()[index]
    if code.startswith(SKIP):
        pytest.skip(code.splitlines()[0][2:])
    exec(compile(code, f"README.md python block {index + 1}", "exec"), {"__name__": "readme"})
    assert not any(p.name.startswith(".") and ".part" in p.name for p in tour.rglob("*"))
