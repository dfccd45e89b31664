"""The tile plan on Dask: a LocalCluster and a real `dask scheduler` with `dask worker` processes on
127.0.0.1 give the in-process DTM; a killed worker's windows are retried; cancelling stops the
workers; an unreachable scheduler is a clear error; nothing is ever left at OUTPUT half-written."""
import contextlib
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import onnx_fixtures
from rasters import byte_image, read, write_raster
from dtm_estimator.engine import Cancelled, EngineError, EstimateOptions, estimate_dtm

distributed = pytest.importorskip("distributed")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGINS = os.path.join(ROOT, "build", "plugins")
START_SECONDS = 60  # how long a scheduler or worker process may take to come up


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def assert_same_dtm(path, reference_path):
    """Equal within 1e-3 of the reference's range, nodata in the same places."""
    values, nodata, _ = read(path)
    reference, _, _ = read(reference_path)
    assert ((values == nodata) == (reference == nodata)).all()
    valid = reference != nodata
    span = reference[valid].max() - reference[valid].min()
    assert np.abs(values[valid] - reference[valid]).max() <= 1e-3 * span


@pytest.fixture(scope="module")
def mosaic(tmp_path_factory):
    """A 5 × 4 window raster with a nodata hole, a 25×25 box-blur model (slow enough to watch windows
    move) and its in-process DTM, the reference every cluster run must reproduce."""
    folder = tmp_path_factory.mktemp("mosaic")
    model = onnx_fixtures.box_blur(str(folder / "blur.onnx"), size=25)
    image = byte_image(3300, 4000, seed=7)
    image[1500:1800, 2000:2600] = 0
    source = write_raster(str(folder / "in.tif"), image, nodata=0)
    reference = str(folder / "reference.tif")
    report = estimate_dtm(source, reference, EstimateOptions(model))
    assert report.tiles == 20
    return {"source": source, "model": model, "reference": reference, "windows": report.tiles}


