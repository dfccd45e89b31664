"""validation/heights.py: its reference, its summary, and one real run on a validation DEM with a
pixel-unit fixture (the figures of the shipped models come from `make validate`)."""
import json
import os

import numpy as np
import pytest
from osgeo import gdal

import onnx_fixtures
from conftest import SHARED
from validation import heights


def test_reference_is_the_truth_box_averaged_on_a_grid_8_times_coarser(tmp_path):
    from validation.scenes import Scene
    truth = np.arange(17 * 20, dtype=np.float64).reshape(17, 20)
    scene = heights.whole_cells(Scene("validation", "ramp", 1, truth, 2.0, 3.0))
    assert scene.truth.shape == (16, 16)
    ds = gdal.Open(heights.write_reference(scene, str(tmp_path)))
    assert ds.GetGeoTransform() == (0.0, 16.0, 0.0, 0.0, 0.0, -24.0)
    np.testing.assert_allclose(ds.ReadAsArray()[1, 0], truth[8:16, :8].mean())


def test_append_section_replaces_an_earlier_copy(tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("# validation\n\ntables\n")
    heights.append_section(str(summary), heights.SECTION + "\n\nfirst\n")
    heights.append_section(str(summary), heights.SECTION + "\n\nsecond\n")
    text = summary.read_text()
    assert text.startswith("# validation\n\ntables\n") and text.count(heights.SECTION) == 1
    assert "second" in text and "first" not in text


@pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED, "validation-dems")),
                    reason="../shared/validation-dems is not there")
def test_run_on_the_mars_crop_with_a_pixel_unit_fixture(tmp_path):
    model = onnx_fixtures.identity(str(tmp_path / "pixel.onnx"), onnx_fixtures.PIXEL_CARD, scale=5.0)
    out = tmp_path / "heights.md"
    heights.main(["--models", model, "--out", str(out), "--dems", "mars_hirise_crop", "--cases", "315/45"])
    [case] = json.loads((tmp_path / "heights.json").read_text())["cases"]
    assert case["dem"] == "mars_hirise_crop" and case["model"] == "pixel"
    assert case["truth_std_m"] == pytest.approx(9.3, abs=0.1)  # the crop's relief, cropped to 64 × 120
    assert 0 < case["upsampled_rmse_m"] < case["truth_std_m"]
    assert np.isfinite([case["reference_rmse_m"], case["gain"], case["pixel_size_std_m"]]).all()
    row = [line for line in out.read_text().splitlines() if line.startswith("| pixel | mars_hirise_crop |")]
    assert len(row) == 1 and [cell.strip() for cell in row[0].split("|")][7] in ("PASS", "FAIL")
    assert row[0].rstrip().endswith(("PASS |", "FAIL |"))
