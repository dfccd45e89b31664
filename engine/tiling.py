"""Tile grid, mirror padding and feathered blend weights for native-resolution inference."""
import numpy as np


def axis_starts(length, tile, overlap):
    """Window starts along one axis: tiles of `tile` px overlapping by at least `overlap` px."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


def mirror_pad(array, height, width):
    """Centre `array` in (height, width), filling with mirror images (reflect) of itself.

    np.pad's reflect needs the pad smaller than the array, so tiny arrays are padded in rounds.
    Returns the padded array and the (top, left) offset of the original inside it.
    """
    top, left = (height - array.shape[0]) // 2, (width - array.shape[1]) // 2
    padded = _mirror_axis(array, 0, top, height - array.shape[0] - top)
    padded = _mirror_axis(padded, 1, left, width - array.shape[1] - left)
    return padded, (top, left)


def _mirror_axis(array, axis, before, after):
    while before or after:
        size = array.shape[axis]
        if size == 1:  # nothing to mirror: repeat the single row/column
            widths = [(0, 0), (0, 0)]
            widths[axis] = (before, after)
            return np.pad(array, widths, mode="edge")
        step_before, step_after = min(before, size - 1), min(after, size - 1)
        widths = [(0, 0), (0, 0)]
        widths[axis] = (step_before, step_after)
        array = np.pad(array, widths, mode="reflect")
        before, after = before - step_before, after - step_after
    return array


def round_up(value, multiple):
    return -(-value // multiple) * multiple


def feather_weights(height, width, ramp):
    """Separable linear ramp, rising over `ramp` px from each edge; two overlapping tiles cross-fade.

    Weights never reach zero, so a pixel covered by one tile only keeps that tile's value exactly.
    """
    return np.outer(feather_ramp(height, ramp), feather_ramp(width, ramp))


def feather_ramp(length, ramp):
    """One axis of feather_weights: rises linearly over `ramp` px from each end to 1."""
    distance = np.minimum(np.arange(length), np.arange(length)[::-1]) + 0.5
    return np.minimum(1.0, distance / max(ramp, 1)).astype(np.float32)


def bilinear_rows(coarse, rows, columns):
    """Bilinear values of a coarse grid at some fine rows × all fine columns (NaN spreads).

    rows, columns: (lower index, upper index, weight of the upper) for each fine row and column.
    """
    (r0, r1, rt), (c0, c1, ct) = rows, columns
    lines = coarse[r0] * (1 - rt)[:, None] + coarse[r1] * rt[:, None]
    return lines[:, c0] * (1 - ct) + lines[:, c1] * ct


def fill_invalid(values, valid):
    """Replace invalid pixels by their nearest valid neighbour, so masks do not print into the DTM."""
    if valid.all():
        return values
    from scipy import ndimage
    _, (rows, cols) = ndimage.distance_transform_edt(~valid, return_indices=True)
    return values[rows, cols]
