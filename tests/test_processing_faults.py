"""Bad input and faults through real Processing: a correct DTM or one clear QgsProcessingException,
never a crash, a hang, a partial file presented as a result, or a damaged input (issue: bad input)."""
import hashlib
import os
import time

import numpy as np
import pytest
from osgeo import gdal

import onnx_fixtures
from rasters import byte_image, mosaic_vrt, read, smooth_image, write_raster
from test_faults import MOON_WKT, custom_mars_eqc_wkt
from test_processing import ALG, assert_same_grid

GPU_WARNING = "GPU not used"


def recording_feedback(cancel_after=None):
    """A real QgsProcessingFeedback that records warnings and progress, and can cancel itself."""
    from qgis.core import QgsProcessingFeedback

    class Recorder(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.warnings, self.progress_values = [], []
            self.progressChanged.connect(self._on_progress)

        def pushWarning(self, text):  # noqa: N802 - QGIS API name
            self.warnings.append(text)
            super().pushWarning(text)

        def _on_progress(self, value):
            self.progress_values.append(value)
            if cancel_after is not None and len(self.progress_values) >= cancel_after:
                self.cancel()
    return Recorder()


def run(processing, feedback=None, **parameters):
    return processing.run(ALG, parameters, feedback=feedback or recording_feedback())


def refused(processing, match, **parameters):
    from qgis.core import QgsProcessingException
    with pytest.raises(QgsProcessingException, match=match):
        run(processing, **parameters)
    assert not os.path.exists(parameters["OUTPUT"]), "a failed run left a file at OUTPUT"


def test_no_crs_nor_geotransform_runs_in_pixel_space_with_a_warning(processing, identity_model, tmp_path):
    src = write_raster(str(tmp_path / "plain.tif"), byte_image(50, 70), geotransform=None, wkt="")
    feedback = recording_feedback()
    out = run(processing, feedback, INPUT=src, MODEL_FILE=identity_model, OUTPUT=str(tmp_path / "d.tif"))["OUTPUT"]
    ds = gdal.Open(out)
    assert (ds.RasterXSize, ds.RasterYSize) == (70, 50) and ds.GetProjection() == ""
    assert ds.GetGeoTransform(can_return_null=True) is None
    assert any("pixel space" in w for w in feedback.warnings)


@pytest.mark.parametrize("name", ["moon", "custom"])
def test_planetary_and_custom_crs(processing, identity_model, tmp_path, name):
    wkt = MOON_WKT if name == "moon" else custom_mars_eqc_wkt()
    src = write_raster(str(tmp_path / "in.tif"), byte_image(40, 60), wkt=wkt)
    out = run(processing, INPUT=src, MODEL_FILE=identity_model, OUTPUT=str(tmp_path / "d.tif"))["OUTPUT"]
    assert_same_grid(out, src)


@pytest.mark.parametrize("shape", [(3, 3), (15, 15), (10, 5000)])
def test_tiny_and_thin_rasters(processing, identity_model, tmp_path, shape):
    image = byte_image(*shape)
    image[0, 0], image[-1, -1] = 5, 250
    src = write_raster(str(tmp_path / "in.tif"), image)
    out = run(processing, INPUT=src, MODEL_FILE=identity_model, OUTPUT=str(tmp_path / "d.tif"))["OUTPUT"]
    assert_same_grid(out, src)
    np.testing.assert_allclose(read(out)[0], image / 255.0 * 39586.0, atol=0.05)


@pytest.mark.parametrize("case, data, nodata, match", [
    ("one pixel", np.array([[7]], np.uint8), None, "constant"),
    ("constant", np.full((40, 40), 90, np.uint8), None, "constant"),
    ("all nodata", np.zeros((40, 40), np.uint8), 0, "no valid pixel"),
])
def test_nothing_to_infer_from_is_a_clear_error(processing, identity_model, tmp_path, case, data, nodata, match):
    src = write_raster(str(tmp_path / "in.tif"), data, nodata=nodata)
    refused(processing, match, INPUT=src, MODEL_FILE=identity_model, OUTPUT=str(tmp_path / "d.tif"))


def test_nan_inf_and_nodata_holes_become_nodata_exactly(processing, identity_model, tmp_path):
    image = smooth_image(80, 90).astype(np.float32)
    image[10:14, 20:30] = -9999
    image[40, 40], image[41, 41], image[42, 42] = np.nan, np.inf, -np.inf
    src = write_raster(str(tmp_path / "in.tif"), image, dtype=gdal.GDT_Float32, nodata=-9999)
    out = run(processing, INPUT=src, MODEL_FILE=identity_model, OUTPUT=str(tmp_path / "d.tif"))["OUTPUT"]
    values, nodata, _ = read(out)
    invalid = (image == -9999) | ~np.isfinite(image)
    assert ((values == nodata) == invalid).all()


@pytest.mark.parametrize("dtype", [gdal.GDT_Byte, gdal.GDT_UInt16, gdal.GDT_Int16, gdal.GDT_UInt32,
                                   gdal.GDT_Float32, gdal.GDT_Float64])
def test_data_types(processing, identity_model, tmp_path, dtype):
    image = smooth_image(60, 70, low=3, high=250)
    src = write_raster(str(tmp_path / "in.tif"), image, dtype=dtype)
    out = run(processing, INPUT=src, MODEL_FILE=identity_model, OUTPUT=str(tmp_path / "d.tif"))["OUTPUT"]
    assert_same_grid(out, src)
    assert np.corrcoef(read(out)[0].ravel(), image.ravel())[0, 1] > 0.999


def test_complex_data_is_refused(processing, identity_model, tmp_path):
    src = write_raster(str(tmp_path / "in.tif"), smooth_image(30, 30) * (1 + 1j), dtype=gdal.GDT_CFloat32)
    refused(processing, "Complex data", INPUT=src, MODEL_FILE=identity_model, OUTPUT=str(tmp_path / "d.tif"))


def test_band_counts(processing, identity_model, tmp_path):
    two = write_raster(str(tmp_path / "two.tif"), np.stack([byte_image(30, 30), byte_image(30, 30, 1)]))
    refused(processing, "set BAND", INPUT=two, MODEL_FILE=identity_model, OUTPUT=str(tmp_path / "a.tif"))
    out = run(processing, INPUT=two, BAND=2, MODEL_FILE=identity_model, OUTPUT=str(tmp_path / "b.tif"))["OUTPUT"]
    np.testing.assert_allclose(read(out)[0], byte_image(30, 30, 1) / 255.0 * 39586.0, atol=0.05)


@pytest.fixture
def bundled_fingerprints():
    from dtm_estimator.engine import BUNDLED_MODELS, bundled_model_path
    paths = [bundled_model_path(n) for n in BUNDLED_MODELS if os.path.exists(bundled_model_path(n))]
    before = {p: hashlib.sha256(open(p, "rb").read()).hexdigest() for p in paths}
    yield
    assert before == {p: hashlib.sha256(open(p, "rb").read()).hexdigest() for p in paths}


@pytest.mark.parametrize("kind", ["missing", "truncated", "corrupt", "wrong rank", "no card"])
def test_bad_model_files_are_named(processing, identity_model, tmp_path, bundled_fingerprints, kind):
    model = tmp_path / f"bad_{kind.replace(' ', '_')}.onnx"
    if kind == "truncated":
        model.write_bytes(open(identity_model, "rb").read()[:60])
    elif kind == "corrupt":
        model.write_bytes(os.urandom(2048))
    elif kind == "wrong rank":
        onnx_fixtures.wrong_rank(str(model))
    elif kind == "no card":
        onnx_fixtures.without_card(str(model))
    src = write_raster(str(tmp_path / "in.tif"), byte_image(30, 30))
    refused(processing, model.name if kind != "missing" else "bad_missing", INPUT=src, MODEL_FILE=str(model),
            OUTPUT=str(tmp_path / "d.tif"))


def test_auto_device_falls_back_to_cpu_with_one_warning(processing, identity_model, tmp_path):
    """One warning in every run's log, the first (which opens the session) and those after it."""
    from dtm_estimator.engine import working_providers
    src = write_raster(str(tmp_path / "in.tif"), byte_image(30, 30))
    for attempt in range(2):
        feedback = recording_feedback()
        result = run(processing, feedback, INPUT=src, MODEL_FILE=identity_model, DEVICE="auto",
                     OUTPUT=str(tmp_path / f"d{attempt}.tif"))
        if "CUDAExecutionProvider" in working_providers(identity_model):
            assert result["PROVIDER"] == "CUDAExecutionProvider"
        else:
            assert result["PROVIDER"] == "CPUExecutionProvider"
            assert sum(GPU_WARNING in w for w in feedback.warnings) == 1


def test_output_equal_to_input_is_refused_and_input_untouched(processing, identity_model, tmp_path):
    src = write_raster(str(tmp_path / "in.tif"), byte_image(30, 30))
    digest = hashlib.sha256(open(src, "rb").read()).hexdigest()
    from qgis.core import QgsProcessingException
    with pytest.raises(QgsProcessingException, match="input file itself"):
        run(processing, INPUT=src, MODEL_FILE=identity_model, OUTPUT=src)
    assert hashlib.sha256(open(src, "rb").read()).hexdigest() == digest


def test_unwritable_folder(processing, identity_model, tmp_path):
    src = write_raster(str(tmp_path / "in.tif"), byte_image(30, 30))
    refused(processing, "(Cannot create the output in|not writable).*sys", INPUT=src, MODEL_FILE=identity_model,
            OUTPUT="/sys/dtm.tif")


def test_existing_output_survives_a_failed_and_a_cancelled_run(processing, identity_model, tmp_path):
    out = tmp_path / "d.tif"
    out.write_bytes(b"yesterday's DTM")
    constant = write_raster(str(tmp_path / "flat.tif"), np.full((30, 30), 4, np.uint8))
    from qgis.core import QgsProcessingException
    with pytest.raises(QgsProcessingException):
        run(processing, INPUT=constant, MODEL_FILE=identity_model, OUTPUT=str(out))
    big = write_raster(str(tmp_path / "big.tif"), byte_image(1600, 1600))
    with pytest.raises(QgsProcessingException):
        run(processing, recording_feedback(cancel_after=1), INPUT=big, MODEL_FILE=identity_model, OUTPUT=str(out))
    assert out.read_bytes() == b"yesterday's DTM"
    assert sorted(os.listdir(tmp_path)) == ["big.tif", "d.tif", "flat.tif"]


def test_cancellation_stops_within_one_tile(processing, identity_model, tmp_path):
    src = write_raster(str(tmp_path / "in.tif"), byte_image(2200, 2200))
    feedback = recording_feedback(cancel_after=2)
    from qgis.core import QgsProcessingException
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        run(processing, feedback, INPUT=src, MODEL_FILE=identity_model, OUTPUT=str(tmp_path / "d.tif"))
    assert len([v for v in feedback.progress_values if 0 < v < 100]) == 2  # of 9 tiles
    assert os.listdir(tmp_path) == ["in.tif"]


def test_two_runs_at_once_as_qgis_tasks_match_sequential_runs(processing, blur_model, tmp_path):
    from qgis.core import QgsApplication, QgsProcessingAlgRunnerTask, QgsProcessingContext, QgsProcessingFeedback
    from qgis.PyQt.QtCore import QCoreApplication
    sources = [write_raster(str(tmp_path / f"in{i}.tif"), byte_image(1100, 1200, seed=i)) for i in range(2)]
    for i, src in enumerate(sources):
        run(processing, INPUT=src, MODEL_FILE=blur_model, OUTPUT=str(tmp_path / f"seq{i}.tif"))
    algorithm = QgsApplication.processingRegistry().algorithmById(ALG)
    keep, outcomes = [], {}
    for i, src in enumerate(sources):
        context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
        task = QgsProcessingAlgRunnerTask(algorithm, {"INPUT": src, "MODEL_FILE": blur_model,
                                                      "OUTPUT": str(tmp_path / f"par{i}.tif")}, context, feedback)
        task.executed.connect(lambda ok, results, i=i: outcomes.__setitem__(i, ok))
        keep.append((context, feedback, task))
        QgsApplication.taskManager().addTask(task)
    deadline = time.time() + 300
    while len(outcomes) < 2 and time.time() < deadline:
        QCoreApplication.processEvents()
        time.sleep(0.02)
    assert outcomes == {0: True, 1: True}  # (the task manager deletes finished tasks)
    for i in range(2):
        np.testing.assert_array_equal(read(str(tmp_path / f"seq{i}.tif"))[0], read(str(tmp_path / f"par{i}.tif"))[0])


def test_huge_virtual_raster_reports_progress_and_cancels_cleanly(processing, identity_model, tmp_path):
    vrt = mosaic_vrt(str(tmp_path), byte_image(1000, 1000), 40, wkt=MOON_WKT)
    feedback = recording_feedback(cancel_after=4)
    from qgis.core import QgsProcessingException
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        run(processing, feedback, INPUT=vrt, MODEL_FILE=identity_model, OUTPUT=str(tmp_path / "d.tif"))
    assert 0 < max(feedback.progress_values) < 1.0  # about 45 × 45 tiles
    assert sorted(os.listdir(tmp_path)) == ["huge.vrt", "tile.tif"]
