"""dtmestimator:estimatedtm through real Processing (processing.run) on real GeoTIFFs.

The identity fixture makes every output pixel predictable: for Byte input in tile mode
DTM = ELEVATION_MIN + v/255 · (ELEVATION_MAX − ELEVATION_MIN), RGB(A) through Rec. 601 luma.
"""
import os

import numpy as np
import pytest
from osgeo import gdal, osr

from rasters import GEOTRANSFORM, MARS_2015_WKT, SAMPLE, byte_image, read, smooth_image, utm_wkt, write_raster

ALG = "dtmestimator:estimatedtm"
RANGE = (0.0, 39586.0)
NODATA = -32768.0
LUMA = np.array([0.299, 0.587, 0.114])


def run(processing, **parameters):
    return processing.run(ALG, parameters)


def expected_byte(values, low=RANGE[0], high=RANGE[1]):
    return low + np.asarray(values, np.float64) / 255.0 * (high - low)


def assert_same_grid(output_path, input_path):
    """Float32, nodata set, and exactly the input's size, geotransform and CRS (WKT-equal)."""
    out, src = gdal.Open(output_path), gdal.Open(input_path)
    assert (out.RasterXSize, out.RasterYSize) == (src.RasterXSize, src.RasterYSize)
    assert out.RasterCount == 1
    assert out.GetGeoTransform() == pytest.approx(src.GetGeoTransform(), rel=0, abs=1e-12)
    assert out.GetProjection() == src.GetProjection()
    a, b = osr.SpatialReference(out.GetProjection()), osr.SpatialReference(src.GetProjection())
    assert a.IsSame(b)
    band = out.GetRasterBand(1)
    assert band.DataType == gdal.GDT_Float32
    assert band.GetNoDataValue() == NODATA


def assert_values(output_path, expected, valid=None, atol=0.02):
    values, nodata, _ = read(output_path)
    valid = np.ones(values.shape, bool) if valid is None else valid
    assert np.all(values[~valid] == nodata)
    np.testing.assert_allclose(values[valid], expected[valid], rtol=0, atol=atol)



# ---------------------------------------------------------------- georeferenced inputs, exact values

@pytest.mark.parametrize("wkt_name", ["mars2015", "utm11n"])
def test_gray_byte_exact_values_and_grid(processing, identity_model, tmp_path, wkt_name):
    wkt = MARS_2015_WKT if wkt_name == "mars2015" else utm_wkt(32611)
    image = byte_image(300, 420)
    src = write_raster(str(tmp_path / "gray.tif"), image, wkt=wkt)
    out = str(tmp_path / "dtm.tif")
    result = run(processing, INPUT=src, MODEL_FILE=identity_model, OUTPUT=out)
    assert result["OUTPUT"] == out
    assert result["PROVIDER"] == "CPUExecutionProvider"
    assert result["MODEL_NAME"].startswith("Test identity")
    assert result["TILES"] == 1
    assert_same_grid(out, src)
    assert_values(out, expected_byte(image))
    if wkt_name == "mars2015":
        assert osr.SpatialReference(gdal.Open(out).GetProjection()).GetAuthorityCode(None) is None


def test_elevation_range_is_applied(processing, identity_model, tmp_path):
    image = byte_image(64, 80)
    src = write_raster(str(tmp_path / "gray.tif"), image)
    out = str(tmp_path / "dtm.tif")
    run(processing, INPUT=src, MODEL_FILE=identity_model, ELEVATION_MIN=-8200, ELEVATION_MAX=21229, OUTPUT=out)
    assert_values(out, expected_byte(image, -8200, 21229))


def test_rgb_uses_luma(processing, identity_model, tmp_path):
    rgb = np.stack([byte_image(200, 260, seed=s) for s in (1, 2, 3)])
    src = write_raster(str(tmp_path / "rgb.tif"), rgb, wkt=utm_wkt())
    out = str(tmp_path / "dtm.tif")
    run(processing, INPUT=src, BAND=0, MODEL_FILE=identity_model, OUTPUT=out)  # 0: automatic
    assert_same_grid(out, src)
    luma = np.tensordot(LUMA, rgb.astype(np.float64), axes=1)
    assert_values(out, expected_byte(luma), atol=0.05)


