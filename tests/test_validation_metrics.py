"""Unit tests of the validation metrics (Pearson r, detail r, SSIM, relief RMSE) and of the sign
convention of the Pentland baseline on a DEM shaded by GDAL's own hillshade. Real GDAL, no QGIS."""
import json
import os
import sys

import numpy as np
import pytest

from conftest import SHARED  # conftest also puts the repository on sys.path
from validation import metrics
from validation.pentland import (gdal_hillshade_array, pentland, sign_check,
                                 synthetic_smooth_dem)

C1, C2 = 0.01 ** 2, 0.03 ** 2


def _field(seed=0, shape=(96, 128), sigma=3.0):
    from scipy import ndimage
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.standard_normal(shape), sigma) * 100.0


def _checkerboard(n=64):
    yy, xx = np.mgrid[0:n, 0:n]
    return ((yy + xx) % 2).astype(np.float64)


# ---------------------------------------------------------------- Pearson, detail r, RMSE
def test_pearson_matches_numpy_and_ignores_invalid_pixels():
    a, b = _field(0), _field(1) + 0.5 * _field(0)
    assert metrics.pearson(a, b) == pytest.approx(np.corrcoef(a.ravel(), b.ravel())[0, 1], abs=1e-12)
    assert metrics.pearson(a, 3 * a + 7) == pytest.approx(1.0)
    assert metrics.pearson(a, -a) == pytest.approx(-1.0)
    b_bad = b.copy()
    b_bad[:10] = np.nan
    expected = np.corrcoef(a[10:].ravel(), b[10:].ravel())[0, 1]
    assert metrics.pearson(a, b_bad) == pytest.approx(expected, abs=1e-12)
    assert np.isnan(metrics.pearson(a, np.ones_like(a)))


def test_detail_r_ignores_large_scale_relief():
    detail = _field(2, sigma=1.0)
    ramp = np.add.outer(np.arange(96.0), np.arange(128.0)) * 50.0   # huge smooth tilt
    bowl = 500.0 * np.exp(-((np.arange(96)[:, None] - 48) ** 2 + (np.arange(128)[None] - 64) ** 2) / 20000.0)
    pred, truth = detail + ramp, detail + bowl
    assert metrics.pearson(pred, truth) < 0.9
    assert metrics.detail_r(pred, truth) > 0.97
    assert metrics.detail_r(detail, -detail) == pytest.approx(-1.0)


def test_detail_r_with_nodata_hole_stays_finite_and_high():
    detail = _field(3, sigma=1.0)
    truth = detail.copy()
    truth[40:50, 60:70] = np.nan
    assert metrics.detail_r(detail + 5.0, truth) == pytest.approx(1.0, abs=1e-9)


def test_tilt_free_r_sees_the_shape_through_opposite_regional_tilts_and_holes():
    shape = _field(5, sigma=4.0)
    rows, cols = np.mgrid[0:96, 0:128].astype(np.float64)
    tilt = 0.2 * float(shape.std())
    pred, truth = shape + tilt * cols, shape - tilt * cols + 3 * tilt * rows
    truth[10:20, 30:50] = np.nan
    assert metrics.pearson(pred, truth) < 0.5
    assert metrics.tilt_free_r(pred, truth) == pytest.approx(1.0, abs=1e-9)
    assert metrics.tilt_free_r(shape, -shape) == pytest.approx(-1.0)
    case = metrics.case_metrics(pred, truth)
    assert case["tilt_free_r"] == pytest.approx(1.0, abs=1e-9) and case["r"] < 0.5


@pytest.mark.parametrize("sun_azimuth", [270.0, 315.0, 225.0, 10.0])
def test_across_sun_r_mends_the_slope_across_the_sun_and_no_other(sun_azimuth):
    # Row 0 is north, azimuths run clockwise: the sun's line on the grid is (sin a, -cos a) per (column, row),
    # the line across it (cos a, sin a).
    shape = _field(6, sigma=4.0)
    rows, cols = np.mgrid[0:96, 0:128].astype(np.float64)
    a = np.deg2rad(sun_azimuth)
    towards, across = cols * np.sin(a) - rows * np.cos(a), cols * np.cos(a) + rows * np.sin(a)
    tilt = 0.3 * float(shape.std())
    truth = shape + tilt * across
    truth[5:15, 40:60] = np.nan
    wrong_across = shape - tilt * across
    assert metrics.pearson(wrong_across, truth) < 0.6
    assert metrics.across_sun_r(wrong_across, truth, sun_azimuth) == pytest.approx(1.0, abs=1e-9)
    wrong_towards = shape + tilt * across + 2 * tilt * towards  # right across, wrong towards: left as it is
    assert metrics.across_sun_r(wrong_towards, truth, sun_azimuth) == pytest.approx(
        metrics.pearson(wrong_towards, truth), abs=1e-9)
    assert metrics.across_sun_r(wrong_towards, truth, sun_azimuth) < 0.8
    case = metrics.case_metrics(wrong_across, truth, sun_azimuth=sun_azimuth)
    assert case["across_sun_r"] == pytest.approx(1.0, abs=1e-6) and "across_sun_r" not in metrics.case_metrics(
        wrong_across, truth)


