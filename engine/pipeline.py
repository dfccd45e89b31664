"""read → single band → pad/tile → infer → crop/blend → rescale → write, for one raster."""
import time
from dataclasses import dataclass, field

import numpy as np

from .bands import SingleBandSource
from .errors import Cancelled, EngineError
from .executors import check_scheduler, open_executor
from .flat_grey import flat_level, model_input, resolve_flat_grey, resolve_sun_elevation, sun_level
from .heights import check_height_options, plan_heights
from .photoclinometry import plan_photoclinometry
from .multiscale import SCALE_MODES, infer_in_pieces, unzoom_heights, zoom_values, zooms_for
from .raster_io import AtomicDtmWriter, check_destination, georeferencing_warning, open_input
from .runtime import open_model
from .shading import raster_shading_axis, sun_azimuth_check
from .sun import across_light, clockwise_turn, rotate_back, rotate_clockwise, turned_shape, unseen_slope_line
from .tile_blend import blend_plan
from .tile_plan import TilePlan
from .tiling import bilinear_rows, fill_invalid, mirror_pad, round_up

LARGE_RASTER_MODES = ("tile", "fit")
DEFAULT_ELEVATION_RANGE = (0.0, 39586.0)
FIT_CHUNK_PIXELS = 4_000_000  # full-resolution pixels held at once while downsampling or upsampling
WHOLE_WINDOW_MAX = 1536  # px a side of the turned canvas up to which a raster runs as one window


@dataclass
class EstimateOptions:
    model_path: str
    band: int = None                 # 1-based; needed for rasters that are not gray, RGB or RGBA
    device: str = "auto"             # auto | cpu | gpu
    sun_azimuth: float = None        # degrees clockwise from north; None: image used as it is
    large_raster: str = "tile"       # tile: native resolution; fit: scale to the model size and back
    elevation_min: float = DEFAULT_ELEVATION_RANGE[0]
    elevation_max: float = DEFAULT_ELEVATION_RANGE[1]
    overlap: int = 128               # px shared by neighbouring tiles, cross-faded
    threads: int = None              # onnxruntime intra-op threads; None: onnxruntime's default
    graph_optimization: str = None   # onnxruntime graph optimisation level; None: the model card's choice
    heights: str = "range"           # range | pixel_size | reference (engine/heights.py)
    reference_dem: str = None        # GDAL path of the reference DEM, for heights="reference"
    scheduler: str = None            # Dask scheduler address or local:N for tile mode; None: this process
    scales: str = "multi"            # multi: ½×, 1×, 2× averaged (pixel-unit models); single: 1× (multiscale.py)
    flat_grey: float = None          # grey level of flat ground, raster units, for models that take it (flat_grey.py)
    sun_elevation: float = None      # degrees above the horizon, for models that take it with flat_grey (flat_grey.py)
    photoclinometry: bool = True     # refine against the image where flat_grey and sun_elevation give its photometry


@dataclass
class EstimateReport:
    output_path: str
    provider: str
    model: str
    tiles: int
    seconds: float
    warnings: list = field(default_factory=list)