def test_rgba_transparent_area_is_nodata(processing, identity_model, tmp_path):
    rgb = np.stack([byte_image(180, 240, seed=s) for s in (4, 5, 6)])
    alpha = np.full((180, 240), 255, np.uint8)
    alpha[20:70, 30:120] = 0
    src = write_raster(str(tmp_path / "rgba.tif"), np.concatenate([rgb, alpha[None]]), alpha_band=4)
    out = str(tmp_path / "dtm.tif")
    run(processing, INPUT=src, MODEL_FILE=identity_model, OUTPUT=out)
    assert_same_grid(out, src)
    luma = np.tensordot(LUMA, rgb.astype(np.float64), axes=1)
    assert_values(out, expected_byte(luma), valid=alpha > 0, atol=0.05)


def test_uint16_is_stretched_between_percentiles(processing, identity_model, tmp_path):
    image = np.round(smooth_image(160, 200, low=1000, high=60000, seed=7)).astype(np.uint16)
    src = write_raster(str(tmp_path / "u16.tif"), image, dtype=gdal.GDT_UInt16, wkt=utm_wkt())
    out = str(tmp_path / "dtm.tif")
    run(processing, INPUT=src, MODEL_FILE=identity_model, OUTPUT=out)
    assert_same_grid(out, src)
    low, high = np.percentile(image.astype(np.float64), (0.5, 99.5))
    unit = np.clip((image - low) / (high - low), 0, 1)
    assert_values(out, RANGE[0] + unit * (RANGE[1] - RANGE[0]), atol=0.05)


def test_nodata_pixels_stay_nodata(processing, identity_model, tmp_path):
    image = byte_image(150, 190, seed=8)
    image[image == 0] = 1
    image[40:90, 10:60] = 0
    src = write_raster(str(tmp_path / "nd.tif"), image, nodata=0)
    out = str(tmp_path / "dtm.tif")
    run(processing, INPUT=src, MODEL_FILE=identity_model, OUTPUT=out)
    assert_same_grid(out, src)
    assert_values(out, expected_byte(image), valid=image != 0)


def test_non_square_odd_size(processing, identity_model, tmp_path):
    image = byte_image(37, 211, seed=9)  # neither square nor a multiple of the model's 8
    src = write_raster(str(tmp_path / "strip.tif"), image, geotransform=(1000.0, 5.0, 0.0, 2000.0, 0.0, -7.5))
    out = str(tmp_path / "dtm.tif")
    run(processing, INPUT=src, MODEL_FILE=identity_model, OUTPUT=out)
    assert_same_grid(out, src)
    assert_values(out, expected_byte(image))


def test_explicit_band_of_multiband(processing, identity_model, tmp_path):
    bands = np.stack([byte_image(60, 70, seed=s) for s in range(12)])
    src = write_raster(str(tmp_path / "multi.tif"), bands)
    out = str(tmp_path / "dtm.tif")
    run(processing, INPUT=src, BAND=5, MODEL_FILE=identity_model, OUTPUT=out)
    assert_same_grid(out, src)
    assert_values(out, expected_byte(bands[4]))


# ---------------------------------------------------------------- large rasters

@pytest.fixture(scope="module")
def large_raster(tmp_path_factory):
    image = byte_image(1100, 1600, seed=11)  # wider than one whole window
    path = str(tmp_path_factory.mktemp("large") / "large.tif")
    return write_raster(path, image, wkt=utm_wkt(32633)), image


def test_large_raster_tile_mode_is_seamless_and_exact(processing, identity_model, large_raster, tmp_path):
    src, image = large_raster
    out = str(tmp_path / "tile.tif")
    result = run(processing, INPUT=src, MODEL_FILE=identity_model, LARGE_RASTER="tile", OUTPUT=out)
    assert result["TILES"] == 4
    assert_same_grid(out, src)
    assert_values(out, expected_byte(image), atol=0.05)


