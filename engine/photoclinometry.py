"""Photoclinometric refinement: the network's heights made to reproduce the image where its photometry is known.

Shading fixes a facet's slope *towards* the sun pixel by pixel, given the sun's elevation and how bright flat
ground is; it says next to nothing about the slope across the sun (it enters squared). The networks draw both,
from texture and context, and the slope towards the sun is where they err most (README, "The reach of
shading"). Where the user gives both numbers (FLAT_GREY and SUN_ELEVATION: a `gdaldem`/QGIS hillshade, or a
calibrated image under Lambert's law), each window's heights are refined in two steps.

1. Amplitude. The network's heights z0 are scaled by k, chosen so that the shading of k·z0 has the contrast
   (the spread, median absolute deviation, of cos i) the image has. The networks' amplitude is often off by a
   factor 2 or more (MRFED's slopes 1.5–2× too steep on the Earth renders, 3–7× on a Mars crater floor), and
   on steep ground a prior 10 % too steep already pulls the refinement far off (a rendered random relief of
   slopes around 18°, refined from 1.1× and 1.34× itself without this step: r 0.82 and 0.40).
2. Shape. z minimises

       ½ Σ m · (cos i(∇z) − t)²  +  ½ μ Σ |∇z − k ∇z0|²

   with t = sin e · (I − I_0) / (I_flat − I_0) the cosine of the incidence the image shows (I_0: the raster's
   zero, I_flat: FLAT_GREY), cos i from Horn's 3×3 gradient as `gdaldem hillshade` computes it, and m masking
   invalid, shadowed and saturated pixels. With μ small the image decides the slope towards the sun, which it
   shows to first order, and its second-order hold on the slope across the light (the darkening of facets
   leaning either way) moves that too; where the image says nothing (shadows, nodata) the network's slopes stay.

As in the shape-from-shading refinement of planetary stereo tools, the initial DEM carries what the image
cannot tell, the image what it can.

The minimisation is L-BFGS over the height change written in a Laplacian-preconditioned cosine basis, so every
wavelength converges at once (the 1024-px regional tilt as fast as a 3-px knoll): ITERATIONS steps suffice.
QGIS-free; numpy and scipy only, as the rest of the engine.
"""
import dataclasses
import math

import numpy as np
from scipy import fft, optimize

from .errors import EngineError
from .flat_grey import check_flat_grey, check_sun_elevation
from .ground_pixel import ground_pixel

PRIOR_WEIGHT = 0.01      # μ: small, so the image decides what it shows (holding the slope across the light to
                         # the network's with μ 0.3 lost 0.2–0.4 r on the White Mountains)
ITERATIONS = 40          # L-BFGS steps; the preconditioned problem settles within about 30
MAX_GAIN = 20.0          # the amplitude step's bound either way (the validation renders need 0.1–2.5)
SHADOW_COS = 0.02        # darker than this (i > 88.9°): a cast or self shadow, which fixes no slope


@dataclasses.dataclass(frozen=True)
class Photoclinometry:
    """The photometry of one raster, in the model's input range, and the refinement's settings: plain values
    a Dask worker can unpickle."""
    sun_azimuth: float       # degrees clockwise from north, in the raster's frame
    sun_elevation: float     # degrees
    zero_level: float        # the raster's 0 in the input range (the law has no offset)
    flat_level: float        # FLAT_GREY in the input range
    saturated_level: float   # the input range's top: values there were clipped
    dx: float = 1.0          # one column step in units of the heights' pixel (non-square pixels)
    dy: float = 1.0
    prior_weight: float = PRIOR_WEIGHT
    iterations: int = ITERATIONS

    def describe(self):
        return (f"Lambert shading, sun at azimuth {self.sun_azimuth:g}° and elevation {self.sun_elevation:g}°, "
                f"flat ground at FLAT_GREY; the network's shape at the image's amplitude as prior (weight "
                f"{self.prior_weight:g}); {self.iterations} L-BFGS steps per window")

    def refine(self, heights, values, valid=None, check=None):
        """Heights (pixel units of this window) refined against the window's image values (input range);
        check() is polled between steps (cancellation)."""
        return refine_heights(heights, values, valid, self, check)


