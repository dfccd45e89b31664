"""The pieces of the extended validation: pixel sizes (box-averaging), the per-set averages, the model
output units, the real-image pair (averaging onto the DEM grid, sun estimation) and the demo score.
Real GDAL files and real ONNX fixtures; no QGIS."""
import json
import os

import numpy as np
import pytest
from osgeo import gdal

import onnx_fixtures
from conftest import SHARED
from validation import real_pairs, scenes, units
from validation.metrics import METRICS
from validation.pentland import gdal_hillshade_array, synthetic_smooth_dem

HAS_VALIDATION_DEMS = os.path.isdir(os.path.join(SHARED, "validation-dems"))
HAS_TRAINING_DEMS = os.path.isdir(os.path.join(SHARED, "training-dems"))


# ---------------------------------------------------------------- pixel sizes
def test_box_average_means_whole_blocks_and_invalidates_blocks_with_nodata():
    values = np.arange(30, dtype=np.float64).reshape(5, 6)   # 5 rows: the last one is not a whole block
    values[0, 0] = np.nan
    reduced = scenes.box_average(values, 2)
    assert reduced.shape == (2, 3)
    assert np.isnan(reduced[0, 0])
    assert reduced[0, 1] == pytest.approx(np.mean([2, 3, 8, 9]))
    assert reduced[1, 2] == pytest.approx(np.mean([16, 17, 22, 23]))
    assert np.array_equal(scenes.box_average(values, 1), values, equal_nan=True)


def test_pixel_factors_add_4x_only_where_200x200_pixels_remain():
    assert scenes.pixel_factors((120, 70)) == [1, 2]
    assert scenes.pixel_factors((643, 1197)) == [1, 2, 4]       # 160 × 299 after 4×: 47,840 px
    assert scenes.pixel_factors((799, 799)) == [1, 2]           # 199 × 199


def test_scenes_at_factors_scale_the_pixel_with_the_truth():
    truth = np.random.default_rng(0).normal(size=(40, 60))
    native, coarse = scenes.at_factors("heldout", "site", truth, 3.0, 4.0, "note", [1, 2])
    assert (native.dx, native.dy, coarse.dx, coarse.dy) == (3.0, 4.0, 6.0, 8.0)
    assert coarse.truth.shape == (20, 30) and coarse.label == "site ×2"
    assert coarse.truth.mean() == pytest.approx(truth.mean())


def test_render_shades_at_the_scene_pixel_and_masks_invalid_truth(tmp_path):
    dem = synthetic_smooth_dem(60, 80)
    dem[10:14, 20:24] = np.nan
    scene = scenes.Scene("heldout", "moon/test", 2, dem, 25.0, 25.0)
    path, image = scenes.render(scene, str(tmp_path), 315.0, 45.0)
    assert np.isnan(image[10:14, 20:24]).all() and np.isfinite(image[30:, 40:]).all()
    expected = gdal_hillshade_array(np.nan_to_num(dem), 315.0, 45.0, 25.0)
    assert np.array_equal(image[30:-1, 40:-1], expected[30:-1, 40:-1])   # gdaldem at the 25 m pixel


# ---------------------------------------------------------------- averages per set
def _case(dem, factor, r, failed=False):
    metrics = {"error": "boom"} if failed else {m: r for m in METRICS}
    return {"set": "validation", "dem": dem, "factor": factor, "pixel_m": 10.0 * factor,
            "results": {"model": metrics}}


def test_averages_weigh_every_dem_and_every_pixel_size_alike():
    from validation.validate import averages
    cases = [_case("a", 1, 0.2), _case("a", 1, 0.4), _case("a", 2, 0.9), _case("b", 1, 0.6),
             _case("b", 1, 0.0, failed=True)]
    table, failures = averages(cases, "model")
    assert table["a ×1 (10 m)"]["r"] == pytest.approx(0.3)
    assert table["a ×2 (20 m)"]["r"] == pytest.approx(0.9)
    assert table["all ×1"]["r"] == pytest.approx((0.3 + 0.6) / 2)
    assert table["all ×2"]["r"] == pytest.approx(0.9)
    assert table["overall"]["r"] == pytest.approx(((0.3 + 0.9) / 2 + 0.6) / 2)
    assert failures == {"b": 1}


