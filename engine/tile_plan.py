"""The tile plan: model-sized windows over a raster, the pairs of them that overlap, and the feathered
weights that blend them. One plan serves every executor, in-process or on a cluster."""
import numpy as np

from .tiling import axis_starts, feather_weights


def _axis_neighbours(starts, size):
    """For each window start along an axis, the indices of the windows that overlap it (itself included).

    Usually the one before and the one after; the last window, pulled back to end at the raster's edge,
    can also reach two before."""
    starts = np.asarray(starts)
    return [np.flatnonzero(np.abs(starts - start) < size) for start in starts]


def _axis_pairs(neighbours):
    """Ordered (a, b) index pairs of overlapping windows along one axis, a == b included."""
    first = np.concatenate([np.full(len(near), index) for index, near in enumerate(neighbours)])
    return first, np.concatenate(neighbours)


class TilePlan:
    """Windows in row-major order (index = row × columns + column), all tile_h × tile_w pixels."""

    def __init__(self, width, height, tile, overlap):
        self.width, self.height, self.overlap = width, height, overlap
        self.tile_h, self.tile_w = min(tile, height), min(tile, width)
        self.ys, self.xs = axis_starts(height, tile, overlap), axis_starts(width, tile, overlap)
        self.rows, self.columns = len(self.ys), len(self.xs)
        self.row_neighbours = _axis_neighbours(self.ys, self.tile_h)
        self.column_neighbours = _axis_neighbours(self.xs, self.tile_w)
        self.pair_keys = self._pair_keys()

    def __len__(self):
        return self.rows * self.columns

    def origin(self, index):
        """(x0, y0) of a window's top-left pixel."""
        row, column = divmod(index, self.columns)
        return self.xs[column], self.ys[row]

    def weights(self):
        """Blend weights of one window: a linear ramp over the overlap from each edge, never zero."""
        return feather_weights(self.tile_h, self.tile_w, self.overlap)

    def _pair_keys(self):
        """Every overlapping pair (i < j) once, as the sorted key i × windows + j."""
        row_a, row_b = _axis_pairs(self.row_neighbours)
        column_a, column_b = _axis_pairs(self.column_neighbours)
        first = (row_a[:, None] * self.columns + column_a[None, :]).ravel()
        second = (row_b[:, None] * self.columns + column_b[None, :]).ravel()
        keep = first < second
        return np.sort(first[keep].astype(np.int64) * len(self) + second[keep])

    def pairs(self):
        """(first, second) window indices of every overlapping pair, in pair_keys order."""
        return np.divmod(self.pair_keys, len(self))

    def neighbours(self, index):
        """Indices of the windows overlapping window `index`, itself excluded."""
        row, column = divmod(index, self.columns)
        near = (self.row_neighbours[row][:, None] * self.columns + self.column_neighbours[column][None, :]).ravel()
        return near[near != index]

    def overlap_in(self, index, other):
        """The part of window `index` that window `other` also covers, in `index`'s own pixel coordinates."""
        (x0, y0), (x1, y1) = self.origin(index), self.origin(other)
        top, left = max(y0, y1) - y0, max(x0, x1) - x0
        bottom, right = min(y0, y1) + self.tile_h - y0, min(x0, x1) + self.tile_w - x0
        return np.s_[top:bottom, left:right]
