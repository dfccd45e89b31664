"""Shading of a DEM into an 8-bit image, and random views of real DEMs for training.

Conventions (as training/simulator.py and the engine): row 0 = north, column 0 = west, nadir view,
azimuths clockwise from north. Heights given to the shading functions are in units of the pixel size
("pixel units"), so slopes are plain dz/dx; a DEM in metres divided by its pixel size is one.
The canonical sun is the engine's: azimuth 270° (light from the west, the left edge).
"""
import math

import numpy as np
from scipy import ndimage

from .engine_parts import grey_levels, tiling

mirror_pad = tiling.mirror_pad  # training pads small windows exactly as the engine pads small rasters
hillshade_flat_grey = grey_levels.hillshade_flat_grey  # the grey level gdaldem_hillshade gives flat ground

CANONICAL_AZIMUTH = 270.0
_HORN_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


# ---- photometry ---------------------------------------------------------------------------------
def fbm(rng, n, beta):
    """Zero-mean spectral fBm on an n×n grid with power spectrum ~ k^-beta, unit std."""
    ky = np.fft.fftfreq(n)[:, None]
    kx = np.fft.rfftfreq(n)[None, :]
    k = np.sqrt(kx * kx + ky * ky)
    k[0, 0] = 1.0
    amp = k ** (-beta / 2.0)
    amp[0, 0] = 0.0
    spec = (rng.standard_normal(k.shape) + 1j * rng.standard_normal(k.shape)) * amp
    f = np.fft.irfft2(spec, s=(n, n))
    f -= f.mean()
    s = f.std()
    return f / (s if s > 0 else 1.0)


def incidence(h, sun_el_deg, gsd=1.0, sun_az_deg=CANONICAL_AZIMUTH):
    """cos(i), cos(e) for a nadir view, from Horn's (1981) 3×3 gradient as gdaldem uses."""
    p = ndimage.correlate(h, _HORN_X, mode="nearest") / (8.0 * gsd)       # dz/dx, x = east
    q = -ndimage.correlate(h, _HORN_X.T, mode="nearest") / (8.0 * gsd)    # dz/dy, y = north
    az, el = math.radians(sun_az_deg), math.radians(sun_el_deg)
    sx, sy, sz = math.sin(az) * math.cos(el), math.cos(az) * math.cos(el), math.sin(el)
    norm = np.sqrt(1.0 + p * p + q * q)
    return (-p * sx - q * sy + sz) / norm, 1.0 / norm


def cast_shadow(h, sun_el_deg, gsd=1.0):
    """Exact horizon scan for light from the west: pixel j is shadowed if some k < j has
    h[k] - (j-k)·gsd·tan(el) > h[j], i.e. the running max of h + col·gsd·tan(el) before j exceeds it."""
    t = math.tan(math.radians(sun_el_deg)) * gsd
    g = h + np.arange(h.shape[1])[None, :] * t
    run = np.maximum.accumulate(g, axis=1)
    prev = np.empty_like(run)
    prev[:, 0] = -np.inf
    prev[:, 1:] = run[:, :-1]
    return prev > g + 1e-9


def _hapke_h(x, w):
    return (1.0 + 2.0 * x) / (1.0 + 2.0 * x * math.sqrt(1.0 - w))


def reflectance(model, cos_i, cos_e, phase_rad):
    mu0 = np.maximum(cos_i, 0.0)
    mu = np.maximum(cos_e, 1e-6)
    if model["kind"] == "lambert":
        return mu0
    if model["kind"] == "lunar_lambert":
        weight = model["L"]
        return 2.0 * weight * mu0 / (mu0 + mu) + (1.0 - weight) * mu0
    # simplified Hapke (no opposition surge, no macroscopic roughness)
    w, b = model["w"], model["b"]
    phase_function = (1.0 - b * b) / (1.0 + 2.0 * b * math.cos(phase_rad) + b * b) ** 1.5
    return w / 4.0 * mu0 / (mu0 + mu) * (phase_function + _hapke_h(mu0, w) * _hapke_h(mu, w) - 1.0)


def random_model(rng):
    u = rng.random()
    if u < 0.34:
        return {"kind": "lambert"}
    if u < 0.67:
        return {"kind": "lunar_lambert", "L": float(rng.uniform(0.3, 1.0))}
    return {"kind": "hapke", "w": float(rng.uniform(0.15, 0.9)), "b": float(rng.uniform(-0.4, 0.4))}


DEFAULT_ALBEDO_CONTRAST = 0.15  # the patches' largest relative change in albedo