class TilePredictor:
    """Runs the model on one filled window at each zoom (multiscale.py): turn to the canonical sun,
    mirror-pad, infer, undo; the zooms' heights averaged, then rescaled by the heights plan."""

    def __init__(self, model, options, heights, flat_level=None, sun_level=None, photometry=None):
        """flat_level: flat ground's grey level in the model's input range, for a model that takes it
        (fed as a constant second channel beside every window; flat_grey.py); sun_level: the sun's elevation
        as a third such channel, for a model that takes it; photometry: the image's known photometry, against
        which every window's heights are refined (photoclinometry.py), or None."""
        self.model = model
        self.photometry = photometry
        self.card = model.card
        self.flat_level, self.sun_level = flat_level, sun_level
        self.turn = clockwise_turn(options.sun_azimuth, self.card.sun_azimuth_deg)
        self.zooms, self.scales_line = zooms_for(options.scales, self.card)
        self.gain, self.offset = heights.tile_gain, heights.tile_offset
        self.overlap = options.overlap
        self.check = None  # polled before every model run (cancellation); a window at three scales is many runs

    def predict(self, values, valid=None):
        """Heights of one filled window; `valid` (None: all) marks the pixels the refinement may trust."""
        if len(self.zooms) == 1:
            output = self._infer(values)
        else:
            output = np.zeros(values.shape, np.float32)
            for zoom in self.zooms:
                output += unzoom_heights(self._infer(zoom_values(values, zoom)), zoom, values.shape)
            output /= np.float32(len(self.zooms))
        if self.photometry is not None:
            output = self.photometry.refine(output, values, valid, self.check)
        output *= np.float32(self.gain)  # in place: the array is ours
        output += np.float32(self.offset)
        return output

    def _infer(self, values):
        """Heights of one window at one zoom. The window is turned to the canonical sun as a whole and run in
        one piece where its turned canvas is within WHOLE_WINDOW_MAX px a side (the memory bound of a run),
        else in upright pieces of that canvas, cross-faded: each piece then has the real image around it,
        where pieces turned one by one would each get a synthetic corner fill (sun.py)."""
        turned = rotate_clockwise(values, self.turn) if self.turn else values
        heights = infer_in_pieces(self._run, turned, WHOLE_WINDOW_MAX, self.overlap)
        return rotate_back(heights, self.turn, values.shape) if self.turn else heights

    def _run(self, values):
        """One model run on an upright window: mirror-padded to the model's input size and multiple."""
        if self.check:
            self.check()
        size, multiple = self.card.input_size, self.card.input_multiple
        height = max(size, round_up(values.shape[0], multiple))
        width = max(size, round_up(values.shape[1], multiple))
        padded, (top, left) = mirror_pad(values, height, width)
        batch = model_input(self.card, padded[np.newaxis, np.newaxis], self.flat_level, self.sun_level)
        output = self.model.run(np.ascontiguousarray(batch, dtype=np.float32))[0, 0]
        return output[top:top + values.shape[0], left:left + values.shape[1]]


def window_size(card, width, height, turn):
    """Side of the tile plan's windows: the whole raster as one window while its (turned) canvas stays
    within WHOLE_WINDOW_MAX px, else the model's input size. A fully convolutional network given the
    whole raster sees all its context at once, so no window gets its own regional tilt to reconcile
    (on the 1197 × 643 px Big Tujunga render lit from 315°, r 0.70 with two windows, 0.79 with one);
    the cap keeps a run under about 2 GB (Pix2PixCC: 0.8 GB at 1024², 2.8 GB at 2048²); larger rasters tile."""
    if max(turned_shape(height, width, turn)) <= WHOLE_WINDOW_MAX:
        return max(width, height, card.input_size)
    return card.input_size


def plan_windows(card, width, height, options):
    """(fit, plan): whether fit mode scales this raster to the model input, and the tile plan of its
    native-resolution windows (sized by window_size for the sun turn the options ask of this card)."""
    fit = options.large_raster == "fit" and max(width, height) > card.input_size
    turn = clockwise_turn(options.sun_azimuth, card.sun_azimuth_deg)
    return fit, TilePlan(width, height, window_size(card, width, height, turn), options.overlap)


def progress_steps(fit, plan):
    """What the progress counts: fit mode's 3 steps (downsample, infer, upsample), or the plan's windows."""
    return 3 if fit else len(plan)


def _check_options(options):
    if options.large_raster not in LARGE_RASTER_MODES:
        raise EngineError(f"LARGE_RASTER must be one of {', '.join(LARGE_RASTER_MODES)}, "
                          f"not '{options.large_raster}'.")
    if not options.elevation_max > options.elevation_min:
        raise EngineError(f"ELEVATION_MAX ({options.elevation_max:g}) must be greater than "
                          f"ELEVATION_MIN ({options.elevation_min:g}).")
    if options.sun_azimuth is not None and not np.isfinite(options.sun_azimuth):
        raise EngineError("SUN_AZIMUTH must be a finite number of degrees.")
    if options.scales not in SCALE_MODES:
        raise EngineError(f"SCALES must be one of {', '.join(SCALE_MODES)}, not '{options.scales}'.")
    check_height_options(options.heights, options.reference_dem)
    check_scheduler(options.scheduler)