def test_large_raster_fit_mode_runs_model_once_on_the_same_grid(processing, identity_model, large_raster,
                                                                tmp_path):
    src, image = large_raster
    out = str(tmp_path / "fit.tif")
    result = run(processing, INPUT=src, MODEL_FILE=identity_model, LARGE_RASTER="fit", OUTPUT=out)
    assert result["TILES"] == 1
    assert_same_grid(out, src)
    values, _, _ = read(out)
    assert np.isfinite(values).all()
    # down- then up-sampled by 1600/1024: a smooth image survives within a few grey levels
    difference = np.abs(values - expected_byte(image))
    assert np.median(difference) < 2 * RANGE[1] / 255
    assert difference.max() < 8 * RANGE[1] / 255


# ---------------------------------------------------------------- other parameters

def test_sun_azimuth_and_cpu_device(processing, identity_model, tmp_path):
    image = byte_image(120, 90, seed=12)
    src = write_raster(str(tmp_path / "sun.tif"), image)
    out = str(tmp_path / "dtm.tif")
    # identity commutes with rotation: the turned-and-turned-back DTM equals the plain one
    run(processing, INPUT=src, MODEL_FILE=identity_model, SUN_AZIMUTH=90.0, DEVICE="cpu", OUTPUT=out)
    assert_same_grid(out, src)
    assert_values(out, expected_byte(image))
    assert gdal.Open(out).GetMetadataItem("DTM_SUN_AZIMUTH") == "90"


def test_flat_grey_and_sun_elevation_reach_the_model(processing, tmp_path):
    import onnx_fixtures
    model = onnx_fixtures.brightness_above_flat_by_sun(str(tmp_path / "sun.onnx"))
    image = byte_image(90, 120, seed=5) // 2 + 100
    src = write_raster(str(tmp_path / "in.tif"), image)
    out = str(tmp_path / "dtm.tif")
    run(processing, INPUT=src, MODEL_FILE=model, FLAT_GREY=60.0, SUN_ELEVATION=22.5, ELEVATION_MAX=1020.0,
        OUTPUT=out)
    assert_values(out, 3.0 * (image - 60.0), atol=1e-3)  # the fixture's output under a 22.5° sun
    metadata = gdal.Open(out).GetMetadata()
    assert metadata["DTM_FLAT_GREY"] == "60" and metadata["DTM_SUN_ELEVATION"] == "22.5"


def test_photoclinometry_refines_a_pixel_unit_model_unless_switched_off(processing, tmp_path):
    """PHOTOCLINOMETRY reaches the engine: on (the default) the heights are refined against the hillshade,
    off they are the model's."""
    import onnx_fixtures
    model = onnx_fixtures.identity(str(tmp_path / "pixel.onnx"), card=onnx_fixtures.PIXEL_CARD)
    y, x = np.mgrid[0:80, 0:100]
    shade = 1 + np.round(254 * np.clip(0.5 + 0.3 * np.sin(x / 7.0) * np.cos(y / 9.0), 0, 1))
    src = write_raster(str(tmp_path / "in.tif"), shade.astype(np.uint8))
    outs = {}
    for switch in (True, False):
        outs[switch] = str(tmp_path / f"dtm_{switch}.tif")
        run(processing, INPUT=src, MODEL_FILE=model, FLAT_GREY=128.0, SUN_ELEVATION=30.0, PHOTOCLINOMETRY=switch,
            OUTPUT=outs[switch])
    assert gdal.Open(outs[True]).GetMetadataItem("DTM_PHOTOCLINOMETRY")
    assert not gdal.Open(outs[False]).GetMetadataItem("DTM_PHOTOCLINOMETRY")
    refined, plain = (gdal.Open(outs[s]).ReadAsArray() for s in (True, False))
    assert np.abs(refined - plain).max() > 1.0