def start(arguments, **environment):
    """A dask command-line process (scheduler or worker) that only sees loopback."""
    env = dict(os.environ, **environment)
    return subprocess.Popen([sys.executable, "-m"] + arguments, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def start_worker(address):
    # workers import the engine as the client does: dtm_estimator.engine, from build/plugins
    return start(["distributed.cli.dask_worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                  "--host", "127.0.0.1"], PYTHONPATH=PLUGINS)


def start_scheduler(address, **environment):
    return start(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                  "--no-dashboard"], **environment)


@contextlib.contextmanager
def running_cluster(workers, scheduler_environment):
    """A `dask scheduler` and `workers` × `dask worker` processes on loopback, and a client watching them."""
    address = f"tcp://127.0.0.1:{free_port()}"
    processes = [start_scheduler(address, **scheduler_environment)]
    processes += [start_worker(address) for _ in range(workers)]
    monitor = None
    try:
        monitor = distributed.Client(address, timeout=START_SECONDS, set_as_default=False)
        monitor.wait_for_workers(workers, timeout=START_SECONDS)
        yield {"address": address, "monitor": monitor}
    finally:
        if monitor is not None:
            monitor.close()
        for process in processes:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def cluster():
    """Two workers; the scheduler unpickles tasks, so it imports the engine as the workers do."""
    with running_cluster(2, {"PYTHONPATH": PLUGINS}) as running:
        yield running


def test_a_scheduler_that_cannot_import_the_engine_is_a_clear_error(mosaic, tmp_path):
    with running_cluster(1, {}) as running:
        with pytest.raises(EngineError, match="scheduler cannot import this engine .'dtm_estimator.engine'"):
            run(mosaic, tmp_path, running["address"])
    assert os.listdir(tmp_path) == []


def run(mosaic, tmp_path, scheduler, **kwargs):
    output = str(tmp_path / "out.tif")
    estimate_dtm(mosaic["source"], output, EstimateOptions(mosaic["model"], scheduler=scheduler), **kwargs)
    return output


def test_a_local_cluster_gives_the_in_process_dtm(mosaic, tmp_path):
    logged = []
    output = run(mosaic, tmp_path, "local:2", log=logged.append)
    assert_same_dtm(output, mosaic["reference"])
    assert any(line.startswith("Dask: 2 worker(s)") for line in logged)
    assert sorted(os.listdir(tmp_path)) == ["out.tif"]


def test_a_scheduler_and_two_worker_processes_give_the_in_process_dtm(mosaic, cluster, tmp_path):
    progress = []
    output = run(mosaic, tmp_path, cluster["address"], progress=progress.append)
    assert_same_dtm(output, mosaic["reference"])
    assert len(progress) == mosaic["windows"] and progress[-1] == 100.0


def test_a_worker_killed_mid_run_has_its_windows_retried_elsewhere(mosaic, cluster, tmp_path):
    monitor = cluster["monitor"]
    before = set(monitor.scheduler_info()["workers"])
    doomed = start_worker(cluster["address"])
    monitor.wait_for_workers(len(before) + 1, timeout=START_SECONDS)
    doomed_address = (set(monitor.scheduler_info()["workers"]) - before).pop()
    held_when_killed = []

    def kill_at_first_window(percent):
        if not held_when_killed:  # windows the doomed worker was running or holding at that moment
            held = monitor.processing(workers=[doomed_address]).get(doomed_address, ()) + \
                tuple(monitor.has_what(workers=[doomed_address]).get(doomed_address, ()))
            held_when_killed.append(len(held))
            doomed.kill()
            doomed.wait()

    output = run(mosaic, tmp_path, cluster["address"], progress=kill_at_first_window)
    assert held_when_killed[0] > 0
    assert_same_dtm(output, mosaic["reference"])


def test_cancelling_stops_the_workers_and_writes_nothing(mosaic, cluster, tmp_path):
    monitor = cluster["monitor"]
    output = tmp_path / "out.tif"
    output.write_bytes(b"previous result")
    done = []
    computed_before = computed_windows(monitor)
    with pytest.raises(Cancelled):
        estimate_dtm(mosaic["source"], str(output), EstimateOptions(mosaic["model"], scheduler=cluster["address"]),
                     progress=done.append, is_canceled=lambda: len(done) >= 2)
    assert output.read_bytes() == b"previous result"
    assert sorted(os.listdir(tmp_path)) == ["out.tif"]
    # the windows not yet run when the run was cancelled never ran
    assert len(computed_windows(monitor) - computed_before) < mosaic["windows"]


def computed_windows(monitor):
    """Keys of every window task the scheduler has seen finish (its transition log)."""
    return monitor.run_on_scheduler(lambda dask_scheduler: {
        entry[0] for entry in dask_scheduler.transition_log
        if str(entry[0]).startswith("dtm-window-") and entry[2] == "memory"})


def test_an_unreachable_scheduler_is_a_clear_error(mosaic, tmp_path):
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(EngineError, match=f"Cannot reach the Dask scheduler at {address}"):
        run(mosaic, tmp_path, address)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("scheduler", ["local:0", "http://127.0.0.1:8786", "127.0.0.1:8786"])
def test_a_malformed_scheduler_is_refused_before_any_work(mosaic, tmp_path, scheduler):
    with pytest.raises(EngineError, match="neither a scheduler address"):
        run(mosaic, tmp_path, scheduler)
    assert os.listdir(tmp_path) == []


WITHOUT_DASK = """
import sys
class NoDask:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('dask', 'distributed'):
            raise ImportError(f'No module named {name!r} (hidden by the test)')
sys.meta_path.insert(0, NoDask())
sys.path.insert(0, sys.argv[1])
from dtm_estimator.engine import EngineError, EstimateOptions, estimate_dtm
source, model, output = sys.argv[2:5]
estimate_dtm(source, output, EstimateOptions(model))
assert not any(name.split('.')[0] in ('dask', 'distributed') for name in sys.modules)
try:
    estimate_dtm(source, output + '.2.tif', EstimateOptions(model, scheduler='local:2'))
except EngineError as exc:
    print(exc)
"""


def test_without_dask_everything_runs_in_process_and_a_scheduler_says_what_to_install(mosaic, tmp_path):
    output = str(tmp_path / "out.tif")
    result = subprocess.run([sys.executable, "-c", WITHOUT_DASK, PLUGINS, mosaic["source"], mosaic["model"], output],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "pip install 'dask[distributed]'" in result.stdout and "DASK_SCHEDULER 'local:2'" in result.stdout
    assert_same_dtm(output, mosaic["reference"])
    assert sorted(os.listdir(tmp_path)) == ["out.tif"]


def test_the_processing_algorithm_runs_a_shipped_model_on_the_cluster(processing, cluster, tmp_path):
    """DASK_SCHEDULER from Processing, with MRFED: the in-process DTM, progress reported per window."""
    from qgis.core import QgsProcessingFeedback
    from dtm_estimator.engine import bundled_model_path
    source = write_raster(str(tmp_path / "in.tif"), byte_image(1500, 2000, seed=9))
    feedback, progress = QgsProcessingFeedback(), []
    feedback.progressChanged.connect(progress.append)
    common = dict(INPUT=source, MODEL="mrfed", SUN_AZIMUTH=300)
    processing.run("dtmestimator:estimatedtm", dict(common, OUTPUT=str(tmp_path / "here.tif")))
    result = processing.run("dtmestimator:estimatedtm", dict(common, DASK_SCHEDULER=cluster["address"],
                                                             OUTPUT=str(tmp_path / "cluster.tif")), feedback=feedback)
    assert result["TILES"] == 6 and os.path.isfile(bundled_model_path("mrfed"))
    assert_same_dtm(str(tmp_path / "cluster.tif"), str(tmp_path / "here.tif"))
    assert len(progress) >= 6 and progress[-1] == 100.0


def test_cancelling_in_processing_reaches_the_cluster(processing, mosaic, cluster, tmp_path):
    from qgis.core import QgsProcessingException, QgsProcessingFeedback
    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda percent: feedback.cancel())
    output = str(tmp_path / "out.tif")
    with pytest.raises(QgsProcessingException):
        processing.run("dtmestimator:estimatedtm", dict(INPUT=mosaic["source"], MODEL_FILE=mosaic["model"],
                                                        DASK_SCHEDULER=cluster["address"], OUTPUT=output),
                       feedback=feedback)
    assert os.listdir(tmp_path) == []
    deadline = time.monotonic() + 30
    while any(cluster["monitor"].processing().values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(cluster["monitor"].processing().values())  # the workers dropped the rest


def test_workers_refine_windows_as_this_process_does(cluster, tmp_path):
    """With FLAT_GREY and SUN_ELEVATION the photoclinometric refinement runs inside each window's task: the
    cluster's DTM is this process's (a 2 × 2 window plan, a pixel-unit identity model)."""
    from rasters import utm_wkt
    from validation.pentland import gdal_hillshade_array
    y, x = np.mgrid[0:1700, 0:1700].astype(float)
    dem = 300 * np.sin(x / 90.0) * np.cos(y / 130.0) + 80 * np.sin((x + y) / 37.0)
    source = write_raster(str(tmp_path / "shade.tif"), gdal_hillshade_array(dem, 270.0, 40.0, 30.0),
                          geotransform=(500000, 30.0, 0, 4000000, 0, -30.0), wkt=utm_wkt())
    model = onnx_fixtures.identity(str(tmp_path / "pixel.onnx"), card=onnx_fixtures.PIXEL_CARD)
    options = dict(flat_grey=1 + 254 * np.sin(np.radians(40.0)), sun_elevation=40.0, heights="pixel_size",
                   scales="single")
    here, there = str(tmp_path / "here.tif"), str(tmp_path / "there.tif")
    assert estimate_dtm(source, here, EstimateOptions(model, **options)).tiles == 4
    estimate_dtm(source, there, EstimateOptions(model, scheduler=cluster["address"], **options))
    assert_same_dtm(there, here)
    assert read(there)[2].GetMetadataItem("DTM_PHOTOCLINOMETRY")
