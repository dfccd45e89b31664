"""Turn an image so its light comes from the model's canonical sun azimuth, and turn results back.

Azimuths are degrees clockwise from north (up). Turning the image clockwise by d moves the sun's
azimuth to a + d, so d = canonical - given. Quarter turns are exact (np.rot90); other angles use
bilinear rotation onto a canvas that holds the whole turned image, and results are resampled back onto
the original window.

The canvas's corners lie outside the image and must be filled with ground lit as the model expects.
Mirroring the image across its edges does not do that under an oblique sun: a mirror image is the image
of mirrored ground lit from the sun's mirrored azimuth, 90° away from the true one for a diagonal sun. A
180° turn of the image is the image of the ground turned and inverted (z → -z: the same slopes, turned)
under the same sun, whatever its azimuth; but it meets the image at a seam, a step the network reads as a
scarp. So the corners are the mirror just outside the image (continuous across its edges), fading with
distance (weight exp(-d / EDGE_MIRROR_PX)) into the image surrounded by its 180° turns (a checkerboard of
point reflections through the edges' midpoints). On the validation DEMs and the held-out training sites
lit from 315° and 225°, every one of r, detail r and SSIM rose for both shipped models against mirrored
corners (README, Accuracy).
"""
import numpy as np
from scipy import ndimage

EDGE_MIRROR_PX = 16.0  # px outside the image over which the mirror's weight falls by e (module docstring)


def clockwise_turn(sun_azimuth, canonical_azimuth):
    """Degrees to turn the image clockwise, in (-180, 180]; 0 when no azimuth is given."""
    if sun_azimuth is None:
        return 0.0
    turn = (canonical_azimuth - sun_azimuth) % 360.0
    return turn - 360.0 if turn > 180.0 else turn


def across_light(sun_azimuth):
    """The line across the light, as its two azimuths (degrees, 0–360). To first order a facet's brightness
    follows its slope towards the sun, and a slope across the light changes it only by its square, whichever
    way it falls: an image does not show a regional slope along this line (README, Accuracy, "The reach of
    shading")."""
    first = (sun_azimuth + 90.0) % 180.0
    return first, first + 180.0


def unseen_slope_line(sun_azimuth, heights_mode):
    """The log's line on the one part of the regional tilt the image does not show, for a sun at
    `sun_azimuth` (the model's canonical one where none is given)."""
    first, second = across_light(sun_azimuth)
    if heights_mode == "reference":
        where = "HEIGHTS=reference takes it, with all long wavelengths, from the reference DEM."
    else:
        where = "where it matters, HEIGHTS=reference takes the long wavelengths from a reference DEM."
    return (f"Regional slope: the image shows the slope towards the sun ({sun_azimuth:g}°), not across it (along "
            f"{first:g}°–{second:g}°); the DTM's tilt along that line is the model's guess from texture; {where}")


def _quarter_turns(degrees):
    quarters = degrees / 90.0
    return int(round(quarters)) if abs(quarters - round(quarters)) < 1e-9 else None


def rotate_clockwise(image, degrees):
    """Image turned clockwise; non-quarter turns grow the canvas to hold the whole image, its corners
    filled by lit_surround (module docstring)."""
    quarters = _quarter_turns(degrees)
    if quarters is not None:
        return np.ascontiguousarray(np.rot90(image, -quarters))
    height, width = image.shape
    cos, sin = np.cos(np.deg2rad(degrees)), np.sin(np.deg2rad(degrees))
    canvas = turned_shape(height, width, degrees)
    # output pixel o samples the input at M (o - c_out) + c_in: scipy's rotate(image, -degrees, reshape=True)
    matrix = np.array([[cos, -sin], [sin, cos]])
    # the surround need only reach as far as the canvas's corners sample, plus the interpolation's pixel
    half = (np.array(canvas) - 1) / 2.0
    reach = np.abs(matrix) @ half - (np.array(image.shape) - 1) / 2.0
    pad_rows, pad_cols = (max(0, int(np.ceil(v)) + 1) for v in reach)
    surround = lit_surround(image, pad_rows, pad_cols)
    offset = (np.array(surround.shape) - 1) / 2.0 - matrix @ half
    return ndimage.affine_transform(surround, matrix, offset, output_shape=canvas, order=1,
                                    mode="mirror").astype(image.dtype)


def turned_shape(height, width, degrees):
    """The (rows, columns) of the canvas that holds a height × width image turned by `degrees` (scipy's
    rotate with reshape=True, so rotate_back's geometry is unchanged)."""
    angle = np.deg2rad(degrees)
    corners = np.array([[0, 0], [0, width], [height, 0], [height, width]], float)
    turn = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    extent = np.ptp(corners @ turn.T, axis=0)
    return tuple(int(v + 0.5) for v in extent)


def point_reflections(image, pad_rows, pad_cols):
    """The image padded by `pad_rows` and `pad_cols` px on each side with the plane tiled by it and its 180°
    turns, the turn across every edge of a tile (a checkerboard of point reflections through edge midpoints)."""
    height, width = image.shape
    rows = np.arange(-pad_rows, height + pad_rows)
    cols = np.arange(-pad_cols, width + pad_cols)
    row_tile, col_tile = rows // height, cols // width
    row_in, col_in = rows - row_tile * height, cols - col_tile * width
    tiled = image[np.ix_(row_in, col_in)]
    turned = (row_tile[:, None] + col_tile[None, :]) % 2 == 1
    tiled[turned] = image[np.ix_(height - 1 - row_in, width - 1 - col_in)][turned]
    return tiled


def rotate_back(result, degrees, shape):
    """Undo rotate_clockwise and crop the centre back to `shape`."""
    quarters = _quarter_turns(degrees)
    if quarters is not None:
        return np.ascontiguousarray(np.rot90(result, quarters))
    # Exact inverse of scipy's rotate: its output coordinate o samples the input at M(o - c_out) + c_in
    # with M(a) = [[cos a, sin a], [-sin a, cos a]]; the forward turn used a = -degrees.
    cos, sin = np.cos(np.deg2rad(degrees)), np.sin(np.deg2rad(degrees))
    matrix = np.array([[cos, sin], [-sin, cos]])
    rotated_centre = (np.array(result.shape) - 1) / 2.0
    original_centre = (np.array(shape) - 1) / 2.0
    offset = rotated_centre - matrix @ original_centre
    return ndimage.affine_transform(result, matrix, offset, output_shape=tuple(shape), order=1,
                                    mode="nearest").astype(result.dtype)


def lit_surround(image, pad_rows, pad_cols):
    """The image padded by `pad_rows` and `pad_cols` px on each side: its mirror near its edges fading into
    point_reflections (module docstring). float32 throughout; about four arrays of the padded size."""
    height, width = image.shape
    image = image.astype(np.float32, copy=False)
    mirrored = np.pad(image, ((pad_rows,) * 2, (pad_cols,) * 2), mode="reflect")
    surround = point_reflections(image, pad_rows, pad_cols)
    row_out = _outside(np.arange(-pad_rows, height + pad_rows), height)
    col_out = _outside(np.arange(-pad_cols, width + pad_cols), width)
    weight = np.hypot(row_out[:, None], col_out[None, :])
    np.exp(weight * np.float32(-1.0 / EDGE_MIRROR_PX), out=weight)
    mirrored -= surround
    mirrored *= weight
    surround += mirrored  # weight · mirror + (1 - weight) · point reflections
    return surround


def _outside(index, length):
    """Pixels from each index to the nearest of 0 … length - 1 (0 inside)."""
    return np.maximum(np.maximum(-index, index - (length - 1)), 0).astype(np.float32)
