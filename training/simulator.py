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
def _kgrid(n: int):
    ky = np.fft.fftfreq(n)[:, None]
    kx = np.fft.rfftfreq(n)[None, :]
    return np.sqrt(kx * kx + ky * ky)


def fbm(rng: np.random.Generator, n: int, beta: float) -> np.ndarray:
    """Zero-mean spectral fBm with power spectrum ~ k^-beta, unit std."""
    k = _kgrid(n)
    k[0, 0] = 1.0
    amp = k ** (-beta / 2.0)
    amp[0, 0] = 0.0
    spec = (rng.standard_normal(k.shape) + 1j * rng.standard_normal(k.shape)) * amp
    f = np.fft.irfft2(spec, s=(n, n))
    f -= f.mean()
    s = f.std()
    return f / (s if s > 0 else 1.0)


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
_HORN_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def incidence(h: np.ndarray, sun_el_deg: float, gsd: float = GSD_M,
              sun_az_deg: float = SUN_AZIMUTH_DEG):
    """cos(i), cos(e) for a nadir view; metric slopes; north = row 0."""
    # Horn (1981) 3x3 gradient, as gdaldem uses
    dh_dcol = ndimage.correlate(h, _HORN_X, mode="nearest") / (8.0 * gsd)
    dh_drow = ndimage.correlate(h, _HORN_X.T, mode="nearest") / (8.0 * gsd)
    p = dh_dcol          # dz/dx, x = east
    q = -dh_drow         # dz/dy, y = north
    az, el = math.radians(sun_az_deg), math.radians(sun_el_deg)
    sx, sy, sz = math.sin(az) * math.cos(el), math.cos(az) * math.cos(el), math.sin(el)
    norm = np.sqrt(1.0 + p * p + q * q)
    cos_i = (-p * sx - q * sy + sz) / norm
    cos_e = 1.0 / norm
    return cos_i, cos_e


def cast_shadow(h: np.ndarray, sun_el_deg: float, gsd: float = GSD_M) -> np.ndarray:
    """Exact horizon scan for sun az 270 (light travels left->right along rows).

    Pixel j is shadowed if some k < j has h[k] - (j-k)*gsd*tan(el) > h[j],
    i.e. running max of g = h + col*gsd*tan(el) over k < j exceeds g[j].
    """
    t = math.tan(math.radians(sun_el_deg)) * gsd
    g = h + np.arange(h.shape[1])[None, :] * t
    run = np.maximum.accumulate(g, axis=1)
    prev = np.empty_like(run)
    prev[:, 0] = -np.inf
    prev[:, 1:] = run[:, :-1]
    return prev > g + 1e-9


def _hapke_H(x, w):
    return (1.0 + 2.0 * x) / (1.0 + 2.0 * x * math.sqrt(1.0 - w))


def reflectance(model: dict, cos_i, cos_e, phase_rad: float):
    mu0 = np.maximum(cos_i, 0.0)
    mu = np.maximum(cos_e, 1e-6)
    kind = model["kind"]
    if kind == "lambert":
        return mu0
    if kind == "lunar_lambert":
        L = model["L"]
        return 2.0 * L * mu0 / (mu0 + mu) + (1.0 - L) * mu0
    # simplified Hapke (no opposition surge, no macroscopic roughness)
    w, b = model["w"], model["b"]
    cg = math.cos(phase_rad)
    P = (1.0 - b * b) / (1.0 + 2.0 * b * cg + b * b) ** 1.5
    return w / 4.0 * mu0 / (mu0 + mu) * (P + _hapke_H(mu0, w) * _hapke_H(mu, w) - 1.0)


def random_model(rng) -> dict:
    u = rng.random()
    if u < 0.34:
        return {"kind": "lambert"}
    if u < 0.67:
        return {"kind": "lunar_lambert", "L": float(rng.uniform(0.3, 1.0))}
    return {"kind": "hapke", "w": float(rng.uniform(0.15, 0.9)), "b": float(rng.uniform(-0.4, 0.4))}


def albedo_map(rng, n):
    a = 1.0 + 0.1 * np.clip(fbm(rng, n, rng.uniform(2.5, 3.5)), -2, 2)  # 0.8..1.2
    if rng.random() < 0.5:
        yy, xx = np.mgrid[0:n, 0:n]
        for _ in range(rng.integers(1, 5)):
            cy, cx = rng.uniform(0, n, 2)
            ry, rx = rng.uniform(0.05, 0.3, 2) * n
            m = (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2) < 1.0
            m = ndimage.gaussian_filter(m.astype(np.float64), rng.uniform(1, 6))
            a = a * (1.0 + rng.uniform(-0.15, 0.15) * m)
    return a


def render(h: np.ndarray, rng, sun_el_deg: float | None = None, params: dict | None = None):
    """Render a DEM (metres) into an 8-bit image. Returns (uint8 image, params)."""
    n0, n1 = h.shape
    p = {} if params is None else dict(params)
    el = float(rng.uniform(15.0, 65.0)) if sun_el_deg is None else float(sun_el_deg)
    model = p.get("model") or random_model(rng)
    cos_i, cos_e = incidence(h, el)
    phase = math.radians(90.0 - el)
    R = reflectance(model, cos_i, cos_e, phase)
    # reference: a facet facing the sun (mu0 = 1, mu = sin(el)), mean albedo
    R_ref = float(reflectance(model, np.array([1.0]), np.array([math.sin(math.radians(el))]), phase)[0])
    if p.get("shadows", True):
        R = np.where(cast_shadow(h, el), 0.0, R)
    if p.get("albedo", True):
        R = R * albedo_map(rng, max(n0, n1))[:n0, :n1]
    haze = float(rng.uniform(0.0, 0.3)) if (p.get("haze", True) and rng.random() < 0.4) else 0.0
    I = (R + haze * R_ref) / (R_ref * (1.0 + haze))
    if p.get("sensor", True):
        sig = rng.uniform(0.0, 1.2)
        if sig > 0.05:
            I = ndimage.gaussian_filter(I, sig, mode="nearest")
        k = math.exp(rng.uniform(math.log(1e-4), math.log(3e-3)))
        s0 = rng.uniform(0.002, 0.02)
        I = I + rng.standard_normal(I.shape) * np.sqrt(k * np.maximum(I, 0) + s0 * s0)
    stretch = p.get("stretch")
    if stretch is None:
        stretch = rng.random() < 0.7
    if stretch:
        lo = np.percentile(I, rng.uniform(0.0, 2.0))
        hi = np.percentile(I, rng.uniform(98.0, 100.0))
        img = np.clip(np.round((I - lo) / max(hi - lo, 1e-6) * 255.0), 0, 255)
    else:
        img = np.clip(np.round(255.0 * I), 1, 255)
    p.update(sun_el=el, model=model, haze=haze, stretch=bool(stretch))
    return img.astype(np.uint8), p


def sample(seed: int, size: int = 256):
    """One (image uint8 [size,size], relief float32 metres, info) pair."""
    rng = np.random.default_rng(seed)
    h = make_terrain(rng, size)
    img, info = render(h, rng)
    relief = (h - h.min()).astype(np.float32)
    info["seed"] = seed
    return img, relief, info


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
