"""Feathered blending of a tile plan in two passes over the output, with flat memory.

The blend is linear in the per-window offsets: Σ w_i (p_i + c_i) / Σ w_i = Σ w_i p_i / Σ w_i +
Σ w_i c_i / Σ w_i. Pass one blends the raw predictions strip by strip into the (temporary) output as
windows arrive, while the offsets are still unknown; pass two, once they are solved, reads the output
back in bands of rows and adds the smooth offset field, which needs only the weights and the offsets.
"""
import numpy as np

from .offsets import OverlapLedger
from .raster_io import NODATA
from .tiling import feather_ramp

WRITE_PIXELS = 2 ** 21  # pixels blended and written at once (whole rows, at least one)


class RawBlendStrip:
    """One window row of blending buffers, as wide as the raster: weighted sums, weights, validity."""

    def __init__(self, plan, writer):
        self.plan, self.writer = plan, writer
        self.weights = plan.weights()
        self.total = np.zeros((plan.tile_h, plan.width), np.float32)
        self.weight_sum = np.zeros((plan.tile_h, plan.width), np.float32)
        self.valid = np.zeros((plan.tile_h, plan.width), bool)
        self.write_rows = max(1, WRITE_PIXELS // plan.width)

    def add(self, index, elevation, valid):
        """Blend in one window (valid None: all valid); windows must come in plan order."""
        x0, y0 = self.plan.origin(index)
        window = np.s_[:, x0:x0 + self.plan.tile_w]
        if elevation is not None:
            self.valid[window] |= True if valid is None else valid
            elevation *= self.weights  # in place: the prediction is not needed unweighted any more
            self.total[window] += elevation
            self.weight_sum[window] += self.weights
        row, column = divmod(index, self.plan.columns)
        if column == self.plan.columns - 1:  # the row is complete down to the next row's first line
            next_y0 = self.plan.ys[row + 1] if row + 1 < self.plan.rows else self.plan.height
            self._write_and_shift(y0, next_y0 - y0)

    def _write_and_shift(self, y0, done):
        """Write the first `done` rows (no later window reaches them) and move the rest up."""
        for first in range(0, done, self.write_rows):  # in bands of rows, so temporaries stay small
            rows = np.s_[first:min(first + self.write_rows, done)]
            covered = self.weight_sum[rows] > 0
            blended = np.divide(self.total[rows], self.weight_sum[rows], out=np.zeros_like(self.total[rows]),
                                where=covered)
            self.writer.write(y0 + first, blended, self.valid[rows] & covered, statistics=False)
        height = self.total.shape[0]
        for buffer in (self.total, self.weight_sum, self.valid):
            buffer[:height - done] = buffer[done:]
            buffer[height - done:] = 0


class OffsetField:
    """Σ w_i c_i / Σ w_i over the windows with a prediction, for any band of rows.

    Weights are separable (a row ramp times a column ramp), so each window row's contribution is its
    row ramp times a column profile Σ_k c_k ramp_k(x); profiles are built once per window row.
    """

    def __init__(self, plan, offsets, has_prediction):
        self.plan = plan
        self.offsets = offsets.reshape(plan.rows, plan.columns)
        self.present = has_prediction.reshape(plan.rows, plan.columns).astype(np.float64)
        self.row_ramp = feather_ramp(plan.tile_h, plan.overlap)
        self.column_ramp = feather_ramp(plan.tile_w, plan.overlap)
        self._profiles = {}

    def _column_profiles(self, row):
        """(Σ_k c_k ramp_k(x), Σ_k ramp_k(x)) across the raster for window row `row`."""
        if row not in self._profiles:
            numerator, denominator = np.zeros(self.plan.width, np.float32), np.zeros(self.plan.width, np.float32)
            for column, x0 in enumerate(self.plan.xs):
                if self.present[row, column]:
                    span = np.s_[x0:x0 + self.plan.tile_w]
                    numerator[span] += np.float32(self.offsets[row, column]) * self.column_ramp
                    denominator[span] += self.column_ramp
            self._profiles[row] = numerator, denominator
        return self._profiles[row]

    def rows(self, y0, y1):
        """The offset field on rows y0..y1 (float32); 0 where no window with a prediction reaches."""
        # float32, like the DTM: the field is smooth and its values are the offsets' size
        numerator = np.zeros((y1 - y0, self.plan.width), np.float32)
        denominator = np.zeros((y1 - y0, self.plan.width), np.float32)
        for row, start in enumerate(self.plan.ys):
            top, bottom = max(y0, start), min(y1, start + self.plan.tile_h)
            if top >= bottom:
                continue
            ramp = self.row_ramp[top - start:bottom - start, None]
            column_numerator, column_denominator = self._column_profiles(row)
            numerator[top - y0:bottom - y0] += ramp * column_numerator
            denominator[top - y0:bottom - y0] += ramp * column_denominator
        for row in [r for r in self._profiles if self.plan.ys[r] + self.plan.tile_h <= y1]:
            del self._profiles[row]  # window rows above this band are done with
        return np.divide(numerator, denominator, out=numerator, where=denominator > 0)


def add_offsets(plan, offsets, has_prediction, writer, tracker):
    """Pass two: add the offset field to the raw blend already in the output, band by band of rows."""
    field = OffsetField(plan, offsets, has_prediction)
    band_rows = max(1, WRITE_PIXELS // plan.width)
    for y0 in range(0, plan.height, band_rows):
        tracker.check()
        y1 = min(y0 + band_rows, plan.height)
        raw = writer.read(y0, y1 - y0)
        valid = raw != NODATA
        raw += field.rows(y0, y1)
        writer.write(y0, raw, valid)


def blend_plan(plan, results, writer, tracker):
    """Blend the executor's (elevation, valid) results, in plan order, seams closed by the offset solve."""
    ledger, strip = OverlapLedger(plan), RawBlendStrip(plan, writer)
    for index, (elevation, valid) in enumerate(results):
        tracker.step()
        ledger.record(index, elevation, valid)  # first: the strip weights the prediction in place
        strip.add(index, elevation, valid)
    del strip  # its buffers are written out: free them before the second pass allocates its own
    add_offsets(plan, ledger.solve(), ledger.has_prediction, writer, tracker)
