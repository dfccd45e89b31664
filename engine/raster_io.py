"""GDAL input and an all-or-nothing output: pixels go to a temporary file beside the destination,
which is renamed over it only once complete, so a failure never leaves a half-written DTM."""
import os
import uuid

import numpy as np
from osgeo import gdal

from .errors import EngineError

gdal.UseExceptions()

NODATA = -32768.0
# Tiled and uncompressed, like gdaldem's and Processing's own outputs: compressing costs more than a
# fast model's whole run (DEFLATE: ~25 ms per 1024², against MRFED's ~170 ms); gdal_translate -co
# COMPRESS=DEFLATE shrinks a finished DTM by about half.
GTIFF_OPTIONS = ["TILED=YES", "BIGTIFF=IF_SAFER"]
STRIP_PIXELS = 2 ** 21  # pixels read back at once by passes over the written output (whole rows)


def open_input(path, what="the input"):
    """A raster to read (`what` names it in errors: the input, REFERENCE_DEM)."""
    try:
        ds = gdal.Open(path, gdal.GA_ReadOnly)
    except RuntimeError as exc:
        raise EngineError(f"Cannot open {what} as a raster: {path} ({exc}).") from None
    if ds is None or ds.RasterCount == 0:
        raise EngineError(f"Found no raster band in {what}: {path}")
    return ds


def georeferencing_warning(ds):
    has_transform = ds.GetGeoTransform(can_return_null=True) is not None
    if not has_transform and not ds.GetProjection():
        return ("The input has no CRS and no geotransform: the DTM is computed in pixel space and "
                "shares the input's pixel grid only.")
    if not ds.GetProjection():
        return "The input has no CRS: the DTM gets the same geotransform and no CRS."
    return None


def _driver_for(path):
    extension = os.path.splitext(path)[1].lower().lstrip(".")
    if extension in ("tif", "tiff", ""):
        return "GTiff"
    for index in range(gdal.GetDriverCount()):
        driver = gdal.GetDriver(index)
        meta = driver.GetMetadata()
        if extension in (meta.get("DMD_EXTENSIONS") or "").split() and meta.get("DCAP_RASTER") == "YES" \
                and (meta.get("DCAP_CREATECOPY") == "YES" or meta.get("DCAP_CREATE") == "YES"):
            return driver.ShortName
    raise EngineError(f"No GDAL raster driver writes '.{extension}' files; use .tif for GeoTIFF.")


