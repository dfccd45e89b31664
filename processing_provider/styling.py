"""Name and style a loaded DTM layer: a pseudocolor elevation ramp under a hillshade.

QGIS 3.22 has no renderer that combines a colour ramp with a hillshade, so the DTM layer gets the
terrain colour ramp over its band statistics, and a companion layer on the same file, just above it,
draws the hillshade in Multiply blending: the classic shaded-relief map, and either layer can be
switched off on its own.
"""
from qgis.core import (
    QgsColorRampShader,
    QgsEllipsoidUtils,
    QgsHillshadeRenderer,
    QgsGradientColorRamp,
    QgsGradientStop,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterBandStats,
    QgsRasterLayer,
    QgsRasterShader,
    QgsSingleBandPseudoColorRenderer,
)
from qgis.PyQt.QtGui import QColor, QPainter

# Low to high: deep basin blue-green, lowland green, upland ochre, rust, bright summit.
TERRAIN_COLOURS = ("#2b5f75", "#3f8f6b", "#a8b560", "#d9b26f", "#b5683c", "#7a4030", "#f4efe9")
RAMP_ITEMS = 32
HILLSHADE_AZIMUTH, HILLSHADE_ALTITUDE, HILLSHADE_OPACITY = 315.0, 45.0, 0.6


def terrain_ramp():
    colours = [QColor(c) for c in TERRAIN_COLOURS]
    stops = [QgsGradientStop(i / (len(colours) - 1), c) for i, c in enumerate(colours[1:-1], start=1)]
    return QgsGradientColorRamp(colours[0], colours[-1], False, stops)


def elevation_renderer(layer):
    """A QgsSingleBandPseudoColorRenderer for band 1 between the band's minimum and maximum."""
    provider = layer.dataProvider()
    stats = provider.bandStatistics(1, QgsRasterBandStats.Min | QgsRasterBandStats.Max)
    low, high = stats.minimumValue, stats.maximumValue
    if not high > low:
        high = low + 1.0
    ramp = terrain_ramp()
    shader_function = QgsColorRampShader(low, high)
    shader_function.setColorRampType(QgsColorRampShader.Interpolated)
    shader_function.setSourceColorRamp(ramp.clone())
    items = []
    for i in range(RAMP_ITEMS):
        t = i / (RAMP_ITEMS - 1)
        value = low + t * (high - low)
        items.append(QgsColorRampShader.ColorRampItem(value, ramp.color(t), f"{value:.0f}"))
    shader_function.setColorRampItemList(items)
    shader = QgsRasterShader(low, high)
    shader.setRasterShaderFunction(shader_function)
    renderer = QgsSingleBandPseudoColorRenderer(provider, 1, shader)
    renderer.setClassificationMin(low)
    renderer.setClassificationMax(high)
    return renderer


def style_dtm_layer(layer, name=None):
    if name:
        layer.setName(name)
    if isinstance(layer, QgsRasterLayer) and layer.isValid():
        layer.setRenderer(elevation_renderer(layer))
        layer.triggerRepaint()
    return layer


def _z_factor(layer):
    """Hillshades need slopes in metres per metre: divide by the metres in one degree where the CRS
    is geographic (on the CRS's own body — Mars, the Moon — not the Earth)."""
    crs = layer.crs()
    if not crs.isGeographic():
        return 1.0
    radius = QgsEllipsoidUtils.ellipsoidParameters(crs.ellipsoidAcronym()).semiMajor
    return 1.0 / ((radius if radius > 0 else 6378137.0) * 3.141592653589793 / 180.0)


def add_hillshade_companion(layer, project):
    """A hillshade of the same file, multiplied over the colour ramp, placed just above the DTM."""
    shade = QgsRasterLayer(layer.source(), f"{layer.name()} hillshade", layer.providerType())
    if not shade.isValid():
        return None
    renderer = QgsHillshadeRenderer(shade.dataProvider(), 1, HILLSHADE_AZIMUTH, HILLSHADE_ALTITUDE)
    renderer.setZFactor(_z_factor(layer))
    renderer.setOpacity(HILLSHADE_OPACITY)
    shade.setRenderer(renderer)
    shade.setBlendMode(QPainter.CompositionMode_Multiply)
    project.addMapLayer(shade, False)
    node = project.layerTreeRoot().findLayer(layer.id())
    parent = node.parent() if node is not None else project.layerTreeRoot()
    parent.insertLayer(parent.children().index(node) if node is not None else 0, shade)
    return shade


class DtmLayerStyler(QgsProcessingLayerPostProcessorInterface):
    """Renames and styles the DTM when Processing loads it into a project.

    Processing keeps only a raw pointer to a post-processor, so a Python instance must be held
    here or it is garbage-collected before it runs; one is kept per output path (bounded by the
    number of distinct outputs) so batch runs do not drop each other's stylers.
    """
    _instances = {}

    def __init__(self, layer_name):
        super().__init__()
        self.layer_name = layer_name

    def postProcessLayer(self, layer, context, feedback):
        style_dtm_layer(layer, self.layer_name)
        if context.project() is not None and isinstance(layer, QgsRasterLayer) and layer.isValid():
            add_hillshade_companion(layer, context.project())

    @classmethod
    def create(cls, output_path, layer_name):
        instance = cls(layer_name)
        cls._instances[output_path] = instance
        return instance
