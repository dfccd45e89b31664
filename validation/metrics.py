"""Accuracy metrics of an estimated DTM against the true DEM (numpy + scipy only).

Every function takes two 2-D float arrays of the same shape in which NaN marks an invalid pixel;
a pixel counts only where both are finite. `case_metrics` first crops `border` pixels on each
side (gdaldem's edge pixels are extrapolated), then computes:

* ``r``            Pearson r of prediction and truth (global shape; scale and offset free);
* ``detail_r``     Pearson r of the high-pass parts, x - G_sigma(x) with sigma = 8 px;
* ``ssim``         mean SSIM (Wang et al. 2004) of both arrays, each min-max normalised to [0, 1]
                   over its valid pixels: Gaussian window sigma 1.5 px (truncated at 3.5 sigma,
                   11×11 like scikit-image's ``gaussian_weights=True``), C1 = 0.01², C2 = 0.03²,
                   data range 1, population (weighted) moments; the map is averaged over pixels
                   whose whole window lies inside the valid area (5 px from its edges);
* ``relief_rmse_m`` RMSE in metres of (pred - min pred) against (truth - min truth);

and, as a diagnostic outside the bar:

* ``tilt_free_r``  Pearson r after removing from each array its own least-squares plane: the shape of
                   the relief without the regional tilt, which a uniform change of brightness hides from
                   shading (and which HEIGHTS=reference takes from a reference DEM);
* ``across_sun_r`` (given the sun's azimuth) Pearson r after the prediction's least-squares slope
                   across the sun's direction is replaced by the truth's. Shading carries the slope
                   towards the sun (ground tilted towards it is brighter) but not, to first order, the
                   slope across it (cos i changes with its square only, whichever way the ground falls),
                   so this is r without the one part of the regional tilt an image does not show.

Blurs of masked arrays are normalised convolutions, G(m·x) / G(m), so invalid pixels never leak; the
detail r blur pads by point reflection, so a regional tilt leaves no high-pass residual at the edges.
"""
import numpy as np
from scipy import ndimage

DETAIL_SIGMA = 8.0
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
BORDER = 2
METRICS = ("r", "detail_r", "ssim", "relief_rmse_m")
HIGHER_IS_BETTER = {"r": True, "detail_r": True, "ssim": True, "relief_rmse_m": False}
DIAGNOSTICS = ("tilt_free_r", "across_sun_r")  # reported beside METRICS, never part of the bar


def _joint_valid(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"need two 2-D arrays of the same shape, got {a.shape} and {b.shape}")
    return a, b, np.isfinite(a) & np.isfinite(b)


def crop(array, border=BORDER):
    return array[border:array.shape[0] - border, border:array.shape[1] - border] if border else array


def pearson(a, b):
    """Pearson r over pixels valid in both; NaN when either is constant there."""
    a, b, valid = _joint_valid(a, b)
    x, y = a[valid], b[valid]
    if x.size < 2:
        return float("nan")
    x = x - x.mean()
    y = y - y.mean()
    denominator = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denominator) if denominator > 0 else float("nan")


def plane_fit(values):
    """(coefficients a, b, c of the least-squares plane a + b·column + c·row, design matrix, mask) over the
    finite pixels; coefficients None where fewer than 3 are."""
    valid = np.isfinite(values)
    if valid.sum() < 3:
        return None, None, valid
    rows, cols = np.nonzero(valid)
    design = np.column_stack([np.ones(rows.size), cols, rows])
    coefficients, *_ = np.linalg.lstsq(design, values[valid], rcond=None)
    return coefficients, design, valid


def remove_plane(values):
    """values minus their least-squares plane a + b·column + c·row, fitted on the finite pixels."""
    values = np.asarray(values, np.float64)
    coefficients, design, valid = plane_fit(values)
    out = values.copy()
    if coefficients is not None:
        out[valid] -= design @ coefficients
    return out


def across_sun_part(values, sun_azimuth):
    """The part of values' least-squares plane that runs across the sun's direction (module docstring), as an
    array (NaN where values are). Azimuth: degrees clockwise from north; row 0 is north."""
    values = np.asarray(values, np.float64)
    coefficients, design, valid = plane_fit(values)
    part = np.full(values.shape, np.nan)
    if coefficients is not None:
        angle = np.deg2rad(sun_azimuth)
        across_x, across_y = np.cos(angle), np.sin(angle)  # per column and per row: at right angles to the sun's line
        slope = coefficients[1] * across_x + coefficients[2] * across_y
        part[valid] = slope * (design[:, 1] * across_x + design[:, 2] * across_y)
    return part


def across_sun_r(pred, truth, sun_azimuth):
    """Pearson r of the prediction given the truth's least-squares slope across the sun's direction in place
    of its own (module docstring), over the pixels valid in both."""
    pred, truth, valid = _joint_valid(pred, truth)
    pred, truth = np.where(valid, pred, np.nan), np.where(valid, truth, np.nan)
    return pearson(pred - across_sun_part(pred, sun_azimuth) + across_sun_part(truth, sun_azimuth), truth)