def check_destination(input_path, output_path):
    """Refuse destinations that would destroy the input or cannot be written, before any work."""
    if not output_path:
        raise EngineError("No output path was given.")
    if os.path.exists(input_path) and os.path.realpath(input_path) == os.path.realpath(output_path):
        raise EngineError(f"OUTPUT is the input file itself ({output_path}); choose another file name.")
    folder = os.path.dirname(os.path.abspath(output_path))
    if not os.path.isdir(folder):
        raise EngineError(f"The output folder does not exist: {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise EngineError(f"The output folder is not writable: {folder}")
    return _driver_for(output_path)


def _no_statistics():
    return {"count": 0, "sum": 0.0, "sum_sq": 0.0, "min": np.inf, "max": -np.inf}


class AtomicDtmWriter:
    """Float32 single-band DTM on the input's grid, written window by window into a temporary GeoTIFF."""

    def __init__(self, output_path, driver, like_ds, description):
        """`driver`: the GDAL driver check_destination() chose for output_path's extension."""
        self.output_path, self.driver = output_path, driver
        folder = os.path.dirname(os.path.abspath(output_path))
        self.temp_path = os.path.join(folder, f".{os.path.basename(output_path)}.{uuid.uuid4().hex[:8]}.partial.tif")
        try:
            self.ds = gdal.GetDriverByName("GTiff").Create(
                self.temp_path, like_ds.RasterXSize, like_ds.RasterYSize, 1, gdal.GDT_Float32, GTIFF_OPTIONS)
        except RuntimeError as exc:
            raise EngineError(f"Cannot create the output in {folder}: {exc}") from None
        transform = like_ds.GetGeoTransform(can_return_null=True)
        if transform is not None:
            self.ds.SetGeoTransform(transform)
        if like_ds.GetProjection():
            self.ds.SetProjection(like_ds.GetProjection())
        self.band = self.ds.GetRasterBand(1)
        self.band.SetNoDataValue(NODATA)
        self.band.SetDescription(description)
        self.band.SetUnitType("m")
        self._draft = None
        self.stats = _no_statistics()

    def write(self, y0, values, valid):
        """Final rows from y0, nodata where not valid."""
        if valid.all():  # the usual case: no masked copy needed
            rows = values.astype(np.float32, copy=False)
            self._accumulate(rows)
        else:
            rows = np.where(valid, values, np.float32(NODATA)).astype(np.float32, copy=False)
            self._accumulate(rows[valid])
        self.band.WriteArray(rows, 0, y0)
        # Written rows are final: push them to disk and out of GDAL's block cache, so memory does
        # not grow with the raster's size.
        self.band.FlushCache()

    def strips(self, check=None, draft=False):
        """The pixels written so far (draft: those of write_draft), as (first row, values, valid) in bands
        of whole rows; check() before each band (it raises Cancelled to stop)."""
        width, height = self.ds.RasterXSize, self.ds.RasterYSize
        rows = max(1, STRIP_PIXELS // width)
        for y0 in range(0, height, rows):
            if check:
                check()
            count = min(rows, height - y0)
            values = self._read_draft(y0, count) if draft else self.band.ReadAsArray(0, y0, width, count)
            yield y0, values, values != np.float32(NODATA)

    def rewrite(self, change, check=None, draft=False):
        """A second pass over the whole output (draft: over the draft, into the output), strip by strip
        (memory stays flat): each strip's (values, valid) becomes change(y0, values, valid); the
        statistics are gathered afresh; check() before each strip may raise Cancelled."""
        self.stats = _no_statistics()
        for y0, values, valid in self.strips(check, draft):
            values, valid = change(y0, values, valid)
            self.write(y0, values, valid)

    def write_draft(self, y0, values, valid):
        """Rows of a first pass that a later rewrite(draft=True) turns into the output: kept in a raw float32 file beside
        the output (plain reads and writes cost less than GeoTIFF blocks; removed with the output's
        temporary file), nodata as NODATA."""
        if self._draft is None:
            self._draft = open(self.temp_path + ".draft", "w+b")
        rows = values if valid.all() else np.where(valid, values, np.float32(NODATA))
        self._draft.seek(y0 * self.ds.RasterXSize * 4)
        self._draft.write(np.ascontiguousarray(rows, dtype=np.float32))

    def _read_draft(self, y0, rows):
        values = np.empty((rows, self.ds.RasterXSize), np.float32)
        self._draft.seek(y0 * self.ds.RasterXSize * 4)
        if self._draft.readinto(values) != values.nbytes:
            raise EngineError(f"The draft of rows {y0}…{y0 + rows - 1} beside the output is incomplete.")
        return values

    def _accumulate(self, values):
        """Band statistics gathered while writing: no second pass over the finished file."""
        if values.size:
            stats = self.stats
            stats["count"] += values.size
            stats["sum"] += values.sum(dtype=np.float64)
            flat = values.ravel()
            stats["sum_sq"] += np.einsum("i,i->", flat, flat, dtype=np.float64)
            stats["min"], stats["max"] = min(stats["min"], values.min()), max(stats["max"], values.max())

    def commit(self, metadata):
        """Record statistics, close and move the finished file over the destination."""
        self.ds.SetMetadata(metadata)
        stats = self.stats
        if stats["count"]:
            mean = stats["sum"] / stats["count"]
            std = max(stats["sum_sq"] / stats["count"] - mean * mean, 0.0) ** 0.5
            self.band.SetStatistics(float(stats["min"]), float(stats["max"]), float(mean), float(std))
        self.ds.FlushCache()
        self.ds = self.band = None
        try:
            if self.driver == "GTiff":
                os.replace(self.temp_path, self.output_path)
            else:
                self._translate()
        finally:
            self.discard()

    def _translate(self):
        converted = os.path.splitext(self.temp_path)[0] + ".converted" + os.path.splitext(self.output_path)[1]
        try:
            gdal.Translate(converted, self.temp_path, format=self.driver)
        except RuntimeError as exc:
            raise EngineError(f"GDAL could not write the {self.driver} output: {exc}") from None
        os.replace(converted, self.output_path)

    def discard(self):
        self.ds = self.band = None
        if self._draft is not None:
            self._draft.close()
            self._draft = None
        for path in (self.temp_path, self.temp_path + ".aux.xml", self.temp_path + ".draft"):
            if os.path.exists(path):
                os.remove(path)