def albedo_map(rng, shape, contrast=DEFAULT_ALBEDO_CONTRAST):
    """Smooth multiplicative albedo, mostly 0.8–1.2, half the time with brighter or darker patches
    changing it by up to ±`contrast` (lunar maria are about half as bright as the highlands: 0.5)."""
    n = max(shape)
    a = 1.0 + 0.1 * np.clip(fbm(rng, n, rng.uniform(2.5, 3.5)), -2, 2)
    if rng.random() < 0.5:
        yy, xx = np.mgrid[0:n, 0:n]
        for _ in range(rng.integers(1, 5)):
            cy, cx = rng.uniform(0, n, 2)
            ry, rx = rng.uniform(0.05, 0.3, 2) * n
            patch = (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2) < 1.0
            change = rng.uniform(-contrast, contrast)  # drawn before the blur, as always: same views per seed
            a = a * (1.0 + change * ndimage.gaussian_filter(patch.astype(float), rng.uniform(1, 6)))
    return a[:shape[0], :shape[1]]


def gdaldem_hillshade(h, sun_el_deg, sun_az_deg=CANONICAL_AZIMUTH, gsd=1.0):
    """8-bit shading as `gdaldem hillshade` writes it: 1 + 254·max(cos i, 0) (0 is its nodata)."""
    cos_i, _ = incidence(h, sun_el_deg, gsd, sun_az_deg)
    return (1.0 + np.round(254.0 * np.clip(cos_i, 0.0, 1.0))).astype(np.uint8)


def render(h, rng, sun_el_deg, sun_az_deg=CANONICAL_AZIMUTH, gsd=1.0, albedo_contrast=DEFAULT_ALBEDO_CONTRAST,
           with_flat=False):
    """A physically varied 8-bit image of h: random photometric law, cast shadows, albedo, haze,
    blur, shot and read noise, then a percentile stretch (70 %) or an absolute scale (30 %).
    `with_flat`: (image, the grey level flat ground of mean albedo has in it, unclipped)."""
    model = random_model(rng)
    cos_i, cos_e = incidence(h, sun_el_deg, gsd, sun_az_deg)
    phase = math.radians(90.0 - sun_el_deg)
    r = reflectance(model, cos_i, cos_e, phase)
    r_ref = float(reflectance(model, np.array([1.0]), np.array([math.sin(math.radians(sun_el_deg))]), phase)[0])
    if abs(sun_az_deg - CANONICAL_AZIMUTH) < 20.0:  # the scan assumes light along the rows
        r = np.where(cast_shadow(h, sun_el_deg, gsd), 0.0, r)
    r = r * albedo_map(rng, h.shape, albedo_contrast)
    haze = float(rng.uniform(0.0, 0.3)) if rng.random() < 0.4 else 0.0
    image = (r + haze * r_ref) / (r_ref * (1.0 + haze))
    r_flat = float(reflectance(model, np.array([math.sin(math.radians(sun_el_deg))]), np.array([1.0]), phase)[0])
    flat = (r_flat + haze * r_ref) / (r_ref * (1.0 + haze))  # flat ground seen from above, mean albedo
    sigma = rng.uniform(0.0, 1.2)
    if sigma > 0.05:
        image = ndimage.gaussian_filter(image, sigma, mode="nearest")
    gain = math.exp(rng.uniform(math.log(1e-4), math.log(3e-3)))
    read_noise = rng.uniform(0.002, 0.02)
    image = image + rng.standard_normal(image.shape) * np.sqrt(gain * np.maximum(image, 0) + read_noise ** 2)
    if rng.random() < 0.7:
        sample = image[::4, ::4]
        low = np.percentile(sample, rng.uniform(0.0, 2.0))
        high = np.percentile(sample, rng.uniform(98.0, 100.0))
        stretched = np.clip(np.round((image - low) / max(high - low, 1e-6) * 255.0), 0, 255).astype(np.uint8)
        flat = (flat - low) / max(high - low, 1e-6) * 255.0
        return (stretched, float(flat)) if with_flat else stretched
    absolute = np.clip(np.round(255.0 * image), 1, 255).astype(np.uint8)
    return (absolute, 255.0 * flat) if with_flat else absolute


