"""HEIGHTS (range, pixel_size, reference) through the engine, on real GeoTIFFs in projected, geographic
and planetary CRSs, with pixel-unit ONNX fixtures whose output is a known function of the image."""
import math

import numpy as np
import pytest
from osgeo import gdal, osr

import onnx_fixtures
from rasters import MARS_2015_WKT, byte_image, read, utm_wkt, write_raster
from dtm_estimator.engine import EngineError, EstimateOptions, estimate_dtm
from dtm_estimator.engine.ground_pixel import ground_pixel
from dtm_estimator.engine.model_card import ModelCard
from dtm_estimator.engine.raster_io import NODATA

UTM = (500000.0, 20.0, 0.0, 4000000.0, 0.0, -20.0)            # 20 m pixels, WGS 84 / UTM 11N
WGS84_40N = (-105.5, 0.001, 0.0, 40.1, 0.0, -0.001)            # Colorado, 0.001° pixels
MARS_GALE = (137.3, 0.001, 0.0, -4.5, 0.0, -0.001)             # Gale crater, Mars 2015 sphere
MARS_RADIUS = 3396190.0
SCALE = 10.0  # the pixel fixture's output: 10 × the model input, in pixel units


def wgs84_wkt():
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    return srs.ExportToWkt()


@pytest.fixture(scope="module")
def pixel_model(tmp_path_factory):
    return onnx_fixtures.identity(str(tmp_path_factory.mktemp("px") / "pixel.onnx"), onnx_fixtures.PIXEL_CARD,
                                  scale=SCALE)


def model_input(image):
    return np.asarray(image, np.float64) / 127.5 - 1.0  # Byte → the fixture card's input range


def estimate(tmp_path, image, model, wkt, geotransform, name="in.tif", **options):
    source = write_raster(str(tmp_path / name), image, wkt=wkt, geotransform=geotransform)
    output = str(tmp_path / f"dtm_{name}")
    logged = []
    options.setdefault("scales", "single")  # the identity fixture is not scale-equivariant (test_multiscale.py)
    estimate_dtm(source, output, EstimateOptions(model, **options), log=logged.append)
    values, nodata, ds = read(output)
    return values, ds.GetMetadata(), logged


# ---------------------------------------------------------------- the model card

def test_card_height_units():
    props = {k: v for k, v in onnx_fixtures.CARD.items()}
    assert ModelCard.from_metadata("m.onnx", props).height_units == "range"
    assert ModelCard.from_metadata("m.onnx", {**props, "height_units": "pixel"}).height_units == "pixel"
    assert ModelCard.from_metadata("m.onnx", {**props, "height_units": "range"}).height_units == "range"
    with pytest.raises(ValueError, match="height_units.*range, pixel.*metres"):
        ModelCard.from_metadata("m.onnx", {**props, "height_units": "metres"})


# ---------------------------------------------------------------- ground pixel sizes

def test_ground_pixel_projected(tmp_path):
    ds = gdal.Open(write_raster(str(tmp_path / "utm.tif"), byte_image(10, 10), wkt=utm_wkt(),
                                geotransform=(0, 30.0, 0, 0, 0, -10.0)))
    pixel = ground_pixel(ds)
    assert (pixel.dx_m, pixel.dy_m) == (30.0, 10.0)
    assert pixel.size_m == pytest.approx(math.sqrt(300.0))


def test_ground_pixel_of_a_local_crs_in_metres(tmp_path):
    local = 'LOCAL_CS["metres",UNIT["metre",1],AXIS["Easting",EAST],AXIS["Northing",NORTH]]'
    ds = gdal.Open(write_raster(str(tmp_path / "local.tif"), byte_image(10, 10), wkt=local,
                                geotransform=(0, 1.01, 0, 0, 0, -1.01)))
    assert (ground_pixel(ds).dx_m, ground_pixel(ds).dy_m) == (1.01, 1.01)


def test_ground_pixel_on_the_wgs84_ellipsoid(tmp_path):
    # a degree at 40° N: 111,034.6 m of latitude, 85,394.3 m of longitude (WGS 84)
    ds = gdal.Open(write_raster(str(tmp_path / "geo.tif"), byte_image(200, 10), wkt=wgs84_wkt(),
                                geotransform=(-105.5, 0.001, 0, 40.1, 0, -0.001)))
    pixel = ground_pixel(ds)  # centre row: latitude 40.0°
    assert pixel.dy_m == pytest.approx(111.0346, rel=1e-5)
    assert pixel.dx_m == pytest.approx(85.3943, rel=1e-5)