def plan_photoclinometry(options, card, source, ds, log):
    """The refinement this run makes, or None (with a log line saying why not)."""
    if not options.photoclinometry:
        log("Photoclinometric refinement off (PHOTOCLINOMETRY false).")
        return None
    given = (("FLAT_GREY", check_flat_grey(options.flat_grey)),
             ("SUN_ELEVATION", check_sun_elevation(options.sun_elevation)))
    missing = [name for name, value in given if value is None]
    if missing:
        if len(missing) == 1:  # one of the two given: the user probably meant to refine
            log(f"Photoclinometric refinement off: it needs both FLAT_GREY and SUN_ELEVATION; {missing[0]} "
                "was not given.")
        return None
    if card.height_units != "pixel":
        log(f"Photoclinometric refinement off: {card.summary()} does not answer heights in pixel units.")
        return None
    zero, flat = source.to_input_range(0.0), source.to_input_range(options.flat_grey)
    if not flat > zero:
        raise EngineError(f"FLAT_GREY ({options.flat_grey:g}) must be above 0 for the photoclinometric refinement: "
                          "the image is read as brightness proportional to cos(incidence). Leave SUN_ELEVATION "
                          "empty or set PHOTOCLINOMETRY false to run without it.")
    dx, dy, note = _pixel_shape(ds)
    light = card.sun_azimuth_deg if options.sun_azimuth is None else options.sun_azimuth
    plan = Photoclinometry(float(light), float(options.sun_elevation), float(zero), float(flat),
                           float(source.input_range[1]), dx, dy)
    log(f"Photoclinometric refinement: {plan.describe()}{note}.")
    return plan


def _pixel_shape(ds):
    """(dx, dy, note): one column and one row step in units of the pixels' geometric mean (the heights'
    unit); square where the raster has no usable CRS."""
    try:
        pixel = ground_pixel(ds)
    except EngineError:
        return 1.0, 1.0, " (no ground pixel size: pixels taken as square)"
    return pixel.dx_m / pixel.size_m, pixel.dy_m / pixel.size_m, ""


# ---- the model of the image ------------------------------------------------------------------------------
def horn_slopes(z, dx, dy):
    """Horn's (1981) slopes on the interior pixels, as `gdaldem`: p = dz/dx (east), q = dz/dy (north)."""
    p = ((z[:-2, 2:] + 2 * z[1:-1, 2:] + z[2:, 2:]) - (z[:-2, :-2] + 2 * z[1:-1, :-2] + z[2:, :-2])) / (8 * dx)
    q = ((z[:-2, :-2] + 2 * z[:-2, 1:-1] + z[:-2, 2:]) - (z[2:, :-2] + 2 * z[2:, 1:-1] + z[2:, 2:])) / (8 * dy)
    return p, q


def horn_slopes_adjoint(gp, gq, shape, dx, dy):
    """The transpose of horn_slopes: the height gradient of Σ gp·p + gq·q."""
    g = np.zeros(shape, np.result_type(gp, gq))
    a, b = gp / (8 * dx), gq / (8 * dy)
    for rows, weight in ((np.s_[:-2], 1), (np.s_[1:-1], 2), (np.s_[2:], 1)):
        g[rows, 2:] += weight * a
        g[rows, :-2] -= weight * a
    for cols, weight in ((np.s_[:-2], 1), (np.s_[1:-1], 2), (np.s_[2:], 1)):
        g[:-2, cols] += weight * b
        g[2:, cols] -= weight * b
    return g


def sun_vector(azimuth, elevation):
    """Unit vector towards the sun: (east, north, up)."""
    az, el = math.radians(azimuth), math.radians(elevation)
    return math.sin(az) * math.cos(el), math.cos(az) * math.cos(el), math.sin(el)


def cos_incidence(p, q, sun):
    """cos i of facets of slopes p, q (unclipped: negative in self shadow), and their normals' length."""
    length = np.sqrt(1.0 + p * p + q * q)
    return (sun[2] - p * sun[0] - q * sun[1]) / length, length


def shading_target(values, valid, plan):
    """(cos i the image shows, mask of the pixels that fix a slope), on the interior pixels."""
    inner = values[1:-1, 1:-1].astype(np.float64)
    target = math.sin(math.radians(plan.sun_elevation)) * (inner - plan.zero_level) / (plan.flat_level - plan.zero_level)
    mask = (target > SHADOW_COS) & (inner < plan.saturated_level)
    if valid is not None:
        mask &= valid[1:-1, 1:-1]
    return target, mask


# ---- the refinement -----------------------------------------------------------------------------------
def _padded(heights, values, valid):
    """The window padded to sides the DCT is fast at (a prime side is several times slower): the padding
    continues the heights flat and holds no data."""
    rows, cols = heights.shape
    fast = fft.next_fast_len(rows, real=True), fft.next_fast_len(cols, real=True)
    if fast == heights.shape:
        return heights, values, valid
    pad = ((0, fast[0] - rows), (0, fast[1] - cols))
    valid = np.ones(heights.shape, bool) if valid is None else valid
    return (np.pad(heights, pad, mode="edge"), np.pad(values, pad, mode="edge"),
            np.pad(valid, pad, constant_values=False))


