"""Physics baseline: Pentland's linear shape from shading (Pentland 1990, "Linear shape from shading",
IJCV 4:153-162), given the TRUE sun azimuth and elevation.

Derivation in this project's conventions (gdaldem's): array row 0 is north and rows go south,
column 0 is west and columns go east, azimuth is clockwise from north, z is HEIGHT (up).
The unit vector towards the sun is s = (sin az·cos el, cos az·cos el, sin el) in (east, north, up),
a Lambertian surface z(x, y) has the normal n ∝ (-∂z/∂east, -∂z/∂north, 1), and to first order in the
slopes

    I / I0 = n·s ≈ sin el - cos el · (sin az · ∂z/∂east + cos az · ∂z/∂north).

With ∂z/∂east = ∂z/∂col / dx and ∂z/∂north = -∂z/∂row / dy, and numpy's FFT (X(f) = Σ x e^{-2πi f n},
so ∂/∂n ↔ 2πi f, f in cycles per pixel):

    Î(f) = -I0 · cos el · 2πi · (sin az · f_col / dx - cos az · f_row / dy) · Ẑ(f)        (f ≠ 0)

and Z is this division back. Pentland writes the same with the slant σ (sin σ = cos el), the tilt
τ = 90° - az (counter-clockwise from east) and depth instead of height, which flips the sign:
Z(ω) = I(ω) / (i·2π·(ωx·cosτ·sinσ + ωy·sinτ·sinσ)) with ωy pointing north. Frequencies whose
denominator is ~0 (the direction perpendicular to the sun, which shading cannot see, and DC) are set
to 0. Against wrap-around the image (minus its mean) is tapered with a Tukey window and zero-padded
to twice its size before the FFT. I0 is the brightness of a facet facing the sun: 255 for gdaldem's
8-bit hillshade (albedo 1), so the result is in metres when dx, dy are.

The sign convention is checked in tests/test_validation_metrics.py on a gdaldem render.
"""
import numpy as np
from scipy import fft as sfft

FULL_SCALE = 255.0
GUARD = 0.001   # cycles/px: |directional frequency| below this is set to 0 (chosen on simulator terrain)
TAPER = 0.05    # Tukey window: fraction of each side tapered (chosen on simulator terrain)


def tukey(length, fraction=TAPER):
    window = np.ones(length)
    ramp = int(np.floor(fraction * length))
    if ramp > 0:
        t = (np.arange(ramp) + 0.5) / ramp
        window[:ramp] = 0.5 - 0.5 * np.cos(np.pi * t)
        window[length - ramp:] = window[:ramp][::-1]
    return window


def pentland(image, azimuth_deg, altitude_deg, dx=1.0, dy=None, full_scale=FULL_SCALE,
             guard=GUARD, taper=TAPER, pad_factor=2):
    """Height (metres when dx, dy are, zero mean) from one shaded image lit from (azimuth, altitude)."""
    dy = dx if dy is None else dy
    image = np.asarray(image, np.float64)
    valid = np.isfinite(image)
    fill = image[valid].mean() if valid.any() else 0.0
    centred = np.where(valid, image, fill) - fill
    height, width = centred.shape
    windowed = centred * np.outer(tukey(height, taper), tukey(width, taper))
    size = (sfft.next_fast_len(pad_factor * height), sfft.next_fast_len(pad_factor * width))
    spectrum = sfft.rfft2(windowed / full_scale, s=size)
    f_row = sfft.fftfreq(size[0])[:, None]          # cycles per pixel along rows (southwards)
    f_col = sfft.rfftfreq(size[1])[None, :]         # cycles per pixel along columns (eastwards)
    az, el = np.deg2rad(azimuth_deg), np.deg2rad(altitude_deg)
    pixel = np.sqrt(dx * dy)
    directional = np.sin(az) * f_col * (pixel / dx) - np.cos(az) * f_row * (pixel / dy)  # cycles per px
    denominator = -np.cos(el) * 2j * np.pi * directional / pixel                        # per metre
    keep = np.abs(directional) > guard
    z_spectrum = np.zeros_like(spectrum)
    z_spectrum[keep] = spectrum[keep] / denominator[keep]
    z = sfft.irfft2(z_spectrum, s=size)[:height, :width]
    return (z - z.mean()).astype(np.float64)


def synthetic_smooth_dem(height=200, width=300):
    """A smooth test surface (metres): a hill, a basin and a gentle wave pattern."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    return (200.0 * np.exp(-((yy - 0.4 * height) ** 2 + (xx - width / 3.0) ** 2) / (2 * 30.0 ** 2))
            - 150.0 * np.exp(-((yy - 0.65 * height) ** 2 + (xx - 0.7 * width) ** 2) / (2 * 25.0 ** 2))
            + 50.0 * np.sin(xx / 23.0) * np.cos(yy / 31.0))


def gdal_hillshade_array(dem, azimuth, altitude, pixel, pixel_y=None):
    """gdal.DEMProcessing hillshade (Byte, computeEdges) of an in-memory north-up DEM, as float64.

    pixel: the pixel's width (and height, unless pixel_y gives another one), in the DEM's units."""
    from osgeo import gdal
    gdal.UseExceptions()
    ds = gdal.GetDriverByName("MEM").Create("", dem.shape[1], dem.shape[0], 1, gdal.GDT_Float32)
    ds.SetGeoTransform((0.0, pixel, 0.0, 0.0, 0.0, -(pixel_y or pixel)))
    ds.GetRasterBand(1).WriteArray(dem.astype(np.float32))
    out = gdal.DEMProcessing("", ds, "hillshade", format="MEM", azimuth=azimuth, altitude=altitude,
                             computeEdges=True)
    return out.GetRasterBand(1).ReadAsArray().astype(np.float64)


def sign_check(azimuths=(270.0, 315.0, 225.0, 0.0, 90.0, 180.0), altitude=45.0, pixel=30.0):
    """Pearson r of Pentland's height with the DEM, on gdaldem renders of a smooth synthetic DEM:
    {azimuth: (r with the true azimuth, r with the opposite azimuth)}. Right signs: first > 0 > second."""
    dem = synthetic_smooth_dem()
    inner = (slice(2, -2), slice(2, -2))
    result = {}
    for azimuth in azimuths:
        image = gdal_hillshade_array(dem, azimuth, altitude, pixel)
        pairs = []
        for used in (azimuth, (azimuth + 180.0) % 360.0):
            z = pentland(image, used, altitude, pixel)
            pairs.append(float(np.corrcoef(z[inner].ravel(), dem[inner].ravel())[0, 1]))
        result[float(azimuth)] = tuple(pairs)
    return result
