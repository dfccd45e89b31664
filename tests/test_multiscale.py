"""Multi-scale inference (engine/multiscale.py): the zoom arithmetic, the bounded-memory pieces, and the
engine's SCALES option on real GeoTIFFs and onnxruntime sessions."""
import numpy as np
import pytest
from osgeo import gdal

import onnx_fixtures
from rasters import smooth_image, utm_wkt, write_raster
from dtm_estimator.engine import EngineError, EstimateOptions, estimate_dtm
from dtm_estimator.engine.multiscale import ZOOMS, infer_in_pieces, unzoom_heights, zoom_values, zooms_for
from dtm_estimator.engine.runtime import read_model_card


@pytest.fixture(scope="module")
def pixel_model(tmp_path_factory):
    return onnx_fixtures.identity(str(tmp_path_factory.mktemp("models") / "pixel.onnx"), card=onnx_fixtures.PIXEL_CARD)


def smooth_field(rows, cols):
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float64)
    return (3.0 * np.sin(x / 17.0) * np.cos(y / 23.0) + 0.02 * x).astype(np.float32)


@pytest.mark.parametrize("zoom", [0.5, 2.0])
@pytest.mark.parametrize("shape", [(64, 96), (37, 51)])
def test_a_scale_equivariant_model_gets_its_heights_back_at_every_zoom(zoom, shape):
    # A model that is exact in pixel units answers z × the heights for the image zoomed z×; turned
    # back, that is the native heights again (odd sizes padded, the ½× scale interpolated back).
    field = smooth_field(*shape)
    zoomed = zoom_values(field, zoom)
    assert zoomed.shape == tuple(int(np.ceil(s * zoom)) for s in shape)
    back = unzoom_heights(zoomed * np.float32(zoom), zoom, shape)
    assert back.shape == shape and back.dtype == np.float32
    inner = (slice(4, -4), slice(4, -4))
    np.testing.assert_allclose(back[inner], field[inner], atol=0.05 if zoom < 1 else 1e-3)


def test_pieces_cover_every_pixel_once_in_weight():
    # A pixel-wise model run in overlapping pieces must give exactly what it gives on the whole array.
    values = np.random.default_rng(3).normal(size=(700, 1100)).astype(np.float32)
    calls = []

    def infer(piece):
        calls.append(piece.shape)
        return piece * np.float32(3)

    out = infer_in_pieces(infer, values, side=512, overlap=64)
    np.testing.assert_allclose(out, values * 3, rtol=1e-5, atol=1e-5)
    assert len(calls) == 2 * 3 and max(max(c) for c in calls) <= 512
    calls.clear()
    infer_in_pieces(infer, values, side=1100, overlap=64)
    assert calls == [(700, 1100)]


def test_multi_needs_pixel_units_and_says_when_it_runs_at_one_scale(identity_model, pixel_model):
    zooms, line = zooms_for("multi", read_model_card(identity_model))
    assert zooms == ZOOMS["single"] and "pixel units" in line
    zooms, line = zooms_for("multi", read_model_card(pixel_model))
    assert zooms == (0.5, 1.0, 2.0) and "0.5×, 1×, 2×" in line
    assert zooms_for("single", read_model_card(pixel_model))[0] == (1.0,)


def test_engine_averages_the_three_scales(tmp_path, pixel_model):
    # The pixel-unit identity "model" is not scale-equivariant, so the average is checked against the
    # three scales computed here: ½× box average turned back ×2, the image itself, 2× cubic turned back ½.
    image = np.round(smooth_image(120, 150, seed=4)).astype(np.uint8)
    source = write_raster(str(tmp_path / "in.tif"), image, wkt=utm_wkt())
    logged = []
    outputs = {}
    for scales in ("single", "multi"):
        out = str(tmp_path / f"dtm_{scales}.tif")
        estimate_dtm(source, out, EstimateOptions(pixel_model, scales=scales, heights="pixel_size"), log=logged.append)
        ds = gdal.Open(out)
        outputs[scales] = ds.GetRasterBand(1).ReadAsArray().astype(np.float64)
        assert ds.GetMetadataItem("DTM_SCALES") == ("1" if scales == "single" else "0.5,1,2")
    assert any(line.startswith("Scales: 0.5×, 1×, 2×") for line in logged)
    values = image.astype(np.float32) / np.float32(127.5) - 1
    expected = sum(unzoom_heights(zoom_values(values, z), z, values.shape) for z in ZOOMS["multi"]) / 3
    # pixel_size heights are the model's relief above its lowest point times the ground pixel size
    pixel = outputs["single"].ptp() / values.ptp()
    np.testing.assert_allclose(outputs["single"], (values - values.min()) * pixel, rtol=1e-4, atol=1e-3 * pixel)
    np.testing.assert_allclose(outputs["multi"], (expected - expected.min()) * pixel, rtol=1e-4, atol=1e-3 * pixel)


