"""Any raster to one band of model input: band choice, luminance, validity mask, normalisation.

Rule for values: 8-bit (Byte) data maps as is, v/255 onto the model's input range. Every deeper type
is stretched linearly between the 0.5th and 99.5th percentiles of its valid pixels (estimated on an
overview of at most SAMPLE_SIZE pixels a side of the whole band, so every tile gets the same stretch)
and clipped. A raster no larger than that sample is read from disk once and kept.
RGB(A) becomes Rec. 601 luma, Y = 0.299 R + 0.587 G + 0.114 B.
"""
import numpy as np
from osgeo import gdal

from .errors import EngineError

LUMA_WEIGHTS = (0.299, 0.587, 0.114)
LUMA_FORMULA = "Rec. 601 luma Y = 0.299 R + 0.587 G + 0.114 B"
STRETCH_PERCENTILES = (0.5, 99.5)
SAMPLE_SIZE = 2048


def _is_alpha(band):
    return band.GetColorInterpretation() == gdal.GCI_AlphaBand


def choose_bands(ds, band=None):
    """Return (band numbers, description) for the bands that make the single-band image."""
    count = ds.RasterCount
    if band is not None:
        if not 1 <= band <= count:
            raise EngineError(f"BAND={band} does not exist: the raster has {count} band(s) (1..{count}).")
        return [band], f"band {band}"
    if count == 1:
        return [1], "band 1"
    if count == 2 and _is_alpha(ds.GetRasterBand(2)):
        return [1], "band 1 (band 2 is alpha, used as mask)"
    if count == 3 or (count == 4 and _is_alpha(ds.GetRasterBand(4))):
        return [1, 2, 3], f"RGB bands 1-3 as {LUMA_FORMULA}" + (" (band 4 alpha as mask)" if count == 4 else "")
    raise EngineError(f"The raster has {count} bands and is neither gray, gray+alpha, RGB nor RGBA: "
                      f"set BAND to the band number (1..{count}) to use.")


