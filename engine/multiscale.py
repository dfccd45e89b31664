"""Multi-scale inference: one window seen at ½×, 1× and 2× its pixel size, the heights averaged.

A model whose heights are in pixel units should give the same relief (in metres) for an image shown at
any pixel size. It does not quite: each presentation scale puts different terrain within its receptive
field and gets its own errors, largely independent of the others. Averaging the three scales
(README, Accuracy) raised r, detail r and SSIM on the held-out training sites and on a real HiRISE
image for both shipped models. The average is only meaningful for pixel-unit heights, where a
model's output at zoom z is turned back to native pixel units by dividing by z. The average keeps the
single scale's height spread on training views (training/scale_spread.py), so it is not rescaled.
"""
import numpy as np
from scipy import ndimage

from .tiling import axis_starts, feather_weights

SCALE_MODES = ("multi", "single")
ZOOMS = {"multi": (0.5, 1.0, 2.0), "single": (1.0,)}


def zooms_for(mode, card):
    """The zooms a run uses, and the line that says so (multi-scale needs pixel-unit heights)."""
    if mode == "multi" and card.height_units != "pixel":
        return ZOOMS["single"], ("Scales: one (1×): multi-scale averaging needs a model whose heights are in "
                                 "pixel units, and this one's are a range.")
    zooms = ZOOMS[mode]
    if len(zooms) == 1:
        return zooms, "Scales: one (1×)."
    listed = ", ".join(f"{z:g}×" for z in zooms)
    return zooms, f"Scales: {listed} the image's pixel count along each axis, heights averaged."


def zoom_values(values, zoom):
    """The window at `zoom` times its pixel count per axis: cubic spline up (2×), box average down (½×).

    Down-sampling pads an odd edge by reflection so every block holds `1/zoom` × `1/zoom` pixels."""
    if zoom == 1:
        return values
    if zoom > 1:
        return ndimage.zoom(values, int(zoom), order=3, mode="mirror", grid_mode=True).astype(np.float32)
    block = int(round(1 / zoom))
    rows, cols = -(-values.shape[0] // block) * block, -(-values.shape[1] // block) * block
    padded = np.pad(values, ((0, rows - values.shape[0]), (0, cols - values.shape[1])), mode="symmetric")
    blocks = padded.reshape(rows // block, block, cols // block, block)
    return blocks.mean(axis=(1, 3), dtype=np.float64).astype(np.float32)


def unzoom_heights(heights, zoom, shape):
    """Heights predicted at `zoom` back on the window's own grid, in its own pixel units."""
    if zoom == 1:
        return heights
    if zoom > 1:
        block = int(zoom)
        rows, cols = shape[0] * block, shape[1] * block
        heights = heights[:rows, :cols].reshape(shape[0], block, shape[1], block).mean(axis=(1, 3))
    else:  # bilinear back up by the block size; zoom_values padded the far edges, so crop them
        block = int(round(1 / zoom))
        heights = ndimage.zoom(heights, block, order=1, mode="nearest", grid_mode=True)[:shape[0], :shape[1]]
    return (heights / np.float32(zoom)).astype(np.float32)


def infer_in_pieces(infer, values, side, overlap):
    """infer(values), in one run where neither side of `values` exceeds `side` px, else in square pieces of
    `side` px overlapping by `overlap`, cross-faded. Bounds the memory of a run (the 2× scale's window has
    4× the pixels)."""
    if max(values.shape) <= side:
        return infer(values)
    total = np.zeros(values.shape, np.float32)
    weight = np.zeros(values.shape, np.float32)
    for y0 in axis_starts(values.shape[0], side, overlap):
        for x0 in axis_starts(values.shape[1], side, overlap):
            piece = values[y0:y0 + side, x0:x0 + side]
            w = feather_weights(piece.shape[0], piece.shape[1], overlap)
            total[y0:y0 + piece.shape[0], x0:x0 + piece.shape[1]] += infer(piece) * w
            weight[y0:y0 + piece.shape[0], x0:x0 + piece.shape[1]] += w
    return total / weight