def test_ground_pixel_on_the_mars_sphere(tmp_path):
    ds = gdal.Open(write_raster(str(tmp_path / "mars.tif"), byte_image(100, 100), wkt=MARS_2015_WKT,
                                geotransform=(137.3, 0.001, 0, -4.45, 0, -0.001)))
    pixel = ground_pixel(ds)  # centre latitude −4.5°
    degree = MARS_RADIUS * math.pi / 180
    assert pixel.dy_m == pytest.approx(0.001 * degree, rel=1e-9)
    assert pixel.dx_m == pytest.approx(0.001 * degree * math.cos(math.radians(-4.5)), rel=1e-9)


# ---------------------------------------------------------------- pixel_size

@pytest.mark.parametrize("crs", ["utm", "wgs84", "mars"])
def test_pixel_size_heights_are_model_units_times_the_ground_pixel(tmp_path, pixel_model, crs):
    wkt, geotransform = {"utm": (utm_wkt(), UTM), "wgs84": (wgs84_wkt(), WGS84_40N),
                         "mars": (MARS_2015_WKT, MARS_GALE)}[crs]
    image = byte_image(200, 260, seed=4)
    values, metadata, logged = estimate(tmp_path, image, pixel_model, wkt, geotransform, heights="pixel_size")
    assert any("tie the DTM to a coarse DEM of the area with HEIGHTS=reference" in line for line in logged)
    ds = gdal.Open(write_raster(str(tmp_path / "grid.tif"), image, wkt=wkt, geotransform=geotransform))
    size = ground_pixel(ds).size_m
    expected = (model_input(image) - model_input(image).min()) * SCALE * size  # relief above the lowest point
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-3)
    assert metadata["DTM_HEIGHTS"] == "pixel_size" and float(metadata["DTM_MODEL_PIXEL_M"]) == pytest.approx(size)


def test_pixel_size_in_fit_mode_uses_the_model_pixel(tmp_path, pixel_model):
    image = byte_image(1100, 1300, seed=6)
    values, metadata, _ = estimate(tmp_path, image, pixel_model, utm_wkt(), UTM, heights="pixel_size",
                                   large_raster="fit")
    model_pixel = 20.0 * 1300 / 1024  # the model saw the raster shrunk to 1024 columns
    assert float(metadata["DTM_MODEL_PIXEL_M"]) == pytest.approx(model_pixel)
    span = np.ptp(model_input(image)) * SCALE * model_pixel
    assert np.ptp(values) == pytest.approx(span, rel=0.02)  # down- and up-sampling soften the extremes


def test_pixel_size_warns_when_latitude_changes_the_pixel(tmp_path, pixel_model):
    image = byte_image(100, 100)
    _, _, logged = estimate(tmp_path, image, pixel_model, MARS_2015_WKT, (0, 0.5, 0, 60, 0, -0.5),
                            heights="pixel_size")
    assert any(line.startswith("Warning: The ground pixel size changes") for line in logged)


def test_pixel_size_without_crs_asks_for_one(tmp_path, pixel_model):
    with pytest.raises(EngineError, match="no CRS.*gdal_edit.py -a_srs"):
        estimate(tmp_path, byte_image(50, 50), pixel_model, "", UTM, heights="pixel_size")


def test_range_model_refuses_pixel_size_and_reference(tmp_path, identity_model):
    with pytest.raises(EngineError, match="HEIGHTS=pixel_size needs a model.*height_units=pixel"):
        estimate(tmp_path, byte_image(50, 50), identity_model, utm_wkt(), UTM, heights="pixel_size")


# ---------------------------------------------------------------- range