class _Progress:
    def __init__(self, total, progress, is_canceled):
        self.total, self.done = max(total, 1), 0
        self.progress, self.is_canceled = progress, is_canceled

    def check(self):
        if self.is_canceled and self.is_canceled():
            raise Cancelled()

    def step(self):
        self.done += 1
        if self.progress:
            self.progress(100.0 * self.done / self.total)


def _run_tiles(plan, executor, writer, tracker):
    """Native resolution: every window inferred on its own by the executor, then blended (tile_blend)."""
    try:
        blend_plan(plan, executor.results(plan, tracker), writer, tracker)
    finally:
        executor.close()
    return len(plan)


def _run_single(source, predictor, writer, tracker):
    """A raster within one model input: nothing to blend, so the prediction is written as it is."""
    tracker.check()
    values, valid = source.read(0, 0, source.ds.RasterXSize, source.ds.RasterYSize)
    writer.write(0, predictor.predict(fill_invalid(values, valid), valid), valid)
    tracker.step()
    return 1


def _bin_edges(length, bins):
    return np.floor(np.arange(bins + 1) * length / bins).astype(np.intp)


def _downsample(source, small_h, small_w, tracker):
    """Mask-aware box average of the whole raster onto a small_h × small_w grid, read in strips."""
    width, height = source.ds.RasterXSize, source.ds.RasterYSize
    row_edges, col_edges = _bin_edges(height, small_h), _bin_edges(width, small_w)
    rows_per_chunk = max(1, int(FIT_CHUNK_PIXELS / (width * height / small_h)))
    sums = np.zeros((small_h, small_w)); counts = np.zeros((small_h, small_w))
    for first in range(0, small_h, rows_per_chunk):
        tracker.check()
        last = min(first + rows_per_chunk, small_h)
        y0, y1 = row_edges[first], row_edges[last]
        values, valid = source.read(0, y0, width, y1 - y0)
        source.release_cache()
        starts = row_edges[first:last] - y0
        for target, data in ((sums, np.where(valid, values, 0.0)), (counts, valid.astype(np.float64))):
            by_rows = np.add.reduceat(data, starts, axis=0)
            target[first:last] = np.add.reduceat(by_rows, col_edges[:-1], axis=1)
    valid_small = counts > 0
    return np.divide(sums, counts, out=np.zeros_like(sums), where=valid_small).astype(np.float32), valid_small


def _linear_weights(out_length, in_length):
    """Source indices and weights for pixel-centre-aligned linear resampling along one axis."""
    position = np.clip((np.arange(out_length) + 0.5) * in_length / out_length - 0.5, 0, in_length - 1)
    lower = np.floor(position).astype(np.intp)
    upper = np.minimum(lower + 1, in_length - 1)
    return lower, upper, (position - lower).astype(np.float32)


