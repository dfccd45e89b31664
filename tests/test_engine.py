"""The QGIS-free engine on real GeoTIFFs and real onnxruntime sessions (tiny ONNX fixtures)."""
import os

import numpy as np
import pytest
from osgeo import gdal

import onnx_fixtures
from rasters import GEOTRANSFORM, MARS_2015_WKT, byte_image, read, smooth_image, utm_wkt, write_raster
from dtm_estimator.engine import Cancelled, EngineError, EstimateOptions, estimate_dtm
from dtm_estimator.engine.bands import LUMA_WEIGHTS
from dtm_estimator.engine.raster_io import NODATA
from dtm_estimator.engine.runtime import open_model, working_providers
from dtm_estimator.engine.tiling import axis_starts, feather_weights, mirror_pad

ELEVATION_MAX = 255.0 * 4  # identity model: a Byte value v becomes exactly 4 v metres


def run(tmp_path, model, data, name="in.tif", **options):
    raster_kwargs = {k: options.pop(k) for k in list(options) if k in
                     ("dtype", "geotransform", "wkt", "nodata", "alpha_band", "color_interp")}
    source = write_raster(str(tmp_path / name), data, **raster_kwargs)
    output = str(tmp_path / ("dtm_" + name))
    options.setdefault("elevation_max", ELEVATION_MAX)
    report = estimate_dtm(source, output, EstimateOptions(model, **options))
    values, nodata, ds = read(output)
    return values, nodata, ds, report


def test_gray_byte_maps_as_is_and_keeps_the_grid(tmp_path, identity_model):
    image = byte_image(300, 500)
    values, nodata, ds, report = run(tmp_path, identity_model, image)
    np.testing.assert_allclose(values, image * 4.0, atol=1e-3)
    assert ds.GetGeoTransform() == GEOTRANSFORM
    assert ds.GetProjection() == MARS_2015_WKT
    assert ds.GetRasterBand(1).DataType == gdal.GDT_Float32 and nodata == NODATA
    assert report.provider == "CPUExecutionProvider" and report.tiles == 1


def test_rgb_becomes_rec601_luma(tmp_path, identity_model):
    rgb = np.stack([byte_image(200, 260, seed=s) for s in (1, 2, 3)])
    values, *_ = run(tmp_path, identity_model, rgb)
    luma = sum(w * band.astype(np.float64) for w, band in zip(LUMA_WEIGHTS, rgb))
    np.testing.assert_allclose(values, luma * 4.0, atol=1e-2)


def test_rgba_alpha_and_nodata_become_output_nodata(tmp_path, identity_model):
    rgba = np.stack([np.round(smooth_image(200, 260, seed=s)) for s in (1, 2, 3)] +
                    [np.full((200, 260), 255.0)]).astype(np.uint8)
    rgba[3, 50:80, 100:150] = 0
    values, nodata, *_ = run(tmp_path, identity_model, rgba, alpha_band=4)
    assert (values[50:80, 100:150] == nodata).all()
    assert (values != nodata).sum() == 200 * 260 - 30 * 50

    gray = byte_image(150, 150)
    gray[10:20, 10:20] = 0
    values, nodata, *_ = run(tmp_path, identity_model, gray, name="nodata.tif", nodata=0)
    assert ((values == nodata) == (gray == 0)).all()
    np.testing.assert_allclose(values[gray > 0], gray[gray > 0] * 4.0, atol=1e-3)


@pytest.mark.parametrize("dtype, numpy_type", [(gdal.GDT_UInt16, np.uint16), (gdal.GDT_Int16, np.int16),
                                               (gdal.GDT_Float32, np.float32)])
def test_deep_types_use_a_percentile_stretch(tmp_path, identity_model, dtype, numpy_type):
    image = smooth_image(256, 256, low=-1000 if numpy_type is np.int16 else 100, high=3000).astype(numpy_type)
    values, *_ = run(tmp_path, identity_model, image, dtype=dtype)
    low, high = np.percentile(image.astype(np.float64), (0.5, 99.5))
    expected = np.clip((image - low) / (high - low), 0, 1) * ELEVATION_MAX
    np.testing.assert_allclose(values, expected, atol=ELEVATION_MAX * 2e-3)