def tilt_free_r(a, b):
    """Pearson r of the two arrays, each less its own plane, over the pixels valid in both."""
    a, b, valid = _joint_valid(a, b)
    return pearson(remove_plane(np.where(valid, a, np.nan)), remove_plane(np.where(valid, b, np.nan)))


def masked_gaussian(values, valid, sigma, truncate=4.0, linear_edges=False):
    """Normalised convolution G(m·x) / G(m), and G(m) (the share of the window that is valid).

    linear_edges: pad the values by point (odd) reflection, which keeps linear trends, so a tilted
    surface has no blur residual at the array's edges (invalid pixels are first given their nearest
    valid value, with zero weight); otherwise scipy's even 'reflect'.
    """
    weights = valid.astype(np.float64)
    if linear_edges:
        if not valid.all():
            index = ndimage.distance_transform_edt(~valid, return_distances=False, return_indices=True)
            values = values[tuple(index)]
        pad = int(truncate * sigma + 0.5) + 1
        pad_y, pad_x = min(pad, values.shape[0] - 1), min(pad, values.shape[1] - 1)
        widths = ((pad_y, pad_y), (pad_x, pad_x))
        values = np.pad(values, widths, mode="reflect", reflect_type="odd")
        weights = np.pad(weights, widths, mode="reflect")
        inner = (slice(pad_y, values.shape[0] - pad_y), slice(pad_x, values.shape[1] - pad_x))
    else:
        inner = (slice(None), slice(None))
    filled = values * weights
    numerator = ndimage.gaussian_filter(filled, sigma, mode="reflect", truncate=truncate)[inner]
    support = ndimage.gaussian_filter(weights, sigma, mode="reflect", truncate=truncate)[inner]
    blurred = np.divide(numerator, support, out=np.zeros_like(numerator), where=support > 1e-12)
    return blurred, support


def high_pass(values, valid, sigma=DETAIL_SIGMA):
    blurred, _ = masked_gaussian(values, valid, sigma, linear_edges=True)
    return np.where(valid, values - blurred, np.nan)


def detail_r(a, b, sigma=DETAIL_SIGMA):
    """Pearson r of (a - G_sigma a) and (b - G_sigma b): agreement of the fine relief only."""
    a, b, valid = _joint_valid(a, b)
    return pearson(high_pass(a, valid, sigma), high_pass(b, valid, sigma))


def minmax(values, valid):
    low, high = values[valid].min(), values[valid].max()
    if high <= low:
        raise ValueError("cannot min-max normalise a constant array")
    return np.where(valid, (values - low) / (high - low), 0.0)


def ssim(a, b, sigma=SSIM_SIGMA, k1=SSIM_K1, k2=SSIM_K2, truncate=SSIM_TRUNCATE):
    """Mean SSIM of a and b, each min-max normalised to [0, 1] (data range L = 1)."""
    a, b, valid = _joint_valid(a, b)
    if valid.sum() < 2:
        return float("nan")
    try:
        x, y = minmax(a, valid), minmax(b, valid)
    except ValueError:
        return float("nan")
    c1, c2 = (k1 * 1.0) ** 2, (k2 * 1.0) ** 2
    mu_x, support = masked_gaussian(x, valid, sigma, truncate)
    mu_y, _ = masked_gaussian(y, valid, sigma, truncate)
    xx, _ = masked_gaussian(x * x, valid, sigma, truncate)
    yy, _ = masked_gaussian(y * y, valid, sigma, truncate)
    xy, _ = masked_gaussian(x * y, valid, sigma, truncate)
    var_x, var_y, cov = xx - mu_x ** 2, yy - mu_y ** 2, xy - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    radius = int(truncate * sigma + 0.5)
    inside = ndimage.binary_erosion(valid, np.ones((2 * radius + 1,) * 2, bool), border_value=0)
    if not inside.any():  # too small for a full window anywhere: average over the valid pixels
        inside = valid
    return float(ssim_map[inside].mean())


def relief_rmse(pred, truth):
    """RMSE (metres) of relief above the minimum: (pred - min pred) vs (truth - min truth)."""
    pred, truth, valid = _joint_valid(pred, truth)
    if not valid.any():
        return float("nan")
    p = pred[valid] - pred[valid].min()
    t = truth[valid] - truth[valid].min()
    return float(np.sqrt(np.mean((p - t) ** 2)))


def case_metrics(pred, truth, border=BORDER, sun_azimuth=None):
    """All four metrics and the diagnostics on the pixels valid in both, after cropping `border` px on each
    side; across_sun_r only where the sun's azimuth is given."""
    pred = crop(np.asarray(pred, np.float64), border)
    truth = crop(np.asarray(truth, np.float64), border)
    pred = np.where(np.isfinite(truth), pred, np.nan)
    truth = np.where(np.isfinite(pred), truth, np.nan)
    return {"r": pearson(pred, truth), "detail_r": detail_r(pred, truth), "ssim": ssim(pred, truth),
            "relief_rmse_m": relief_rmse(pred, truth), "tilt_free_r": tilt_free_r(pred, truth),
            "valid_pixels": int(np.isfinite(pred).sum()),
            **({} if sun_azimuth is None else {"across_sun_r": across_sun_r(pred, truth, sun_azimuth)})}
