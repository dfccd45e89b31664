"""Name and style a loaded DTM layer: a singleband pseudocolor elevation ramp.

QGIS 3.22 cannot combine a hillshade renderer with a pseudocolor renderer in one layer, so the
layer gets a terrain-like colour ramp over its band statistics only; a hillshade is one step away
(Layer Styling > Hillshade on a duplicate, or the native:hillshade algorithm).
"""
from qgis.core import (
    QgsColorRampShader,
    QgsGradientColorRamp,
    QgsGradientStop,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterBandStats,
    QgsRasterLayer,
    QgsRasterShader,
    QgsSingleBandPseudoColorRenderer,
)
from qgis.PyQt.QtGui import QColor

# Low to high: deep basin blue-green, lowland green, upland ochre, rust, bright summit.
TERRAIN_COLOURS = ("#2b5f75", "#3f8f6b", "#a8b560", "#d9b26f", "#b5683c", "#7a4030", "#f4efe9")
RAMP_ITEMS = 32


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

    @classmethod
    def create(cls, output_path, layer_name):
        instance = cls(layer_name)
        cls._instances[output_path] = instance
        return instance
