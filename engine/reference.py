"""Tie a DTM in metres to a coarser reference DEM (MOLA, LOLA, SRTM…): long wavelengths from the
reference, detail from the model.

The reference is warped by GDAL onto a coarse grid aligned with the input's: cells of `cell` × `cell`
input pixels, `cell` ≈ the reference's pixel size. On that grid the model's output is box-averaged
(M_c), and the model's gain g is fitted by least squares to the reference R_c on their slopes (the
differences between neighbouring cells: the finest relief the reference resolves, where the model's
scale is best measured; a constant offset drops out). Then, pixel by pixel,

    out = g · M + up(C),   C such that box(out) = R_c, i.e. B(C) = R_c − g · M_c

with up() the bilinear interpolation of cell centres, box() the cell mean and B = box ∘ up. A reference
pixel is a mean over its ground footprint, so the output averaged over each cell gives back the
reference exactly, while everything finer than a cell is the model's. (Taking C = R_c − g · M_c, i.e.
B ≈ I, smooths peaks and troughs the way bilinear upsampling does: on the validation DEMs the exact
solve lowers the RMSE against the truth by 10–22 %.) B is separable and tridiagonal along each axis,
so C costs two small solves on the coarse grid. Where the reference has no data, the output is nodata.
"""
import math

import numpy as np
from osgeo import gdal, osr

from .errors import EngineError
from .ground_pixel import ground_pixel, spatial_ref
from .raster_io import open_input
from .tiling import bilinear_rows, fill_invalid

MIN_CELLS = 3  # per side: fewer reference pixels over the input leave no slopes to fit a gain on


def _row_under_input_centre(reference, ds):
    """The reference's pixel row under the input's centre (where its geographic pixel size is taken)."""
    transform = ds.GetGeoTransform()
    x = transform[0] + transform[1] * ds.RasterXSize / 2 + transform[2] * ds.RasterYSize / 2
    y = transform[3] + transform[4] * ds.RasterXSize / 2 + transform[5] * ds.RasterYSize / 2
    source, target = spatial_ref(ds, "The input"), spatial_ref(reference, "REFERENCE_DEM")
    try:  # PROJ has no operation between two identical local (engineering) CRSs: none is needed
        rx, ry = (x, y) if source.IsSame(target) else \
            osr.CoordinateTransformation(source, target).TransformPoint(x, y)[:2]
    except RuntimeError:
        return None  # the reference's CRS cannot express the input's centre: its centre row is used
    inverse = gdal.InvGeoTransform(reference.GetGeoTransform())
    row = inverse[3] + inverse[4] * rx + inverse[5] * ry
    return min(max(row, 0.5), reference.RasterYSize - 0.5)


