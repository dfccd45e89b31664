"""Command line: python -m engine INPUT OUTPUT [options] [--scheduler tcp://host:port | local:N]

The Estimate DTM algorithm without QGIS, for mosaics and clusters: the same options, the same engine,
a progress bar (windows done, rate, time left) on stderr. Run it from the plugin's folder (the one
holding engine/), or with that folder on PYTHONPATH.
"""
import argparse
import sys
import time

from .errors import EngineError
from .heights import HEIGHT_MODES
from .models import BUNDLED_MODELS, DEFAULT_MODEL, bundled_model_path
from .multiscale import SCALE_MODES
from .pipeline import (DEFAULT_ELEVATION_RANGE, LARGE_RASTER_MODES, EstimateOptions, estimate_dtm, plan_windows,
                       progress_steps)
from .raster_io import open_input
from .runtime import DEVICES, read_model_card


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(prog="python -m engine", description="Estimate a DTM from one image with the "
                                     "plugin's engine, in this process or on a Dask cluster.")
    parser.add_argument("input", help="input image (any GDAL raster: path or /vsi… URL)")
    parser.add_argument("output", help="output DTM (GeoTIFF unless another GDAL extension is given)")
    parser.add_argument("--band", type=int, help="band to use (default: gray, RGB as luma, alpha as mask)")
    parser.add_argument("--model", choices=BUNDLED_MODELS, default=DEFAULT_MODEL, help="bundled generator")
    parser.add_argument("--model-file", help="a custom .onnx model (overrides --model)")
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument("--sun-azimuth", type=float, help="sun azimuth of the image, degrees clockwise from north")
    parser.add_argument("--large-raster", choices=LARGE_RASTER_MODES, default="tile")
    parser.add_argument("--heights", choices=HEIGHT_MODES, default="range",
                        help="range: inside the elevation range; pixel_size: metres from the ground pixel size; "
                             "reference: metres tied to --reference-dem")
    parser.add_argument("--scales", choices=SCALE_MODES, default="multi",
                        help="multi: the image at ½×, 1× and 2× its pixel count, heights averaged (more accurate, "
                             "about 11× the CPU time); single: 1× only")
    parser.add_argument("--reference-dem", help="a DEM in metres, for --heights reference")
    parser.add_argument("--flat-grey", type=float,
                        help="grey level of flat ground in the input's values, for models that take it "
                             "(a gdaldem hillshade: 1 + 254 sin(sun elevation)); default: unknown, no plane from brightness")
    parser.add_argument("--sun-elevation", type=float,
                        help="the sun's elevation above the horizon in degrees (90 - incidence angle), for models "
                             "that take it with --flat-grey, and with it for the photoclinometric refinement; default: unknown")
    parser.add_argument("--no-photoclinometry", dest="photoclinometry", action="store_false",
                        help="do not refine the heights against the image even where --flat-grey and --sun-elevation "
                             "give its photometry (default: refine there)")
    parser.add_argument("--elevation-min", type=float, default=DEFAULT_ELEVATION_RANGE[0])
    parser.add_argument("--elevation-max", type=float, default=DEFAULT_ELEVATION_RANGE[1])
    parser.add_argument("--threads", type=int, help="onnxruntime intra-op threads (default: onnxruntime's)")
    parser.add_argument("--scheduler", help="Dask scheduler address (tcp://host:port, tls://host:port) or "
                                            "local:N for N worker processes here; default: this process")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no log lines")
    return parser.parse_args(argv)


def options_from(arguments):
    return EstimateOptions(
        model_path=arguments.model_file or bundled_model_path(arguments.model), band=arguments.band,
        device=arguments.device, sun_azimuth=arguments.sun_azimuth, large_raster=arguments.large_raster,
        heights=arguments.heights, reference_dem=arguments.reference_dem,
        elevation_min=arguments.elevation_min, elevation_max=arguments.elevation_max,
        threads=arguments.threads, scheduler=arguments.scheduler, scales=arguments.scales,
        flat_grey=arguments.flat_grey, sun_elevation=arguments.sun_elevation,
        photoclinometry=arguments.photoclinometry)


def model_runs(input_path, options):
    """How many model runs the engine's progress counts (pipeline's own plan for this input)."""
    ds = open_input(input_path)
    return progress_steps(*plan_windows(read_model_card(options.model_path), ds.RasterXSize, ds.RasterYSize,
                                        options))


class ProgressBar:
    """Windows done of total, windows per second and time left, redrawn in place on a terminal."""

    def __init__(self, total, stream=sys.stderr, width=30):
        self.total, self.stream, self.width = total, stream, width
        self.started = self.last_line = time.monotonic()
        self.done = 0
        self.drawn = False

    def update(self, percent):
        self.done = round(percent * self.total / 100.0)
        now = time.monotonic()
        if self.stream.isatty() or self.done == self.total or now - self.last_line >= 5:
            self.last_line = now
            self._draw(now - self.started)

    def _draw(self, elapsed):
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate else float("nan")
        filled = int(self.width * self.done / max(self.total, 1))
        line = (f"[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} windows, "
                f"{rate:.2f} windows/s, {_duration(left)} left")
        end = "" if self.stream.isatty() and self.done < self.total else "\n"
        self.stream.write(("\r" if self.stream.isatty() else "") + line + end)
        self.stream.flush()
        self.drawn = end == ""

    def log(self, text):
        """A log line above the bar."""
        self.stream.write(("\n" if self.drawn else "") + text + "\n")
        self.stream.flush()
        self.drawn = False


def _duration(seconds):
    if seconds != seconds:  # NaN: no rate yet
        return "?"
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def main(argv=None):
    arguments = parse_arguments(argv)
    try:
        options = options_from(arguments)
        bar = None if arguments.quiet else ProgressBar(model_runs(arguments.input, options))
        report = estimate_dtm(arguments.input, arguments.output, options, progress=bar and bar.update,
                              log=bar and bar.log)
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ncancelled: no output was written.", file=sys.stderr)
        return 130
    if arguments.quiet:
        print(report.output_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
