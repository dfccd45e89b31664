"""HEIGHTS and REFERENCE_DEM through real Processing (processing.run) on real GeoTIFFs: a Mars-like
image in the Mars 2015 sphere CRS, a geographic Earth image and a projected one, pixel-unit fixtures."""
import math

import numpy as np
import pytest
from osgeo import gdal

import onnx_fixtures
from rasters import MARS_2015_WKT, byte_image, read, utm_wkt, write_raster
from test_heights import MARS_RADIUS, UTM, WGS84_40N, box_average, model_input, truth_and_image, wgs84_wkt

ALG = "dtmestimator:estimatedtm"
SCALE = 4.0


@pytest.fixture(scope="module")
def pixel_model(tmp_path_factory):
    return onnx_fixtures.identity(str(tmp_path_factory.mktemp("px") / "pixel.onnx"), onnx_fixtures.PIXEL_CARD,
                                  scale=SCALE)


def test_pixel_size_on_a_mars_image(processing, pixel_model, tmp_path):
    image = byte_image(160, 200, seed=21)
    # Gale crater, 0.0005° pixels on the Mars 2015 sphere; the centre row lies at −5.04°
    src = write_raster(str(tmp_path / "gale.tif"), image, geotransform=(137.3, 0.0005, 0, -5.0, 0, -0.0005))
    out = str(tmp_path / "dtm.tif")
    processing.run(ALG, {"INPUT": src, "MODEL_FILE": pixel_model, "SCALES": "single", "HEIGHTS": "pixel_size", "OUTPUT": out})
    degree = MARS_RADIUS * math.pi / 180
    pixel = 0.0005 * degree * math.sqrt(math.cos(math.radians(-5.04)))
    values, _, ds = read(out)
    expected = (model_input(image) - model_input(image).min()) * SCALE * pixel
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-3)
    assert ds.GetMetadataItem("DTM_HEIGHTS") == "pixel_size"
    assert ds.GetProjection() == MARS_2015_WKT


def test_reference_layer_in_a_geographic_crs(processing, pixel_model, tmp_path):
    """A projected (UTM) image tied to a geographic reference given as a map layer."""
    from qgis.core import QgsRasterLayer
    image, truth = truth_and_image(seed=22)
    src = write_raster(str(tmp_path / "image.tif"), image, wkt=utm_wkt(), geotransform=UTM)
    truth_path = str(tmp_path / "truth.tif")
    write_raster(truth_path, truth.astype(np.float32), dtype=gdal.GDT_Float32, wkt=utm_wkt(), geotransform=UTM)
    reference_path = str(tmp_path / "reference.tif")
    gdal.Warp(reference_path, truth_path, dstSRS=wgs84_wkt(), xRes=0.0018, yRes=0.0014, resampleAlg="average")
    reference = QgsRasterLayer(reference_path, "reference", "gdal")
    out = str(tmp_path / "dtm.tif")
    processing.run(ALG, {"INPUT": src, "MODEL_FILE": pixel_model, "SCALES": "single", "HEIGHTS": "reference",
                         "REFERENCE_DEM": reference, "OUTPUT": out})
    values, _, ds = read(out)
    assert ds.GetMetadataItem("DTM_REFERENCE") == reference_path
    # the pixel fixture here is 4, not 10, times the input: the truth is 3 × 10 / 4 times its relief
    assert float(ds.GetMetadataItem("DTM_REFERENCE_GAIN")) == pytest.approx(7.5, rel=0.15)
    inner = np.s_[20:-20, 20:-20]
    assert np.sqrt(np.mean((values[inner] - truth[inner]) ** 2)) < 0.05 * np.std(truth)


def test_pixel_size_on_a_geographic_earth_image(processing, pixel_model, tmp_path):
    image = byte_image(200, 120, seed=23)
    src = write_raster(str(tmp_path / "boulder.tif"), image, wkt=wgs84_wkt(), geotransform=WGS84_40N)
    out = str(tmp_path / "dtm.tif")
    processing.run(ALG, {"INPUT": src, "MODEL_FILE": pixel_model, "SCALES": "single", "HEIGHTS": "pixel_size", "OUTPUT": out})
    pixel = math.sqrt(111.0346 * 85.3943)  # a 0.001° pixel at 40° N on WGS 84
    values, _, ds = read(out)
    assert float(ds.GetMetadataItem("DTM_MODEL_PIXEL_M")) == pytest.approx(pixel, rel=1e-5)
    assert np.ptp(values) == pytest.approx(np.ptp(model_input(image)) * SCALE * pixel, rel=1e-5)


