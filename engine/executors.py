"""Who infers a tile plan's windows.

An executor's results(plan, tracker) yields (elevation, valid) for every window in plan order:
elevation None where the window holds no valid pixel, valid None where every pixel is valid.
"""
from concurrent.futures import ThreadPoolExecutor

from .tiling import fill_invalid


def infer_window(predictor, values, valid):
    """The pure function every executor applies: (elevation or None, valid or None) for one window."""
    if not valid.any():
        return None, None
    return predictor.predict(fill_invalid(values, valid)), None if valid.all() else valid


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

