"""Which line the light falls along in an image, read from its own shading: a check on SUN_AZIMUTH.

A model given the wrong sun azimuth returns relief that is wrong without looking wrong, so the engine
measures the light's line in the image and warns when the azimuth it was given is far from it.

Why it works: for terrain with no preferred direction, shading is close to linear in the slope along
the sun, so the image's gradients vary most along the sun's line, about √3 times as much as across it
(a random surface's second derivatives: E[z_xx²] = 3 E[z_xy²]). The principal axis of their structure
tensor, the mean of ∇I ∇Iᵀ, is the sun's azimuth up to 180°. Which of the two sides is lit cannot be
read this way: light from the opposite side makes the same image of the inverted relief. A raster is
measured at full resolution, whole up to 2048 px a side and on 3 × 3 windows of 2048² beyond (about 1 s):
a decimated overview aliases the shading and loses the direction.

Measured by make validate (validation/README.md) against the true azimuth: median error 8.5° (worst 28°,
on a 120 × 64 px crop) on the 21 renders of the validation DEMs, 4.2° (worst 20°) on the 30 of the held-out
sites, 2° on the real HiRISE image; no false warning. Terrain with one strong grain (dunes, ridges) can pull
the axis towards the grain's normal, which is why the warning's tolerance is wide.
"""
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

AXIS_TOLERANCE_DEG = 35.0  # above the 28° worst case on the validation renders: warn on clear mismatches only
MIN_ANISOTROPY = 1.6       # eigenvalue ratio below which the image shows no clear light direction
MIN_PIXELS = 1024          # gradient samples needed for a usable estimate
SMOOTHING_PX = 1.0         # Gaussian σ before the gradients: keeps 8-bit steps and noise out of them
WINDOW_PX, WINDOW_GRID = 2048, 3  # a larger raster is measured on 3 × 3 full-resolution 2048² windows


@dataclass
class ShadingAxis:
    azimuth: float     # degrees clockwise from up (north for north-up rasters), in [0, 180)
    anisotropy: float  # largest over smallest eigenvalue: ≈1 no direction, ≈3 clean shading

    @property
    def clear(self):
        return self.anisotropy >= MIN_ANISOTROPY

    def describe(self):
        return f"{self.azimuth:.0f}° or {self.azimuth + 180:.0f}° (anisotropy {self.anisotropy:.2f})"


def structure_tensor(values, valid=None):
    """(sum of ∇I ∇Iᵀ over trusted pixels as a 2×2 array in east/north axes, pixel count), or None."""
    values = np.asarray(values, dtype=np.float32)
    valid = np.isfinite(values) if valid is None else (np.asarray(valid, dtype=bool) & np.isfinite(values))
    if valid.sum() < MIN_PIXELS:
        return None
    all_valid = valid.all()
    filled = values if all_valid else np.where(valid, values, values[valid].mean())
    smooth = ndimage.gaussian_filter(filled, SMOOTHING_PX, mode="reflect")
    d_row, d_col = np.gradient(smooth)
    if not all_valid:  # a gradient is trusted only away from nodata, whose fill would add edges of its own
        trusted = ndimage.binary_erosion(valid, iterations=int(3 * SMOOTHING_PX) + 1, border_value=1)
        if trusted.sum() < MIN_PIXELS:
            return None
        d_row, d_col = d_row[trusted], d_col[trusted]
    east, north = d_col.ravel(), -d_row.ravel()  # rows run down, north is up
    tensor = np.array([[np.dot(east, east), np.dot(east, north)],
                       [np.dot(east, north), np.dot(north, north)]], dtype=np.float64)
    return tensor, east.size


def axis_of(tensor):
    """ShadingAxis of a structure tensor (east/north axes), or None for a flat image."""
    eigenvalues, eigenvectors = np.linalg.eigh(tensor)
    if eigenvalues[1] <= 0:
        return None
    east_part, north_part = eigenvectors[:, 1]
    azimuth = np.degrees(np.arctan2(east_part, north_part)) % 180.0  # clockwise from north
    anisotropy = eigenvalues[1] / max(eigenvalues[0], eigenvalues[1] * 1e-12)
    return ShadingAxis(float(azimuth), float(anisotropy))


def shading_axis(values, valid=None):
    """The light's line in one image array (ShadingAxis), or None when too few valid pixels are left."""
    measured = structure_tensor(values, valid)
    return axis_of(measured[0] / measured[1]) if measured else None


def raster_shading_axis(read, width, height, window=WINDOW_PX, grid=WINDOW_GRID):
    """The light's line of a raster, from full-resolution windows (a decimated overview aliases the
    shading): the whole raster when it fits one window, else grid × grid windows spread over it, their
    tensors summed. read(x0, y0, w, h) -> (values, valid)."""
    w, h = min(window, width), min(window, height)
    xs = np.linspace(0, width - w, grid if width > w else 1).round().astype(int)
    ys = np.linspace(0, height - h, grid if height > h else 1).round().astype(int)
    total, count = np.zeros((2, 2)), 0
    for y0 in ys:
        for x0 in xs:
            measured = structure_tensor(*read(int(x0), int(y0), w, h))
            if measured:
                total += measured[0]
                count += measured[1]
    return axis_of(total / count) if count else None


def axis_difference(sun_azimuth, axis_azimuth):
    """Degrees, 0–90, between a sun azimuth's line and an axis (both lines, so modulo 180°)."""
    difference = abs(sun_azimuth - axis_azimuth) % 180.0
    return min(difference, 180.0 - difference)


def sun_azimuth_check(axis, sun_azimuth, canonical_azimuth):
    """(log line, warning or None) comparing the measured axis with the azimuth the model will assume."""
    if axis is None:
        return "Sun azimuth check: too few valid pixels to measure the light's line in the image.", None
    line = f"Light's line measured in the image's shading: {axis.describe()}."
    if not axis.clear:
        return line + " The image shows no clear light direction, so the sun azimuth is not checked.", None
    assumed = canonical_azimuth if sun_azimuth is None else sun_azimuth
    off = axis_difference(assumed, axis.azimuth)
    if off <= AXIS_TOLERANCE_DEG:
        return line, None
    given = (f"no SUN_AZIMUTH was given, so the model assumes light from its canonical {assumed:g}°"
             if sun_azimuth is None else f"SUN_AZIMUTH is {assumed:g}°")
    return line, (f"{given}, {off:.0f}° off the light's line measured in the image: {axis.describe()}. "
                  "A wrong sun azimuth distorts the relief: check the image's illumination (its metadata's "
                  "solar azimuth); if the shading is right, use the measured azimuth on the lit side.")
