"""Estimate DTM: a thin Processing adapter from parameters to engine.estimate_dtm.

Everything that touches map layers happens on the main thread (prepareAlgorithm /
postProcessAlgorithm); processAlgorithm only calls the QGIS-free engine with plain values.
"""
import os

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)
from qgis.PyQt.QtCore import QCoreApplication

from .. import settings
from ..engine import (BUNDLED_MODELS, DEFAULT_MODEL, DEVICES, Cancelled, EngineError, EstimateOptions,
                      bundled_model_path, estimate_dtm)
from ..engine.heights import HEIGHT_MODES, check_height_options
from ..engine.multiscale import SCALE_MODES
from ..engine.pipeline import DEFAULT_ELEVATION_RANGE, LARGE_RASTER_MODES
from ..engine.runtime import import_onnxruntime
from .styling import DtmLayerStyler

HELP = """
<p>Estimates a digital terrain model (DTM) from <b>one image</b> of a planetary surface
(shaded relief, orbital photograph) with a neural-network generator run by onnxruntime.
The DTM is a Float32 GeoTIFF on exactly the input's pixel grid: same size, geotransform and CRS
(planetary CRSs without an EPSG code included). Masked, nodata or transparent input pixels are
nodata in the output.</p>

<h3>Parameters</h3>
<dl>
<dt><b>Input image</b> (INPUT)</dt>
<dd>A raster layer read through GDAL (a file). Gray, gray+alpha, RGB and RGBA rasters are used
automatically (RGB as Rec. 601 luma, alpha as mask); 8-bit values are used as they are, deeper
types are stretched between their 0.5th and 99.5th percentiles.</dd>
<dt><b>Band</b> (BAND, optional)</dt>
<dd>The one band to use. Leave empty for automatic choice; required for rasters with another
number of bands (e.g. multispectral).</dd>
<dt><b>Bundled model</b> (MODEL)</dt>
<dd><i>mrfed</i> (default): a multi-scale residual fusion encoder-decoder (MRFED), the closer of the
two to the truth on the validation DEMs, and about five times faster on a CPU;
<i>pix2pixcc</i>: a Pix2PixCC conditional GAN generator, as JMARS uses. Both are trained on renders of
real DEMs (Earth, Mars, the Moon) lit from a fixed sun, with heights in units of the pixel size; results
are estimated relief, not survey elevations (their measured accuracy is in the README).</dd>
<dt><b>Model file</b> (MODEL_FILE, optional)</dt>
<dd>Your own .onnx model (one float input [N,1,H,W], or [N,2,H,W] with the flat-grey channel its card declares, one output, with a model card in its
metadata). Overrides the bundled model.</dd>
<dt><b>Device</b> (DEVICE)</dt>
<dd><i>auto</i>: GPU when onnxruntime-gpu finds a working CUDA/ROCm/DirectML/CoreML provider,
else CPU (the log says which ran and why); <i>cpu</i>; <i>gpu</i>: fail if no GPU provider
works.</dd>
<dt><b>Sun azimuth</b> (SUN_AZIMUTH, optional)</dt>
<dd>Degrees clockwise from north (0–360) of the light in the image. When set, the image is turned
to the model's training sun direction (its card's canonical azimuth: 270°, light from the west, for
the bundled models) before inference and the DTM turned back. Leave empty if the image is already lit
from that direction. Quarter turns (0°, 90°, 180°) are exact; other azimuths are resampled onto a larger
window whose corners are filled with ground lit by the same sun, and score lower (on the project's validation
DEMs, r about 0.8 lit from 270° and 0.47 from 315°). The log gives the line along which the light falls as
measured in the image's own shading (e.g. "41° or 221°": which side is lit cannot be measured), and warns
when the azimuth used is more than 35° off it: a wrong azimuth gives wrong relief that does not look wrong.
Shading shows the regional slope towards the sun, not across it: the DTM's tilt along the line across the
light (the log says which; metadata DTM_UNSEEN_SLOPE_LINE) is the model's guess. Where it matters, tie the
heights to a reference DEM (HEIGHTS=reference).</dd>
<dt><b>Flat ground's grey level</b> (FLAT_GREY, optional)</dt>
<dd>For models that read a scene's regional tilt from its brightness (their card says
<i>flat_grey_input</i>): the value, in the raster's own units, that flat level ground would have in this
image. A window brighter than that faces the sun, a darker one faces away. For a shaded relief made with
<code>gdaldem hillshade</code> (or QGIS's Hillshade) it is 1 + 254 × sin(sun elevation): 128 at 30°, 181
at 45°, 221 at 60°. Do not guess it: a wrong level tilts the whole DTM (on the demo sample, 162 instead of 156
took r against MOLA from 0.70 to -0.05). Leave empty when it is not known (most real images): the model then draws no regional plane from
brightness and runs as it did before it could (the shipped models: Pix2PixCC 2.0.0, MRFED 2.2.0). Both shipped models take
it; other models ignore it (the log says so).</dd>
<dt><b>Sun elevation</b> (SUN_ELEVATION, optional)</dt>
<dd>For models whose card says <i>sun_elevation_input</i>, used together with FLAT_GREY: the sun's elevation above
the horizon in degrees, 90° minus the incidence angle an orbital image's label states (ISIS INCIDENCE_ANGLE).
A window's brightness against flat ground gives its slope towards the sun only with it (a slope g brightens
a facet by cot(elevation) × g), and the image's contrast gives the relief's amplitude only with it. Leave empty
when it is not known: the model then runs as it does without it. Given with FLAT_GREY, it also turns on the
photoclinometric refinement (below), whatever the model.</dd>
<dt><b>Photoclinometric refinement</b> (PHOTOCLINOMETRY, default on)</dt>
<dd>Where FLAT_GREY and SUN_ELEVATION are both given, the image's photometry is known (brightness proportional
to the cosine of the incidence angle, Lambert's law, as in a <code>gdaldem</code> or QGIS hillshade), so shading
fixes each facet's slope towards the sun. Every window's heights are then refined until their shading matches the
image, staying close to the network's slopes where the image says little (across the light, in shadows,
saturated or nodata pixels); first the network's heights are scaled to the image's contrast. On the project's
held-out test sites this raised r from 0.72 to 0.80 and detail r from 0.86 to 0.94 (MRFED); on its validation DEMs
r from 0.68 to 0.79. It costs about 7 s per 1024² window on a CPU core. Turn it off for images whose brightness does not
follow Lambert's law with a known flat-ground level (most raw orbital images: leave FLAT_GREY empty there anyway).</dd>
<dt><b>Large rasters</b> (LARGE_RASTER)</dt>
<dd><i>tile</i> (default): native resolution; a raster up to about 1536 px a side runs as one window,
larger ones as overlapping model-sized tiles cross-faded into one seamless DTM; <i>fit</i>: like JMARS, the whole image is scaled down to the model size, inferred
once and the DTM scaled back up (fast, coarse).</dd>
<dt><b>Scales</b> (SCALES)</dt>
<dd><i>multi</i> (default): each window is also inferred at half and at twice its pixel count along
each axis, and the three DTMs (in the model's pixel units, so in the same metres) are averaged. Each
scale puts different terrain within the network's view and makes its own errors; on the project's
held-out test sites the average raised r from 0.48 to 0.55 (MRFED) and detail r from 0.81 to 0.85.
On a CPU it takes about 11× the time of <i>single</i> (a 1024² window is 11 model-size runs).
Needs pixel-unit heights; an older range model runs at one scale (the log says so). <i>single</i>: the image at its own pixel size only.</dd>
<dt><b>Heights</b> (HEIGHTS)</dt>
<dd><i>range</i> (default): the JMARS convention; every value lies between elevation min and max.
A model whose card gives pixel-unit heights is stretched so that its lowest point is min and its
highest max; an older range model keeps its linear map of its output range onto [min, max], and the
whole DTM is shifted (or squeezed) back inside only where tiles or the network left it.
<i>pixel_size</i>: metres. The model's height in pixel units times the input's ground pixel size,
taken from the layer's CRS (projected units, or degrees on the CRS's own ellipsoid or sphere at the
raster's centre latitude; the geometric mean of the two sides for non-square pixels); relief above
the lowest point. A raster without a CRS is refused: assign one first. The detail is measured from
the shading; a regional slope across the whole raster barely shows in an image, so the overall tilt
(and with it much of the relief of a small raster) is the model's guess: use <i>reference</i> when
the long wavelengths matter.
<i>reference</i>: metres tied to a reference DEM. The reference is warped onto the input's grid; the
DTM takes its long wavelengths from the reference and its detail finer than a reference pixel from the
model, whose gain is fitted to the reference's slopes by least squares (gain, offset and residual are
in the log and in the output's metadata); averaged over each reference pixel, the DTM gives back the
reference's value. Where the reference has no data the DTM is nodata.
<i>pixel_size</i> and <i>reference</i> need a model with pixel-unit heights (card key
<tt>height_units=pixel</tt>).<br>
Example: a CTX image of a crater (6 m pixels, in a Mars equirectangular CRS) with the MOLA MEGDR
(463 m pixels, Mars geographic) as reference DEM: HEIGHTS=reference gives a 6 m DTM whose heights
follow MOLA over kilometres (areoid elevations) and whose crater rims, gullies and small craters come
from the image; HEIGHTS=pixel_size gives the same detail as relief above the lowest point, with no
reference needed.</dd>
<dt><b>Reference DEM</b> (REFERENCE_DEM, optional)</dt>
<dd>A DEM in metres, any CRS, resolution and extent (GDAL reprojects it: average resampling where
it is finer than the cells it is fitted on, bilinear otherwise). Needed for HEIGHTS=reference.</dd>
<dt><b>Elevation min / max</b> (ELEVATION_MIN, ELEVATION_MAX)</dt>
<dd>HEIGHTS=range only: the range the DTM is mapped onto. The default 0–39,586 m follows the JMARS
convention (the full Mars relief range, Hellas floor to Olympus Mons summit).</dd>
<dt><b>Dask scheduler</b> (DASK_SCHEDULER, advanced, optional)</dt>
<dd>Empty (default): the windows are inferred in QGIS's process. <i>tcp://host:port</i> (or
<i>tls://host:port</i>): a running Dask scheduler whose workers infer the windows (they need this
plugin's engine, the model and the input at the same paths; see the README); <i>local:N</i>: N
worker processes on this machine. Needs the Python package <tt>dask[distributed]</tt>. Progress and
cancellation reach the workers; the output is written only once complete.</dd>
<dt><b>DTM</b> (OUTPUT)</dt>
<dd>The output raster (GeoTIFF by default), written all-or-nothing. When loaded it is named
"&lt;input&gt; DTM", styled with an elevation colour ramp, with a hillshade layer of it above.</dd>
</dl>
<p>Needs the Python package <tt>onnxruntime</tt> (CPU) or <tt>onnxruntime-gpu</tt> in the Python
that QGIS uses.</p>
"""


