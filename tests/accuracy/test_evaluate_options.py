"""geoseg evaluate's options, declared once (EvaluateOptions): API and workflow agree."""

import pytest

from geoseg.accuracy.evaluate import evaluate
from geoseg.accuracy.options import EvaluateOptions
from geoseg.errors import GeoSegError
from geoseg.workflow.config import parse


def test_bad_values_name_the_flag_before_the_map_is_read(tmp_path):
    missing = tmp_path / "none.tif"
    with pytest.raises(GeoSegError, match="unknown --design 'x': use one of auto, strat"):
        evaluate(missing, missing, tmp_path / "out", design="x")
    with pytest.raises(GeoSegError, match="invalid --block 10"):
        evaluate(missing, missing, tmp_path / "out", EvaluateOptions(design="none"), block=10)
    assert not (tmp_path / "out").exists()


def test_workflow_section_is_the_options_with_its_inputs():
    doc = {"output": "o", "model": "m", "predict": {"scene": "s.tif"}}
    cfg = parse({**doc, "evaluate": {"reference": "r.tif", "design": "none"}}, "w")
    assert isinstance(cfg.evaluate, EvaluateOptions)
    assert (cfg.evaluate.design, cfg.evaluate.block) == ("none", 2048)
