"""The shipped generators: their contract, and what any DTM of a shaded surface must get right."""
import os

import numpy as np
import onnx
import pytest

from rasters import byte_image, read, utm_wkt, write_raster
from validation.pentland import gdal_hillshade_array
from dtm_estimator.engine import (BUNDLED_MODELS, EstimateOptions, bundled_model_path, estimate_dtm, open_model,
                                  read_model_card)
from dtm_estimator.engine.flat_grey import hillshade_flat_grey, input_channels, model_input
from dtm_estimator.engine.tiling import axis_starts

MODELS = [bundled_model_path(name) for name in BUNDLED_MODELS]


def crater_dem(size=400, radius=60.0, depth=300.0):
    """A bowl crater with a raised rim on gently rolling plains (metres)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    r = np.hypot(x - size / 2, y - size / 2) / radius
    bowl = np.where(r < 1, depth * (r ** 2 - 1), 0.0)
    rim = 0.2 * depth * np.exp(-((r - 1) / 0.25) ** 2)
    plains = 40 * np.sin(x / 37.0) * np.cos(y / 53.0)
    return bowl + rim + plains + 1000.0


def hillshade(dem, path, azimuth, gsd=50.0, altitude=40.0):
    shade = gdal_hillshade_array(dem, azimuth, altitude, gsd)
    return write_raster(path, shade, geotransform=(0, gsd, 0, 0, 0, -gsd))


@pytest.mark.parametrize("path", MODELS, ids=BUNDLED_MODELS)
def test_model_honours_the_contract(path):
    assert os.path.isfile(path), f"shipped model missing: {path}"
    assert os.path.getsize(path) <= 10 * 1024 * 1024
    model = onnx.load(path)
    assert model.opset_import[0].version >= 17
    assert [i.name for i in model.graph.input] == ["image"] and [o.name for o in model.graph.output] == ["elevation"]
    card = read_model_card(path)
    assert card.input_size == 1024 and card.sun_azimuth_deg == 270.0
    # scale-free: heights in units of the pixel size, from a network that sees the whole window
    assert card.extra.get("height_units") == "pixel" and card.input_multiple >= 64
    assert card.extra.get("training") and card.extra.get("training_data")


@pytest.mark.parametrize("path", MODELS, ids=BUNDLED_MODELS)
@pytest.mark.parametrize("azimuth", [270.0, 90.0])
def test_a_crater_comes_out_as_a_hole(tmp_path, path, azimuth):
    """Lit from the canonical west, or from the east with SUN_AZIMUTH given: floor below rim."""
    image = hillshade(crater_dem(), str(tmp_path / "crater.tif"), azimuth)
    out = str(tmp_path / "dtm.tif")
    estimate_dtm(image, out, EstimateOptions(path, device="cpu", sun_azimuth=azimuth))
    dtm, *_ = read(out)
    y, x = np.mgrid[0:400, 0:400]
    r = np.hypot(x - 200, y - 200) / 60.0
    floor, rim = dtm[r < 0.4].mean(), dtm[(r > 0.95) & (r < 1.15)].mean()
    assert floor < rim, f"floor {floor:.1f} m not below rim {rim:.1f} m"


@pytest.mark.parametrize("path", MODELS, ids=BUNDLED_MODELS)
def test_tile_borders_leave_no_seam(tmp_path, path):
    """On a 1800² scene the gradient across tile borders is like the gradient elsewhere."""
    rng = np.random.default_rng(3)
    spectrum = np.fft.rfft2(rng.standard_normal((1800, 1800)))
    k = np.hypot(*np.meshgrid(np.fft.rfftfreq(1800), np.fft.fftfreq(1800)))
    k[0, 0] = 1
    dem = np.fft.irfft2(spectrum * k ** -1.1, s=(1800, 1800))
    dem *= 800 / np.ptp(dem)
    image = hillshade(dem, str(tmp_path / "scene.tif"), 270.0)
    out = str(tmp_path / "dtm.tif")
    estimate_dtm(image, out, EstimateOptions(path, device="cpu"))
    dtm, _, ds = read(out)
    assert ds.GetMetadataItem("DTM_SCALES") == "0.5,1,2"  # the default: each 2× window in pieces
    starts = axis_starts(1800, 1024, 128)
    borders = [starts[1] - 1, starts[0] + 1024 - 1]  # where the second tile begins, the first ends
    for axis, name in ((1, "column"), (0, "row")):
        steps = np.abs(np.diff(dtm, axis=axis)).mean(axis=1 - axis)  # mean |step| from line i to i+1
        typical = np.median(steps)
        for line in borders:
            assert steps[line] < 2.0 * typical, f"seam at {name} {line}: {steps[line]:.2f} vs {typical:.2f}"


@pytest.mark.parametrize("path", MODELS, ids=BUNDLED_MODELS)
def test_the_card_level_computes_what_the_unoptimised_graph_does(path):
    """A card's graph optimisation level is a speed choice only: the graph as exported, with no
    rewrites at all, gives the same elevations."""
    level = read_model_card(path).graph_optimization
    image = (byte_image(256, 256, seed=3) / 127.5 - 1.0).astype(np.float32)[np.newaxis, np.newaxis]
    image = model_input(read_model_card(path), image, 0.0)  # beside it, a flat grey level (mid-grey)
    chosen = open_model(path, "cpu")[0].run(image)
    unoptimised = open_model(path, "cpu", graph_optimization="disabled")[0].run(image)
    assert level in ("basic", "extended", "all")
    spread = float(np.ptp(unoptimised))
    assert spread > 0.1  # pixel units: a shaded image gives heights of several pixels
    np.testing.assert_allclose(chosen, unoptimised, rtol=0, atol=1e-5 * spread)


@pytest.mark.parametrize("path", MODELS, ids=BUNDLED_MODELS)
def test_a_sunward_tilt_is_read_against_the_flat_grey_level_and_none_is_drawn_without_it(tmp_path, path):
    """A cratered plain rising to the east (facing the sun in the west) by 0.1 m a metre, rendered as gdaldem
    does at 40°: given FLAT_GREY the DTM rises to the east; without it the plane is the texture's guess."""
    assert input_channels(read_model_card(path)) == 2  # both ship with the regional-tilt branch
    y, x = np.mgrid[0:400, 0:400].astype(float)
    dem = crater_dem() + 0.1 * 50.0 * x  # 50 m pixels: 5 m a pixel, a 0.1 slope
    image = write_raster(str(tmp_path / "tilted.tif"), gdal_hillshade_array(dem, 270.0, 40.0, 50.0),
                         geotransform=(500000, 50.0, 0, 4000000, 0, -50.0), wkt=utm_wkt())  # metres: pixel_size
    slopes = {}
    for flat in (hillshade_flat_grey(40.0), None):
        out = str(tmp_path / f"dtm_{flat}.tif")
        estimate_dtm(image, out, EstimateOptions(path, device="cpu", heights="pixel_size", flat_grey=flat,
                                                 scales="single"))
        dtm, *_ = read(out)
        design = np.c_[x.ravel(), y.ravel(), np.ones(x.size)]
        slopes[flat] = np.linalg.lstsq(design, dtm.ravel(), rcond=None)[0][0] / 50.0  # metres per metre, east
    assert slopes[hillshade_flat_grey(40.0)] > 0.03
    assert slopes[hillshade_flat_grey(40.0)] > slopes[None] + 0.03


