"""Test session set-up: the repository is linked as the plugin `dtm_estimator`, and one real
QgsApplication (offscreen) with Processing and the provider serves every test that needs QGIS."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGINS_DIR = os.path.join(ROOT, "build", "plugins")
PLUGIN_LINK = os.path.join(PLUGINS_DIR, "dtm_estimator")
SHARED = os.path.join(os.path.dirname(ROOT), "shared")

os.makedirs(PLUGINS_DIR, exist_ok=True)
if not os.path.lexists(PLUGIN_LINK):
    os.symlink(ROOT, PLUGIN_LINK)
# the plugin as a package, the test helpers, and the repository's tools (validation, training)
for path in (ROOT, PLUGINS_DIR, os.path.dirname(os.path.abspath(__file__))):
    if path not in sys.path:
        sys.path.insert(0, path)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import onnx_fixtures  # noqa: E402


@pytest.fixture(scope="session")
def qgis_app():
    """One QgsApplication for the whole session, with Processing and the DTM provider registered."""
    from qgis.core import QgsApplication
    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], False)
    app.initQgis()
    sys.path.append("/usr/share/qgis/python/plugins")
    from processing.core.Processing import Processing
    Processing.initialize()
    from dtm_estimator.processing_provider.provider import DtmEstimatorProvider
    # The registry takes the provider's ownership on the C++ side only: keep a Python reference
    # for the session, or its algorithms vanish with the wrapper.
    provider = QgsApplication.processingRegistry().providerById("dtmestimator")
    if provider is None:
        provider = DtmEstimatorProvider()
        QgsApplication.processingRegistry().addProvider(provider)
    yield app


@pytest.fixture(scope="session")
def processing(qgis_app):
    """QGIS's `processing` module, ready (Processing initialised, the DTM provider registered)."""
    import processing as processing_module
    return processing_module


@pytest.fixture(scope="session")
def identity_model(tmp_path_factory):
    """elevation = image: every pixel of the output can be predicted exactly."""
    return onnx_fixtures.identity(str(tmp_path_factory.mktemp("models") / "identity.onnx"))


@pytest.fixture(scope="session")
def blur_model(tmp_path_factory):
    return onnx_fixtures.box_blur(str(tmp_path_factory.mktemp("models") / "blur.onnx"))
