"""DTM Estimator: a QGIS plugin that estimates a DTM from one image of a planetary surface.

Nothing here touches iface at import time: qgis_process loads the plugin with iface None.
"""


def classFactory(iface):  # noqa: N802 - QGIS plugin entry point
    from .plugin import DtmEstimatorPlugin
    return DtmEstimatorPlugin(iface)
