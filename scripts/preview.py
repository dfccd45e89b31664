"""Write a PNG preview: the input image beside its DTM, colour-ramped and hillshaded.

Usage: preview.py INPUT DTM PNG
"""
import sys

import numpy as np
from osgeo import gdal

gdal.UseExceptions()
RAMP = np.array([[0.0, 40, 70, 140], [0.25, 70, 150, 90], [0.5, 220, 200, 120], [0.75, 160, 90, 50],
                 [1.0, 250, 250, 250]])  # position, R, G, B: a terrain ramp


def gray(path, size):
    ds = gdal.Open(path)
    bands = [ds.GetRasterBand(i + 1).ReadAsArray(buf_xsize=size[1], buf_ysize=size[0]).astype(float)
             for i in range(min(ds.RasterCount, 3))]
    image = bands[0] if len(bands) == 1 else 0.299 * bands[0] + 0.587 * bands[1] + 0.114 * bands[2]
    low, high = np.percentile(image, (0.5, 99.5))
    return np.clip((image - low) / max(high - low, 1e-9), 0, 1)


def shaded_dtm(path, size):
    dtm = gdal.Open(path)
    shade = gdal.DEMProcessing("", dtm, "hillshade", format="MEM", azimuth=270, altitude=35,
                               computeEdges=True, zFactor=1.0, scale=_metres_per_unit(dtm))
    height = dtm.GetRasterBand(1).ReadAsArray(buf_xsize=size[1], buf_ysize=size[0]).astype(float)
    nodata = dtm.GetRasterBand(1).GetNoDataValue()
    valid = height != nodata
    low, high = np.percentile(height[valid], (1, 99))
    t = np.clip((height - low) / max(high - low, 1e-9), 0, 1)
    colour = np.stack([np.interp(t, RAMP[:, 0], RAMP[:, c]) for c in (1, 2, 3)]) / 255.0
    light = shade.GetRasterBand(1).ReadAsArray(buf_xsize=size[1], buf_ysize=size[0]) / 255.0
    rgb = colour * (0.35 + 0.65 * light)
    rgb[:, ~valid] = 0
    return rgb


def _metres_per_unit(ds):
    srs = ds.GetSpatialRef()
    if srs is not None and srs.IsGeographic():  # degrees on the body's sphere
        return srs.GetSemiMajor() * np.pi / 180.0
    return 1.0


def main(input_path, dtm_path, png_path):
    ds = gdal.Open(input_path)
    scale = min(1.0, 1024 / max(ds.RasterXSize, ds.RasterYSize))
    size = (max(1, round(ds.RasterYSize * scale)), max(1, round(ds.RasterXSize * scale)))
    left = np.repeat(gray(input_path, size)[np.newaxis], 3, axis=0)
    gap = np.ones((3, size[0], 8))
    canvas = (np.concatenate([left, gap, shaded_dtm(dtm_path, size)], axis=2) * 255).round().astype(np.uint8)
    mem = gdal.GetDriverByName("MEM").Create("", canvas.shape[2], canvas.shape[1], 3, gdal.GDT_Byte)
    for index in range(3):
        mem.GetRasterBand(index + 1).WriteArray(canvas[index])
    gdal.GetDriverByName("PNG").CreateCopy(png_path, mem)
    print(f"preview: {png_path} (left: input, right: DTM hillshaded, terrain colours low→high)")


if __name__ == "__main__":
    main(*sys.argv[1:4])