@pytest.mark.parametrize("path", MODELS, ids=BUNDLED_MODELS)
def test_the_photoclinometric_refinement_brings_a_hillshade_closer_to_its_dem(tmp_path, path):
    """The crater on its plains lit from 315° at 45° (a diagonal sun, the models' weaker case), as gdaldem renders
    it: given FLAT_GREY and SUN_ELEVATION, the refined DTM is closer to the DEM than the model's own, in r and in
    detail r (engine/photoclinometry.py)."""
    from validation.metrics import detail_r, pearson
    dem = crater_dem()
    image = write_raster(str(tmp_path / "crater.tif"), gdal_hillshade_array(dem, 315.0, 45.0, 50.0),
                         geotransform=(500000, 50.0, 0, 4000000, 0, -50.0), wkt=utm_wkt())
    scores = {}
    for refine in (True, False):
        out = str(tmp_path / f"dtm_{refine}.tif")
        estimate_dtm(image, out, EstimateOptions(path, device="cpu", sun_azimuth=315.0, heights="pixel_size",
                                                 scales="single", flat_grey=hillshade_flat_grey(45.0),
                                                 sun_elevation=45.0, photoclinometry=refine))
        dtm, *_ = read(out)
        scores[refine] = pearson(dtm[2:-2, 2:-2], dem[2:-2, 2:-2]), detail_r(dtm[2:-2, 2:-2], dem[2:-2, 2:-2])
    assert scores[True][0] > scores[False][0], scores
    assert scores[True][1] > max(scores[False][1], 0.9), scores  # the detail the image shows, recovered
