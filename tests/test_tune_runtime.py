"""training/tune_runtime.py: it times the graph optimisation levels and writes a choice the engine honours."""
import subprocess
import sys

import pytest

import onnx_fixtures
from dtm_estimator.engine import open_model, read_model_card

from conftest import ROOT
from training.tune_runtime import MARGIN, TOLERANCE, choose


def test_a_level_is_chosen_only_when_clearly_faster_and_equal_in_output():
    assert choose({"basic": 1.0, "extended": 0.7, "all": 1.0}, 0.0) == "extended"
    assert choose({"basic": 1.0, "extended": 1.0 - MARGIN / 2, "all": 1.0}, 0.0) == "all"  # within noise
    assert choose({"basic": 1.0, "extended": 0.5, "all": 1.0}, 10 * TOLERANCE) == "all"  # output differs


def test_the_written_choice_is_read_by_the_engine(tmp_path):
    model = onnx_fixtures.box_blur(str(tmp_path / "blur.onnx"))
    out = subprocess.run([sys.executable, "-m", "training.tune_runtime", model, "--repeats", "3"],
                         capture_output=True, text=True, cwd=ROOT, check=True).stdout
    card = read_model_card(model)
    assert f"chosen: {card.graph_optimization}" in out
    measured = card.extra["ort_graph_optimization_measured"]
    assert "median of 3" in measured and "all " in measured and "extended " in measured
    assert open_model(model, "cpu")[0].graph_optimization == card.graph_optimization


def test_dry_run_leaves_the_model_untouched(tmp_path):
    model = onnx_fixtures.box_blur(str(tmp_path / "blur.onnx"))
    before = open(model, "rb").read()
    subprocess.run([sys.executable, "-m", "training.tune_runtime", model, "--repeats", "1", "--dry-run"],
                   capture_output=True, text=True, cwd=ROOT, check=True)
    assert open(model, "rb").read() == before
    with pytest.raises(KeyError):
        read_model_card(model).extra["ort_graph_optimization"]