def test_gpu_device_fails_cleanly_without_gpu(processing, identity_model, tmp_path):
    from dtm_estimator.engine import working_providers
    from dtm_estimator.engine.runtime import GPU_PROVIDERS
    from qgis.core import QgsProcessingException
    src = write_raster(str(tmp_path / "g.tif"), byte_image(40, 40))
    out = str(tmp_path / "dtm.tif")
    if set(GPU_PROVIDERS) & set(working_providers(identity_model)):
        assert run(processing, INPUT=src, MODEL_FILE=identity_model, DEVICE="gpu", OUTPUT=out)["PROVIDER"] \
            != "CPUExecutionProvider"
        return
    with pytest.raises(QgsProcessingException, match="DEVICE=gpu"):
        run(processing, INPUT=src, MODEL_FILE=identity_model, DEVICE="gpu", OUTPUT=out)
    assert not os.path.exists(out)


def test_temporary_output(processing, identity_model, tmp_path):
    src = write_raster(str(tmp_path / "t.tif"), byte_image(50, 50))
    result = run(processing, INPUT=src, MODEL_FILE=identity_model, OUTPUT="TEMPORARY_OUTPUT")
    assert result["OUTPUT"].endswith(".tif") and os.path.isfile(result["OUTPUT"])


def test_batch_of_three_inputs(processing, identity_model, tmp_path):
    images = [byte_image(50 + 10 * i, 70 - 5 * i, seed=20 + i) for i in range(3)]
    sources = [write_raster(str(tmp_path / f"in{i}.tif"), image) for i, image in enumerate(images)]
    for i, (src, image) in enumerate(zip(sources, images)):
        out = str(tmp_path / f"out{i}.tif")
        assert run(processing, INPUT=src, MODEL_FILE=identity_model, OUTPUT=out)["OUTPUT"] == out
        assert_same_grid(out, src)
        assert_values(out, expected_byte(image))


# ---------------------------------------------------------------- model, loading and styling

def test_model_chains_estimate_dtm_into_hillshade(processing, identity_model, tmp_path):
    from qgis.core import (QgsProcessingModelAlgorithm, QgsProcessingModelChildAlgorithm,
                           QgsProcessingModelChildParameterSource as Source, QgsProcessingModelOutput,
                           QgsProcessingModelParameter, QgsProcessingParameterFile,
                           QgsProcessingParameterRasterLayer)
    model = QgsProcessingModelAlgorithm("dtm_then_hillshade", "tests")
    model.addModelParameter(QgsProcessingParameterRasterLayer("image", "Image"), QgsProcessingModelParameter("image"))
    model.addModelParameter(QgsProcessingParameterFile("model_file", "Model", extension="onnx"),
                            QgsProcessingModelParameter("model_file"))
    dtm = QgsProcessingModelChildAlgorithm(ALG)
    dtm.setChildId("dtm")
    dtm.addParameterSources("INPUT", [Source.fromModelParameter("image")])
    dtm.addParameterSources("MODEL_FILE", [Source.fromModelParameter("model_file")])
    dtm.addParameterSources("ELEVATION_MAX", [Source.fromStaticValue(500.0)])
    model.addChildAlgorithm(dtm)
    shade = QgsProcessingModelChildAlgorithm("native:hillshade")
    shade.setChildId("shade")
    shade.addParameterSources("INPUT", [Source.fromChildOutput("dtm", "OUTPUT")])
    shade.addParameterSources("Z_FACTOR", [Source.fromStaticValue(1.0)])
    shade.addParameterSources("AZIMUTH", [Source.fromStaticValue(315.0)])
    shade.addParameterSources("V_ANGLE", [Source.fromStaticValue(40.0)])
    output = QgsProcessingModelOutput("hillshade", "Hillshade")
    output.setChildId("shade")
    output.setChildOutputName("OUTPUT")
    shade.setModelOutputs({"hillshade": output})
    model.addChildAlgorithm(shade)
    model.updateDestinationParameters()
    assert "shade:hillshade" in [p.name() for p in model.parameterDefinitions()]

    image = byte_image(140, 160, seed=30)
    src = write_raster(str(tmp_path / "img.tif"), image, wkt=utm_wkt())
    out = str(tmp_path / "hillshade.tif")
    result = processing.run(model, {"image": src, "model_file": identity_model, "shade:hillshade": out})
    assert result["shade:hillshade"] == out
    shaded = gdal.Open(out)
    assert (shaded.RasterXSize, shaded.RasterYSize) == (160, 140)
    assert shaded.GetGeoTransform() == gdal.Open(src).GetGeoTransform()
    values = shaded.GetRasterBand(1).ReadAsArray()
    assert np.ptp(values[1:-1, 1:-1]) > 0