def test_relief_rmse_is_offset_free_and_in_metres():
    truth = _field(4)
    assert metrics.relief_rmse(truth + 1234.0, truth) == pytest.approx(0.0, abs=1e-9)
    # relief 0..10 against 0..20 along a ramp: RMSE of x vs 2x is the RMS of x
    x = np.tile(np.linspace(0.0, 10.0, 11), (5, 1))
    assert metrics.relief_rmse(2 * x + 100.0, x) == pytest.approx(np.sqrt(np.mean(x ** 2)))


# ---------------------------------------------------------------- SSIM
def test_ssim_identical_arrays_is_one():
    a = _field(5)
    assert metrics.ssim(a, a) == pytest.approx(1.0, abs=1e-12)


def test_ssim_invariances_symmetry_and_bounds():
    a, b = _field(6), _field(7) + _field(6)
    base = metrics.ssim(a, b)
    assert -1.0 <= base < 1.0
    assert metrics.ssim(b, a) == pytest.approx(base, abs=1e-12)                 # symmetric
    assert metrics.ssim(3.0 * a + 500.0, b) == pytest.approx(base, abs=1e-9)     # min-max: gain/offset free
    assert metrics.ssim(a, 0.01 * b - 4.0) == pytest.approx(base, abs=1e-9)
    assert metrics.ssim(a, a + 0.05 * np.ptp(a) * np.random.default_rng(0).standard_normal(a.shape)) > base


def test_ssim_hand_checked_checkerboards():
    """Away from edges a sigma 1.5 Gaussian averages a 0/1 checkerboard to mu = 0.5, sigma² = 0.25
    (its Nyquist term is damped below 1e-8). So, by hand from Wang et al. (2004):
      x vs 1 - x (inverted):  (2·0.25 + C1)(-2·0.25 + C2) / ((0.5 + C1)(0.5 + C2)) = -(0.5 - C2)/(0.5 + C2)
      x vs column stripes (local covariance 0):  (0.5 + C1)·C2 / ((0.5 + C1)(0.5 + C2)) = C2/(0.5 + C2)."""
    x = _checkerboard(64)
    inverted = 1.0 - x
    stripes = np.tile((np.arange(64) % 2).astype(np.float64), (64, 1))
    assert metrics.ssim(x, inverted) == pytest.approx(-(0.5 - C2) / (0.5 + C2), abs=1e-6)   # -0.99641
    assert metrics.ssim(x, stripes) == pytest.approx(C2 / (0.5 + C2), abs=1e-6)              # 0.001797
    assert metrics.ssim(x, 7.0 * x - 2.0) == pytest.approx(1.0, abs=1e-12)


def test_ssim_of_a_constant_is_nan_not_a_crash():
    assert np.isnan(metrics.ssim(_field(8), np.full((96, 128), 3.0)))


def test_case_metrics_crops_the_border_and_masks_nodata():
    truth = _field(9)
    pred = truth * 2.0 + 10.0
    pred[:2] = 1e6                   # garbage in the 2-px border gdaldem extrapolates: cropped away
    pred[50, 50] = np.nan            # nodata in the prediction
    result = metrics.case_metrics(pred, truth)
    assert result["r"] == pytest.approx(1.0)
    assert result["detail_r"] == pytest.approx(1.0)
    assert result["ssim"] == pytest.approx(1.0, abs=1e-9)
    assert result["valid_pixels"] == (96 - 4) * (128 - 4) - 1
    assert set(metrics.METRICS) <= set(result)


