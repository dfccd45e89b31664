"""Runs inside a real QGIS desktop window (`qgis --code in_qgis.py`, under Xvfb), as a user would:
add a raster layer, right-click it, choose "Estimate DTM", run the dialog, then check the styled
result layer and take a screenshot. Findings go to the JSON file named by DTM_DESKTOP_RESULT."""
import json
import os
import time
import traceback

from qgis.core import QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication
from qgis.utils import iface

INPUT = os.environ["DTM_DESKTOP_INPUT"]
RESULT = os.environ["DTM_DESKTOP_RESULT"]
SCREENSHOT = os.environ["DTM_DESKTOP_SCREENSHOT"]
MODEL_FILE = os.environ.get("DTM_DESKTOP_MODEL_FILE", "")
DEADLINE = time.time() + float(os.environ.get("DTM_DESKTOP_TIMEOUT", "240"))
report = {"steps": []}


def note(step, **facts):
    report["steps"].append(step)
    report.update(facts)


def finish(error=None):
    if error:
        report["error"] = error
    with open(RESULT, "w") as handle:
        json.dump(report, handle, indent=1)
    os._exit(0)  # leave without "save project?" prompts


def guarded(function):
    def wrapper(*args):
        try:
            function(*args)
        except Exception:  # noqa: BLE001 - any failure is reported to the test, which fails on it
            finish(traceback.format_exc())
    return wrapper


@guarded
def start():
    layer = QgsRasterLayer(INPUT, "Mars MOLA")
    QgsProject.instance().addMapLayer(layer)
    iface.layerTreeView().setCurrentLayer(layer)
    menu = iface.layerTreeView().menuProvider().createContextMenu()
    actions = [a for a in menu.actions() if a.text() == "Estimate DTM"]
    raster_menu = [a.text() for a in iface.rasterMenu().actions()]
    note("context menu", context_menu_has_action=len(actions) == 1, input_valid=layer.isValid(),
         raster_menu_has_plugin="DTM Estimator" in raster_menu)
    if not actions:
        finish("no 'Estimate DTM' in the layer's context menu")
    QTimer.singleShot(500, drive_dialog)
    actions[0].trigger()  # opens the modal algorithm dialog; drive_dialog runs inside its event loop


@guarded
def drive_dialog():
    # No window manager under Xvfb: the modal dialog may never become "active", so look it up
    dialogs = [w for w in QApplication.topLevelWidgets() if w.isVisible() and hasattr(w, "runAlgorithm")]
    dialog = dialogs[0] if dialogs else None
    if dialog is None:
        if time.time() > DEADLINE:
            finish("the Estimate DTM dialog did not open")
        QTimer.singleShot(300, drive_dialog)
        return
    parameters = dialog.createProcessingParameters()
    note("dialog open", dialog_title=dialog.windowTitle(),
         prefilled_input=str(parameters.get("INPUT", "")))
    # As a user would type them: make demo's sun azimuth for the sample (its measured light line, lit side)
    changes = {"SUN_AZIMUTH": 41.0, **({"MODEL_FILE": MODEL_FILE} if MODEL_FILE else {})}
    dialog.setParameters(dict(parameters, **changes))
    dialog.runAlgorithm()
    QTimer.singleShot(500, lambda: wait_for_result(dialog))


@guarded
def wait_for_result(dialog):
    layers = [layer for layer in QgsProject.instance().mapLayers().values() if layer.name().endswith(" DTM")]
    if not layers:
        if time.time() > DEADLINE:
            finish("no DTM layer was added to the project")
        QTimer.singleShot(500, lambda: wait_for_result(dialog))
        return
    dtm = layers[0]
    shades = QgsProject.instance().mapLayersByName(dtm.name() + " hillshade")
    note("result loaded", result_name=dtm.name(), result_renderer=dtm.renderer().type(),
         hillshade_renderer=shades[0].renderer().type() if shades else None,
         result_valid=dtm.isValid(), result_size=[dtm.width(), dtm.height()],
         result_crs_equal=dtm.crs() == QgsProject.instance().mapLayersByName("Mars MOLA")[0].crs())
    dialog.close()
    iface.mapCanvas().setExtent(dtm.extent())
    iface.mapCanvas().refreshAllLayers()
    QTimer.singleShot(4000, take_screenshot)


@guarded
def take_screenshot():
    iface.mainWindow().grab().save(SCREENSHOT)
    note("screenshot", screenshot=SCREENSHOT, messages=[f"{item.title()}: {item.text()}"
                                                         for item in iface.messageBar().items()],
         layer_crs={layer.name(): layer.crs().authid() or layer.crs().description()
                    for layer in QgsProject.instance().mapLayers().values()},
         project_crs=QgsProject.instance().crs().authid())
    finish()


QTimer.singleShot(1000, start)