def test_float_nan_and_inf_are_nodata(tmp_path, identity_model):
    image = smooth_image(128, 128).astype(np.float32)
    image[5, 5], image[6, 6], image[7, 7] = np.nan, np.inf, -np.inf
    values, nodata, *_ = run(tmp_path, identity_model, image, dtype=gdal.GDT_Float32)
    assert [values[i, i] == nodata for i in (5, 6, 7)] == [True] * 3
    assert (values != nodata).sum() == 128 * 128 - 3


def test_band_choice_is_required_beyond_rgba(tmp_path, identity_model):
    bands = np.stack([byte_image(64, 64, seed=s) for s in range(5)])
    with pytest.raises(EngineError, match="set BAND"):
        run(tmp_path, identity_model, bands)
    values, *_ = run(tmp_path, identity_model, bands, name="b.tif", band=4)
    np.testing.assert_allclose(values, bands[3] * 4.0, atol=1e-3)
    with pytest.raises(EngineError, match="BAND=9 does not exist"):
        run(tmp_path, identity_model, bands, name="c.tif", band=9)


def test_rescale_to_any_elevation_range(tmp_path):
    model = onnx_fixtures.identity(str(tmp_path / "half.onnx"), scale=0.5, bias=-0.5)
    image = np.full((40, 40), 255, np.uint8)
    image[0, 0] = 0
    values, *_ = run(tmp_path, model, image, elevation_min=-100.0, elevation_max=300.0)
    # image 255 -> input +1 -> output 0 (mid range) -> 100 m; image 0 -> input -1 -> output -1 -> -100 m
    assert values[1, 1] == pytest.approx(100.0) and values[0, 0] == pytest.approx(-100.0)


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (15, 15), (10, 1500), (700, 1024)])
def test_mirror_pad_and_crop_is_identity(shape):
    array = np.random.default_rng(1).random(shape)
    padded, (top, left) = mirror_pad(array, 1024, max(1024, shape[1]))
    assert padded.shape == (1024, max(1024, shape[1]))
    np.testing.assert_array_equal(padded[top:top + shape[0], left:left + shape[1]], array)


def test_padding_is_a_mirror_so_a_blur_sees_no_edge(tmp_path, blur_model):
    """A zero-padded mean filter darkens borders; mirrored context keeps a constant slope exact."""
    x = np.tile(np.linspace(60, 200, 300), (200, 1)).round().astype(np.uint8)
    values, *_ = run(tmp_path, blur_model, x)
    np.testing.assert_allclose(values, x * 4.0, atol=4.0 * 1.5)


def test_tiles_cover_the_raster_and_overlap():
    assert axis_starts(1000, 1024, 128) == [0]
    starts = axis_starts(3000, 1024, 128)
    assert starts[0] == 0 and starts[-1] == 3000 - 1024
    assert all(b - a <= 1024 - 128 for a, b in zip(starts, starts[1:]))
    weights = feather_weights(1024, 1024, 128)
    assert weights.min() > 0 and weights.max() == 1.0


def test_tile_mode_blends_without_seams(tmp_path, identity_model, blur_model):
    image = byte_image(1500, 2300, seed=4)
    values, _, _, report = run(tmp_path, identity_model, image)
    assert report.tiles == 2 * 3
    np.testing.assert_allclose(values, image * 4.0, atol=1e-2)
    # A model with a border effect: gradients across tile borders must look like gradients elsewhere.
    values, *_ = run(tmp_path, blur_model, image, name="blur.tif")
    step = np.abs(np.diff(values, axis=1))
    borders = [x + offset for x in axis_starts(2300, 1024, 128)[1:] for offset in (-1, 0, 1023 - 1, 1023)]
    assert step[:, [b for b in borders if b < step.shape[1]]].mean() < 2.0 * step.mean()


def test_a_raster_up_to_the_whole_window_limit_runs_as_one_window(tmp_path, identity_model):
    """1300 × 700 px is beyond the model's 1024 but within WHOLE_WINDOW_MAX: one window, no seams;
    lit from 315° its turned canvas (1414 px) still fits, while 1500² turned by 45° (2121 px) tiles."""
    image = byte_image(700, 1300, seed=8)
    for azimuth in (None, 315.0):
        values, _, _, report = run(tmp_path, identity_model, image, sun_azimuth=azimuth, name=f"one{azimuth}.tif")
        assert report.tiles == 1
    values, _, _, report = run(tmp_path, identity_model, image, name="exact.tif")
    np.testing.assert_allclose(values, image * 4.0, atol=1e-2)
    square = byte_image(1500, 1500, seed=9)
    assert run(tmp_path, identity_model, square, name="straight.tif")[3].tiles == 1
    assert run(tmp_path, identity_model, square, sun_azimuth=315.0, name="turned.tif")[3].tiles == 4