@pytest.mark.parametrize("low, high", [(0.0, 39586.0), (-8200.3, 21229.7)])
def test_range_stretches_a_pixel_unit_model_like_jmars(tmp_path, pixel_model, low, high):
    image = byte_image(1100, 1300, seed=7)  # 4 tiles
    values, metadata, _ = estimate(tmp_path, image, pixel_model, utm_wkt(), UTM, elevation_min=low,
                                   elevation_max=high)
    x = model_input(image)
    expected = low + (x - x.min()) / np.ptp(x) * (high - low)
    np.testing.assert_allclose(values, expected, rtol=0, atol=(high - low) * 1e-6)
    assert values.min() >= low and values.max() <= high
    assert metadata["DTM_HEIGHTS"] == "range"


def test_range_model_shifted_back_inside(tmp_path):
    # relief above the window minimum, starting at −1.2 of the −1…1 output range: 10 % of the range too low
    model = onnx_fixtures.relief_above_window_minimum(str(tmp_path / "low.onnx"), bias=-1.2)
    image = byte_image(300, 400, seed=8)
    values, metadata, logged = estimate(tmp_path, image, model, utm_wkt(), UTM)
    x = model_input(image)
    np.testing.assert_allclose(values, (x - x.min()) / 2 * 39586.0, rtol=0, atol=0.01)  # its shape, kept
    assert values.min() == 0.0 and "shifted by +3958.6" in metadata["DTM_RANGE_CORRECTION"]
    assert any("outside ELEVATION_MIN…MAX" in line for line in logged)


def test_range_model_squeezed_inside_when_wider_than_the_range(tmp_path):
    model = onnx_fixtures.relief_above_window_minimum(str(tmp_path / "wide.onnx"), scale=1.5)
    image = byte_image(1100, 1300, seed=9)
    values, metadata, _ = estimate(tmp_path, image, model, utm_wkt(), UTM, elevation_min=-100.0,
                                   elevation_max=900.0)
    assert values.min() == -100.0 and values.max() == 900.0
    assert metadata["DTM_RANGE_CORRECTION"].startswith("scaled by")


def test_range_model_inside_the_range_is_untouched(tmp_path, identity_model):
    image = byte_image(1100, 1300, seed=10)
    values, metadata, _ = estimate(tmp_path, image, identity_model, utm_wkt(), UTM)
    np.testing.assert_allclose(values, image / 255.0 * 39586.0, rtol=0, atol=0.02)
    assert "DTM_RANGE_CORRECTION" not in metadata


# ---------------------------------------------------------------- reference

def detailed_image(rows, cols, seed):
    """Smooth relief plus ripples of 5–7 px, finer than the references' pixels, as 8-bit values."""
    y, x = np.mgrid[0:rows, 0:cols]
    ripples = np.sin(2 * np.pi * x / 5.0) * np.sin(2 * np.pi * y / 7.0)
    return np.round(0.6 * byte_image(rows, cols, seed=seed) + 0.4 * (127.5 + 100 * ripples)).astype(np.uint8)


def truth_and_image(rows=400, cols=520, seed=5, gain=3.0, ground=20.0):
    """An image and a truth DEM for which the pixel fixture is right in shape and `gain` times too flat."""
    image = detailed_image(rows, cols, seed)
    return image, gain * SCALE * ground * model_input(image) + 1000.0


def write_float(path, values, wkt, geotransform, nodata=None):
    return write_raster(path, values.astype(np.float32), dtype=gdal.GDT_Float32, wkt=wkt,
                        geotransform=geotransform, nodata=nodata)