def test_unknown_scales_mode_is_refused(tmp_path, pixel_model):
    source = write_raster(str(tmp_path / "in.tif"), np.full((40, 40), 100, np.uint8))
    with pytest.raises(EngineError, match="SCALES must be one of multi, single"):
        estimate_dtm(source, str(tmp_path / "out.tif"), EstimateOptions(pixel_model, scales="triple"))


def test_each_scale_runs_whole_while_its_turned_canvas_fits(tmp_path, pixel_model, monkeypatch):
    # 1197 × 643 px lit from 315° (turned 45°): a 1301 px canvas, one run at ½× and at 1× as at one scale;
    # the 2× window (2394 × 1286) is turned whole onto a 2602 px canvas, run in 2 × 2 upright 1536 px pieces.
    from dtm_estimator.engine import runtime
    calls, run = [], runtime.ModelSession.run
    monkeypatch.setattr(runtime.ModelSession, "run", lambda self, batch: calls.append(batch.shape) or run(self, batch))
    source = write_raster(str(tmp_path / "in.tif"), np.round(smooth_image(643, 1197, seed=5)).astype(np.uint8),
                          wkt=utm_wkt())
    report = estimate_dtm(source, str(tmp_path / "out.tif"), EstimateOptions(pixel_model, sun_azimuth=315))
    assert report.tiles == 1 and len(calls) == 1 + 1 + 4
    assert max(max(shape[2:]) for shape in calls) == 1536


def test_pieces_of_a_turned_window_see_the_image_around_them(tmp_path, pixel_model, monkeypatch):
    # The 2× window's pieces are cut from the window turned as a whole: a piece's surroundings are the
    # real image, so what a piece sees matches the whole turned window there, corners and all.
    from dtm_estimator.engine import runtime
    from dtm_estimator.engine.sun import clockwise_turn, rotate_clockwise
    pieces, run = [], runtime.ModelSession.run
    monkeypatch.setattr(runtime.ModelSession, "run", lambda self, batch: pieces.append(batch[0, 0].copy()) or
                        run(self, batch))
    image = np.round(smooth_image(643, 1197, seed=7)).astype(np.uint8)
    source = write_raster(str(tmp_path / "in.tif"), image, wkt=utm_wkt())
    estimate_dtm(source, str(tmp_path / "out.tif"), EstimateOptions(pixel_model, sun_azimuth=315, scales="multi"))
    values = image.astype(np.float32) / np.float32(127.5) - 1
    turned = rotate_clockwise(zoom_values(values, 2.0), clockwise_turn(315, 270))
    first = pieces[2]  # after the ½× and 1× runs: the 2× canvas's top-left piece, exactly 1536 px
    np.testing.assert_allclose(first, turned[:1536, :1536], atol=1e-5)


def test_cancelling_between_the_scales_of_one_window_writes_nothing(tmp_path, pixel_model, monkeypatch):
    from dtm_estimator.engine import Cancelled, runtime
    calls, run = [], runtime.ModelSession.run
    monkeypatch.setattr(runtime.ModelSession, "run", lambda self, batch: calls.append(batch.shape) or run(self, batch))
    source = write_raster(str(tmp_path / "in.tif"), np.round(smooth_image(300, 400, seed=6)).astype(np.uint8),
                          wkt=utm_wkt())
    output = tmp_path / "out.tif"
    with pytest.raises(Cancelled):
        estimate_dtm(source, str(output), EstimateOptions(pixel_model), is_canceled=lambda: len(calls) >= 1)
    assert len(calls) == 1 and not output.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


@pytest.mark.parametrize("shape", [(1, 5), (3, 3), (2, 7)])
def test_tiny_rasters_run_at_three_scales(tmp_path, pixel_model, shape):
    image = (np.arange(shape[0] * shape[1]).reshape(shape) * 7 % 250 + 3).astype(np.uint8)
    source = write_raster(str(tmp_path / "in.tif"), image, wkt=utm_wkt())
    out = str(tmp_path / "out.tif")
    estimate_dtm(source, out, EstimateOptions(pixel_model, heights="pixel_size"))
    ds = gdal.Open(out)  # kept: a band outlives no dataset
    values = ds.GetRasterBand(1).ReadAsArray()
    assert values.shape == shape and np.isfinite(values).all() and values.min() == 0