def tr(text):
    return QCoreApplication.translate("EstimateDtmAlgorithm", text)


def gdal_source_path(layer):
    """The string GDAL opens for a raster layer; QgsProcessingException for other providers."""
    if layer.providerType() != "gdal":
        raise QgsProcessingException(tr(
            "The input layer '{0}' comes from the '{1}' data provider, but Estimate DTM reads rasters "
            "through GDAL only (files and GDAL datasets). Save it as a GeoTIFF first (right-click > "
            "Export > Save As…) and run the tool on that file.").format(layer.name(), layer.providerType()))
    source = layer.source()
    # QGIS appends GDAL open/credential options as "|option:KEY=VALUE" suffixes; GDAL does not
    # understand them in a path.
    path, _, options = source.partition("|")
    return path, options


class EstimateDtmAlgorithm(QgsProcessingAlgorithm):
    INPUT = "INPUT"
    BAND = "BAND"
    MODEL = "MODEL"
    MODEL_FILE = "MODEL_FILE"
    DEVICE = "DEVICE"
    SUN_AZIMUTH = "SUN_AZIMUTH"
    FLAT_GREY = "FLAT_GREY"
    SUN_ELEVATION = "SUN_ELEVATION"
    PHOTOCLINOMETRY = "PHOTOCLINOMETRY"
    LARGE_RASTER = "LARGE_RASTER"
    SCALES = "SCALES"
    HEIGHTS = "HEIGHTS"
    REFERENCE_DEM = "REFERENCE_DEM"
    ELEVATION_MIN = "ELEVATION_MIN"
    ELEVATION_MAX = "ELEVATION_MAX"
    DASK_SCHEDULER = "DASK_SCHEDULER"
    OUTPUT = "OUTPUT"
    PROVIDER = "PROVIDER"
    MODEL_NAME = "MODEL_NAME"
    TILES = "TILES"

    def __init__(self):
        super().__init__()
        self._input_path = None
        self._input_name = None
        self._input_error = None
        self._reference_path = None
        self._output = None

    def name(self):
        return "estimatedtm"

    def displayName(self):
        return tr("Estimate DTM")

    def group(self):
        return tr("Terrain")

    def groupId(self):
        return "terrain"

    def tags(self):
        return tr("dtm,dem,elevation,relief,terrain,mars,planetary,shape from shading,"
                  "machine learning,onnx,gan").split(",")

    def shortHelpString(self):
        return tr(HELP)

    def shortDescription(self):
        return tr("Estimates a DTM from one image of a planetary surface with an ONNX model.")

    def helpUrl(self):
        return "https://github.com/dtm-estimator/dtm_estimator#readme"

    def createInstance(self):
        return EstimateDtmAlgorithm()

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, tr("Input image")))
        self.addParameter(QgsProcessingParameterBand(
            self.BAND, tr("Band (empty: automatic — gray, RGB as luma, alpha as mask)"),
            None, self.INPUT, optional=True))
        self.addParameter(QgsProcessingParameterEnum(
            self.MODEL, tr("Bundled model"), options=list(BUNDLED_MODELS), allowMultiple=False,
            defaultValue=settings.default_model(), optional=False, usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL_FILE, tr("Model file (.onnx, overrides the bundled model)"),
            behavior=QgsProcessingParameterFile.File, extension="onnx", optional=True))
        self.addParameter(QgsProcessingParameterEnum(
            self.DEVICE, tr("Device"), options=list(DEVICES), defaultValue=settings.default_device(),
            usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.SUN_AZIMUTH, tr("Sun azimuth in the image (degrees clockwise from north; empty: as trained)"),
            type=QgsProcessingParameterNumber.Double, optional=True, minValue=0.0, maxValue=360.0))
        self.addParameter(QgsProcessingParameterNumber(
            self.FLAT_GREY, tr("Flat ground's grey level in the image (hillshade: 1 + 254·sin(sun elevation); "
                               "empty: unknown)"), type=QgsProcessingParameterNumber.Double, optional=True))
        sun_elevation = QgsProcessingParameterNumber(
            self.SUN_ELEVATION, tr("Sun elevation above the horizon in degrees (90 − incidence angle; with the "
                                   "flat grey level: the photoclinometric refinement, and models that take it; "
                                   "empty: unknown)"),
            type=QgsProcessingParameterNumber.Double, optional=True, minValue=0.0, maxValue=90.0)
        sun_elevation.setFlags(sun_elevation.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(sun_elevation)
        photoclinometry = QgsProcessingParameterBoolean(
            self.PHOTOCLINOMETRY, tr("Refine against the image where FLAT_GREY and SUN_ELEVATION give its photometry "
                                     "(photoclinometry)"), defaultValue=True)
        photoclinometry.setFlags(photoclinometry.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(photoclinometry)
        self.addParameter(QgsProcessingParameterEnum(
            self.LARGE_RASTER, tr("Large rasters (tile: native resolution; fit: scale to the model size)"),
            options=list(LARGE_RASTER_MODES), defaultValue="tile", usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterEnum(
            self.SCALES, tr("Scales (multi: ½×, 1×, 2× averaged, more accurate; single: faster)"),
            options=list(SCALE_MODES), defaultValue="multi", usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterEnum(
            self.HEIGHTS, tr("Heights (range: elevation min…max; pixel_size or reference: metres)"),
            options=list(HEIGHT_MODES), defaultValue="range", usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.REFERENCE_DEM, tr("Reference DEM (metres, any CRS and resolution; for Heights = reference)"),
            optional=True))
        for name, label, default in ((self.ELEVATION_MIN, tr("Elevation min (m)"), DEFAULT_ELEVATION_RANGE[0]),
                                     (self.ELEVATION_MAX, tr("Elevation max (m)"), DEFAULT_ELEVATION_RANGE[1])):
            parameter = QgsProcessingParameterNumber(name, label, type=QgsProcessingParameterNumber.Double,
                                                     defaultValue=default)
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(parameter)
        scheduler = QgsProcessingParameterString(
            self.DASK_SCHEDULER, tr("Dask scheduler (tcp://host:port or local:N; empty: this process)"),
            defaultValue="", optional=True)
        scheduler.setFlags(scheduler.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(scheduler)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, tr("DTM")))
        self.addOutput(QgsProcessingOutputString(self.PROVIDER, tr("onnxruntime provider that ran the model")))
        self.addOutput(QgsProcessingOutputString(self.MODEL_NAME, tr("Model (name, version, architecture)")))
        self.addOutput(QgsProcessingOutputNumber(self.TILES, tr("Model runs")))

    def canExecute(self):
        """The dialog tells the user up front when onnxruntime is missing, with the install hint."""
        try:
            import_onnxruntime()
        except EngineError as exc:
            return False, str(exc)
        return True, ""

    def checkParameterValues(self, parameters, context):
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        low = self.parameterAsDouble(parameters, self.ELEVATION_MIN, context)
        high = self.parameterAsDouble(parameters, self.ELEVATION_MAX, context)
        if not high > low:
            return False, tr("Elevation max ({0:g}) must be greater than elevation min ({1:g}).").format(high, low)
        try:
            check_height_options(self.parameterAsEnumString(parameters, self.HEIGHTS, context) or "range",
                                 parameters.get(self.REFERENCE_DEM))
        except EngineError as exc:
            return False, str(exc)
        return True, ""

    def prepareAlgorithm(self, parameters, context, feedback):
        # Main thread: resolve the layer to a GDAL path here; processAlgorithm never touches layers.
        # QGIS 3.22 turns an exception raised here into a bare "There were errors executing the
        # algorithm" for processing.run, so the message is kept and raised from processAlgorithm.
        self._input_error = None
        try:
            layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
            if layer is None or not layer.isValid():
                raise QgsProcessingException(tr("The input raster could not be loaded: {0}").format(
                    parameters.get(self.INPUT)))
            self._input_path, options = gdal_source_path(layer)
            self._input_name = layer.name()
            self._reference_path, reference_options = self._reference(parameters, context)
        except QgsProcessingException as exc:
            self._input_error = str(exc)
            return True
        for what, dropped in ((tr("the input"), options), (tr("the reference DEM"), reference_options)):
            if dropped:
                feedback.pushWarning(tr("QGIS data-source options '{0}' of {1} are not passed to GDAL; "
                                        "the file is read with default options.").format(dropped, what))
        return True

    def _reference(self, parameters, context):
        """REFERENCE_DEM's GDAL path and the data-source options GDAL will not see; (None, "") when not given."""
        if not parameters.get(self.REFERENCE_DEM):
            return None, ""
        layer = self.parameterAsRasterLayer(parameters, self.REFERENCE_DEM, context)
        if layer is None or not layer.isValid():
            raise QgsProcessingException(tr("The reference DEM could not be loaded: {0}").format(
                parameters.get(self.REFERENCE_DEM)))
        return gdal_source_path(layer)

    def _optional_number(self, parameters, name, context):
        """An optional number parameter's value, or None where it was left empty."""
        value = parameters.get(name)
        return None if value is None or value == "" else self.parameterAsDouble(parameters, name, context)

    def _options(self, parameters, context):
        model_file = self.parameterAsFile(parameters, self.MODEL_FILE, context)
        if model_file:
            model_path = model_file
        else:
            model = self.parameterAsEnumString(parameters, self.MODEL, context) or DEFAULT_MODEL
            try:
                model_path = bundled_model_path(model)
            except EngineError as exc:
                raise QgsProcessingException(str(exc)) from None
            if not os.path.isfile(model_path):
                raise QgsProcessingException(tr(
                    "The bundled model '{0}' is not installed ({1} is missing). Reinstall the plugin, or "
                    "choose your own .onnx model in 'Model file' (MODEL_FILE).").format(model, model_path))
        band = self.parameterAsInt(parameters, self.BAND, context)
        return EstimateOptions(
            model_path=model_path,
            band=band if band and band > 0 else None,
            device=self.parameterAsEnumString(parameters, self.DEVICE, context) or "auto",
            sun_azimuth=self._optional_number(parameters, self.SUN_AZIMUTH, context),
            flat_grey=self._optional_number(parameters, self.FLAT_GREY, context),
            sun_elevation=self._optional_number(parameters, self.SUN_ELEVATION, context),
            photoclinometry=self.parameterAsBoolean(parameters, self.PHOTOCLINOMETRY, context),
            large_raster=self.parameterAsEnumString(parameters, self.LARGE_RASTER, context) or "tile",
            heights=self.parameterAsEnumString(parameters, self.HEIGHTS, context) or "range",
            scales=self.parameterAsEnumString(parameters, self.SCALES, context) or "multi",
            reference_dem=self._reference_path,
            elevation_min=self.parameterAsDouble(parameters, self.ELEVATION_MIN, context),
            elevation_max=self.parameterAsDouble(parameters, self.ELEVATION_MAX, context),
            scheduler=self.parameterAsString(parameters, self.DASK_SCHEDULER, context).strip() or None,
        )

    def processAlgorithm(self, parameters, context, feedback):
        if self._input_error:
            raise QgsProcessingException(self._input_error)
        options = self._options(parameters, context)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        feedback.pushInfo(tr("Model file: {0}").format(options.model_path))

        def log(text):
            if text.startswith("Warning: "):
                feedback.pushWarning(text[len("Warning: "):])
            else:
                feedback.pushInfo(text)

        try:
            report = estimate_dtm(self._input_path, output, options, progress=feedback.setProgress,
                                  is_canceled=feedback.isCanceled, log=log)
        except (Cancelled, EngineError) as exc:  # user-facing messages; Cancelled: nothing was written
            raise QgsProcessingException(str(exc)) from None
        self._output = output
        return {self.OUTPUT: output, self.PROVIDER: report.provider, self.MODEL_NAME: report.model,
                self.TILES: report.tiles}

    def postProcessAlgorithm(self, context, feedback):
        # Main thread, before Processing loads the results: attach the styler to the DTM layer.
        if self._output and context.willLoadLayerOnCompletion(self._output):
            details = context.layerToLoadOnCompletionDetails(self._output)
            details.setPostProcessor(DtmLayerStyler.create(self._output, f"{self._input_name} DTM"))
        return {}
