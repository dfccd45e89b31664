"""User defaults kept in QgsSettings, read by the algorithm dialog and written by the settings dialog."""
from qgis.core import QgsSettings

from .engine import BUNDLED_MODELS, DEFAULT_MODEL, DEVICES

PREFIX = "dtm_estimator/"


def _value(key, default, allowed):
    value = QgsSettings().value(PREFIX + key, default)
    return value if value in allowed else default


def default_model():
    return _value("default_model", DEFAULT_MODEL, BUNDLED_MODELS)


def default_device():
    return _value("default_device", "auto", DEVICES)


def set_defaults(model, device):
    settings = QgsSettings()
    settings.setValue(PREFIX + "default_model", model)
    settings.setValue(PREFIX + "default_device", device)
