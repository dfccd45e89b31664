"""GUI glue: register the Processing provider; one action in the layer context menu, the Raster
menu and a toolbar, which opens the Estimate DTM dialog. With iface None (qgis_process) only
initProcessing() is used."""
from qgis.core import QgsApplication, QgsMapLayerType
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction

from .processing_provider.provider import ICON_PATH, DtmEstimatorProvider

ALGORITHM_ID = "dtmestimator:estimatedtm"
MENU = "DTM Estimator"


def plugin_icon():
    try:
        from . import resources_rc  # noqa: F401 - compiled by pyrcc5 from resources.qrc, optional
        icon = QIcon(":/plugins/dtm_estimator/icons/icon.svg")
        if not icon.isNull():
            return icon
    except ImportError:
        pass
    return QIcon(ICON_PATH)


class DtmEstimatorPlugin:

    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.action = None
        self.settings_action = None

    def initProcessing(self):  # noqa: N802 - QGIS API name
        if self.provider is None:
            self.provider = DtmEstimatorProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802 - QGIS API name
        self.initProcessing()
        if self.iface is None or self.action is not None:
            return
        self.action = QAction(plugin_icon(), "Estimate DTM", self.iface.mainWindow())
        self.action.setObjectName("dtmEstimatorEstimateDtm")
        self.action.setToolTip("Estimate a DTM from the selected image layer")
        self.action.triggered.connect(self.run)
        self.iface.addCustomActionForLayerType(self.action, "", QgsMapLayerType.RasterLayer, True)
        self.iface.addPluginToRasterMenu(MENU, self.action)
        self.iface.addRasterToolBarIcon(self.action)
        self.settings_action = QAction("Settings…", self.iface.mainWindow())
        self.settings_action.setObjectName("dtmEstimatorSettings")
        self.settings_action.triggered.connect(self.show_settings)
        self.iface.addPluginToRasterMenu(MENU, self.settings_action)

    def unload(self):
        if self.action is not None and self.iface is not None:
            self.iface.removeCustomActionForLayerType(self.action)
            self.iface.removePluginRasterMenu(MENU, self.action)
            self.iface.removeRasterToolBarIcon(self.action)
            self.action.deleteLater()
            self.iface.removePluginRasterMenu(MENU, self.settings_action)
            self.settings_action.deleteLater()
        self.action = self.settings_action = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None

    def show_settings(self):
        from .ui.settings_dialog import SettingsDialog
        SettingsDialog(self.iface.mainWindow()).exec_()

    def run(self):
        import processing
        parameters = {}
        layer = self.iface.activeLayer() if self.iface else None
        if layer is not None and layer.type() == QgsMapLayerType.RasterLayer:
            parameters["INPUT"] = layer.id()
        processing.execAlgorithmDialog(ALGORITHM_ID, parameters)