def test_fit_mode_scales_down_and_back(tmp_path, identity_model):
    image = byte_image(1200, 2600, seed=5)
    values, _, ds, report = run(tmp_path, identity_model, image, large_raster="fit")
    assert report.tiles == 1 and (ds.RasterXSize, ds.RasterYSize) == (2600, 1200)
    assert np.abs(values - image * 4.0).mean() < 4.0 * 1.0


def test_sun_azimuth_turn_and_its_undoing_keep_every_pixel_in_place(tmp_path, identity_model):
    """Turning to the canonical sun and back is exact for quarter turns and close for oblique ones.
    (That the turn goes the right way is shown on a crater by tests/test_shipped_models.py.)"""
    model = identity_model
    image = byte_image(256, 256, seed=6)
    quarter, *_ = run(tmp_path, model, image, sun_azimuth=180.0)   # quarter turn: exact round trip
    np.testing.assert_allclose(quarter, image * 4.0, atol=1e-2)
    oblique, *_ = run(tmp_path, model, image, name="o.tif", sun_azimuth=300.0)
    inner = np.s_[8:-8, 8:-8]
    assert np.abs(oblique[inner] - image[inner] * 4.0).mean() < 4.0


def test_cancellation_leaves_no_file(tmp_path, identity_model):
    image = byte_image(1600, 1600)
    source = write_raster(str(tmp_path / "in.tif"), image)
    output = tmp_path / "out.tif"
    output.write_bytes(b"previous result")
    calls = []
    with pytest.raises(Cancelled):
        estimate_dtm(source, str(output), EstimateOptions(identity_model),
                     is_canceled=lambda: len(calls) >= 2, progress=calls.append)
    assert output.read_bytes() == b"previous result"
    assert sorted(os.listdir(tmp_path)) == ["in.tif", "out.tif"]


def test_destination_checks(tmp_path, identity_model):
    source = write_raster(str(tmp_path / "in.tif"), byte_image(32, 32))
    with pytest.raises(EngineError, match="input file itself"):
        estimate_dtm(source, source, EstimateOptions(identity_model))
    with pytest.raises(EngineError, match="does not exist"):
        estimate_dtm(source, str(tmp_path / "missing" / "out.tif"), EstimateOptions(identity_model))


def test_empty_and_constant_inputs_are_refused(tmp_path, identity_model):
    with pytest.raises(EngineError, match="constant"):
        run(tmp_path, identity_model, np.full((50, 50), 7, np.uint8))
    with pytest.raises(EngineError, match="no valid pixel"):
        run(tmp_path, identity_model, np.zeros((50, 50), np.uint8), name="e.tif", nodata=0)
    assert not os.path.exists(tmp_path / "dtm_e.tif")


def test_no_georeferencing_keeps_pixel_space(tmp_path, identity_model):
    image = byte_image(64, 80)
    values, _, ds, report = run(tmp_path, identity_model, image, geotransform=None, wkt="")
    assert ds.GetGeoTransform(can_return_null=True) is None and ds.GetProjection() == ""
    assert any("pixel space" in w for w in report.warnings)


def test_utm_crs_is_kept(tmp_path, identity_model):
    _, _, ds, _ = run(tmp_path, identity_model, byte_image(64, 64), wkt=utm_wkt())
    assert ds.GetProjection() == utm_wkt()


@pytest.mark.parametrize("builder, message", [
    (onnx_fixtures.wrong_channels, "3 channels"),
    (onnx_fixtures.wrong_rank, "rank 2"),
    (onnx_fixtures.without_card, "no usable model card"),
])
def test_invalid_models_are_named_in_the_error(tmp_path, builder, message):
    path = builder(str(tmp_path / "bad.onnx"))
    with pytest.raises(EngineError, match=message) as error:
        open_model(path, "cpu")
    assert "bad.onnx" in str(error.value)


def test_truncated_and_missing_models(tmp_path, identity_model):
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(open(identity_model, "rb").read()[:40])
    with pytest.raises(EngineError, match="truncated.onnx"):
        open_model(str(truncated), "cpu")
    with pytest.raises(EngineError, match="not found"):
        open_model(str(tmp_path / "nothing.onnx"), "cpu")


