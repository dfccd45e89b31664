"""The tile plan on a Dask cluster: windows go to workers as tasks, results come back in plan order.

Workers, and the scheduler (it unpickles every task), need this engine importable under the same
module name as here (plus GDAL, numpy, scipy and onnxruntime); workers also need the model file and the input at the same path or URL (shared storage): a task
carries only the paths, the options and a window's origin. Each worker process opens the model once
(runtime's session cache) and keeps the input open per thread; it reads only its windows.
A scheduler address runs pickled code on the workers: use loopback or TLS (see README).
"""
import dataclasses
import importlib.util
import logging
import multiprocessing
import os
import shutil
import sys
import threading
import uuid

from .bands import SingleBandSource
from .errors import EngineError
from .executors import import_distributed, infer_window, parse_scheduler
from .flat_grey import flat_level, sun_level
from .pipeline import TilePredictor
from .raster_io import open_input
from .runtime import open_model

CONNECT_SECONDS = 5    # an unreachable scheduler fails after this long
WORKERS_SECONDS = 30   # and a scheduler without any worker after this long
POLL_SECONDS = 0.2     # how often cancellation is checked while waiting for a window

_worker_local = threading.local()


@dataclasses.dataclass(frozen=True)
class TileHeights:
    """The per-window part of the client's heights plan (engine/heights.py), all a worker's predictor needs."""
    tile_gain: float
    tile_offset: float


@dataclasses.dataclass(frozen=True)
class WindowTask:
    """One window's inference as a pure function of its origin, in plain values a worker can unpickle."""
    input_path: str
    value_range: tuple
    options: object  # EstimateOptions
    heights: TileHeights
    tile_w: int
    tile_h: int
    photometry: object = None  # photoclinometry.Photoclinometry, or None

    def model(self):
        options = self.options
        model, _ = open_model(options.model_path, options.device, options.threads, options.graph_optimization)
        return model

    def source(self, input_range):
        """This thread's reader of the input: GDAL datasets are not shared between threads."""
        key = (self.input_path, _modified(self.input_path), self.options.band, input_range, self.value_range)
        cached = getattr(_worker_local, "source", None)
        if cached is None or cached[0] != key:  # one input per thread: a long-lived worker keeps no old ones
            reader = SingleBandSource(open_input(self.input_path), self.options.band, input_range, self.value_range)
            _worker_local.source = cached = key, reader
        return cached[1]

    def __call__(self, x0, y0):
        model = self.model()
        source = self.source(model.card.input_range)
        values, valid = source.read(x0, y0, self.tile_w, self.tile_h)
        source.release_cache()
        level = flat_level(model.card, source, self.options.flat_grey)  # the client resolved both
        return infer_window(TilePredictor(model, self.options, self.heights, level,
                                          sun_level(model.card, self.options.sun_elevation), self.photometry),
                            values, valid)

    def prepare(self):
        """Run on every worker before the first window: open the model and the input once, or say why not."""
        model = self.model()
        return model.provider, self.source(model.card.input_range).description


def _use_python_for_worker_processes():
    """multiprocessing starts workers with sys.executable, which inside QGIS is QGIS itself: point it at
    the Python beside it (QGIS's own interpreter) instead."""
    if os.path.basename(sys.executable).lower().startswith("python"):
        return
    for candidate in (os.path.join(sys.exec_prefix, "bin", f"python{sys.version_info[0]}.{sys.version_info[1]}"),
                      os.path.join(sys.exec_prefix, "python.exe"), shutil.which("python3")):
        if candidate and os.path.isfile(candidate):
            multiprocessing.set_executable(candidate)
            return
    raise EngineError(f"local:N needs a Python interpreter to start worker processes, and none was found "
                      f"beside {sys.executable}; start a cluster with `dask scheduler` and `dask worker` instead.")


def _modified(path):
    return os.path.getmtime(path) if os.path.exists(path) else None