def _preconditioner(shape, dx, dy):
    """1/√(eigenvalues of the Neumann Laplacian) in the DCT-II basis: heights written as these times
    unit-scale coefficients make every wavelength equally easy for L-BFGS. The mean is left alone."""
    ky = (2 - 2 * np.cos(np.pi * np.arange(shape[0]) / shape[0])) / dy ** 2
    kx = (2 - 2 * np.cos(np.pi * np.arange(shape[1]) / shape[1])) / dx ** 2
    eigen = ky[:, None] + kx[None, :]
    eigen[0, 0] = 1.0
    scale = 1.0 / np.sqrt(eigen)
    scale[0, 0] = 0.0
    return scale


def _spread(values):
    """Median absolute deviation: the spread of most of the values, blind to a few wild ones."""
    return float(np.median(np.abs(values - np.median(values))))


def amplitude_gain(target, mask, p0, q0, sun):
    """The factor k that gives the network's heights the image's contrast: the smallest k at which the spread
    of cos i rendered from k·(p0, q0) reaches the spread of the image's t. Matching spreads, unlike a
    least-squares fit, is not shrunk where the network's shape is wrong. The spread need not grow with k all the
    way (a window tilted towards the sun brightens as a whole and its contrast falls again), hence the first
    crossing on a grid, then bisection; where it is never reached, the k of the largest spread. 1 where the image
    is flat or the network draws nothing; at most MAX_GAIN either way."""
    p, q = p0[mask].astype(np.float64), q0[mask].astype(np.float64)
    wanted = _spread(target[mask].astype(np.float64))
    if not (wanted > 0 and _spread(p * sun[0] + q * sun[1]) > 0):
        return 1.0
    excess = lambda log_k: _spread(cos_incidence(math.exp(log_k) * p, math.exp(log_k) * q, sun)[0]) - wanted  # noqa: E731
    grid = np.linspace(-math.log(MAX_GAIN), math.log(MAX_GAIN), 61)
    seen = []
    for index, log_k in enumerate(grid):
        seen.append(excess(log_k))
        if seen[-1] >= 0:
            break
    else:
        return math.exp(grid[int(np.argmax(seen))])
    if index == 0:
        return math.exp(grid[0])
    low, high = grid[index - 1], grid[index]
    for _ in range(25):  # the bracket (a tenth of a log unit) to about 1e-8
        middle = 0.5 * (low + high)
        low, high = (middle, high) if excess(middle) < 0 else (low, middle)
    return math.exp(0.5 * (low + high))


def refine_heights(heights, values, valid, plan, check=None):
    """heights (float, pixel units) refined so that their Lambert shading matches values (module docstring);
    windows smaller than 3 px a side are returned as they are."""
    rows, cols = heights.shape
    if rows < 3 or cols < 3:
        return heights
    z0, image, mask_in = _padded(np.asarray(heights, np.float64), values, valid)
    target, mask = shading_target(image, mask_in, plan)
    if not mask.any():
        return heights
    sun = sun_vector(plan.sun_azimuth, plan.sun_elevation)
    p0, q0 = horn_slopes(z0, plan.dx, plan.dy)
    gain = amplitude_gain(target, mask, p0, q0, sun)
    z0, p0, q0 = gain * z0, gain * p0, gain * q0  # the network's shape at the amplitude the image shows
    scale = _preconditioner(z0.shape, plan.dx, plan.dy)
    mu = plan.prior_weight

    # float32 inside (half the memory traffic of float64, about twice as fast); L-BFGS keeps its float64 state
    z0, p0, q0, target, scale = (a.astype(np.float32) for a in (z0, p0, q0, target, scale))

    def energy(coefficients):
        z = z0 + fft.idctn(coefficients.reshape(z0.shape).astype(np.float32) * scale, norm="ortho")
        p, q = horn_slopes(z, plan.dx, plan.dy)
        shade, length = cos_incidence(p, q, sun)
        residual = np.where(mask, shade - target, 0.0)
        ep, eq = p - p0, q - q0
        value = 0.5 * (np.sum(residual * residual, dtype=np.float64)
                       + mu * (np.sum(ep * ep, dtype=np.float64) + np.sum(eq * eq, dtype=np.float64)))
        facing = sun[2] - p * sun[0] - q * sun[1]  # cos i · length
        d_shade_dp = -sun[0] / length - facing * p / length ** 3
        d_shade_dq = -sun[1] / length - facing * q / length ** 3
        gradient = horn_slopes_adjoint(residual * d_shade_dp + mu * ep, residual * d_shade_dq + mu * eq,
                                       z0.shape, plan.dx, plan.dy)
        return value, (fft.dctn(gradient, norm="ortho") * scale).ravel().astype(np.float64)

    result = optimize.minimize(energy, np.zeros(z0.size), jac=True, method="L-BFGS-B",
                               options={"maxiter": plan.iterations}, callback=(lambda _: check()) if check else None)
    refined = z0 + fft.idctn(result.x.reshape(z0.shape).astype(np.float32) * scale, norm="ortho")
    return refined[:rows, :cols].astype(heights.dtype, copy=False)
