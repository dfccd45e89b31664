"""Feathered blending of a tile plan in two passes over the output, with flat memory.

The blend is linear in the per-window offsets: Σ w_i (p_i + c_i) / Σ w_i = Σ w_i p_i / Σ w_i +
Σ w_i c_i / Σ w_i. Pass one blends the raw predictions strip by strip into a draft beside the output as
windows arrive, while the offsets are still unknown; pass two, once they are solved, reads the draft
back in bands of rows, adds the smooth offset field, which needs only the weights and the offsets, and
writes the output.
"""
import numpy as np

from .offsets import OverlapLedger
from .raster_io import STRIP_PIXELS  # pixels blended and written at once
from .tiling import feather_ramp


class RawBlendStrip:
    """One window row of blending buffers, as wide as the raster: weighted sums, weights, validity."""

    def __init__(self, plan, writer):
        self.plan, self.writer = plan, writer
        self.weights = plan.weights()
        self.total = np.zeros((plan.tile_h, plan.width), np.float32)
        self.weight_sum = np.zeros((plan.tile_h, plan.width), np.float32)
        self.valid = np.zeros((plan.tile_h, plan.width), bool)
        self.write_rows = max(1, STRIP_PIXELS // plan.width)

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
            self.writer.write_draft(y0 + first, blended, self.valid[rows] & covered)
        height = self.total.shape[0]
        for buffer in (self.total, self.weight_sum, self.valid):
            buffer[:height - done] = buffer[done:]
            buffer[height - done:] = 0


class OffsetField:
    """Σ w_i c_i / Σ w_i over the windows with a prediction, added to any band of rows.

    Weights are separable (a row ramp times a column ramp), so a window row contributes its row ramp
    times a column profile Σ_k c_k ramp_k(x), built once per window row. Where one window row alone
    covers a raster row (all but the overlaps) its ramp cancels out: the field there is the same
    profile ratio on every row, added by broadcasting.
    """

    def __init__(self, plan, offsets, has_prediction):
        self.plan = plan
        self.offsets = offsets.reshape(plan.rows, plan.columns).astype(np.float32)
        self.present = has_prediction.reshape(plan.rows, plan.columns)
        self.row_ramp = feather_ramp(plan.tile_h, plan.overlap)
        self.column_ramp = feather_ramp(plan.tile_w, plan.overlap)
        self._profiles = {}

    def _profile(self, row):
        """(Σ_k c_k ramp_k(x), Σ_k ramp_k(x), their ratio) across the raster for window row `row`."""
        if row not in self._profiles:
            numerator, denominator = np.zeros(self.plan.width, np.float32), np.zeros(self.plan.width, np.float32)
            for column, x0 in enumerate(self.plan.xs):
                if self.present[row, column]:
                    span = np.s_[x0:x0 + self.plan.tile_w]
                    numerator[span] += self.offsets[row, column] * self.column_ramp
                    denominator[span] += self.column_ramp
            ratio = np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)
            self._profiles[row] = numerator, denominator, ratio
        return self._profiles[row]

    def add_to(self, values, y0):
        """Add the field, in place, to `values`: the raster's rows from y0 on (float32, the DTM's type)."""
        y1, tile_h = y0 + values.shape[0], self.plan.tile_h
        covering = [(row, start) for row, start in enumerate(self.plan.ys) if start < y1 and start + tile_h > y0]
        edges = sorted({y0, y1} | {min(max(edge, y0), y1) for _, start in covering for edge in (start, start + tile_h)})
        for top, bottom in zip(edges, edges[1:]):
            rows = [(row, start) for row, start in covering if start <= top and bottom <= start + tile_h]
            part = values[top - y0:bottom - y0]
            if len(rows) == 1:
                part += self._profile(rows[0][0])[2]
                continue
            numerator, denominator = np.zeros(part.shape, np.float32), np.zeros(part.shape, np.float32)
            for row, start in rows:
                ramp = self.row_ramp[top - start:bottom - start, None]
                numerator += ramp * self._profile(row)[0]
                denominator += ramp * self._profile(row)[1]
            part += np.divide(numerator, denominator, out=numerator, where=denominator > 0)
        for row in [r for r in self._profiles if self.plan.ys[r] + tile_h <= y1]:
            del self._profiles[row]  # window rows above this band are done with


def add_offsets(plan, offsets, has_prediction, writer, tracker):
    """Pass two: the raw blend in the draft, plus the offset field, becomes the output, band by band of rows."""
    field = OffsetField(plan, offsets, has_prediction)

    def add(y0, raw, valid):
        field.add_to(raw, y0)
        return raw, valid
    writer.rewrite(add, tracker.check, draft=True)


def blend_plan(plan, results, writer, tracker):
    """Blend the executor's (elevation, valid) results, in plan order, seams closed by the offset solve."""
    ledger, strip = OverlapLedger(plan), RawBlendStrip(plan, writer)
    for index, (elevation, valid) in enumerate(results):
        tracker.step()
        ledger.record(index, elevation, valid)  # first: the strip weights the prediction in place
        strip.add(index, elevation, valid)
    del strip  # its buffers are written out: free them before the second pass allocates its own
    add_offsets(plan, ledger.solve(), ledger.has_prediction, writer, tracker)
