"""Seeded on-the-fly simulator of Mars-like (image, relief) training pairs.

numpy + scipy only.  Never imported by the plugin.

Conventions
-----------
* Array row 0 = north (up), column 0 = west (left).  x = east = +column,
  y = north = -row.
* Ground sampling distance GSD = 50 m/px (constant, ``GSD_M``).
* Sun azimuth fixed to 270 deg (light from the west = from the left edge),
  azimuth clockwise from north; sun elevation random 15..65 deg; nadir view.
  Matches ``gdaldem hillshade -az 270`` (west-facing slopes are bright); see
  ``training/check_simulator.py``.
* Target (JMARS convention): relief = h - min(h) over the sample, metres.

Seeds: training uses seeds < 10**9; the held-out synthetic test set uses
seeds >= 10**9 (``HELDOUT_SEED0``) and is never used for training.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from terrain import render as terrain_render
from terrain.render import fbm

GSD_M = 50.0
SUN_AZIMUTH_DEG = 270.0
HELDOUT_SEED0 = 10 ** 9

RECIPE = (
    "Mars-like simulator v1: spectral fBm (beta 1.6-2.6, log-uniform RMS slope "
    "0.002-0.25) + power-law crater populations (5-300, cum. slope -1.6..-2.2) (Garvin&Frawley 1998 d/D, "
    "simple<7km<complex, rim 0.25d, ejecta (r/R)^-3, central peaks, flat floors, "
    "degradation by infill+smoothing) + wrinkle ridges (25%) + dunes (15%); "
    "GSD 50 m; sun az 270, el 15-65; Lambert/Lunar-Lambert/Hapke, exact cast "
    "shadows, haze 0-0.3, albedo fBm 0.8-1.2 + patches; blur 0-1.2 px, "
    "Gaussian+Poisson noise, 70% percentile stretch / 30% absolute 255*R/Rmax, "
    "8-bit"
)


# ----------------------------------------------------------------------------
# terrain
# ----------------------------------------------------------------------------
def rms_slope(h: np.ndarray, gsd: float = GSD_M) -> float:
    gy, gx = np.gradient(h, gsd)
    return float(np.sqrt(np.mean(gx * gx + gy * gy)))


def crater_depth_km(D_km: float) -> float:
    """Garvin & Frawley (1998) Mars depth/diameter, D and d in km."""
    if D_km < 7.0:
        return 0.14 * D_km ** 0.90
    return 0.25 * D_km ** 0.49


def _add_crater(h, rng, cy, cx, R_px, age):
    """Add one crater (centre cy, cx in px, radius R_px) to h in place."""
    n0, n1 = h.shape
    D_km = 2.0 * R_px * GSD_M / 1000.0
    d_m = crater_depth_km(D_km) * 1000.0
    complex_ = D_km >= 7.0
    rim_m = 0.25 * d_m
    # degradation: shallower, lower rim, infilled, smoothed
    depth = d_m * (1.0 - 0.6 * age)
    rim = rim_m * (1.0 - 0.8 * age)
    ext = 3.0 * R_px  # ejecta extent
    y0, y1 = int(max(0, math.floor(cy - ext))), int(min(n0, math.ceil(cy + ext) + 1))
    x0, x1 = int(max(0, math.floor(cx - ext))), int(min(n1, math.ceil(cx + ext) + 1))
    if y0 >= y1 or x0 >= x1:
        return
    yy = np.arange(y0, y1, dtype=np.float64)[:, None] - cy
    xx = np.arange(x0, x1, dtype=np.float64)[None, :] - cx
    # slight ellipticity / rim irregularity
    r = np.sqrt(yy * yy + xx * xx) / R_px
    if R_px > 6:
        th = np.arctan2(yy, xx)
        r = r * (1.0 + 0.03 * rng.standard_normal() * np.cos(2 * th + rng.uniform(0, 6.3))
                 + 0.02 * rng.standard_normal() * np.cos(3 * th + rng.uniform(0, 6.3)))
    inside = r < 1.0
    prof = np.empty_like(r)
    if complex_:
        rf = rng.uniform(0.35, 0.6)  # flat floor radius fraction
        t = np.clip((1.0 - r * r) / (1.0 - rf * rf), 0.0, 1.0)
        prof_in = rim - depth * t
        # central peak
        hp = depth * rng.uniform(0.2, 0.5) * (1.0 - 0.5 * age)
        wp = rng.uniform(0.08, 0.15)
        prof_in = prof_in + hp * np.exp(-(r / wp) ** 2)
    else:
        prof_in = rim - depth * (1.0 - r * r)
    # infill of older craters
    if age > 0.05:
        floor = rim - depth
        prof_in = np.maximum(prof_in, floor + age * 0.5 * depth)
    rr = np.maximum(r, 1.0)
    taper = np.clip((3.0 - rr) / 1.0, 0.0, 1.0)
    prof_out = rim * rr ** -3.0 * taper
    prof = np.where(inside, prof_in, prof_out)
    sig = age * 0.25 * R_px
    if sig > 0.5:
        prof = ndimage.gaussian_filter(prof, sig, mode="nearest")
    # partial reset of pre-existing topography inside the crater
    win = h[y0:y1, x0:x1]
    m = 0.8 * (1.0 - age) * np.clip((1.1 - r) / 0.3, 0.0, 1.0)
    base = win.mean()
    h[y0:y1, x0:x1] = win * (1.0 - m) + base * m + prof


def add_craters(h, rng):
    n = h.shape[0]
    if rng.random() < 0.1:
        return 0
    count = int(round(math.exp(rng.uniform(math.log(5), math.log(300)))))
    Dmin, Dmax = 4.0, rng.uniform(0.2, 1.2) * n
    # pdf ~ D^-(a+1) (cumulative slope -a, a 1.6-2.2) between Dmin and Dmax
    u = rng.random(count)
    a = float(rng.uniform(1.6, 2.2))
    D = (Dmin ** -a - u * (Dmin ** -a - Dmax ** -a)) ** (-1.0 / a)
    ages = rng.random(count) ** 0.7
    order = np.argsort(-ages)  # oldest first, freshest last (superposition)
    for i in order:
        R = D[i] / 2.0
        cy = rng.uniform(-0.3 * R, n + 0.3 * R)
        cx = rng.uniform(-0.3 * R, n + 0.3 * R)
        _add_crater(h, rng, cy, cx, R, float(ages[i]))
    return count


def add_ridges(h, rng):
    n = h.shape[0]
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    for _ in range(rng.integers(1, 4)):
        th = rng.uniform(0, math.pi)
        py, px = rng.uniform(0, n, 2)
        c, s = math.cos(th), math.sin(th)
        along = (xx - px) * c + (yy - py) * s
        across = -(xx - px) * s + (yy - py) * c
        lam = rng.uniform(0.5, 2.0) * n
        across = across + rng.uniform(2, 12) * np.sin(2 * math.pi * along / lam + rng.uniform(0, 6.3))
        A1, w1 = rng.uniform(30, 200), rng.uniform(15, 60)
        A2, w2 = rng.uniform(20, 150), rng.uniform(2.5, 10)
        off = rng.uniform(-0.5, 0.5) * w1
        L = rng.uniform(0.4, 1.5) * n
        taper = np.clip((L / 2 - np.abs(along)) / (0.2 * L), 0, 1)
        h += taper * (A1 * np.exp(-(across / w1) ** 2) + A2 * np.exp(-((across - off) / w2) ** 2))


def add_dunes(h, rng):
    n = h.shape[0]
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    th = rng.uniform(0, 2 * math.pi)
    u = xx * math.cos(th) + yy * math.sin(th)
    lam = rng.uniform(6, 25)
    A = rng.uniform(5, 40)
    ph = 2 * math.pi * u / lam + 0.8 * np.sin(2 * math.pi * (xx * -math.sin(th) + yy * math.cos(th)) / rng.uniform(40, 200))
    crest = A * (np.sin(ph) + 0.3 * np.sin(2 * ph + 0.5 * math.pi))
    if rng.random() < 0.6:  # dune field patch
        mask = fbm(rng, n, 3.0)
        mask = np.clip((mask - rng.uniform(-0.5, 0.8)) * rng.uniform(0.7, 2.0), 0, 1)
    else:
        mask = 1.0
    h += crest * mask


def make_terrain(rng, n: int) -> np.ndarray:
    beta = rng.uniform(1.6, 2.6)
    f = fbm(rng, n, beta)
    target = math.exp(rng.uniform(math.log(0.002), math.log(0.25)))
    h = f * (target / max(rms_slope(f), 1e-12))
    add_craters(h, rng)
    if rng.random() < 0.25:
        add_ridges(h, rng)
    if rng.random() < 0.15:
        add_dunes(h, rng)
    return h


# ----------------------------------------------------------------------------
# rendering
# ----------------------------------------------------------------------------
def render(h: np.ndarray, rng, sun_el_deg: float | None = None):
    """Render a simulated DEM (metres at GSD_M) with the shared renderer: (uint8 image, sun elevation)."""
    el = float(rng.uniform(15.0, 65.0)) if sun_el_deg is None else float(sun_el_deg)
    return terrain_render.render(h / GSD_M, rng, el), el


def sample(seed: int, size: int = 256):
    """One (image uint8 [size,size], relief float32 metres, info) pair."""
    rng = np.random.default_rng(seed)
    h = make_terrain(rng, size)
    img, sun_el = render(h, rng)
    relief = (h - h.min()).astype(np.float32)
    return img, relief, {"seed": seed, "sun_el": sun_el}


def batch(seeds, size: int = 256):
    """Stack samples: images float32 in [-1,1] (v/127.5-1), relief float32 in metres."""
    xs, ys = [], []
    for s in seeds:
        img, rel, _ = sample(int(s), size)
        xs.append(img.astype(np.float32) / 127.5 - 1.0)
        ys.append(rel)
    return np.stack(xs)[:, None], np.stack(ys)[:, None]


if __name__ == "__main__":
    import time
    t = time.perf_counter()
    for s in range(50):
        img, rel, info = sample(s, 256)
    dt = (time.perf_counter() - t) / 50
    print(f"{dt*1000:.1f} ms / 256x256 pair; last relief max {rel.max():.0f} m, info {info}")