def test_devices_are_reported_honestly(identity_model):
    cpu, warning = open_model(identity_model, "cpu")
    assert cpu.provider == "CPUExecutionProvider" and warning is None
    working = working_providers(identity_model)
    assert "CPUExecutionProvider" in working
    auto, _ = open_model(identity_model, "auto")
    if "CUDAExecutionProvider" in working:
        assert auto.provider == "CUDAExecutionProvider"
    else:
        assert auto.provider == "CPUExecutionProvider"
        with pytest.raises(EngineError, match="DEVICE=gpu"):
            open_model(identity_model, "gpu")


def test_sessions_are_cached_per_model_and_device(identity_model):
    assert open_model(identity_model, "cpu")[0] is open_model(identity_model, "cpu")[0]


def test_the_card_chooses_the_graph_optimisation_level(tmp_path):
    """An optional card key picks onnxruntime's level; an explicit option overrides it; a bad value is named."""
    hinted = onnx_fixtures.identity(str(tmp_path / "hinted.onnx"),
                                    card=dict(onnx_fixtures.CARD, ort_graph_optimization="extended"))
    plain = onnx_fixtures.identity(str(tmp_path / "plain.onnx"))
    assert open_model(hinted, "cpu")[0].graph_optimization == "extended"
    assert open_model(plain, "cpu")[0].graph_optimization == "all"
    assert open_model(hinted, "cpu", graph_optimization="basic")[0].graph_optimization == "basic"
    wrong = onnx_fixtures.identity(str(tmp_path / "wrong.onnx"),
                                   card=dict(onnx_fixtures.CARD, ort_graph_optimization="fastest"))
    with pytest.raises(EngineError, match="wrong.onnx.*ort_graph_optimization.*fastest"):
        open_model(wrong, "cpu")
    with pytest.raises(EngineError, match="Unknown graph optimisation level 'turbo'"):
        open_model(plain, "cpu", graph_optimization="turbo")


@pytest.mark.parametrize("mode", ["tile", "fit"])
def test_rasters_read_once_into_memory_give_what_window_reads_give(tmp_path, blur_model, monkeypatch, mode):
    """Rasters within SAMPLE_SIZE are kept in memory after the first read; larger ones are read by
    window from disk. Both paths must produce the same DTM, nodata hole included."""
    from dtm_estimator.engine import bands
    image = byte_image(1300, 1100, seed=4)
    image[600:700, 500:650] = 0
    src = write_raster(str(tmp_path / "in.tif"), image, nodata=0)
    options = EstimateOptions(blur_model, device="cpu", large_raster=mode)
    estimate_dtm(src, str(tmp_path / "memory.tif"), options)
    monkeypatch.setattr(bands, "SAMPLE_SIZE", 512)
    estimate_dtm(src, str(tmp_path / "windows.tif"), options)
    memory, windows = read(str(tmp_path / "memory.tif"))[0], read(str(tmp_path / "windows.tif"))[0]
    np.testing.assert_array_equal(memory, windows)
    assert (memory == NODATA).sum() == 100 * 150


def test_a_model_that_takes_flat_grounds_grey_level_gets_it_beside_every_window(tmp_path):
    model = onnx_fixtures.brightness_above_flat(str(tmp_path / "flat.onnx"))
    image = byte_image(120, 200, seed=4) // 2 + 100  # 100…227
    lines = []
    source = write_raster(str(tmp_path / "in.tif"), image)
    estimate_dtm(source, str(tmp_path / "given.tif"), EstimateOptions(model, flat_grey=60.0,
                                                                     elevation_max=ELEVATION_MAX), log=lines.append)
    values, _, ds = read(str(tmp_path / "given.tif"))
    np.testing.assert_allclose(values, 4.0 * (image - 60.0), atol=1e-3)
    assert ds.GetMetadataItem("DTM_FLAT_GREY") == "60" and any("grey level: 60 (FLAT_GREY)" in line for line in lines)
    lines.clear()  # not given: the channel says "unknown" (the model then draws no plane), and the log says so
    from dtm_estimator.engine.bands import SingleBandSource
    from dtm_estimator.engine.flat_grey import UNKNOWN_FLAT_LEVEL, flat_level
    from dtm_estimator.engine.runtime import read_model_card
    estimate_dtm(source, str(tmp_path / "unknown.tif"), EstimateOptions(model, elevation_max=ELEVATION_MAX),
                 log=lines.append)
    assert not gdal.Open(str(tmp_path / "unknown.tif")).GetMetadataItem("DTM_FLAT_GREY")
    assert any("runs as its backbone" in line for line in lines)
    card, band = read_model_card(model), SingleBandSource(gdal.Open(source))
    assert flat_level(card, band, None) == UNKNOWN_FLAT_LEVEL  # the "unknown" level fed beside the image
    assert flat_level(card, band, 255.0) == pytest.approx(1.0)
    with pytest.raises(EngineError, match="has 2 channels"):  # a two-channel graph whose card does not say so
        estimate_dtm(source, str(tmp_path / "x.tif"), EstimateOptions(onnx_fixtures.brightness_above_flat(
            str(tmp_path / "plain.onnx"), card=onnx_fixtures.CARD)))