def test_run_and_load_results_names_and_styles_the_layer(processing, identity_model, tmp_path):
    from qgis.core import QgsProject, QgsRasterLayer, QgsSingleBandPseudoColorRenderer
    src = write_raster(str(tmp_path / "crater_image.tif"), byte_image(90, 110, seed=31))
    layer = QgsRasterLayer(src, "Gale crater", "gdal")
    assert layer.isValid()
    project = QgsProject.instance()
    project.addMapLayer(layer)
    try:
        result = processing.runAndLoadResults(ALG, {"INPUT": layer, "MODEL_FILE": identity_model,
                                                    "OUTPUT": str(tmp_path / "dtm.tif")})
        loaded = project.mapLayersByName("Gale crater DTM")
        assert len(loaded) == 1, [l.name() for l in project.mapLayers().values()]
        dtm = loaded[0]
        assert dtm.source() == result["OUTPUT"]
        renderer = dtm.renderer()
        assert isinstance(renderer, QgsSingleBandPseudoColorRenderer)
        values, nodata, _ = read(result["OUTPUT"])
        stats = values[values != nodata].min(), values[values != nodata].max()
        assert renderer.classificationMin() == pytest.approx(stats[0], rel=1e-5)
        assert renderer.classificationMax() == pytest.approx(stats[1], rel=1e-5)
        items = renderer.shader().rasterShaderFunction().colorRampItemList()
        assert len(items) > 2 and items[0].color != items[-1].color
        [shade] = project.mapLayersByName("Gale crater DTM hillshade")
        assert shade.source() == dtm.source() and shade.renderer().type() == "hillshade"
        order = [node.layer().name() for node in project.layerTreeRoot().findLayers()]
        assert order.index("Gale crater DTM hillshade") + 1 == order.index("Gale crater DTM")
    finally:
        project.removeAllMapLayers()


def test_post_processor_is_kept_alive(processing, identity_model, tmp_path):
    """PyQGIS pitfall: a post-processor only referenced by C++ is garbage-collected before it runs."""
    import gc
    from dtm_estimator.processing_provider.styling import DtmLayerStyler
    styler = DtmLayerStyler.create(str(tmp_path / "x.tif"), "x DTM")
    del styler
    gc.collect()
    assert DtmLayerStyler._instances[str(tmp_path / "x.tif")].layer_name == "x DTM"


# ---------------------------------------------------------------- clean errors

def test_multiband_without_band_is_a_clean_error(processing, identity_model, tmp_path):
    from qgis.core import QgsProcessingException
    src = write_raster(str(tmp_path / "multi.tif"), np.stack([byte_image(30, 30, seed=s) for s in range(12)]))
    out = str(tmp_path / "dtm.tif")
    with pytest.raises(QgsProcessingException, match="12 bands.*BAND"):
        run(processing, INPUT=src, MODEL_FILE=identity_model, OUTPUT=out)
    assert not os.path.exists(out)


def test_model_file_that_is_not_a_model(processing, tmp_path):
    from qgis.core import QgsProcessingException
    src = write_raster(str(tmp_path / "g.tif"), byte_image(30, 30))
    fake = tmp_path / "fake.onnx"
    fake.write_text("this is not an ONNX model")
    with pytest.raises(QgsProcessingException, match="not an ONNX model"):
        run(processing, INPUT=src, MODEL_FILE=str(fake), OUTPUT=str(tmp_path / "dtm.tif"))


def test_model_with_wrong_channels(processing, tmp_path):
    import onnx_fixtures
    from qgis.core import QgsProcessingException
    src = write_raster(str(tmp_path / "g.tif"), byte_image(30, 30))
    model = onnx_fixtures.wrong_channels(str(tmp_path / "rgb_model.onnx"))
    with pytest.raises(QgsProcessingException, match="not a DTM model"):
        run(processing, INPUT=src, MODEL_FILE=model, OUTPUT=str(tmp_path / "dtm.tif"))


