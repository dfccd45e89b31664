"""Turn an image so its light comes from the model's canonical sun azimuth, and turn results back.

Azimuths are degrees clockwise from north (up). Turning the image clockwise by d moves the sun's
azimuth to a + d, so d = canonical - given. Quarter turns are exact (np.rot90); other angles use
bilinear rotation with mirrored corners, and results are resampled back onto the original window.
"""
import numpy as np
from scipy import ndimage


def clockwise_turn(sun_azimuth, canonical_azimuth):
    """Degrees to turn the image clockwise, in (-180, 180]; 0 when no azimuth is given."""
    if sun_azimuth is None:
        return 0.0
    turn = (canonical_azimuth - sun_azimuth) % 360.0
    return turn - 360.0 if turn > 180.0 else turn


def _quarter_turns(degrees):
    quarters = degrees / 90.0
    return int(round(quarters)) if abs(quarters - round(quarters)) < 1e-9 else None


def rotate_clockwise(image, degrees):
    """Image turned clockwise; non-quarter turns grow the canvas to hold the whole image."""
    quarters = _quarter_turns(degrees)
    if quarters is not None:
        return np.ascontiguousarray(np.rot90(image, -quarters))
    # scipy turns counter-clockwise for positive angles (rows point down)
    return ndimage.rotate(image, -degrees, reshape=True, order=1, mode="mirror").astype(image.dtype)


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
