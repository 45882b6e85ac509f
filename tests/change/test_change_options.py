"""geoseg change's options, declared once (ChangeOptions): API, CLI and workflow agree."""

import pytest

from geoseg.change.change import change
from geoseg.change.options import ChangeOptions
from geoseg.errors import GeoSegError
from geoseg.workflow.config import parse


def test_bad_values_name_the_flag_before_any_input_is_read(tmp_path):
    missing = tmp_path / "none.tif"
    cases = [
        ({"threshold": 1.5}, "invalid --threshold 1.5"),
        ({"mmu_ha": -1.0}, "invalid --mmu -1.0"),
        ({"mmu": float("nan")}, "invalid --mmu nan"),
        ({"design": "x"}, "unknown --design 'x': use one of auto, stratified, none"),
        ({"block": 32}, "invalid --block 32"),
        ({"normalize": "zz"}, "unknown --normalize 'zz'"),
        ({"tile": 5}, "unknown option 'tile'"),
    ]
    for kw, message in cases:
        with pytest.raises(GeoSegError, match=message):
            change(missing, missing, tmp_path / "out", **kw)
    assert not (tmp_path / "out").exists()


def test_an_options_object_with_changes():
    o = ChangeOptions.of(ChangeOptions(threshold=0.5, block=256), mmu=0.2)
    assert (o.threshold, o.block, o.mmu, o.design) == (0.5, 256, 0.2, "auto")


def test_workflow_section_is_the_options_with_its_inputs():
    dates = {"before": {"map": "a.tif"}, "after": {"map": "b.tif"}}
    cfg = parse({"output": "o", "change": {**dates, "threshold": 0.6, "grid": "after"}}, "w")
    assert isinstance(cfg.change, ChangeOptions)
    assert (cfg.change.threshold, cfg.change.grid, cfg.change.block) == (0.6, "after", 2048)
    with pytest.raises(GeoSegError, match="adapt applies to 'geoseg change --model'"):
        parse({"output": "o", "change": {**dates, "adapt": True}}, "w")