def test_elevation_max_not_above_min(processing, identity_model, tmp_path):
    from qgis.core import QgsProcessingException
    src = write_raster(str(tmp_path / "g.tif"), byte_image(30, 30))
    with pytest.raises(QgsProcessingException, match="greater than"):
        run(processing, INPUT=src, MODEL_FILE=identity_model, ELEVATION_MIN=100, ELEVATION_MAX=100,
            OUTPUT=str(tmp_path / "dtm.tif"))


def test_unknown_enum_value_is_rejected(processing, identity_model, tmp_path):
    from qgis.core import QgsProcessingException
    src = write_raster(str(tmp_path / "g.tif"), byte_image(30, 30))
    with pytest.raises(QgsProcessingException):
        run(processing, INPUT=src, MODEL_FILE=identity_model, LARGE_RASTER="stretch",
            OUTPUT=str(tmp_path / "dtm.tif"))


def test_non_gdal_layer_is_a_clean_error(processing, identity_model, tmp_path):
    from qgis.core import QgsCoordinateReferenceSystem, QgsProcessingException, QgsRasterDataProvider, \
        QgsRasterLayer, QgsRectangle
    src = write_raster(str(tmp_path / "g.tif"), byte_image(30, 30), wkt=utm_wkt())
    params = QgsRasterDataProvider.VirtualRasterParameters()
    params.crs = QgsCoordinateReferenceSystem("EPSG:32611")
    x0, dx, _, y0, _, dy = GEOTRANSFORM
    params.extent = QgsRectangle(x0, y0 + 30 * dy, x0 + 30 * dx, y0)
    params.width = params.height = 30
    params.formula = '"g@1" * 2'
    source = QgsRasterDataProvider.VirtualRasterInputLayers()
    source.name, source.provider, source.uri = "g", "gdal", src
    params.rInputLayers = [source]
    layer = QgsRasterLayer(QgsRasterDataProvider.encodeVirtualRasterProviderUri(params), "doubled", "virtualraster")
    assert layer.isValid()
    with pytest.raises(QgsProcessingException, match="virtualraster.*GDAL only"):
        run(processing, INPUT=layer, MODEL_FILE=identity_model, OUTPUT=str(tmp_path / "dtm.tif"))


def test_missing_bundled_model_names_the_file_and_model_file(processing, tmp_path, monkeypatch):
    from dtm_estimator.engine import models
    from qgis.core import QgsProcessingException
    monkeypatch.setattr(models, "MODELS_DIR", str(tmp_path / "no_models_here"))
    src = write_raster(str(tmp_path / "g.tif"), byte_image(30, 30))
    with pytest.raises(QgsProcessingException, match=r"'mrfed' is not installed.*mrfed\.onnx.*MODEL_FILE"):
        run(processing, INPUT=src, MODEL="mrfed", OUTPUT=str(tmp_path / "dtm.tif"))


def test_can_execute_with_onnxruntime_installed(qgis_app):
    from qgis.core import QgsApplication
    ok, message = QgsApplication.processingRegistry().createAlgorithmById(ALG).canExecute()
    assert ok, message


def test_cancelled_run_leaves_no_output(processing, identity_model, tmp_path):
    from qgis.core import QgsProcessingException, QgsProcessingFeedback
    src = write_raster(str(tmp_path / "g.tif"), byte_image(30, 30))
    out = str(tmp_path / "dtm.tif")
    feedback = QgsProcessingFeedback()
    feedback.cancel()
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        processing.run(ALG, {"INPUT": src, "MODEL_FILE": identity_model, "OUTPUT": out}, feedback=feedback)
    assert not os.path.exists(out)
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".partial.tif")]


# ---------------------------------------------------------------- the algorithm's public contract

