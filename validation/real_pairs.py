"""Real image–DEM pairs: a real orbital image averaged onto its DEM's grid, and the sun it was taken under.

The one pair used: mars/mars_hirise_gale_crater_floor (a held-out site, never trained on), HiRISE DTM
DTEEC_009650_1755_009716_1755_U01 at 4.98 m (200×200, relative heights) and its HiRISE RED orthoimage
(2048² at 0.486 m, the same 996 m extent); provenance in ../shared/training-dems/MANIFEST.md. The image's
sun is not recorded there, so it is ESTIMATED from the truth: the azimuth and elevation whose gdaldem
hillshade of the DEM correlates best with the image — a stand-in for the image's own metadata.
In the linear regime of shading the elevation only scales the contrast, which a correlation ignores, so
the elevation is weakly determined (it matters only to Pentland's relief amplitude); the azimuth is sharp.
"""
import os

import numpy as np
from osgeo import gdal

from validation.metrics import crop, pearson
from validation.pentland import gdal_hillshade_array
from validation.scenes import Scene, box_average

gdal.UseExceptions()

REAL_PAIRS = ("mars/mars_hirise_gale_crater_floor",)
COARSE_AZIMUTH_STEP, FINE_AZIMUTH_STEP = 5.0, 1.0
ELEVATIONS = tuple(float(e) for e in range(10, 81, 5))
REAL_FACTORS = (1, 2)  # the DEM grid and 2× coarser (image and truth averaged alike)


def ortho_path(site):
    from terrain import corpus
    return os.path.join(corpus.TRAINING_DEMS, site + "_ortho.tif")


def average_onto_grid(image_path, dem_path, factor=1):
    """The image area-averaged (gdal.Warp 'average') onto the DEM's grid coarsened `factor` times, as the
    DEM is by scenes.box_average (the grid cropped to whole blocks). Same extent is required."""
    dem = gdal.Open(dem_path)
    image = gdal.Open(image_path)
    gt, it = dem.GetGeoTransform(), image.GetGeoTransform()
    dem_extent = (gt[0], gt[3] + gt[5] * dem.RasterYSize, gt[0] + gt[1] * dem.RasterXSize, gt[3])
    image_extent = (it[0], it[3] + it[5] * image.RasterYSize, it[0] + it[1] * image.RasterXSize, it[3])
    if not np.allclose(dem_extent, image_extent, atol=0.5 * abs(gt[1])):
        raise ValueError(f"{image_path} covers {image_extent}, not the DEM's extent {dem_extent}")
    cols, rows = dem.RasterXSize // factor, dem.RasterYSize // factor
    bounds = (gt[0], gt[3] + gt[5] * rows * factor, gt[0] + gt[1] * cols * factor, gt[3])
    warped = gdal.Warp("", image, format="MEM", outputBounds=bounds, width=cols, height=rows,
                       resampleAlg="average", outputType=gdal.GDT_Float32)
    return warped.GetRasterBand(1).ReadAsArray().astype(np.float64)


def shading_fit(filled, valid, image, pixel, azimuth, elevation):
    """Pearson r of the gdaldem hillshade of `filled` (the truth with NaN filled by the nearest value,
    for shading only) with `image` (already cropped), scored where the truth is `valid`, lit from
    (azimuth, elevation)."""
    shade = gdal_hillshade_array(filled, azimuth, elevation, pixel)
    return pearson(crop(np.where(valid, shade, np.nan)), image)


def estimate_sun(truth, image, pixel):
    """(azimuth, elevation, r): the sun whose hillshade of the truth best matches the image; every
    ELEVATIONS × 5° azimuths, then 1° azimuths within ±5° of the best."""
    from terrain.render import fill_nearest
    filled, valid, image = fill_nearest(truth), np.isfinite(truth), crop(image)  # once, not per sun

    def best(azimuths):
        fits = [(shading_fit(filled, valid, image, pixel, a, e), a, e) for a in azimuths for e in ELEVATIONS]
        return max(fits)
    r, azimuth, _ = best(np.arange(0.0, 360.0, COARSE_AZIMUTH_STEP))
    fine = (azimuth + np.arange(-COARSE_AZIMUTH_STEP, COARSE_AZIMUTH_STEP + 0.5, FINE_AZIMUTH_STEP)) % 360.0
    r, azimuth, elevation = best(fine)
    return float(azimuth), float(elevation), float(r)


def real_scenes(names=None, factors=REAL_FACTORS):
    """The real image–DEM pairs as Scenes at each factor (image and truth averaged alike); the sun is
    estimated once, at the DEM's own grid, and used for every factor."""
    from terrain import corpus
    scenes = []
    for site in REAL_PAIRS:
        if names and site not in names and site.split("/")[-1] not in names:
            continue
        dem_path = os.path.join(corpus.TRAINING_DEMS, site + ".tif")
        dem = corpus.read_dem(dem_path)
        truth = dem.heights.astype(np.float64)
        native = average_onto_grid(ortho_path(site), dem_path)
        azimuth, elevation, fit = estimate_sun(truth, native, dem.pixel_m)
        note = (f"HiRISE orthoimage averaged onto the DEM grid; sun ESTIMATED from the truth (best gdaldem "
                f"hillshade fit r {fit:.3f}): azimuth {azimuth:g}°, elevation {elevation:g}° (weakly determined)")
        if dem.relative:
            note += f"; relative heights scaled to a guessed {corpus.RELATIVE_RELIEF_GUESS_M[site]:g} m relief"
        for factor in factors:
            image = native if factor == 1 else average_onto_grid(ortho_path(site), dem_path, factor)
            scenes.append(Scene("real", site, factor, box_average(truth, factor), dem.dx * factor,
                                dem.dy * factor, note, image=np.round(image), sun=(azimuth, elevation)))
    return scenes