def _run_fit(source, predictor, writer, tracker):
    """As JMARS: scale the raster to fit the model input, infer once, scale the DTM back up."""
    width, height = source.ds.RasterXSize, source.ds.RasterYSize
    scale = predictor.card.input_size / max(width, height)
    small_h, small_w = max(1, round(height * scale)), max(1, round(width * scale))
    small, small_valid = _downsample(source, small_h, small_w, tracker)
    tracker.step()
    small_dtm = predictor.predict(fill_invalid(small, small_valid), small_valid)
    tracker.step()
    columns, all_rows = _linear_weights(width, small_w), _linear_weights(height, small_h)
    rows_per_chunk = max(1, FIT_CHUNK_PIXELS // width)
    for y0 in range(0, height, rows_per_chunk):
        tracker.check()
        y1 = min(y0 + rows_per_chunk, height)
        dtm = bilinear_rows(small_dtm, tuple(w[y0:y1] for w in all_rows), columns)
        _, valid = source.read(0, y0, width, y1 - y0)
        source.release_cache()
        writer.write(y0, dtm, valid)
    tracker.step()
    return 1


def _sun_elevation_used(options, photometry):
    """The sun's elevation as the model or the refinement used it ('' where neither did)."""
    used = options.sun_elevation if options.sun_elevation is not None else getattr(photometry, "sun_elevation", None)
    return "" if used is None else f"{used:g}"


def estimate_dtm(input_path, output_path, options, progress=None, is_canceled=None, log=None):
    """Estimate a DTM for the raster at input_path and write it to output_path (all or nothing).

    progress(percent) is called after each tile; is_canceled() is polled between tiles; log(text)
    receives the human-readable lines (which provider ran, warnings). Raises EngineError.
    """
    started = time.perf_counter()
    log = log or (lambda text: None)
    _check_options(options)
    driver = check_destination(input_path, output_path)
    model, runtime_warning = open_model(options.model_path, options.device, options.threads,
                                        options.graph_optimization)
    card = model.card
    ds = open_input(input_path)
    source = SingleBandSource(ds, options.band, card.input_range)
    width, height = ds.RasterXSize, ds.RasterYSize
    axis = raster_shading_axis(source.read, width, height)
    axis_line, sun_warning = sun_azimuth_check(axis, options.sun_azimuth, card.sun_azimuth_deg)
    warnings = [w for w in (runtime_warning, georeferencing_warning(ds), sun_warning) if w]
    for warning in warnings:
        log(f"Warning: {warning}")
    log(f"Inference with {card.summary()} on {model.provider}; input {source.description}, "
        f"{source.stretch_note()}.")
    log(axis_line)
    fit, plan = plan_windows(card, width, height, options)
    # fit mode shows the model pixels max(width, height) / input_size times the input's
    heights = plan_heights(card, options, ds, max(width, height) / card.input_size if fit else 1.0, log)
    photometry = plan_photoclinometry(options, card, source, ds, log)  # the photometry as given, whatever the model takes
    options = resolve_sun_elevation(card, resolve_flat_grey(card, options, log), log)
    predictor = TilePredictor(model, options, heights, flat_level(card, source, options.flat_grey),
                              sun_level(card, options.sun_elevation), photometry)
    log(predictor.scales_line)
    light = card.sun_azimuth_deg if options.sun_azimuth is None else options.sun_azimuth
    log(unseen_slope_line(light, options.heights))
    if predictor.turn:
        log(f"Sun azimuth {options.sun_azimuth:g}° turned {predictor.turn:g}° clockwise to the model's "
            f"canonical {card.sun_azimuth_deg:g}°.")
    tracker = _Progress(progress_steps(fit, plan), progress, is_canceled)
    predictor.check = tracker.check
    writer = AtomicDtmWriter(output_path, driver, ds, f"Estimated relief ({card.name})")
    try:
        if fit or len(plan) == 1:  # one model run: nothing to distribute
            if options.scheduler:
                log("One model run: it runs in this process, not on the Dask cluster.")
            tiles = _run_fit(source, predictor, writer, tracker) if fit else _run_single(source, predictor, writer, tracker)
        else:
            executor = open_executor(options, input_path, source, predictor, log)
            tiles = _run_tiles(plan, executor, writer, tracker)
        height_metadata = heights.finish(writer, log, tracker.check)
        writer.commit({
            "DTM_MODEL": card.summary(), "DTM_PROVIDER": model.provider,
            "DTM_INPUT_BANDS": source.description, "DTM_INPUT_SCALING": source.stretch_note(),
            "DTM_LARGE_RASTER": "fit" if fit else "tile",
            "DTM_SUN_AZIMUTH": "" if options.sun_azimuth is None else f"{options.sun_azimuth:g}",
            "DTM_MEASURED_LIGHT_LINE": "" if axis is None else axis.describe(),
            "DTM_UNSEEN_SLOPE_LINE": "{:g},{:g}".format(*across_light(light)),
            "DTM_ELEVATION_RANGE": f"{options.elevation_min:g},{options.elevation_max:g}",
            "DTM_SCALES": ",".join(f"{z:g}" for z in predictor.zooms),
            "DTM_FLAT_GREY": "" if options.flat_grey is None else f"{options.flat_grey:g}",
            "DTM_SUN_ELEVATION": _sun_elevation_used(options, photometry),
            "DTM_PHOTOCLINOMETRY": "" if photometry is None else photometry.describe(),
            **height_metadata,
        })
    except BaseException:
        writer.discard()
        raise
    seconds = time.perf_counter() - started
    log(f"DTM written to {output_path}: {tiles} model run(s) in {seconds:.1f} s on {model.provider}.")
    return EstimateReport(output_path, model.provider, card.summary(), tiles, seconds, warnings)
