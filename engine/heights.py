"""What the DTM's numbers mean (option HEIGHTS): the map applied to every model window, and the pass
over the whole written output that follows.

* range (default): heights inside ELEVATION_MIN…ELEVATION_MAX. Models with range units keep their
  linear map of output_range onto that range, and the whole output is shifted (or, if its span is too
  wide, stretched) back inside only where tiles or the network left it. Models with pixel units are
  stretched as JMARS does: the output's minimum becomes ELEVATION_MIN, its maximum ELEVATION_MAX.
* pixel_size: metres, from a pixel-unit model times the input's ground pixel size; relief above the
  lowest valid pixel.
* reference: metres tied to REFERENCE_DEM (see reference.py).
"""
import numpy as np

from .errors import EngineError
from .ground_pixel import ground_pixel, spread_warning
from .reference import ReferenceTie

HEIGHT_MODES = ("range", "pixel_size", "reference")


def check_height_options(mode, reference_dem):
    """The errors that need no file opened: an unknown mode, or `reference` without a reference."""
    if mode not in HEIGHT_MODES:
        raise EngineError(f"HEIGHTS must be one of {', '.join(HEIGHT_MODES)}, not '{mode}'.")
    if mode == "reference" and not reference_dem:
        raise EngineError("HEIGHTS=reference needs a reference DEM (REFERENCE_DEM): a coarse DEM of the area "
                          "in metres, e.g. MOLA for Mars, LOLA for the Moon, SRTM or Copernicus for Earth.")


def _float32_inside(low, high):
    """The float32 bounds nearest to [low, high] that lie inside it (written values must not leave it)."""
    low32, high32 = np.float32(low), np.float32(high)
    if low32 < low:
        low32 = np.nextafter(low32, np.float32(np.inf))
    if high32 > high:
        high32 = np.nextafter(high32, np.float32(-np.inf))
    return low32, high32


def _affine(writer, check, gain, offset, bounds=None):
    """Rewrite every valid pixel v as gain · v + offset (clipped to bounds: float rounding only)."""
    def change(y0, values, valid):
        values = values * np.float64(gain) + offset
        return (np.clip(values, *bounds) if bounds else values), valid
    writer.rewrite(change, check)


def _written_range(writer):
    stats = writer.stats
    return (float(stats["min"]), float(stats["max"])) if stats["count"] else None


class RangeHeights:
    """range mode for models with range units: output_range → ELEVATION_MIN…MAX, then kept inside."""
    mode = "range"

    def __init__(self, card, options):
        low, high = card.output_range
        self.low, self.high = options.elevation_min, options.elevation_max
        self.tile_gain = (self.high - self.low) / (high - low)
        self.tile_offset = self.low - low * self.tile_gain

    def finish(self, writer, log, check):
        written = _written_range(writer)
        if written is None or (written[0] >= self.low and written[1] <= self.high):
            return {"DTM_HEIGHTS": "range"}
        lowest, highest = written
        if highest - lowest <= self.high - self.low:
            gain, offset = 1.0, (self.low - lowest if lowest < self.low else self.high - highest)
            note = f"shifted by {offset:+.6g} to stay inside the range"
        else:
            gain = (self.high - self.low) / (highest - lowest)
            offset, note = self.low - lowest * gain, f"scaled by {gain:.6g} to fit inside the range"
        _affine(writer, check, gain, offset, _float32_inside(self.low, self.high))
        log(f"The estimate spanned {lowest:.6g}…{highest:.6g}, outside ELEVATION_MIN…MAX "
            f"{self.low:g}…{self.high:g}: {note}.")
        return {"DTM_HEIGHTS": "range", "DTM_RANGE_CORRECTION": note}


class StretchHeights:
    """range mode for pixel-unit models: the whole output stretched onto ELEVATION_MIN…MAX, as JMARS does."""
    mode = "range"
    tile_gain, tile_offset = 1.0, 0.0

    def __init__(self, options):
        self.low, self.high = options.elevation_min, options.elevation_max

    def finish(self, writer, log, check):
        written = _written_range(writer)
        if written is None:
            return {"DTM_HEIGHTS": "range"}
        lowest, highest = written
        gain = (self.high - self.low) / (highest - lowest) if highest > lowest else 0.0
        _affine(writer, check, gain, self.low - lowest * gain, _float32_inside(self.low, self.high))
        log(f"Pixel-unit heights {lowest:.6g}…{highest:.6g} stretched onto {self.low:g}…{self.high:g}.")
        return {"DTM_HEIGHTS": "range", "DTM_RANGE_STRETCH": f"{lowest:.6g},{highest:.6g}"}


