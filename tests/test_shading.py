"""The light's line read from an image's shading, and the engine's check of SUN_AZIMUTH against it."""
import os

import numpy as np
import pytest
from osgeo import gdal

from rasters import mosaic_vrt, read, utm_wkt, write_raster
from dtm_estimator.engine import EstimateOptions, estimate_dtm
from dtm_estimator.engine.bands import SingleBandSource
from dtm_estimator.engine.shading import (AXIS_TOLERANCE_DEG, MIN_ANISOTROPY, axis_difference, raster_shading_axis,
                                          shading_axis, sun_azimuth_check)
from terrain.render import fbm

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE = os.path.join(HERE, os.pardir, "sample_data", "mars_mola_shaded_relief.tif")
PIXEL_M = 30.0


def hillshade(tmp_path, azimuth, altitude=35.0, seed=3, size=384):
    """`gdaldem hillshade` (GDAL itself) of an isotropic fractal terrain on a 30 m UTM grid."""
    heights = (fbm(np.random.default_rng(seed), size, 3.2) * 400.0).astype(np.float32)
    dem = write_raster(str(tmp_path / f"dem_{seed}.tif"), heights, dtype=gdal.GDT_Float32,
                       geotransform=(500000.0, PIXEL_M, 0.0, 4000000.0, 0.0, -PIXEL_M), wkt=utm_wkt())
    shaded = str(tmp_path / f"shade_{seed}_{azimuth:g}.tif")
    gdal.DEMProcessing(shaded, dem, "hillshade", azimuth=azimuth, altitude=altitude, computeEdges=True)
    return shaded


@pytest.mark.parametrize("azimuth", [30.0, 135.0, 200.0, 270.0, 315.0])
def test_the_axis_of_a_rendered_terrain_is_its_sun_line(tmp_path, azimuth):
    values, _, _ = read(hillshade(tmp_path, azimuth))
    axis = shading_axis(values)
    assert axis.clear and axis.anisotropy > 2.0
    assert axis_difference(azimuth, axis.azimuth) < 10.0, (azimuth, axis)
    assert 0.0 <= axis.azimuth < 180.0


def test_nodata_holes_do_not_bend_the_axis(tmp_path):
    values, _, _ = read(hillshade(tmp_path, 60.0))
    values = values.astype(np.float64)
    values[100:250, 40:200] = np.nan  # a hole whose filled edges run east–west and north–south
    axis = shading_axis(values)
    assert axis_difference(60.0, axis.azimuth) < 10.0, axis


def test_an_image_without_a_light_direction_is_not_checked():
    noise = np.random.default_rng(0).normal(size=(256, 256))
    axis = shading_axis(noise)
    assert axis.anisotropy < MIN_ANISOTROPY
    line, warning = sun_azimuth_check(axis, 90.0, 270.0)
    assert warning is None and "not checked" in line


def test_too_few_pixels_give_no_axis_and_no_warning():
    tiny = np.random.default_rng(0).normal(size=(20, 20))
    assert shading_axis(tiny) is None
    line, warning = sun_azimuth_check(None, 90.0, 270.0)
    assert warning is None and "too few" in line


def test_the_check_warns_only_off_the_line_and_reads_an_empty_azimuth_as_the_canonical_one(tmp_path):
    values, _, _ = read(hillshade(tmp_path, 300.0))
    axis = shading_axis(values)
    for on_the_line in (300.0, 120.0, 300.0 + AXIS_TOLERANCE_DEG - 12):  # either side is lit: the same line
        assert sun_azimuth_check(axis, on_the_line, 270.0)[1] is None
    line, warning = sun_azimuth_check(axis, 30.0, 270.0)
    assert "SUN_AZIMUTH is 30°" in warning and "measured in the image: 1" in warning
    assert line.startswith("Light's line measured")
    assert sun_azimuth_check(axis, None, 300.0)[1] is None
    _, warning = sun_azimuth_check(axis, None, 210.0)
    assert "canonical 210°" in warning


def test_the_engine_warns_about_a_wrong_sun_azimuth_and_not_a_right_one(tmp_path, identity_model):
    shaded = hillshade(tmp_path, 45.0)
    lines = []
    report = estimate_dtm(shaded, str(tmp_path / "wrong.tif"), EstimateOptions(identity_model, sun_azimuth=135.0),
                          log=lines.append)
    assert any("SUN_AZIMUTH is 135°" in w for w in report.warnings)
    assert any(line.startswith("Warning: SUN_AZIMUTH is 135°") for line in lines)
    report = estimate_dtm(shaded, str(tmp_path / "right.tif"), EstimateOptions(identity_model, sun_azimuth=225.0),
                          log=lines.append)
    assert not any("SUN_AZIMUTH" in w for w in report.warnings)
    _, _, ds = read(str(tmp_path / "right.tif"))
    metadata = ds.GetMetadata()
    assert metadata["DTM_SUN_AZIMUTH"] == "225" and "or" in metadata["DTM_MEASURED_LIGHT_LINE"]
    # the line across the light, along which the image shows no regional slope: said in the log and recorded
    assert metadata["DTM_UNSEEN_SLOPE_LINE"] == "135,315"
    assert any(line.startswith("Regional slope:") and "along 135°–315°" in line for line in lines)


def test_a_huge_raster_is_measured_at_full_resolution_not_on_an_aliased_overview(tmp_path):
    tile, _, _ = read(SAMPLE)
    whole = shading_axis(tile)
    huge = gdal.Open(mosaic_vrt(str(tmp_path), tile, 12))  # 12288 × 6144 px
    source = SingleBandSource(huge)
    axis = raster_shading_axis(source.read, huge.RasterXSize, huge.RasterYSize)
    assert axis_difference(whole.azimuth, axis.azimuth) < 1.0 and axis.anisotropy > 0.95 * whole.anisotropy
    # a nearest-neighbour overview of the same raster loses the shading: the reason for full-resolution windows
    overview = huge.GetRasterBand(1).ReadAsArray(buf_xsize=2048, buf_ysize=1024)
    assert shading_axis(overview).anisotropy < 0.8 * whole.anisotropy


def test_the_demo_sample_is_lit_along_the_azimuth_make_demo_uses():
    """make demo's SUN_AZIMUTH is this measurement, on the lit (east) side; 90° would be flagged."""
    values, _, _ = read(SAMPLE)
    axis = shading_axis(values)
    assert axis.clear and 35.0 < axis.azimuth < 50.0, axis
    makefile = open(os.path.join(HERE, os.pardir, "Makefile")).read()
    demo_azimuth = float(makefile.split("SUN_AZIMUTH=")[1].split()[0])
    assert axis_difference(demo_azimuth, axis.azimuth) < 2.0
    assert sun_azimuth_check(axis, 90.0, 270.0)[1] is not None