# ---- random views of real DEMs --------------------------------------------------------------------
class ViewSource:
    """One DEM ready for fast random views: a 2× area-average pyramid of heights and validity."""

    def __init__(self, dem, levels=6):
        self.dem = dem
        heights = dem.heights.astype(np.float64)
        valid = np.isfinite(heights)
        filled = np.where(valid, heights, 0.0)
        self.pyramid = [(filled, valid.astype(np.float64))]
        for _ in range(levels):
            h, v = self.pyramid[-1]
            if min(h.shape) < 64:
                break
            rows, cols = h.shape[0] // 2 * 2, h.shape[1] // 2 * 2
            weight = _pool(v[:rows, :cols])
            total = _pool((h * v)[:rows, :cols])
            self.pyramid.append((np.where(weight > 0, total / np.maximum(weight, 1e-12), 0.0), weight))

    def sample(self, centre, angle, pixel_m, shape, flip, min_valid=0.0):
        """Heights (metres, NaN outside the valid area) on a rotated grid of `pixel_m` ground pixels;
        None when a coarse look finds less than `min_valid` of it valid (spares the full resampling)."""
        if min_valid:
            coarse = self._coords(centre, angle, pixel_m, shape, flip, level=0, stride=16)
            if (ndimage.map_coordinates(self.pyramid[0][1], coarse, order=0) > 0.5).mean() < min_valid:
                return None
        level = self._level(pixel_m)
        heights, weight = self.pyramid[level]
        coords = self._coords(centre, angle, pixel_m, shape, flip, level)
        h = ndimage.map_coordinates(heights, coords, order=1, mode="constant", cval=0.0)
        w = ndimage.map_coordinates(weight, coords, order=1, mode="constant", cval=0.0)
        return np.where(w > 0.999, h, np.nan)

    def _level(self, pixel_m):
        """The coarsest pyramid level still finer than the view's pixel (area-averaged, then bilinear)."""
        octaves = int(math.floor(math.log2(max(pixel_m / self.dem.pixel_m, 1.0))))
        return max(0, min(len(self.pyramid) - 1, octaves))

    def _coords(self, centre, angle, pixel_m, shape, flip, level, stride=1):
        """(row, col) coordinates in pyramid `level` of every stride-th output pixel; `centre` is in
        full-resolution pixels (a level-L pixel centre lies at (2^L − 1)/2 in level-0 pixels)."""
        dem, scale = self.dem, 2 ** level
        step_x, step_y = pixel_m / (dem.dx * scale), pixel_m / (dem.dy * scale)
        rows, cols = np.mgrid[0:shape[0]:stride, 0:shape[1]:stride].astype(np.float64)
        rows -= (shape[0] - 1) / 2.0
        cols -= (shape[1] - 1) / 2.0
        if flip:
            cols = -cols
        cos, sin = math.cos(angle), math.sin(angle)
        source_col = (cos * cols - sin * rows) * step_x + centre[1] / scale - 0.5 + 0.5 / scale
        source_row = (sin * cols + cos * rows) * step_y + centre[0] / scale - 0.5 + 0.5 / scale
        return np.stack([source_row, source_col])


def _pool(a):
    return 0.25 * (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2])


def fill_nearest(values):
    """NaNs given their nearest finite neighbour's value (for shading only; the loss masks them)."""
    invalid = ~np.isfinite(values)
    if not invalid.any():
        return values
    indices = ndimage.distance_transform_edt(invalid, return_distances=False, return_indices=True)
    return values[tuple(indices)]


DEFAULT_SCALE_RANGE = (0.75, 8.0)  # a view's ground pixel, in multiples of its DEM's
DEFAULT_TILT_MAX = 0.0  # no added regional tilt unless asked (the views of earlier runs, per seed)
# Which way an added plane falls: "any" direction, or "sun": along the canonical light's line only (towards or
# away from it). Shading shows no slope across the light (README, Accuracy, "The reach of shading"), so a random
# plane across it asks the network for what the image cannot show and breaks the tie between a real DEM's
# regional slope across the light and its texture; along the light, every added plane is visible.
TILT_DIRECTIONS = ("any", "sun")
DEFAULT_TILT_DIRECTION = "any"


def random_plane(rng, shape, slope_max, direction=DEFAULT_TILT_DIRECTION):
    """A plane through the window's centre, its slope (height per pixel, both in pixel units) log-uniform
    from 1 % of `slope_max` to `slope_max`, falling in a random direction, or (`direction` "sun") along the
    canonical light's line (the columns), either way. The same draws either way: the same slopes per seed."""
    slope = slope_max * math.exp(rng.uniform(math.log(0.01), 0.0))
    angle = rng.uniform(0.0, 2.0 * math.pi)
    if direction == "sun":
        angle = 0.0 if math.cos(angle) >= 0 else math.pi
    elif direction != "any":
        raise ValueError(f"tilt direction must be one of {', '.join(TILT_DIRECTIONS)}, got {direction!r}")
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    return slope * (math.cos(angle) * (cols - (shape[1] - 1) / 2.0)
                    + math.sin(angle) * (rows - (shape[0] - 1) / 2.0))


