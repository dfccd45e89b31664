"""DTM Estimator: a QGIS plugin that estimates a DTM from one image of a planetary surface.

Nothing here touches iface at import time: qgis_process loads the plugin with iface None.
"""
import os
import sys

# `make install` puts onnxruntime here when QGIS's own Python lacks it (PEP 668 systems).
_EXT_LIBS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ext-libs")
if os.path.isdir(_EXT_LIBS) and _EXT_LIBS not in sys.path:
    sys.path.append(_EXT_LIBS)


def classFactory(iface):  # noqa: N802 - QGIS plugin entry point
    from .plugin import DtmEstimatorPlugin
    return DtmEstimatorPlugin(iface)
