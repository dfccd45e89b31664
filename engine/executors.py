"""Who infers a tile plan's windows: this process (the default) or a Dask cluster.

An executor's results(plan, tracker) yields (elevation, valid) for every window in plan order:
elevation None where the window holds no valid pixel, valid None where every pixel is valid.
"""
import re
from concurrent.futures import ThreadPoolExecutor

from .errors import EngineError
from .tiling import fill_invalid

DASK_INSTALL = "python3 -m pip install 'dask[distributed]'"
_LOCAL = re.compile(r"local:(\d+)$")
_ADDRESS = re.compile(r"(tcp|tls)://\S+$")


def parse_scheduler(text):
    """('local', workers) for 'local:N', ('address', text) for 'tcp://…' or 'tls://…'."""
    local = _LOCAL.match(text)
    if local and int(local.group(1)) >= 1:
        return "local", int(local.group(1))
    if _ADDRESS.match(text):
        return "address", text
    raise EngineError(f"DASK_SCHEDULER '{text}' is neither a scheduler address (tcp://host:port or "
                      "tls://host:port) nor local:N (a cluster of N worker processes on this machine).")


def import_distributed(scheduler):
    """dask.distributed, or an error that says how to install it (Dask is optional)."""
    try:
        import distributed
    except ImportError as exc:
        raise EngineError(f"DASK_SCHEDULER '{scheduler}' needs Dask, which is not installed here ({exc}). "
                          f"Install it with `{DASK_INSTALL}` in the Python that runs the engine (and on "
                          "every worker), or leave DASK_SCHEDULER empty to run in this process.") from None
    return distributed


def check_scheduler(scheduler):
    """Fail before any work if a scheduler is asked for but malformed or Dask is missing."""
    if scheduler:
        parse_scheduler(scheduler)
        import_distributed(scheduler)


def infer_window(predictor, values, valid):
    """The pure function every executor applies: (elevation or None, valid or None) for one window."""
    if not valid.any():
        return None, None
    return predictor.predict(fill_invalid(values, valid), valid), None if valid.all() else valid


class InProcessExecutor:
    """Windows inferred here; the network works one window ahead in a second thread.

    While it infers window k + 1, the caller blends window k and writes finished rows (onnxruntime,
    numpy and GDAL release the GIL). Only the caller's thread touches GDAL.
    """

    def __init__(self, source, predictor):
        self.source, self.predictor = source, predictor

    def results(self, plan, tracker):
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dtm-inference") as inference:
            def start(index):
                tracker.check()
                x0, y0 = plan.origin(index)
                if index and x0 == plan.xs[0]:  # a new window row: the rows above are no longer read
                    self.source.release_cache()
                values, valid = self.source.read(x0, y0, plan.tile_w, plan.tile_h)
                return inference.submit(infer_window, self.predictor, values, valid)

            ahead = start(0)
            for index in range(len(plan)):
                result = ahead.result()
                if index + 1 < len(plan):
                    ahead = start(index + 1)
                yield result

    def close(self):
        pass


def open_executor(options, input_path, source, predictor, log):
    """The executor options.scheduler names: none → this process; 'local:N' or an address → Dask."""
    if not options.scheduler:
        return InProcessExecutor(source, predictor)
    from .dask_executor import DaskExecutor, TileHeights  # optional dependency: imported only when asked for
    return DaskExecutor(options, input_path, (source.low, source.high),
                        TileHeights(predictor.gain, predictor.offset), log, predictor.photometry)
