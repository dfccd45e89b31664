"""The DTM Estimator Processing provider (id `dtmestimator`)."""
import os

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .estimate_dtm import EstimateDtmAlgorithm

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ICON_PATH = os.path.join(PLUGIN_DIR, "icons", "icon.svg")


class DtmEstimatorProvider(QgsProcessingProvider):

    def id(self):
        return "dtmestimator"

    def name(self):
        return "DTM Estimator"

    def longName(self):
        return "DTM Estimator (single-image relief estimation with ONNX models)"

    def icon(self):
        return QIcon(ICON_PATH)

    def svgIconPath(self):
        return ICON_PATH

    def loadAlgorithms(self):
        self.addAlgorithm(EstimateDtmAlgorithm())