def test_parameter_contract(qgis_app):
    from qgis.core import QgsApplication, QgsProcessingAlgorithm, QgsProcessingParameterEnum
    alg = QgsApplication.processingRegistry().createAlgorithmById(ALG)
    assert alg.displayName() == "Estimate DTM"
    names = [p.name() for p in alg.parameterDefinitions()]
    assert names == ["INPUT", "BAND", "MODEL", "MODEL_FILE", "DEVICE", "SUN_AZIMUTH", "FLAT_GREY", "SUN_ELEVATION",
                     "PHOTOCLINOMETRY", "LARGE_RASTER", "SCALES", "HEIGHTS", "REFERENCE_DEM", "ELEVATION_MIN", "ELEVATION_MAX", "DASK_SCHEDULER", "OUTPUT"]
    from dtm_estimator import settings
    # MODEL's default is the user's (settings dialog, kept in QgsSettings across runs), else DEFAULT_MODEL
    enums = {"MODEL": (["pix2pixcc", "mrfed"], settings.default_model()), "DEVICE": (["auto", "cpu", "gpu"], "auto"),
             "LARGE_RASTER": (["tile", "fit"], "tile"), "SCALES": (["multi", "single"], "multi"),
             "HEIGHTS": (["range", "pixel_size", "reference"], "range")}
    for name, (options, default) in enums.items():
        parameter = alg.parameterDefinition(name)
        assert isinstance(parameter, QgsProcessingParameterEnum)
        assert parameter.usesStaticStrings() and parameter.options() == options
        assert parameter.defaultValue() == default
    for name in ("BAND", "MODEL_FILE", "SUN_AZIMUTH", "FLAT_GREY", "SUN_ELEVATION", "REFERENCE_DEM"):
        assert alg.parameterDefinition(name).flags() & alg.parameterDefinition(name).FlagOptional
    assert alg.parameterDefinition("BAND").parentLayerParameterName() == "INPUT"
    assert alg.parameterDefinition("ELEVATION_MIN").defaultValue() == 0
    assert alg.parameterDefinition("ELEVATION_MAX").defaultValue() == 39586
    sun_elevation = alg.parameterDefinition("SUN_ELEVATION")  # for models that take it: advanced
    assert sun_elevation.flags() & sun_elevation.FlagAdvanced
    photoclinometry = alg.parameterDefinition("PHOTOCLINOMETRY")  # on where both numbers are given
    assert photoclinometry.flags() & photoclinometry.FlagAdvanced and photoclinometry.defaultValue() is True
    scheduler = alg.parameterDefinition("DASK_SCHEDULER")
    assert scheduler.flags() & scheduler.FlagAdvanced and scheduler.flags() & scheduler.FlagOptional
    assert not scheduler.defaultValue()
    assert alg.parameterDefinition("OUTPUT").defaultFileExtension() == "tif"
    assert not alg.flags() & QgsProcessingAlgorithm.FlagNoThreading
    assert {"OUTPUT", "PROVIDER", "MODEL_NAME", "TILES"} <= {o.name() for o in alg.outputDefinitions()}
    assert "39,586" in alg.shortHelpString() and "fit" in alg.shortHelpString()
    assert all(mode in alg.shortHelpString() for mode in ("pixel_size", "reference", "MOLA"))


# ---------------------------------------------------------------- the shipped models

@pytest.mark.parametrize("model", ["pix2pixcc", "mrfed"])
def test_shipped_model_on_mars_sample(processing, tmp_path, model):
    from dtm_estimator.engine import bundled_model_path
    path = bundled_model_path(model)
    assert os.path.isfile(path), f"the shipped model models/{model}.onnx is missing ({path})"
    out = str(tmp_path / f"{model}.tif")
    result = run(processing, INPUT=SAMPLE, MODEL=model, OUTPUT=out)
    assert result["OUTPUT"] == out
    assert_same_grid(out, SAMPLE)
    values, nodata, _ = read(out)
    valid = values != nodata
    assert valid.mean() > 0.99
    assert np.isfinite(values[valid]).all()
    assert np.std(values[valid]) > 0
    assert RANGE[0] <= values[valid].min() and values[valid].max() <= RANGE[1]  # HEIGHTS=range keeps its word
