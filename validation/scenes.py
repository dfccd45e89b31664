"""The truths validation scores against, at several pixel sizes, and their gdaldem renders.

A Scene is one truth DEM in metres (NaN = invalid) on a north-up grid of dx × dy m pixels, at `factor`
times its source's pixel size (the source box-averaged factor × factor). Sets:

* ``validation`` — ../shared/validation-dems (the bar is judged on these only);
* ``heldout``    — terrain.corpus.HELDOUT_SITES, real DEMs of ../shared/training-dems never trained on;
* ``real``       — a real orbital image with its DEM (validation/real_pairs.py).

Every truth is written to a GeoTIFF with its pixel size in metres and shaded by gdal.DEMProcessing
hillshade (computeEdges), so DEMs in degrees or without georeferencing are shaded like the others.
"""
import os
from dataclasses import dataclass

import numpy as np
from osgeo import gdal

gdal.UseExceptions()

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEM_DIR = os.path.join(os.path.dirname(ROOT), "shared", "validation-dems")
DEGREE_M = 111120.0        # gdaldem's -s for geographic degrees → metres (Boulder Creek's 3″ grid)
MARS_CROP_PIXEL_M = 1.01   # mars_hirise_crop.npy has no georeferencing; HiRISE DTM post spacing
MIN_COARSE_PIXELS = 200 * 200  # a factor above 2 only while the reduced DEM keeps this many pixels
LOCAL_METRES_WKT = 'LOCAL_CS["metres",UNIT["metre",1],AXIS["Easting",EAST],AXIS["Northing",NORTH]]'


@dataclass
class Scene:
    set: str
    dem: str              # DEM or site name
    factor: int           # pixel size = factor × the source DEM's
    truth: np.ndarray     # metres, NaN where invalid
    dx: float             # metres (east)
    dy: float             # metres (north)
    note: str = ""
    image: np.ndarray = None   # a real image on the truth's grid (Byte values); None: render the truth
    sun: tuple = None          # (azimuth, elevation) of that image

    @property
    def label(self):
        return f"{self.dem} ×{self.factor}"

    @property
    def pixel_m(self):
        return float(np.sqrt(self.dx * self.dy))


def box_average(values, factor):
    """Mean of each factor × factor block (the grid cropped to whole blocks); a block with any invalid
    (NaN) pixel is invalid, so no coarse pixel mixes truth with nothing."""
    if factor == 1:
        return np.asarray(values, np.float64)
    rows, cols = values.shape[0] // factor, values.shape[1] // factor
    if rows < 1 or cols < 1:
        raise ValueError(f"a {values.shape[1]}×{values.shape[0]} DEM has no {factor}×{factor} block")
    blocks = np.asarray(values, np.float64)[:rows * factor, :cols * factor]
    return blocks.reshape(rows, factor, cols, factor).mean(axis=(1, 3))