def _require_pixel_units(card, mode):
    if card.height_units != "pixel":
        raise EngineError(
            f"HEIGHTS={mode} needs a model whose card declares pixel-unit heights (height_units=pixel); "
            f"{card.summary()} gives heights only as a range (its output_range mapped onto ELEVATION_MIN…"
            "MAX). Use HEIGHTS=range with this model, or a model with pixel-unit heights.")


def _model_pixel(card, ds, model_pixel_factor, log):
    """Ground size (m) of one pixel as the model sees it; the warnings and metadata that go with it."""
    pixel = ground_pixel(ds)
    spread = spread_warning(ds)
    if spread:
        log(f"Warning: {spread}")
    size = pixel.size_m * model_pixel_factor
    log(f"Ground pixel {pixel.dx_m:.4g} × {pixel.dy_m:.4g} m ({pixel.note}); the model's pixel is {size:.4g} m"
        + (f" (fit mode: {model_pixel_factor:.4g} input pixels)." if model_pixel_factor != 1 else "."))
    return pixel, size, {"DTM_GROUND_PIXEL_M": f"{pixel.dx_m:.6g},{pixel.dy_m:.6g}",
                         "DTM_MODEL_PIXEL_M": f"{size:.6g}"}


class PixelSizeHeights:
    """pixel_size mode: heights in metres, relief above the lowest valid pixel."""
    mode = "pixel_size"
    tile_offset = 0.0

    def __init__(self, card, ds, model_pixel_factor, log):
        _require_pixel_units(card, self.mode)
        self.pixel, self.tile_gain, self.metadata = _model_pixel(card, ds, model_pixel_factor, log)

    def finish(self, writer, log, check):
        written = _written_range(writer)
        if written is not None:
            _affine(writer, check, 1.0, -written[0])
        log("Note: one image fixes the relief's detail far better than its long wavelengths (regional tilts, "
            "whole basins; README, 'Accuracy'). For heights compared over more than a few hundred pixels, tie "
            "the DTM to a coarse DEM of the area with HEIGHTS=reference.")
        return {"DTM_HEIGHTS": self.mode, **self.metadata}


class ReferenceHeights(PixelSizeHeights):
    """reference mode: the model's metres tied to REFERENCE_DEM (warped before any inference, so a
    reference that does not fit fails at once)."""
    mode = "reference"

    def __init__(self, card, ds, model_pixel_factor, reference_dem, log):
        super().__init__(card, ds, model_pixel_factor, log)
        self.reference = ReferenceTie(reference_dem, ds, self.pixel)
        tie = self.reference
        log(f"Reference {reference_dem}: {tie.reference_pixel_m:.4g} m pixels, warped ({tie.resampling}) onto "
            f"cells of {tie.cell} × {tie.cell} input pixels; it has data on {100 * tie.coverage:.1f} % of them.")
        if tie.coverage < 1.0:
            log(f"Warning: REFERENCE_DEM has no data on {100 * (1 - tie.coverage):.1f} % of the input's extent; "
                "the DTM is nodata there.")

    def finish(self, writer, log, check):
        gain, offset, residual = self.reference.tie(writer, check)
        log(f"Model tied to the reference: gain {gain:.4g}, offset {offset:+.6g} m, residual {residual:.4g} m "
            f"RMS at the reference's resolution ({self.reference.cell} px cells).")
        if gain <= 0:
            log("Warning: the fitted gain is not positive: the model's relief runs against the reference's. "
                "Is SUN_AZIMUTH right? Light taken from the opposite side (SUN_AZIMUTH ± 180°) inverts the "
                "relief, and the image's shading alone cannot tell the two sides apart. Only the reference's "
                "long wavelengths are trustworthy here.")
        return {"DTM_HEIGHTS": self.mode, **self.metadata, "DTM_REFERENCE": self.reference.path,
                "DTM_REFERENCE_GAIN": f"{gain:.6g}", "DTM_REFERENCE_OFFSET_M": f"{offset:.6g}",
                "DTM_REFERENCE_RESIDUAL_M": f"{residual:.6g}", "DTM_REFERENCE_CELL_PX": str(self.reference.cell),
                "DTM_REFERENCE_RESAMPLING": self.reference.resampling}


def plan_heights(card, options, ds, model_pixel_factor, log):
    """The heights plan for this run; raises EngineError before any inference when it cannot work."""
    if options.heights == "range":
        return StretchHeights(options) if card.height_units == "pixel" else RangeHeights(card, options)
    if options.heights == "pixel_size":
        return PixelSizeHeights(card, ds, model_pixel_factor, log)
    return ReferenceHeights(card, ds, model_pixel_factor, options.reference_dem, log)