def test_score_keeps_the_bar_on_the_validation_dems_and_averages_each_set():
    from validation.validate import score
    cases = [_case("a", 1, 0.95), dict(_case("site", 1, 0.1), set="heldout"), dict(_case("img", 1, 0.2), set="real")]
    for case in cases:
        case["results"]["pentland"] = {m: 0.5 if m != "relief_rmse_m" else 1e9 for m in METRICS}
    payload = {"cases": cases, "models": [{"name": "model"}]}
    score(payload)
    assert payload["averages"]["model"]["heldout"]["overall"]["r"] == pytest.approx(0.1)
    assert payload["averages"]["model"]["real"]["overall"]["r"] == pytest.approx(0.2)
    assert payload["models"][0]["verdict"] == "PASS"   # the poor held-out and real sets do not count


# ---------------------------------------------------------------- model output units
PIXEL_CARD = dict(onnx_fixtures.CARD, output_range="-1024,1024", training_gsd_m="1", height_units="pixel")


def test_pixel_unit_model_gives_metres_from_the_pixel_size(tmp_path):
    from dtm_estimator.engine import estimate_dtm, read_model_card
    from validation.validate import read_prediction
    model = onnx_fixtures.identity(str(tmp_path / "pixel.onnx"), card=PIXEL_CARD, scale=100.0)
    card = read_model_card(model)
    image = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (64, 1))
    path = scenes.write_geotiff(str(tmp_path / "image.tif"), image, 20.0, dtype=gdal.GDT_Byte)
    # one scale: the identity fixture is not scale-equivariant (test_multiscale.py)
    estimate_dtm(path, str(tmp_path / "dtm.tif"), units.engine_options(card, None, threads=1, scales="single"))
    pred = read_prediction(str(tmp_path / "dtm.tif"))
    network = 100.0 * (image / 127.5 - 1.0)
    np.testing.assert_allclose(pred, (network - network.min()) * 20.0, atol=1e-2)  # HEIGHTS=pixel_size: metres
    np.testing.assert_array_equal(units.to_metres(pred, card, 20.0, 20.0), pred)


def test_legacy_model_is_gsd_calibrated_and_unknown_units_are_refused(tmp_path):
    import dataclasses
    from dtm_estimator.engine import read_model_card
    card = read_model_card(onnx_fixtures.identity(str(tmp_path / "legacy.onnx")))
    assert units.height_units(card) == "legacy"
    options = units.engine_options(card, 90.0)
    assert (options.elevation_min, options.elevation_max, options.sun_azimuth) == (0.0, 39586.0, 90.0)
    assert units.to_metres(np.array([50.0]), card, 100.0, 100.0)[0] == pytest.approx(100.0)  # GSD 50 m
    feet = dataclasses.replace(card, extra={"height_units": "feet"})
    with pytest.raises(ValueError, match="feet"):
        units.to_metres(np.zeros(1), feet, 1.0, 1.0)


# ---------------------------------------------------------------- real image–DEM pairs
def test_estimate_sun_recovers_the_azimuth_of_a_gdaldem_render():
    dem = synthetic_smooth_dem(100, 140)
    image = gdal_hillshade_array(dem, 135.0, 40.0, 30.0)
    dem[40:45, 60:70] = np.nan   # a hole in the truth is tolerated
    azimuth, elevation, fit = real_pairs.estimate_sun(dem, image, 30.0)
    assert abs(azimuth - 135.0) <= 1.0
    assert fit > 0.99


