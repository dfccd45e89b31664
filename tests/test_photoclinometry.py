"""The photoclinometric refinement (engine/photoclinometry.py): its model of the image is gdaldem's, its
gradient is exact, it moves a wrong DTM towards the truth, and the engine runs it only where asked and able."""
import math

import numpy as np
import pytest
from osgeo import gdal
from scipy import ndimage

import onnx_fixtures
from rasters import read, utm_wkt, write_raster
from validation.pentland import gdal_hillshade_array
from dtm_estimator.engine import EngineError, EstimateOptions, estimate_dtm
from dtm_estimator.engine.flat_grey import hillshade_flat_grey
from dtm_estimator.engine.photoclinometry import (Photoclinometry, amplitude_gain, cos_incidence, horn_slopes,
                                                  horn_slopes_adjoint, refine_heights, shading_target, sun_vector)

GSD = 30.0


def rolling_dem(size=160, seed=3):
    """Smooth hills (metres) with ridges in every direction, on a GSD grid."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(float)
    dem = np.zeros((size, size))
    for _ in range(12):
        kx, ky = rng.uniform(-0.15, 0.15, 2)
        dem += rng.uniform(20, 60) * np.sin(kx * x + ky * y + rng.uniform(0, 2 * np.pi))
    return dem + 500.0


def gdaldem_plan(azimuth, elevation):
    """The photometry of a gdaldem hillshade read as 8-bit v/127.5 − 1 (the shipped models' input range)."""
    to_input = lambda v: v / 127.5 - 1.0  # noqa: E731
    return Photoclinometry(azimuth, elevation, to_input(0.0), to_input(hillshade_flat_grey(elevation)), 1.0)


@pytest.mark.parametrize("azimuth", [270.0, 315.0, 120.0])
def test_the_model_of_the_image_is_gdaldem_hillshade(azimuth):
    dem = rolling_dem()
    shade = gdal_hillshade_array(dem, azimuth, 35.0, GSD)[1:-1, 1:-1].astype(float)
    p, q = horn_slopes(dem / GSD, 1.0, 1.0)  # pixel units
    cos_i, _ = cos_incidence(p, q, sun_vector(azimuth, 35.0))
    np.testing.assert_allclose(1 + np.round(254 * np.clip(cos_i, 0, 1)), shade, atol=1.0)


def test_the_slope_adjoint_is_the_transpose():
    rng = np.random.default_rng(0)
    z, gp, gq = rng.standard_normal((9, 11)), rng.standard_normal((7, 9)), rng.standard_normal((7, 9))
    p, q = horn_slopes(z, 1.3, 0.7)
    np.testing.assert_allclose(np.sum(p * gp) + np.sum(q * gq), np.sum(z * horn_slopes_adjoint(gp, gq, z.shape, 1.3, 0.7)))


@pytest.mark.parametrize("azimuth, elevation", [(270.0, 30.0), (315.0, 45.0), (225.0, 60.0)])
def test_a_wrong_dtm_is_moved_towards_the_truth_it_was_shaded_from(azimuth, elevation):
    """The truth in pixel units, distorted (its detail blurred away, a false ramp towards the sun added), refined
    against the truth's gdaldem render: closer to the truth in r and in RMSE. (A ramp across the sun would stay:
    the image does not show it.)"""
    truth = rolling_dem() / GSD
    shade = gdal_hillshade_array(truth * GSD, azimuth, elevation, GSD).astype(np.float32)
    y, x = np.mgrid[0:truth.shape[0], 0:truth.shape[1]]
    towards_sun = x * math.sin(math.radians(azimuth)) - y * math.cos(math.radians(azimuth))  # row 0 = north
    wrong = ndimage.gaussian_filter(truth, 3.0) + 0.02 * towards_sun
    refined = refine_heights(wrong.astype(np.float32), shade / 127.5 - 1.0, None, gdaldem_plan(azimuth, elevation))
    assert refined.dtype == np.float32 and refined.shape == truth.shape

    def error(z):
        d = (z - z.mean()) - (truth - truth.mean())
        return np.sqrt(np.mean(d[2:-2, 2:-2] ** 2))
    r = lambda z: np.corrcoef(z.ravel(), truth.ravel())[0, 1]  # noqa: E731
    assert r(refined) > r(wrong) + 0.01 and r(refined) > 0.95
    assert error(refined) < 0.7 * error(wrong)


@pytest.mark.parametrize("amplitude", [0.4, 2.5])
def test_a_dtm_of_the_right_shape_and_wrong_amplitude_gets_the_images(amplitude):
    """The truth scaled by 0.4 or 2.5 under a 60° sun: the amplitude step (amplitude_gain) brings it back
    within 15 %, and the shape is kept (without it a prior at the wrong amplitude distorts it: r 0.88)."""
    truth = rolling_dem() / GSD
    shade = gdal_hillshade_array(truth * GSD, 225.0, 60.0, GSD).astype(np.float32) / 127.5 - 1.0
    refined = refine_heights((amplitude * truth).astype(np.float32), shade, None, gdaldem_plan(225.0, 60.0))
    assert np.corrcoef(refined.ravel(), truth.ravel())[0, 1] > 0.99
    assert refined.std() / truth.std() == pytest.approx(1.0, abs=0.15)


def test_the_amplitude_gain_matches_the_images_contrast_on_steep_ground():
    """Slopes around 18° (cos i far from linear in them): the gain found for the truth scaled by 1.34 and by 0.5
    is within 5 % of undoing the scale."""
    truth = ndimage.gaussian_filter(np.random.default_rng(0).standard_normal((256, 256)), 4) * 40  # pixel units
    plan = gdaldem_plan(315.0, 45.0)
    shade = gdal_hillshade_array(truth * GSD, 315.0, 45.0, GSD).astype(np.float32) / 127.5 - 1.0
    target, mask = shading_target(shade, None, plan)
    for scale in (1.34, 0.5):
        gain = amplitude_gain(target, mask, *horn_slopes(scale * truth, 1.0, 1.0), sun_vector(315.0, 45.0))
        assert gain * scale == pytest.approx(1.0, rel=0.05)


def test_the_amplitude_gain_takes_the_first_crossing_where_contrast_falls_again():
    """Ground tilted 19° towards a 30° sun (the HiRISE crop's case): steeper copies brighten as a whole and lose
    contrast again (at 20× less than at 1×), so the spread is reached twice; the gain for the truth itself is the
    first, about 1."""
    y, x = np.mgrid[0:120, 0:120]
    truth = 0.5 * rolling_dem(120) / GSD - 0.35 * x  # falling to the east: facing the sun in the west
    plan = gdaldem_plan(270.0, 30.0)
    shade = gdal_hillshade_array(truth * GSD, 270.0, 30.0, GSD).astype(np.float32) / 127.5 - 1.0
    target, mask = shading_target(shade, None, plan)
    assert amplitude_gain(target, mask, *horn_slopes(truth, 1.0, 1.0), sun_vector(270.0, 30.0)) == \
        pytest.approx(1.0, rel=0.05)


def test_invalid_and_shadowed_pixels_fix_nothing():
    """Where no pixel may be trusted the heights come back as they were."""
    truth = rolling_dem(40) / GSD
    plan = gdaldem_plan(270.0, 30.0)
    dark = np.full(truth.shape, plan.zero_level, np.float32)  # all in shadow
    np.testing.assert_array_equal(refine_heights(truth, dark, None, plan), truth)
    shade = gdal_hillshade_array(truth * GSD, 270.0, 30.0, GSD) / 127.5 - 1.0
    np.testing.assert_array_equal(refine_heights(truth, shade, np.zeros(truth.shape, bool), plan), truth)


def hillshade_raster(path, dem, azimuth, elevation):
    shade = gdal_hillshade_array(dem, azimuth, elevation, GSD)
    return write_raster(path, shade, geotransform=(500000, GSD, 0, 4000000, 0, -GSD), wkt=utm_wkt())


def test_the_engine_refines_where_flat_grey_and_sun_elevation_are_given(tmp_path):
    """A pixel-unit fixture model (heights = image values): refined only with both numbers, metadata says so;
    PHOTOCLINOMETRY false, or one number missing, leaves the model's heights as they are."""
    model = onnx_fixtures.identity(str(tmp_path / "pixel.onnx"), card=onnx_fixtures.PIXEL_CARD)
    image = hillshade_raster(str(tmp_path / "in.tif"), rolling_dem(), 270.0, 40.0)
    flat = 1 + 254 * math.sin(math.radians(40.0))
    runs = {"refined": dict(flat_grey=flat, sun_elevation=40.0), "off": dict(flat_grey=flat, sun_elevation=40.0,
            photoclinometry=False), "no_elevation": dict(flat_grey=flat), "neither": {}}
    dtms, logs = {}, {}
    for name, extra in runs.items():
        logs[name] = []
        out = str(tmp_path / f"{name}.tif")
        estimate_dtm(image, out, EstimateOptions(model, heights="pixel_size", scales="single", **extra),
                     log=logs[name].append)
        dtms[name], _, ds = read(out)
        assert bool(ds.GetMetadataItem("DTM_PHOTOCLINOMETRY")) == (name == "refined")
    assert any("Photoclinometric refinement: Lambert shading" in line for line in logs["refined"])
    assert any("PHOTOCLINOMETRY false" in line for line in logs["off"])
    assert any("needs both FLAT_GREY and SUN_ELEVATION" in line for line in logs["no_elevation"])
    np.testing.assert_array_equal(dtms["off"], dtms["neither"])
    np.testing.assert_array_equal(dtms["no_elevation"], dtms["neither"])
    assert np.abs(dtms["refined"] - dtms["off"]).max() > 1.0  # metres: the image's brightness is not its relief


def test_the_refinement_refuses_a_flat_grey_at_or_below_zero_and_skips_range_models(tmp_path, identity_model):
    pixel_model = onnx_fixtures.identity(str(tmp_path / "pixel.onnx"), card=onnx_fixtures.PIXEL_CARD)
    image = hillshade_raster(str(tmp_path / "in.tif"), rolling_dem(60), 270.0, 40.0)
    with pytest.raises(EngineError, match="FLAT_GREY .* must be above 0"):
        estimate_dtm(image, str(tmp_path / "x.tif"), EstimateOptions(pixel_model, flat_grey=0.0, sun_elevation=40.0))
    with pytest.raises(EngineError, match="SUN_ELEVATION must be"):
        estimate_dtm(image, str(tmp_path / "x.tif"), EstimateOptions(pixel_model, flat_grey=100.0, sun_elevation=95.0))
    lines = []
    estimate_dtm(image, str(tmp_path / "range.tif"), EstimateOptions(identity_model, flat_grey=100.0,
                                                                     sun_elevation=40.0), log=lines.append)
    assert any("does not answer heights in pixel units" in line for line in lines)
    assert not gdal.Open(str(tmp_path / "range.tif")).GetMetadataItem("DTM_PHOTOCLINOMETRY")