def pixel_factors(shape):
    """Native and 2× always; 4× while the 4×-reduced DEM keeps MIN_COARSE_PIXELS pixels."""
    factors = [1, 2]
    if (shape[0] // 4) * (shape[1] // 4) >= MIN_COARSE_PIXELS:
        factors.append(4)
    return factors


def at_factors(set_name, dem, truth, dx, dy, note, factors=None):
    """The scenes of one DEM at each pixel factor (`factors`, or pixel_factors of its shape)."""
    return [Scene(set_name, dem, f, box_average(truth, f), dx * f, dy * f, note)
            for f in (factors or pixel_factors(truth.shape))]


# ---- the two sets of rendered DEMs ----------------------------------------------------------------
def _read_dem(path, scale=1.0):
    """Heights (NaN at nodata) and the pixel sides in metres (geotransform × scale)."""
    values, ds = read_band(path)
    transform = ds.GetGeoTransform()
    return values, abs(transform[1]) * scale, abs(transform[5]) * scale


def _mars_crop():
    values = np.load(os.path.join(DEM_DIR, "mars_hirise_crop.npy")).astype(np.float64)
    return values, MARS_CROP_PIXEL_M, MARS_CROP_PIXEL_M


VALIDATION_DEMS = {  # name: (reader, note)
    "bigtujunga": (lambda: _read_dem(os.path.join(DEM_DIR, "bigtujunga.tif")),
                   "30 m, WGS 84 / UTM 11N, int16 m"),
    "srtm_boulder_creek": (lambda: _read_dem(os.path.join(DEM_DIR, "srtm_boulder_creek.asc"), DEGREE_M),
                           f"3″ geographic, pixel = degrees × {DEGREE_M:g} m (not reprojected), nodata 0"),
    "mars_hirise_crop": (_mars_crop, f"HiRISE DTM crop, no georeferencing: a {MARS_CROP_PIXEL_M} m pixel"),
}


def validation_scenes(names=None, factors=None):
    scenes = []
    for name, (read, note) in VALIDATION_DEMS.items():
        if not names or name in names:
            truth, dx, dy = read()
            scenes += at_factors("validation", name, truth, dx, dy, note, factors)
    return scenes


def heldout_scenes(names=None, factors=None):
    """terrain.corpus.HELDOUT_SITES (all, or those whose name or file stem is in `names`)."""
    from terrain import corpus
    scenes = []
    for site in corpus.HELDOUT_SITES:
        if names and site not in names and site.split("/")[-1] not in names:
            continue
        dem = corpus.read_dem(os.path.join(corpus.TRAINING_DEMS, site + ".tif"))
        note = f"held-out site of ../shared/training-dems, {dem.dx:.2f}×{dem.dy:.2f} m"
        if dem.relative:
            note += (f"; relative heights scaled to a guessed {corpus.RELATIVE_RELIEF_GUESS_M[site]:g} m relief "
                     "(relief RMSE is against that guess)")
        scenes += at_factors("heldout", site, dem.heights.astype(np.float64), dem.dx, dem.dy, note, factors)
    return scenes


# ---- files for gdaldem and the engine --------------------------------------------------------------
def read_band(path):
    """Band 1 of `path` as float64 with its nodata as NaN, and the open dataset (geotransform, CRS, type):
    the one reader of validation's rasters."""
    ds = gdal.Open(path)
    band = ds.GetRasterBand(1)
    values = band.ReadAsArray().astype(np.float64)
    nodata = band.GetNoDataValue()
    if nodata is not None:
        values[values == nodata] = np.nan
    return values, ds


def local_raster(array, dx, dy=None, dtype=gdal.GDT_Float32, nodata=None, path="", driver="MEM"):
    """A north-up dataset of dx × dy pixels, in a local CRS whose unit is the metre (which is how the
    engine's HEIGHTS=pixel_size knows the pixel size of DEMs without real georeferencing)."""
    ds = gdal.GetDriverByName(driver).Create(path, array.shape[1], array.shape[0], 1, dtype)
    ds.SetGeoTransform((0.0, dx, 0.0, 0.0, 0.0, -(dy or dx)))
    ds.SetProjection(LOCAL_METRES_WKT)
    band = ds.GetRasterBand(1)
    if nodata is not None:
        band.SetNoDataValue(nodata)
    band.WriteArray(array)
    return ds


def write_geotiff(path, array, dx, dy=None, dtype=gdal.GDT_Float32, nodata=None):
    """local_raster written to a GeoTIFF at `path`."""
    local_raster(array, dx, dy, dtype, nodata, path, "GTiff").FlushCache()
    return path


def render(scene, work, azimuth, altitude):
    """gdaldem hillshade (Byte, computeEdges) of the scene's truth, shaded from memory: (GeoTIFF path,
    image with NaN at gdaldem's nodata 0, which it writes where the DEM is invalid)."""
    stem = os.path.join(work, f"{scene.dem.replace('/', '_')}_x{scene.factor}")
    dem = local_raster(scene.truth, scene.dx, scene.dy, nodata=float("nan"))
    image_path = f"{stem}_az{azimuth:g}_alt{altitude:g}.tif"
    gdal.DEMProcessing(image_path, dem, "hillshade", format="GTiff", azimuth=azimuth, altitude=altitude,
                       computeEdges=True)
    image, ds = read_band(image_path)
    data_type = ds.GetRasterBand(1).DataType
    if data_type != gdal.GDT_Byte:
        raise RuntimeError(f"gdaldem hillshade wrote {gdal.GetDataTypeName(data_type)}, not Byte")
    return image_path, image