def _coarse_dataset(ds, cell):
    """An in-memory Float64 grid of cell × cell input pixels, aligned with the input, all NaN."""
    cols, rows = -(-ds.RasterXSize // cell), -(-ds.RasterYSize // cell)
    t = ds.GetGeoTransform()
    grid = gdal.GetDriverByName("MEM").Create("", cols, rows, 1, gdal.GDT_Float64)
    grid.SetGeoTransform((t[0], t[1] * cell, t[2] * cell, t[3], t[4] * cell, t[5] * cell))
    grid.SetProjection(ds.GetProjection())
    band = grid.GetRasterBand(1)
    band.SetNoDataValue(math.nan)
    band.Fill(math.nan)
    return grid


def _block_average(writer, cell, shape, check):
    """Mean of the valid written pixels in each cell × cell block; NaN where a block has none."""
    sums, counts = np.zeros(shape), np.zeros(shape)
    cols = shape[1]
    for y0, values, valid in writer.strips(check):
        padded = np.zeros((values.shape[0], cols * cell))
        padded[:, :values.shape[1]] = np.where(valid, values, 0.0)
        seen = np.zeros(padded.shape)
        seen[:, :values.shape[1]] = valid
        block_rows = (y0 + np.arange(values.shape[0])) // cell
        np.add.at(sums, block_rows, padded.reshape(-1, cols, cell).sum(axis=2))
        np.add.at(counts, block_rows, seen.reshape(-1, cols, cell).sum(axis=2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


def fit_gain(model, reference):
    """Least-squares g and c of reference ≈ g · model + c on a coarse grid (NaN = no data).

    g comes from the slopes (differences of horizontally and vertically adjacent cells valid in both),
    c from the means; returns (g, c, RMS residual of the fit over the cells valid in both).
    """
    both = np.isfinite(model) & np.isfinite(reference)
    model_steps, reference_steps = [], []
    for later, earlier in ((np.s_[1:, :], np.s_[:-1, :]), (np.s_[:, 1:], np.s_[:, :-1])):
        pairs = both[later] & both[earlier]
        model_steps.append((model[later] - model[earlier])[pairs])
        reference_steps.append((reference[later] - reference[earlier])[pairs])
    dm, dr = np.concatenate(model_steps), np.concatenate(reference_steps)
    if dm.size == 0 or not np.any(dm):
        raise EngineError("The model's relief is flat at the reference's resolution where both have data: "
                          "there is nothing to fit its gain to.")
    gain = float(np.dot(dm, dr) / np.dot(dm, dm))
    offset = float(np.mean(reference[both] - gain * model[both]))
    residual = float(np.sqrt(np.mean((gain * model[both] + offset - reference[both]) ** 2)))
    return gain, offset, residual


def _centre_weights(length, cell, cells):
    """Bilinear weights from cell centres ((j + ½) · cell input pixels) to pixel centres along one axis."""
    position = np.clip((np.arange(length) + 0.5) / cell - 0.5, 0, cells - 1)
    lower = np.floor(position).astype(np.intp)
    return lower, np.minimum(lower + 1, cells - 1), position - lower


def cell_mean_operator(length, cell, cells):
    """The bands (below, on, above the diagonal) of B along one axis: row i is the mean, over the
    input pixels of cell i, of the bilinear weights that _centre_weights gives them on cells i−1…i+1."""
    lower, upper, fraction = _centre_weights(length, cell, cells)
    owner = np.arange(length) // cell
    bands = np.zeros((cells, 3))
    np.add.at(bands, (owner, lower - owner + 1), 1 - fraction)
    np.add.at(bands, (owner, upper - owner + 1), fraction)
    return bands / np.bincount(owner, minlength=cells)[:, None]


def solve_tridiagonal(bands, rhs):
    """x with B x = rhs along axis 0 of rhs (Thomas algorithm; B is diagonally dominant: no pivoting)."""
    below, diagonal, above = bands[:, 0], bands[:, 1].copy(), bands[:, 2]
    rhs = np.array(rhs, dtype=np.float64)
    for i in range(1, len(diagonal)):
        factor = below[i] / diagonal[i - 1]
        diagonal[i] -= factor * above[i - 1]
        rhs[i] -= factor * rhs[i - 1]
    rhs[-1] /= diagonal[-1]
    for i in range(len(diagonal) - 2, -1, -1):
        rhs[i] = (rhs[i] - above[i] * rhs[i + 1]) / diagonal[i]
    return rhs


def cell_consistent(coarse, shape, cell):
    """C with box(up(C)) = coarse on a raster of `shape` input pixels (coarse: finite everywhere)."""
    rows = cell_mean_operator(shape[0], cell, coarse.shape[0])
    columns = cell_mean_operator(shape[1], cell, coarse.shape[1])
    return solve_tridiagonal(columns, solve_tridiagonal(rows, coarse).T).T


class ReferenceTie:
    """A reference DEM warped onto the input's coarse grid, ready to tie a written DTM to it."""

    def __init__(self, path, ds, input_pixel):
        reference = open_input(path, "REFERENCE_DEM")
        spatial_ref(reference, "REFERENCE_DEM")
        if reference.GetGeoTransform(can_return_null=True) is None:
            raise EngineError(f"REFERENCE_DEM has no geotransform: GDAL cannot place it on the input ({path}).")
        reference_pixel = ground_pixel(reference, "REFERENCE_DEM", _row_under_input_centre(reference, ds))
        self.path, self.ds = path, ds
        self.cell = max(1, round(reference_pixel.size_m / input_pixel.size_m))
        finer = reference_pixel.size_m < self.cell * input_pixel.size_m
        self.resampling = "average" if finer else "bilinear"
        self.reference_pixel_m = reference_pixel.size_m
        self.coarse = self._warp(reference)
        self.coverage = self._coverage()

    def _warp(self, reference):
        grid = _coarse_dataset(self.ds, self.cell)
        try:
            gdal.Warp(grid, reference, resampleAlg=self.resampling, dstNodata=math.nan)
        except RuntimeError as exc:
            raise EngineError(f"GDAL could not warp REFERENCE_DEM onto the input's grid: {exc}") from None
        coarse = grid.GetRasterBand(1).ReadAsArray().astype(np.float64)
        if min(coarse.shape) < MIN_CELLS:
            raise EngineError(
                f"REFERENCE_DEM's pixels ({self.reference_pixel_m:.4g} m) are too coarse for this input: it "
                f"covers it with {coarse.shape[1]} × {coarse.shape[0]} cells, fewer than {MIN_CELLS} a side, "
                "too few to fit the model's gain. Use a finer reference or a larger input.")
        return coarse

    def _coverage(self):
        covered = np.isfinite(self.coarse)
        if not covered.any():
            raise EngineError(f"REFERENCE_DEM does not overlap the input (no reference data on the input's "
                              f"extent after reprojection): {self.path}")
        return float(covered.mean())

    def tie(self, writer, check):
        """Rewrite the DTM in `writer` as the reference plus the model's fitted detail; the fit's figures."""
        model = _block_average(writer, self.cell, self.coarse.shape, check)
        gain, offset, residual = fit_gain(model, self.coarse)
        # cells without reference or model data take their nearest neighbour's: the solve needs a full grid
        missing = self.coarse - gain * model
        width, height = self.ds.RasterXSize, self.ds.RasterYSize
        correction = cell_consistent(fill_invalid(missing, np.isfinite(missing)), (height, width), self.cell)
        correction[~np.isfinite(self.coarse)] = np.nan  # spreads to every pixel that interpolates a hole
        columns = _centre_weights(width, self.cell, self.coarse.shape[1])
        all_rows = _centre_weights(height, self.cell, self.coarse.shape[0])

        def blend(y0, values, valid):
            rows = tuple(w[y0:y0 + values.shape[0]] for w in all_rows)
            correction_rows = bilinear_rows(correction, rows, columns)
            return gain * values + correction_rows, valid & np.isfinite(correction_rows)

        writer.rewrite(blend, check)
        return gain, offset, residual