# ---------------------------------------------------------------- Pentland baseline
def test_pentland_sign_convention_on_a_gdaldem_render():
    """On a smooth synthetic DEM shaded by gdal.DEMProcessing, Pentland with the TRUE sun must
    correlate clearly positively with the DEM, and with the opposite sun just as negatively."""
    check = sign_check()
    print("\nPentland sign check, r(Pentland height, DEM) true azimuth / opposite azimuth:")
    for azimuth, (right, wrong) in check.items():
        print(f"  az {azimuth:5.1f}°  {right:+.3f} / {wrong:+.3f}")
    for azimuth, (right, wrong) in check.items():
        assert right > 0.8, azimuth
        assert wrong < -0.8, azimuth


@pytest.mark.parametrize("altitude", [30.0, 60.0])
def test_pentland_recovers_relief_scale_for_gentle_slopes(altitude):
    """gdaldem's 8-bit image with albedo 1 gives heights in metres: a gentle DEM comes back with
    roughly its own relief, and the sign convention holds on each axis (sun from N, E, S, W)."""
    dem = synthetic_smooth_dem() * 0.5
    for azimuth in (0.0, 90.0, 180.0, 270.0):
        image = gdal_hillshade_array(dem, azimuth, altitude, 30.0)
        z = pentland(image, azimuth, altitude, 30.0)
        inner = (slice(2, -2), slice(2, -2))
        assert metrics.pearson(z[inner], dem[inner]) > 0.85
        assert 0.5 < np.ptp(z[inner]) / np.ptp(dem[inner]) < 1.5


def test_pentland_respects_anisotropic_pixels():
    """Different dx, dy (as for a DEM in degrees) still give a positive, high correlation."""
    dem = synthetic_smooth_dem()
    image = gdal_hillshade_array(dem, 315, 45, 20.0, pixel_y=30.0)
    z = pentland(image, 315.0, 45.0, dx=20.0, dy=30.0)
    assert metrics.pearson(z, dem) > 0.85


# ---------------------------------------------------------------- the script's summary logic
def test_verdict_requires_beating_the_baseline_and_the_bar():
    from validation.validate import verdict
    base = {"overall": {"r": 0.5, "detail_r": 0.8, "ssim": 0.7, "relief_rmse_m": 200.0}}
    good = {"overall": {"r": 0.9, "detail_r": 0.95, "ssim": 0.9, "relief_rmse_m": 150.0}}
    assert verdict(good, base, {})[0]
    worse_rmse = {"overall": dict(good["overall"], relief_rmse_m=250.0)}
    assert not verdict(worse_rmse, base, {})[0]
    below_bar = {"overall": dict(good["overall"], ssim=0.84)}
    assert not verdict(below_bar, base, {})[0]
    assert not verdict(good, base, {"bigtujunga": 1})[0]


def test_json_output_is_strict(tmp_path):
    from validation.validate import _json_safe
    text = json.dumps(_json_safe({"a": float("nan"), "b": [np.float32(1.5), np.int64(2)]}), allow_nan=False)
    assert json.loads(text) == {"a": None, "b": [1.5, 2]}


def test_synthetic_section_skips_cleanly_without_the_simulator(monkeypatch):
    from validation.validate import run_synthetic
    monkeypatch.setitem(sys.modules, "training.simulator", None)   # import raises ImportError
    lines = []
    cases, note = run_synthetic(2, 64, [], "/nonexistent", lines.append, None)
    assert cases == [] and "skipped" in note and lines


@pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED, "validation-dems")),
                    reason="../shared/validation-dems is not there")
def test_script_smoke_run_on_fixture_models(tmp_path, identity_model, capsys):
    """--quick on the smallest DEM: a working fixture model is scored, a missing one is reported."""
    from validation.validate import main
    out = tmp_path / "results"
    code = main(["--models", identity_model, str(tmp_path / "missing.onnx"), "--out", str(out), "--quick",
                 "--dems", "mars_hirise_crop", "--synthetic", "0", "--no-figures", "--threads", "1"])
    assert code == 1                       # fixtures are no DTM models: FAIL, but no crash
    payload = json.loads((out / "results.json").read_text())
    case = payload["cases"][0]
    assert set(case["results"]) == {"pentland", "truth flat across the sun", "identity", "missing"}
    assert "error" in case["results"]["missing"]
    assert all(k in case["results"]["identity"] for k in metrics.METRICS + metrics.DIAGNOSTICS)
    reach = case["results"]["truth flat across the sun"]  # the truth less its slope across the sun
    assert reach["detail_r"] == pytest.approx(1.0) and -1 <= reach["r"] <= 1
    assert reach["across_sun_r"] == pytest.approx(1.0)
    summary = (out / "summary.md").read_text()
    assert "## identity" in summary and "FAIL" in summary and "could not be used" in summary
    assert "| truth flat across the sun |" in summary
