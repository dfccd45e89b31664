"""The plugin package loads without a QGIS GUI (iface None), as qgis_process loads it, and its
metadata is what the plugin manager and the repository need."""
import configparser
import importlib
import os
import re
import xml.etree.ElementTree as ElementTree

from rasters import smooth_image, write_raster
from test_qgis_process import qgis_env, qgis_process  # noqa: F401 - the throw-away-HOME fixture

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def metadata():
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(os.path.join(ROOT, "metadata.txt"), encoding="utf-8")
    return parser["general"]


def test_metadata_is_complete():
    meta = metadata()
    assert meta["name"] == "DTM Estimator"
    assert meta["qgisMinimumVersion"] == "3.22"
    assert meta["version"] == "0.1.0"
    assert meta["category"] == "Raster"
    assert meta["hasProcessingProvider"] == "yes"
    assert meta["experimental"] == "True" and meta["server"] == "False"
    assert meta["email"] == "dtm-estimator@example.org"
    assert meta["repository"] == "https://github.com/dtm-estimator/dtm_estimator"
    assert meta["tracker"] == "https://github.com/dtm-estimator/dtm_estimator/issues"
    for word in ("onnxruntime", "onnxruntime-gpu", "renders of real DEMs"):
        assert word in meta["about"]
    tags = [t.strip() for t in meta["tags"].split(",")]
    assert {"dtm", "dem", "mars", "planetary", "machine learning", "onnx", "shape from shading",
            "elevation"} <= set(tags)
    for key in ("description", "author", "homepage", "changelog"):
        assert meta[key].strip()
    assert os.path.isfile(os.path.join(ROOT, meta["icon"]))


def test_icon_is_valid_svg_and_in_resources():
    icon = os.path.join(ROOT, "icons", "icon.svg")
    assert ElementTree.parse(icon).getroot().tag.endswith("svg")
    qrc = ElementTree.parse(os.path.join(ROOT, "resources.qrc")).getroot()
    resource = qrc.find("qresource")
    assert resource.get("prefix") == "/plugins/dtm_estimator"
    files = [f.text for f in resource.findall("file")]
    assert "icons/icon.svg" in files and all(os.path.isfile(os.path.join(ROOT, f)) for f in files)


def test_package_and_provider_import_without_iface(qgis_app):
    package = importlib.import_module("dtm_estimator")
    assert callable(package.classFactory)
    provider_module = importlib.import_module("dtm_estimator.processing_provider.provider")
    provider = provider_module.DtmEstimatorProvider()
    assert provider.id() == "dtmestimator" and provider.name() == "DTM Estimator"
    assert not provider.icon().isNull()


def test_class_factory_with_iface_none_registers_and_unregisters_the_provider(qgis_app):
    """What qgis_process does: classFactory(None), initProcessing(), later unload()."""
    from qgis.core import QgsApplication
    import dtm_estimator
    registry = QgsApplication.processingRegistry()
    existing = registry.providerById("dtmestimator")
    if existing is not None:  # the session fixture's provider; put it back afterwards
        registry.removeProvider(existing)
    try:
        plugin = dtm_estimator.classFactory(None)
        plugin.initProcessing()
        plugin.initProcessing()  # idempotent
        assert registry.providerById("dtmestimator") is plugin.provider
        assert registry.algorithmById("dtmestimator:estimatedtm") is not None
        plugin.initGui()  # with iface None: provider only, no GUI
        assert plugin.action is None
        plugin.unload()
        assert registry.providerById("dtmestimator") is None
        plugin.initProcessing()  # loading again leaves exactly one provider
        assert [p.id() for p in registry.providers()].count("dtmestimator") == 1
        plugin.unload()
        assert registry.providerById("dtmestimator") is None
    finally:
        from dtm_estimator.processing_provider.provider import DtmEstimatorProvider
        test_class_factory_with_iface_none_registers_and_unregisters_the_provider.provider = DtmEstimatorProvider()
        registry.addProvider(test_class_factory_with_iface_none_registers_and_unregisters_the_provider.provider)


def test_engine_stays_qgis_free():
    for folder, _, files in os.walk(os.path.join(ROOT, "engine")):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(folder, name), encoding="utf-8") as handle:
                    text = handle.read()
                assert "import qgis" not in text and "from qgis" not in text, name


def test_qgis_process_lists_the_plugin_as_a_processing_provider(qgis_env):  # noqa: F811
    done = qgis_process(qgis_env, "plugins")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "* dtm_estimator" in done.stdout  # "*": loaded and implements a Processing provider
    listing = qgis_process(qgis_env, "list")
    assert listing.returncode == 0, listing.stderr
    assert "dtmestimator:estimatedtm" in listing.stdout