class DaskExecutor:
    """Connects to a scheduler (or starts a LocalCluster of N processes on loopback) for one run."""

    def __init__(self, options, input_path, value_range, heights, log, photometry=None):
        self.distributed = import_distributed(options.scheduler)
        self.options, self.input_path, self.value_range, self.log = options, input_path, value_range, log
        self.heights, self.photometry = heights, photometry
        kind, target = parse_scheduler(options.scheduler)
        self.cluster = None
        if kind == "local":
            self.cluster = self._local_cluster(target)
            self.options = dataclasses.replace(options, threads=options.threads or max(1, os.cpu_count() // target))
        try:
            self.client = self._connect(self.cluster or target)
        except EngineError:
            if self.cluster is not None:
                self.cluster.close()
            raise

    def _local_cluster(self, workers):
        _use_python_for_worker_processes()
        try:
            return self.distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                 host="127.0.0.1", dashboard_address=None,
                                                 silence_logs=logging.ERROR)
        except Exception as exc:  # noqa: BLE001 - spawning processes fails in many ways
            raise EngineError(f"Could not start a local Dask cluster of {workers} workers: {exc}") from None

    def _connect(self, target):
        where = target if isinstance(target, str) else "the local cluster"
        try:
            client = self.distributed.Client(target, timeout=CONNECT_SECONDS, set_as_default=False)
        except Exception as exc:  # noqa: BLE001 - distributed raises OSError, TimeoutError, CommClosedError…
            raise EngineError(f"Cannot reach the Dask scheduler at {where} within {CONNECT_SECONDS} s ({exc}). "
                              "Is `dask scheduler` running there, and is the address right?") from None
        try:
            client.wait_for_workers(1, timeout=WORKERS_SECONDS)
        except Exception:  # noqa: BLE001 - a TimeoutError, whatever its module
            client.close()
            raise EngineError(f"The Dask scheduler at {where} has no worker (waited {WORKERS_SECONDS} s): start "
                              f"some with `dask worker {where}`.") from None
        return client

    def results(self, plan, tracker):
        task = WindowTask(self.input_path, self.value_range, self.options, self.heights, plan.tile_w, plan.tile_h,
                          self.photometry)
        self._prepare_workers(task)
        threads = sum(self.client.nthreads().values())
        ahead = max(4, 2 * threads)  # windows submitted ahead of the one being blended: bounds memory
        run = uuid.uuid4().hex[:8]
        futures = {}
        try:
            for index in range(len(plan)):
                for submit in range(index + len(futures), min(index + ahead, len(plan))):
                    futures[submit] = self.client.submit(task, *plan.origin(submit), key=f"dtm-window-{run}-{submit}")
                yield self._wait(futures.pop(index), index, tracker)
        finally:
            if futures:  # cancelled or failed: the workers drop what is still queued
                self.client.cancel(list(futures.values()))

    def _check_scheduler_imports_engine(self):
        """The scheduler unpickles every task, so it too needs this engine: say so before the first window."""
        engine = __name__.rsplit(".", 1)[0]
        try:
            found = self.client.run_on_scheduler(importlib.util.find_spec, engine) is not None
        except ImportError:  # its parent package is missing too
            found = False
        if not found:
            raise EngineError(f"The Dask scheduler cannot import this engine ('{engine}'), so it cannot accept "
                              "its windows: start `dask scheduler` (like every `dask worker`) with the folder "
                              f"holding '{engine.split('.')[0]}' on PYTHONPATH (see README).")

    def _prepare_workers(self, task):
        self._check_scheduler_imports_engine()
        try:
            answers = self.client.run(task.prepare)
        except EngineError:
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. a worker that cannot import the engine
            raise EngineError(f"Dask workers could not prepare the run: {type(exc).__name__}: {exc}. Every worker "
                              f"needs this engine importable as '{__name__.rsplit('.', 1)[0]}', and the model and "
                              "input at the same paths (see README).") from None
        providers = sorted({provider for provider, _ in answers.values()})
        self.log(f"Dask: {len(answers)} worker(s), {sum(self.client.nthreads().values())} thread(s), "
                 f"model on {', '.join(providers)}.")

    def _wait(self, future, index, tracker):
        """The window's result, cancellation checked while it runs. Not future.result(timeout): a timeout
        that cuts a transfer short leaves the future cancelled."""
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        while not done.wait(POLL_SECONDS):
            tracker.check()
        tracker.check()
        try:
            return future.result()
        except EngineError:
            raise
        except Exception as exc:  # noqa: BLE001 - a worker's exception or a lost worker
            raise EngineError(f"Window {index} failed on the Dask cluster: {type(exc).__name__}: {exc}") from None

    def close(self):
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