def test_reference_without_reference_dem_is_refused(processing, pixel_model, tmp_path):
    from qgis.core import QgsProcessingException
    src = write_raster(str(tmp_path / "g.tif"), byte_image(40, 40), wkt=utm_wkt(), geotransform=UTM)
    out = str(tmp_path / "dtm.tif")
    with pytest.raises(QgsProcessingException, match="HEIGHTS=reference needs a reference DEM"):
        processing.run(ALG, {"INPUT": src, "MODEL_FILE": pixel_model, "SCALES": "single", "HEIGHTS": "reference", "OUTPUT": out})


def test_range_model_with_pixel_size_is_refused(processing, identity_model, tmp_path):
    from qgis.core import QgsProcessingException
    src = write_raster(str(tmp_path / "g.tif"), byte_image(40, 40), wkt=utm_wkt(), geotransform=UTM)
    out = str(tmp_path / "dtm.tif")
    with pytest.raises(QgsProcessingException, match="height_units=pixel"):
        processing.run(ALG, {"INPUT": src, "MODEL_FILE": identity_model, "HEIGHTS": "pixel_size", "OUTPUT": out})


def test_reference_that_misses_the_input_is_refused(processing, pixel_model, tmp_path):
    from qgis.core import QgsProcessingException
    image, truth = truth_and_image(rows=80, cols=96, seed=24)
    src = write_raster(str(tmp_path / "g.tif"), image, wkt=utm_wkt(), geotransform=UTM)
    far = write_raster(str(tmp_path / "far.tif"), box_average(truth, 4).astype(np.float32), dtype=gdal.GDT_Float32,
                       wkt=utm_wkt(), geotransform=(UTM[0], 80.0, 0, UTM[3] + 1e5, 0, -80.0))
    with pytest.raises(QgsProcessingException, match="does not overlap"):
        processing.run(ALG, {"INPUT": src, "MODEL_FILE": pixel_model, "SCALES": "single", "HEIGHTS": "reference", "REFERENCE_DEM": far,
                             "OUTPUT": str(tmp_path / "dtm.tif")})


def test_range_pixel_model_in_tile_mode_spans_the_range(processing, pixel_model, tmp_path):
    image = byte_image(1100, 1600, seed=25)
    src = write_raster(str(tmp_path / "large.tif"), image, wkt=utm_wkt(), geotransform=UTM)
    out = str(tmp_path / "dtm.tif")
    result = processing.run(ALG, {"INPUT": src, "MODEL_FILE": pixel_model, "OUTPUT": out})
    values, _, _ = read(out)
    assert result["TILES"] == 4
    assert values.min() == 0.0 and values.max() == 39586.0


def test_reference_layer_options_gdal_cannot_take_are_named_in_a_warning(processing, pixel_model, tmp_path):
    from qgis.core import QgsRasterLayer
    from test_processing_faults import recording_feedback
    image, truth = truth_and_image(seed=24)
    src = write_raster(str(tmp_path / "image.tif"), image, wkt=utm_wkt(), geotransform=UTM)
    reference_path = write_raster(str(tmp_path / "reference.tif"), box_average(truth, 8).astype(np.float32),
                                  dtype=gdal.GDT_Float32, wkt=utm_wkt(),
                                  geotransform=(UTM[0], UTM[1] * 8, 0, UTM[3], 0, UTM[5] * 8))
    reference = QgsRasterLayer(reference_path + "|option:NUM_THREADS=1", "reference", "gdal")
    assert reference.isValid()
    feedback = recording_feedback()
    out = str(tmp_path / "dtm.tif")
    processing.run(ALG, {"INPUT": src, "MODEL_FILE": pixel_model, "SCALES": "single", "HEIGHTS": "reference",
                         "REFERENCE_DEM": reference, "OUTPUT": out}, feedback=feedback)
    assert gdal.Open(out).GetMetadataItem("DTM_REFERENCE") == reference_path
    assert any("NUM_THREADS=1" in w and "reference DEM" in w for w in feedback.warnings), feedback.warnings