def test_gui_glue_uses_only_methods_qgis_3_22_iface_has(qgis_app):
    """No GUI runs headless, so check plugin.py calls nothing that QgisInterface 3.22 lacks."""
    from qgis.gui import QgisInterface
    with open(os.path.join(ROOT, "plugin.py"), encoding="utf-8") as handle:
        called = set(re.findall(r"self\.iface\.(\w+)\(", handle.read()))
    assert {"addCustomActionForLayerType", "removeCustomActionForLayerType", "addPluginToRasterMenu",
            "removePluginRasterMenu", "addRasterToolBarIcon", "removeRasterToolBarIcon"} <= called
    missing = [name for name in called if not hasattr(QgisInterface, name)]
    assert not missing


RELOAD_SCRIPT = r'''
import json, os, sys, traceback
from qgis.core import QgsApplication, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QToolBar
from qgis.utils import iface, loadPlugin, reloadPlugin, startPlugin, unloadPlugin

out = {}


def counts():
    menu = iface.layerTreeView().menuProvider().createContextMenu()
    raster = [a for a in iface.rasterMenu().actions() if a.text() == "DTM Estimator"]
    return {
        "context_menu": sum(a.text() == "Estimate DTM" for a in menu.actions()),
        "raster_menu": len(raster),
        "raster_menu_items": len(raster[0].menu().actions()) if raster else 0,
        "toolbar": sum(a.text() == "Estimate DTM" for t in iface.mainWindow().findChildren(QToolBar)
                       for a in t.actions()),
        "providers": [p.id() for p in QgsApplication.processingRegistry().providers()].count("dtmestimator"),
    }


def start():
    try:
        layer = QgsRasterLayer(os.environ["DTM_INPUT"], "image")
        QgsProject.instance().addMapLayer(layer)
        iface.layerTreeView().setCurrentLayer(layer)
        out["loaded"] = counts()
        reloadPlugin("dtm_estimator")
        reloadPlugin("dtm_estimator")
        out["reloaded_twice"] = counts()
        unloadPlugin("dtm_estimator")
        out["unloaded"] = counts()
        loadPlugin("dtm_estimator")
        startPlugin("dtm_estimator")
        out["started_again"] = counts()
    except Exception:
        out["error"] = traceback.format_exc()
    with open(os.environ["DTM_RESULT"], "w") as handle:
        json.dump(out, handle)
    os._exit(0)


QTimer.singleShot(1000, start)
'''


def test_desktop_load_reload_unload_leaves_exactly_one_of_each(tmp_path):
    """In a real QGIS window (Xvfb): one context-menu action, Raster menu entry, toolbar button and
    provider after loading and after two reloads; none after unloading; one again after loading."""
    import json
    import shutil
    import subprocess
    missing = [p for p in ("xvfb-run", "qgis") if not shutil.which(p)]
    if missing:
        import pytest
        pytest.skip(f"{', '.join(missing)} not installed (no desktop QGIS here)")
    settings = tmp_path / "profiles" / "profiles" / "default" / "QGIS"
    settings.mkdir(parents=True)
    (settings / "QGIS3.ini").write_text("[PythonPlugins]\ndtm_estimator=true\n\n[qgis]\ncheckVersion=false\n"
                                        "showTips322=false\nshowTips=false\n")
    script = tmp_path / "reload.py"
    script.write_text(RELOAD_SCRIPT)
    result = tmp_path / "result.json"
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = dict(os.environ, QGIS_PLUGINPATH=os.path.join(ROOT, "build", "plugins"), DTM_RESULT=str(result),
               DTM_INPUT=write_raster(str(tmp_path / "image.tif"), smooth_image(64, 96).astype("uint8")),
               XDG_RUNTIME_DIR=str(runtime), HOME=str(tmp_path))
    env.pop("QT_QPA_PLATFORM", None)
    process = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", "qgis", "--noversioncheck",
                              "--nologo", "--profiles-path", str(tmp_path / "profiles"), "--code", str(script)],
                             env=env, capture_output=True, text=True, timeout=300)
    assert result.exists(), f"QGIS ended without a result (rc {process.returncode}): {process.stderr[-2000:]}"
    counts = json.loads(result.read_text())
    assert "error" not in counts, counts["error"]
    # the Raster ▸ DTM Estimator submenu holds "Estimate DTM" and "Settings…"
    one = {"context_menu": 1, "raster_menu": 1, "raster_menu_items": 2, "toolbar": 1, "providers": 1}
    assert counts["loaded"] == one
    assert counts["reloaded_twice"] == one
    assert counts["unloaded"] == dict.fromkeys(one, 0)
    assert counts["started_again"] == one
