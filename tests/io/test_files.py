"""io.files' atomic writes: outputs appear only complete, under their final names; temporary
files are hidden beside them and gone after a failure."""

from __future__ import annotations

import errno

import numpy as np
import pytest

from geoseg.errors import GeoSegError
from geoseg.io.files import atomic_files, atomic_path, atomic_write, part_path
from geoseg.io.staged import save_npz


def test_temporary_names_are_hidden_beside_the_output(tmp_path):
    out = tmp_path / "map.gpkg"
    assert part_path(out).parent == part_path(out, ".gpkg").parent == tmp_path
    assert part_path(out).name.startswith(".map.gpkg.part")
    assert part_path(out, ".gpkg").name.startswith(".map.part")
    assert part_path(out, ".gpkg").suffix == ".gpkg"


def test_files_are_renamed_together_the_first_last(tmp_path):
    seen = []
    with atomic_files(tmp_path / "a.shp") as add:
        for name in ("a.shp", "a.dbf", "a.qml"):
            tmp = add(tmp_path / name, name[1:])
            tmp.write_text(name)
            seen.append(tmp.name)
        assert not list(tmp_path.glob("a.*"))  # nothing under a final name yet
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.dbf", "a.qml", "a.shp"]
    assert all(n.startswith(".a.part") for n in seen)


def test_a_failed_write_leaves_nothing_and_is_one_line(tmp_path):
    out = tmp_path / "report.json"
    error = r"cannot write .*report\.json \(No space left on device\): check free space"
    with pytest.raises(GeoSegError, match=error), atomic_files(out) as add:
        tmp = add(out)
        tmp.write_text("{")
        tmp.with_name(tmp.name + ".aux.xml").write_text("GDAL's")  # a side file
        raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_other_errors_and_user_error_false_pass_through(tmp_path):
    with pytest.raises(OSError), atomic_path(tmp_path / "b.npz", user_error=False) as tmp:
        tmp.write_bytes(b"x")
        raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(KeyError), atomic_path(tmp_path / "c.csv") as tmp:
        tmp.write_bytes(b"x")
        raise KeyError("c")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_and_save_npz(tmp_path):
    atomic_write(tmp_path / "a.txt", b"abc")
    save_npz(tmp_path / "b.npz", x=np.arange(3))
    assert (tmp_path / "a.txt").read_bytes() == b"abc"
    with np.load(tmp_path / "b.npz") as z:
        assert z["x"].tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.npz"]