def test_average_onto_grid_is_the_block_mean_on_the_same_extent(tmp_path):
    fine = np.random.default_rng(1).integers(0, 256, (40, 40)).astype(np.float64)
    image_path = scenes.write_geotiff(str(tmp_path / "ortho.tif"), fine, 0.5)
    dem_path = scenes.write_geotiff(str(tmp_path / "dem.tif"), np.zeros((10, 10)), 2.0)
    np.testing.assert_allclose(real_pairs.average_onto_grid(image_path, dem_path), scenes.box_average(fine, 4),
                               atol=1e-3)
    np.testing.assert_allclose(real_pairs.average_onto_grid(image_path, dem_path, 2), scenes.box_average(fine, 8),
                               atol=1e-3)
    other = scenes.write_geotiff(str(tmp_path / "other.tif"), np.zeros((12, 10)), 2.0)
    with pytest.raises(ValueError, match="extent"):
        real_pairs.average_onto_grid(image_path, other)


# ---------------------------------------------------------------- the command, end to end
@pytest.mark.skipif(not (HAS_VALIDATION_DEMS and HAS_TRAINING_DEMS), reason="../shared DEMs are not there")
def test_validate_runs_pixel_sizes_and_the_real_image_as_their_own_sets(tmp_path, identity_model):
    from validation.validate import main
    out = tmp_path / "results"
    main(["--models", identity_model, "--out", str(out), "--quick", "--factors", "1", "2", "--sets", "validation",
          "real", "--dems", "mars_hirise_crop", "mars_hirise_gale_crater_floor", "--no-figures", "--threads", "1"])
    payload = json.loads((out / "results.json").read_text())
    seen = {(c["set"], c["dem"], c["factor"]) for c in payload["cases"]}
    assert seen == {("validation", "mars_hirise_crop", 1), ("validation", "mars_hirise_crop", 2),
                    ("real", "mars/mars_hirise_gale_crater_floor", 1), ("real", "mars/mars_hirise_gale_crater_floor", 2)}
    real = [c for c in payload["cases"] if c["set"] == "real"]
    assert all(c["azimuth"] == real[0]["azimuth"] for c in real)            # the estimated sun, once
    averages = payload["averages"]["identity"]
    assert set(averages) == {"validation", "heldout", "real", "synthetic"} and not averages["heldout"]
    assert {"all ×1", "all ×2", "overall"} <= set(averages["validation"])
    summary = (out / "summary.md").read_text()
    assert "overall (real image)" in summary and "ESTIMATED from the truth" in summary


@pytest.mark.skipif(not HAS_VALIDATION_DEMS, reason="../shared/validation-dems is not there")
def test_demo_score_of_the_truth_itself(tmp_path):
    from validation import demo_score
    truth = os.path.join(SHARED, "validation-dems", "mars_mola_topography_sample_grid.tif")
    image = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sample_data",
                         "mars_mola_shaded_relief.tif")
    out, png = tmp_path / "demo.md", tmp_path / "demo.png"
    demo_score.main([truth, "--truth", truth, "--image", image, "--out", str(out), "--png", str(png),
                     "--sun-azimuth", "41"])
    result = demo_score.score(truth, truth, image, sun_azimuth=41.0)
    assert result["r"] == pytest.approx(1.0) and result["detail_r"] == pytest.approx(1.0)
    verdicts = {f["name"]: demo_score.verdict(f["truth"][2]) for f in result["features"]}
    assert all(verdicts[f[0]] == f[4] for f in demo_score.FEATURES)          # the local rule, on the truth
    assert demo_score.verdict(result["features"][0]["truth"][1]) == "high"   # Olympus Mons, global rule
    (r30, _), (r45, _) = result["pentland"][30.0], result["pentland"][45.0]
    assert r30 == pytest.approx(r45)                                          # elevation only scales Pentland
    assert "| DTM | 1.000 | 1.000 |" in out.read_text() and png.stat().st_size > 10000
    assert "sun az 41° el 30°" in out.read_text()
    with pytest.raises(ValueError, match="DTM_SUN_AZIMUTH"):  # the truth records no azimuth of its own
        demo_score.score(truth, truth, image)
    shifted = tmp_path / "shifted.tif"
    gdal.Translate(str(shifted), truth, outputBounds=[-179.0, 90.0, 181.0, -90.0])
    with pytest.raises(ValueError, match="not on the grid"):
        demo_score.score(str(shifted), truth, image, sun_azimuth=41.0)
