"""The settings dialog (ui/settings_dialog.ui) and the defaults it keeps in QgsSettings."""
import pytest


@pytest.fixture
def saved_defaults(qgis_app):
    from dtm_estimator import settings
    before = settings.default_model(), settings.default_device()
    yield settings
    settings.set_defaults(*before)


def test_dialog_shows_models_devices_providers_and_cards(saved_defaults):
    from dtm_estimator.engine import BUNDLED_MODELS, DEVICES
    from dtm_estimator.ui.settings_dialog import SettingsDialog
    dialog = SettingsDialog()
    assert [dialog.modelCombo.itemText(i) for i in range(dialog.modelCombo.count())] == list(BUNDLED_MODELS)
    assert [dialog.deviceCombo.itemText(i) for i in range(dialog.deviceCombo.count())] == list(DEVICES)
    providers = dialog.providersLabel.text()
    cards = dialog.cardsBrowser.toPlainText()
    for name in BUNDLED_MODELS:
        assert name in cards.lower()
    if "No bundled model" not in providers:
        assert "CPUExecutionProvider" in providers and "TensorrtExecutionProvider" not in providers


def test_accepted_defaults_reach_the_algorithm(saved_defaults):
    from qgis.core import QgsApplication
    from dtm_estimator.ui.settings_dialog import SettingsDialog
    dialog = SettingsDialog()
    dialog.modelCombo.setCurrentText("pix2pixcc")  # not the built-in default (mrfed)
    dialog.deviceCombo.setCurrentText("cpu")
    dialog.accept()
    assert (saved_defaults.default_model(), saved_defaults.default_device()) == ("pix2pixcc", "cpu")
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("dtmestimator:estimatedtm")
    assert algorithm.parameterDefinition("MODEL").defaultValue() == "pix2pixcc"
    assert algorithm.parameterDefinition("DEVICE").defaultValue() == "cpu"
