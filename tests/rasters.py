"""Real GDAL rasters for tests: any band count, type, grid, CRS, nodata and alpha."""
import os

import numpy as np
from osgeo import gdal, osr

SAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sample_data",
                      "mars_mola_shaded_relief.tif")
MARS_2015_WKT = gdal.Open(SAMPLE).GetProjection()
GEOTRANSFORM = (500000.0, 20.0, 0.0, 4000000.0, 0.0, -20.0)


def utm_wkt(epsg=32611):
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    return srs.ExportToWkt()


def write_raster(path, data, dtype=gdal.GDT_Byte, geotransform=GEOTRANSFORM, wkt=None, nodata=None,
                 alpha_band=None, color_interp=None):
    """data: 2-D (one band) or 3-D (bands, rows, cols). wkt=None means the Mars 2015 sphere."""
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[np.newaxis]
    bands, rows, cols = data.shape
    ds = gdal.GetDriverByName("GTiff").Create(path, cols, rows, bands, dtype)
    if geotransform is not None:
        ds.SetGeoTransform(geotransform)
    if wkt != "":
        ds.SetProjection(wkt or MARS_2015_WKT)
    for index in range(bands):
        band = ds.GetRasterBand(index + 1)
        band.WriteArray(data[index])
        if nodata is not None and index + 1 != alpha_band:
            band.SetNoDataValue(nodata)
        if color_interp:
            band.SetColorInterpretation(color_interp[index])
    if alpha_band:
        ds.GetRasterBand(alpha_band).SetColorInterpretation(gdal.GCI_AlphaBand)
    ds = None
    return path


def smooth_image(rows, cols, low=20, high=235, seed=0):
    """A smooth, non-constant test image (sum of random sinusoids) scaled to [low, high]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float64)
    image = np.zeros((rows, cols))
    for _ in range(4):
        fy, fx, phase = rng.uniform(0.005, 0.05, 2).tolist() + [rng.uniform(0, 6.28)]
        image += np.sin(fx * x + fy * y + phase)
    image = (image - image.min()) / (image.max() - image.min())
    return low + image * (high - low)


def byte_image(rows, cols, seed=0):
    """smooth_image rounded to an 8-bit raster."""
    return np.round(smooth_image(rows, cols, seed=seed)).astype(np.uint8)


def read(path):
    ds = gdal.Open(path)
    band = ds.GetRasterBand(1)
    return band.ReadAsArray().astype(np.float64), band.GetNoDataValue(), ds


def mosaic_vrt(folder, image, repeats, wkt=None):
    """A VRT that repeats one GeoTIFF `repeats` × `repeats` times: a huge raster on a small disk."""
    rows, cols = image.shape
    write_raster(os.path.join(folder, "tile.tif"), image)
    sources = "".join(
        f'<SimpleSource><SourceFilename relativeToVRT="1">tile.tif</SourceFilename><SourceBand>1</SourceBand>'
        f'<SrcRect xOff="0" yOff="0" xSize="{cols}" ySize="{rows}"/>'
        f'<DstRect xOff="{x * cols}" yOff="{y * rows}" xSize="{cols}" ySize="{rows}"/></SimpleSource>'
        for y in range(repeats) for x in range(repeats))
    srs = f"<SRS>{osr.SpatialReference(wkt or MARS_2015_WKT).ExportToWkt()}</SRS>".replace("&", "&amp;")
    path = os.path.join(folder, "huge.vrt")
    with open(path, "w") as handle:
        handle.write(f'<VRTDataset rasterXSize="{cols * repeats}" rasterYSize="{rows * repeats}">{srs}'
                     f'<GeoTransform>0,10,0,0,0,-10</GeoTransform><VRTRasterBand dataType="Byte" band="1">'
                     f'{sources}</VRTRasterBand></VRTDataset>')
    return path