def test_a_model_that_takes_the_sun_elevation_gets_it_as_a_third_channel(tmp_path):
    model = onnx_fixtures.brightness_above_flat_by_sun(str(tmp_path / "sun.onnx"))
    image = byte_image(120, 200, seed=4) // 2 + 100  # 100…227
    source = write_raster(str(tmp_path / "in.tif"), image)
    lines = []
    estimate_dtm(source, str(tmp_path / "low.tif"), EstimateOptions(model, flat_grey=60.0, sun_elevation=22.5,
                                                                   elevation_max=ELEVATION_MAX), log=lines.append)
    values, _, ds = read(str(tmp_path / "low.tif"))
    np.testing.assert_allclose(values, 3.0 * (image - 60.0), atol=1e-3)  # level −0.5 beside every window
    assert ds.GetMetadataItem("DTM_SUN_ELEVATION") == "22.5"
    assert any("Sun elevation 22.5° (SUN_ELEVATION)" in line for line in lines)
    from dtm_estimator.engine.flat_grey import UNKNOWN_SUN_LEVEL, input_channels, sun_level
    from dtm_estimator.engine.runtime import read_model_card
    card = read_model_card(model)
    assert input_channels(card) == 3
    assert sun_level(card, None) == UNKNOWN_SUN_LEVEL and sun_level(card, 45.0) == pytest.approx(0.0)
    lines.clear()  # without FLAT_GREY the elevation is of no use to the model: the log says it is not used
    estimate_dtm(source, str(tmp_path / "no_flat.tif"), EstimateOptions(model, sun_elevation=30.0,
                                                                       elevation_max=ELEVATION_MAX), log=lines.append)
    assert any("SUN_ELEVATION 30° is not a model input" in line and "FLAT_GREY" in line for line in lines)
    assert not gdal.Open(str(tmp_path / "no_flat.tif")).GetMetadataItem("DTM_SUN_ELEVATION")
    for wrong in (0.0, 90.0, -5.0, float("nan")):
        with pytest.raises(EngineError, match="SUN_ELEVATION must be"):
            estimate_dtm(source, str(tmp_path / "x.tif"), EstimateOptions(model, flat_grey=60.0, sun_elevation=wrong))


def test_a_model_without_the_sun_elevation_input_ignores_it_and_says_so(tmp_path):
    model = onnx_fixtures.brightness_above_flat(str(tmp_path / "flat.onnx"))
    image = byte_image(60, 80) // 2 + 100
    source = write_raster(str(tmp_path / "in.tif"), image)
    lines = []
    estimate_dtm(source, str(tmp_path / "out.tif"), EstimateOptions(model, flat_grey=60.0, sun_elevation=30.0,
                                                                   elevation_max=ELEVATION_MAX), log=lines.append)
    assert any("SUN_ELEVATION 30° is not a model input" in line and "does not take" in line for line in lines)
    values, _, ds = read(str(tmp_path / "out.tif"))
    np.testing.assert_allclose(values, 4.0 * (image - 60.0), atol=1e-3)
    assert not ds.GetMetadataItem("DTM_SUN_ELEVATION")


def test_a_model_without_the_flat_grey_input_ignores_it_and_says_so(tmp_path, identity_model):
    lines = []
    source = write_raster(str(tmp_path / "in.tif"), byte_image(60, 80))
    estimate_dtm(source, str(tmp_path / "out.tif"), EstimateOptions(identity_model, flat_grey=128.0),
                 log=lines.append)
    assert any("FLAT_GREY 128 is not a model input" in line for line in lines)
    assert not gdal.Open(str(tmp_path / "out.tif")).GetMetadataItem("DTM_FLAT_GREY")  # empty items are not written