class SingleBandSource:
    """Reads windows of a GDAL dataset as one float32 band in the model's input range, plus validity."""

    def __init__(self, ds, band=None, input_range=(-1.0, 1.0), value_range=None):
        """value_range: the stretch another reader of this raster already measured (a cluster worker
        reads windows with the client's stretch, so every window maps values the same way)."""
        self.ds = ds
        self.band_numbers, self.description = choose_bands(ds, band)
        self.bands = [ds.GetRasterBand(n) for n in self.band_numbers]
        dtype = self.bands[0].DataType
        if gdal.DataTypeIsComplex(dtype):
            raise EngineError(f"Complex data ({gdal.GetDataTypeName(dtype)}) cannot be read as an image: "
                              "convert it to amplitude first (e.g. Raster calculator abs()).")
        self.is_byte = all(b.DataType == gdal.GDT_Byte for b in self.bands)
        self.palette = self._palette_luma()
        self.input_range = input_range
        self._whole = None
        self.low, self.high = value_range if value_range is not None else self._value_range()

    def _palette_luma(self):
        table = self.bands[0].GetColorTable() if len(self.bands) == 1 else None
        if table is None:
            return None
        entries = np.array([table.GetColorEntry(i)[:3] for i in range(table.GetCount())], dtype=np.float32)
        lut = np.zeros(256, dtype=np.float32)
        lut[:len(entries)] = entries[:256] @ np.array(LUMA_WEIGHTS, dtype=np.float32)
        self.description += " (palette colours as luma)"
        return lut

    def _raw(self, x0, y0, w, h, buf_w=None, buf_h=None):
        """Single band in source units (float32) and validity, optionally decimated (nearest)."""
        x0, y0, w, h = int(x0), int(y0), int(w), int(h)
        buf_w, buf_h = int(buf_w or w), int(buf_h or h)
        valid = np.ones((buf_h, buf_w), dtype=bool)
        planes = []
        for band in self.bands:
            data = band.ReadAsArray(x0, y0, w, h, buf_xsize=buf_w, buf_ysize=buf_h)
            # GMF_ALL_VALID: no nodata, mask or alpha, so there is no mask to read
            has_mask = band.GetMaskFlags() != gdal.GMF_ALL_VALID
            mask = band.GetMaskBand().ReadAsArray(x0, y0, w, h, buf_xsize=buf_w, buf_ysize=buf_h) \
                if has_mask else True
            if data is None or mask is None:
                raise EngineError(f"GDAL could not read pixels ({x0},{y0},{w}x{h}) of the input: "
                                  f"{gdal.GetLastErrorMsg() or 'unknown error'}")
            if has_mask:
                valid &= mask > 0
            if np.issubdtype(data.dtype, np.floating):  # only floats hold NaN and ±inf
                valid &= np.isfinite(data)
            planes.append(data.astype(np.float32, copy=False))
        if len(planes) == 3:
            value = sum(weight * plane for weight, plane in zip(LUMA_WEIGHTS, planes))
        elif self.palette is not None:
            value = self.palette[np.clip(planes[0], 0, 255).astype(np.intp)]
        else:
            value = planes[0]
        if not valid.all():
            value[~valid] = 0.0
        return value, valid

    def _value_range(self):
        """Source values that map to the ends of the input range; errors on empty or constant data."""
        width, height = self.ds.RasterXSize, self.ds.RasterYSize
        scale = min(1.0, SAMPLE_SIZE / max(width, height))
        sample, valid = self._raw(0, 0, width, height, max(1, round(width * scale)), max(1, round(height * scale)))
        self.release_cache()
        if scale == 1.0:  # the sample is the whole raster at full resolution: read() slices it
            self._whole = sample, valid
        values = sample.ravel() if valid.all() else sample[valid]
        if values.size == 0:
            raise EngineError("The input has no valid pixel (all nodata, masked or NaN): nothing to infer from.")
        if values.min() == values.max():
            raise EngineError(f"The input is constant ({values.min():g} everywhere): a flat image holds no "
                              "shading to infer relief from.")
        if self.is_byte or self.palette is not None:
            return 0.0, 255.0
        low, high = np.percentile(values.astype(np.float64), STRETCH_PERCENTILES)
        if high <= low:
            low, high = float(values.min()), float(values.max())
        return float(low), float(high)

    def release_cache(self):
        """Drop the input's blocks from GDAL's cache once no later window needs them."""
        for band in self.bands:
            band.FlushCache()
            band.GetMaskBand().FlushCache()

    def read(self, x0, y0, w, h):
        """(values float32 in the input range, valid bool) for a window at full resolution."""
        if self._whole is None:
            value, valid = self._raw(x0, y0, w, h)
        else:
            window = np.s_[int(y0):int(y0 + h), int(x0):int(x0 + w)]
            value, valid = self._whole[0][window].copy(), self._whole[1][window].copy()
        lo, hi = self.input_range
        gain, offset = self._input_map()  # one affine map and a clip, in place, in float32
        value *= np.float32(gain)
        value += np.float32(offset)
        np.clip(value, lo, hi, out=value)
        if not valid.all():
            value[~valid] = lo
        return value, valid

    def _input_map(self):
        """(gain, offset) of the affine map from the raster's values [low, high] onto the input range."""
        lo, hi = self.input_range
        gain = (hi - lo) / (self.high - self.low)
        return gain, lo - self.low * gain

    def to_input_range(self, value):
        """One value of the raster, mapped as read() maps its pixels (unclipped: flat ground may lie outside)."""
        gain, offset = self._input_map()
        return float(value) * gain + offset

    def stretch_note(self):
        if self.is_byte or self.palette is not None:
            return "8-bit values mapped as is (v/255)"
        p0, p1 = STRETCH_PERCENTILES
        return f"stretched from {self.low:g} (p{p0}) to {self.high:g} (p{p1})"
