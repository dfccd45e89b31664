"""Seams: one constant offset per window, solved by least squares over every overlap at once.

A model predicts relief up to an unknown constant per window (JMARS: above the window's lowest point;
newer models: an arbitrary offset). Every window is inferred on its own, so adjacent windows disagree
by a constant; the offsets that make them agree best on average, over all overlaps together, are a
sparse linear least-squares problem (a graph Laplacian), anchored at the first window of each
connected group of windows. Only per-overlap sums are kept, never the predictions.
"""
import numpy as np
from scipy import sparse
from scipy.sparse import csgraph
from scipy.sparse.linalg import spsolve


class OverlapLedger:
    """For every overlapping pair of windows: each side's sum over the valid pixels they share, and their count.

    Both windows see the same input pixels, so the valid pixels of the shared part are the same from
    either side; their mean difference is (first_sum − second_sum) / count.
    """

    def __init__(self, plan):
        self.plan = plan
        pairs = len(plan.pair_keys)
        self.first_sum, self.second_sum, self.count = np.zeros(pairs), np.zeros(pairs), np.zeros(pairs)
        self.has_prediction = np.zeros(len(plan), bool)

    def record(self, index, elevation, valid):
        """Add one window's raw prediction (valid None: every pixel valid; elevation None: nothing to add)."""
        if elevation is None:
            return
        self.has_prediction[index] = True
        windows = len(self.plan)
        for other in self.plan.neighbours(index):
            part = self.plan.overlap_in(index, other)
            if valid is None:
                value_sum, pixels = elevation[part].sum(dtype=np.float64), elevation[part].size
            else:
                mask = valid[part]
                value_sum, pixels = elevation[part].sum(dtype=np.float64, where=mask), np.count_nonzero(mask)
            low, high = min(index, other), max(index, other)
            pair = np.searchsorted(self.plan.pair_keys, low * windows + high)
            (self.first_sum if index == low else self.second_sum)[pair] = value_sum
            self.count[pair] = pixels

    def solve(self):
        """Per-window offsets (float64) that, added to each window's prediction, best close every seam."""
        first, second = self.plan.pairs()
        usable = (self.count > 0) & self.has_prediction[first] & self.has_prediction[second]
        difference = (self.first_sum[usable] - self.second_sum[usable]) / self.count[usable]
        return solve_offsets(len(self.plan), first[usable], second[usable], difference, self.count[usable])


def solve_offsets(windows, first, second, difference, weight):
    """Offsets c minimising Σ weight · (c[first] − c[second] + difference)², c = 0 at each group's anchor.

    difference: mean of (first's prediction − second's) over the pair's shared valid pixels; weight:
    how many pixels that mean is over. Windows joined by no pair form groups of their own. The normal
    equations are the weighted graph Laplacian; fixing one window per connected group makes them
    positive definite, solved directly (sparse LU).
    """
    offsets = np.zeros(windows)
    if len(first) == 0:
        return offsets
    adjacency = sparse.coo_matrix((weight, (first, second)), shape=(windows, windows)).tocsr()
    adjacency = adjacency + adjacency.T
    _, group = csgraph.connected_components(adjacency, directed=False)
    anchors = np.unique(group, return_index=True)[1]  # the lowest window index of each group
    free = np.ones(windows, bool)
    free[anchors] = False
    laplacian = csgraph.laplacian(adjacency).tocsc()
    # ∂/∂c_k of the sum: Σ over pairs where k is first of w (c_k − c_j + d) − Σ where k is second of w (c_i − c_k + d)
    right = np.bincount(second, weight * difference, windows) - np.bincount(first, weight * difference, windows)
    if free.any():
        offsets[free] = spsolve(laplacian[free][:, free], right[free], permc_spec="MMD_AT_PLUS_A")
    return offsets