def box_average(values, factor):
    """Means over factor × factor blocks, the last row and column of blocks partial where the size says so."""
    rows, cols = -(-values.shape[0] // factor), -(-values.shape[1] // factor)
    padded = np.full((rows * factor, cols * factor), np.nan)
    padded[:values.shape[0], :values.shape[1]] = values
    return np.nanmean(padded.reshape(rows, factor, cols, factor), axis=(1, 3))


def test_reference_on_its_own_grid_recovers_gain_offset_and_truth(tmp_path, pixel_model):
    image, truth = truth_and_image()
    reference = write_float(str(tmp_path / "ref.tif"), box_average(truth, 8), utm_wkt(),
                            (UTM[0], 160.0, 0, UTM[3], 0, -160.0))
    values, metadata, logged = estimate(tmp_path, image, pixel_model, utm_wkt(), UTM, heights="reference",
                                        reference_dem=reference)
    assert float(metadata["DTM_REFERENCE_GAIN"]) == pytest.approx(3.0, rel=1e-4)
    assert float(metadata["DTM_REFERENCE_OFFSET_M"]) == pytest.approx(1000.0, abs=0.1)
    assert float(metadata["DTM_REFERENCE_RESIDUAL_M"]) < 0.01
    assert metadata["DTM_REFERENCE_CELL_PX"] == "8" and metadata["DTM_REFERENCE"] == reference
    np.testing.assert_allclose(values, truth, atol=0.05)
    assert any(line.startswith("Model tied to the reference: gain 3") for line in logged)


def test_a_reference_whose_relief_runs_against_the_model_points_at_the_sun_azimuth(tmp_path, pixel_model):
    """Inverted relief, as a sun azimuth 180° off gives: the negative gain is written and warned about."""
    image, truth = truth_and_image(seed=7)
    reference = write_float(str(tmp_path / "ref.tif"), box_average(-truth, 8), utm_wkt(),
                            (UTM[0], 160.0, 0, UTM[3], 0, -160.0))
    _, metadata, logged = estimate(tmp_path, image, pixel_model, utm_wkt(), UTM, heights="reference",
                                   reference_dem=reference)
    assert float(metadata["DTM_REFERENCE_GAIN"]) == pytest.approx(-3.0, rel=1e-3)
    assert any(line.startswith("Warning: the fitted gain is not positive") and "± 180°" in line for line in logged)


def test_reference_output_averages_back_to_the_reference_in_every_cell(tmp_path, pixel_model):
    """Where the model is wrong at long wavelengths, the reference's cell means still hold exactly."""
    image, truth = truth_and_image(rows=403, cols=517, seed=6)  # partial cells on the south and east
    y, x = np.mgrid[0:403, 0:517]
    truth = truth + 40.0 * np.sin(x / 60.0) * np.cos(y / 45.0) + 0.3 * x  # relief the image does not show
    coarse = box_average(truth, 8)
    reference = write_float(str(tmp_path / "ref.tif"), coarse, utm_wkt(), (UTM[0], 160.0, 0, UTM[3], 0, -160.0))
    values, metadata, _ = estimate(tmp_path, image, pixel_model, utm_wkt(), UTM, heights="reference",
                                   reference_dem=reference)
    np.testing.assert_allclose(box_average(values, 8), coarse.astype(np.float32), atol=2e-3)
    upsampled = gdal.Warp("", reference, format="MEM", outputBounds=(UTM[0], UTM[3] - 403 * 20,
                          UTM[0] + 517 * 20, UTM[3]), width=517, height=403, resampleAlg="bilinear").ReadAsArray()
    inner = np.s_[8:-8, 8:-8]
    assert np.sqrt(np.mean((values - truth)[inner] ** 2)) < 0.5 * np.sqrt(np.mean((upsampled - truth)[inner] ** 2))


def test_reference_in_another_crs_beats_the_reference_alone(tmp_path, pixel_model):
    """A geographic reference of ~150 m pixels for a 20 m UTM image: warped back, tied, far closer."""
    image, truth = truth_and_image(seed=11)
    truth_path = write_float(str(tmp_path / "truth.tif"), truth, utm_wkt(), UTM)
    reference = str(tmp_path / "ref_geo.tif")
    gdal.Warp(reference, truth_path, dstSRS="EPSG:4326", xRes=0.0018, yRes=0.0014, resampleAlg="average")
    values, metadata, _ = estimate(tmp_path, image, pixel_model, utm_wkt(), UTM, heights="reference",
                                   reference_dem=reference)
    upsampled = gdal.Warp("", reference, format="MEM", dstSRS=utm_wkt(), outputBounds=(
        UTM[0], UTM[3] - 400 * 20, UTM[0] + 520 * 20, UTM[3]), width=520, height=400, resampleAlg="bilinear",
        dstNodata=np.nan).ReadAsArray()
    inner = np.s_[20:-20, 20:-20]  # the reference's reprojected edge cells are partial

    def rmse(estimate_):
        return np.sqrt(np.nanmean((estimate_[inner] - truth[inner]) ** 2))

    assert rmse(values) < 0.5 * rmse(upsampled)
    assert float(metadata["DTM_REFERENCE_GAIN"]) == pytest.approx(3.0, rel=0.15)
    # ~154 m reference pixels, finer than the 8 × 20 m cells they are fitted on: averaged, not interpolated
    assert metadata["DTM_REFERENCE_CELL_PX"] == "8" and metadata["DTM_REFERENCE_RESAMPLING"] == "average"


def test_reference_nodata_and_partial_cover_become_nodata(tmp_path, pixel_model):
    image, truth = truth_and_image(seed=12)
    coarse = box_average(truth, 8)
    coarse[10:20, 30:40] = -9999.0                      # a hole in the reference
    coarse = coarse[:, :55]                              # and it stops short of the input's east edge
    reference = write_float(str(tmp_path / "holes.tif"), coarse, utm_wkt(), (UTM[0], 160.0, 0, UTM[3], 0, -160.0),
                            nodata=-9999.0)
    values, _, logged = estimate(tmp_path, image, pixel_model, utm_wkt(), UTM, heights="reference",
                                 reference_dem=reference)
    assert (values[10 * 8 + 8:20 * 8 - 8, 30 * 8 + 8:40 * 8 - 8] == NODATA).all()
    assert (values[:, 55 * 8:] == NODATA).all()
    assert (values[:60, :200] != NODATA).all()
    assert not (values[values != NODATA] == 0).any()
    assert any(line.startswith("Warning: REFERENCE_DEM has no data on") for line in logged)


def test_reference_errors(tmp_path, pixel_model, identity_model):
    image, truth = truth_and_image(rows=100, cols=120)
    with pytest.raises(EngineError, match="HEIGHTS=reference needs a reference DEM"):
        estimate(tmp_path, image, pixel_model, utm_wkt(), UTM, heights="reference")
    far = write_float(str(tmp_path / "far.tif"), box_average(truth, 4), utm_wkt(),
                      (UTM[0] + 1e6, 80.0, 0, UTM[3], 0, -80.0))
    with pytest.raises(EngineError, match="does not overlap the input"):
        estimate(tmp_path, image, pixel_model, utm_wkt(), UTM, heights="reference", reference_dem=far)
    coarse = write_float(str(tmp_path / "coarse.tif"), box_average(truth, 50), utm_wkt(),
                         (UTM[0], 1000.0, 0, UTM[3], 0, -1000.0))
    with pytest.raises(EngineError, match="too coarse"):
        estimate(tmp_path, image, pixel_model, utm_wkt(), UTM, heights="reference", reference_dem=coarse)
    not_a_raster = tmp_path / "notes.txt"
    not_a_raster.write_text("MOLA, somewhere")
    with pytest.raises(EngineError, match="Cannot open REFERENCE_DEM as a raster"):
        estimate(tmp_path, image, pixel_model, utm_wkt(), UTM, heights="reference", reference_dem=str(not_a_raster))
    with pytest.raises(EngineError, match="HEIGHTS=reference needs a model.*height_units=pixel"):
        estimate(tmp_path, image, identity_model, utm_wkt(), UTM, heights="reference", reference_dem=far)


@pytest.mark.parametrize("heights", ["range", "pixel_size", "reference"])
def test_cancel_during_the_heights_pass_leaves_no_output(tmp_path, pixel_model, heights):
    from dtm_estimator.engine import Cancelled
    image, truth = truth_and_image(rows=160, cols=200)
    source = write_raster(str(tmp_path / "in.tif"), image, wkt=utm_wkt(), geotransform=UTM)
    reference = write_float(str(tmp_path / "ref.tif"), box_average(truth, 8), utm_wkt(),
                            (UTM[0], 160.0, 0, UTM[3], 0, -160.0))
    polls = []

    def cancel_after_the_tile():  # polled once before the only tile, then by the pass over the output
        polls.append(1)
        return len(polls) > 1

    output = tmp_path / "dtm.tif"
    with pytest.raises(Cancelled):
        estimate_dtm(source, str(output),
                     EstimateOptions(pixel_model, heights=heights, reference_dem=reference, scales="single"),
                     is_canceled=cancel_after_the_tile)
    assert len(polls) == 2 and not output.exists()
    assert not [name for name in tmp_path.iterdir() if name.name.endswith(".partial.tif")]