def random_view(source, rng, size, min_valid=0.9, small_window=0.3, gdaldem_share=0.4,
                scale_range=DEFAULT_SCALE_RANGE, albedo_contrast=DEFAULT_ALBEDO_CONTRAST, tilt_max=DEFAULT_TILT_MAX,
                with_flat=False, tries=20, tilt_direction=DEFAULT_TILT_DIRECTION, with_sun_elevation=False):
    """One training pair from a real DEM: (image uint8, target float32 pixel units, mask float32).

    The view is resampled to a random ground pixel (`scale_range`, log-uniform: 0.75–8× the DEM's by default;
    below 0.5× it is held at 0.5× on a smaller window), turned by a random angle and
    maybe mirrored, lit from the canonical azimuth (±8°) at elevation 10–70°, shaded by gdaldem's formula
    or the physical renderer (its albedo patches up to ±`albedo_contrast`), and sometimes cut to a smaller
    window mirror-padded to `size` as the engine pads small rasters (the mask then covers the window only).
    With `tilt_max`, half the views are tilted by a random plane (random_plane) before they are shaded: a
    regional slope that does not follow the terrain's texture, so roughness does not teach the tilt; it falls
    in any direction, or with `tilt_direction` "sun" along the light's line only (random_plane).
    Target: height / pixel size, mean 0. `with_flat`: a fourth item, the grey level of flat ground in the
    image (what a known sun elevation and photometry tell), against which a tilted window is brighter or darker.
    `with_sun_elevation` (with `with_flat`): a fifth item, the sun's elevation in degrees.
    """
    dem = source.dem
    extent = min(dem.heights.shape[0] * dem.dy, dem.heights.shape[1] * dem.dx)
    for _ in range(tries):
        window = (size, size)
        if rng.random() < small_window:
            window = tuple(int(rng.integers(48, size + 1)) for _ in range(2))
        factor = math.exp(rng.uniform(math.log(scale_range[0]), math.log(scale_range[1])))
        pixel_m = min(dem.pixel_m * factor, extent / math.hypot(*window))  # the turned window must fit
        if pixel_m < 0.5 * dem.pixel_m:  # no finer than 2× upsampling; where even that does not fit, a smaller window
            pixel_m = 0.5 * dem.pixel_m
            shrink = min(1.0, extent / (pixel_m * math.hypot(*window)))  # only where it does not fit
            window = tuple(max(48, int(w * shrink)) for w in window)
        radius_rows = 0.5 * pixel_m * math.hypot(*window) / dem.dy
        radius_cols = 0.5 * pixel_m * math.hypot(*window) / dem.dx
        rows, cols = dem.heights.shape
        centre = (rng.uniform(min(radius_rows, rows / 2), max(rows - radius_rows, rows / 2)),
                  rng.uniform(min(radius_cols, cols / 2), max(cols - radius_cols, cols / 2)))
        heights = source.sample(centre, rng.uniform(0, 2 * math.pi), pixel_m, window, rng.random() < 0.5,
                                min_valid - 0.05)
        valid = np.isfinite(heights) if heights is not None else None
        if valid is not None and valid.mean() >= min_valid:
            break
    else:
        return None
    target = heights / pixel_m
    if dem.relative:  # unknown vertical scale: vary it
        target = target * math.exp(rng.uniform(-0.7, 0.7))
    if tilt_max > 0 and rng.random() < 0.5:  # no draw without it: the same views per seed as before
        target = target + random_plane(rng, target.shape, tilt_max, tilt_direction)
    shaded = fill_nearest(target)
    elevation = rng.uniform(10.0, 70.0)
    azimuth = CANONICAL_AZIMUTH + rng.uniform(-8.0, 8.0)
    if rng.random() < gdaldem_share:
        image, flat = gdaldem_hillshade(shaded, elevation, azimuth), hillshade_flat_grey(elevation)
    else:
        image, flat = render(shaded, rng, elevation, azimuth, albedo_contrast=albedo_contrast, with_flat=True)
    target = np.where(valid, target - target[valid].mean(), 0.0)
    mask = valid.astype(np.float32)
    if window != (size, size):
        image, (top, left) = mirror_pad(image, size, size)
        target, _ = mirror_pad(target, size, size)
        mask = np.zeros((size, size), np.float32)
        mask[top:top + window[0], left:left + window[1]] = valid
    view = image, target.astype(np.float32), mask.astype(np.float32)
    if with_sun_elevation:
        return view + (flat, elevation)
    return view + (flat,) if with_flat else view
