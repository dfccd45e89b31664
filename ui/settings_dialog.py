"""Settings dialog (ui/settings_dialog.ui): default model and device, working providers, model cards."""
import html
import os

from qgis.PyQt import uic
from qgis.PyQt.QtWidgets import QDialog

from .. import settings
from ..engine import BUNDLED_MODELS, DEVICES, EngineError, bundled_model_path, read_model_card, working_providers

FORM_CLASS, _ = uic.loadUiType(os.path.join(os.path.dirname(__file__), "settings_dialog.ui"))
CARD_FIELDS = (("Architecture", "architecture"), ("Version", "version"), ("License", "license"),
               ("Canonical sun azimuth (°)", "sun_azimuth_deg"), ("Training GSD (m/px)", "training_gsd_m"))


class SettingsDialog(QDialog, FORM_CLASS):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setupUi(self)
        self.modelCombo.addItems(BUNDLED_MODELS)
        self.modelCombo.setCurrentText(settings.default_model())
        self.deviceCombo.addItems(DEVICES)
        self.deviceCombo.setCurrentText(settings.default_device())
        self.providersLabel.setText(providers_text())
        self.cardsBrowser.setHtml(cards_html())
        self.accepted.connect(self.save)

    def save(self):
        settings.set_defaults(self.modelCombo.currentText(), self.deviceCombo.currentText())


def providers_text():
    model = next((bundled_model_path(n) for n in BUNDLED_MODELS if os.path.exists(bundled_model_path(n))), None)
    if model is None:
        return "No bundled model is installed, so no provider could be probed."
    try:
        working = working_providers(model)
    except EngineError as error:
        return str(error)
    gpu = [p for p in working if p != "CPUExecutionProvider"]
    verdict = f"GPU available: {', '.join(gpu)}" if gpu else "No GPU provider starts here: DTMs run on the CPU."
    return f"Providers that start a session: {', '.join(working)}.\n{verdict}"


def cards_html():
    parts = []
    for name in BUNDLED_MODELS:
        path = bundled_model_path(name)
        try:
            card = read_model_card(path)
        except EngineError as error:
            parts.append(f"<h3>{name}</h3><p>{html.escape(str(error))}</p>")
            continue
        rows = [(label, getattr(card, attr)) for label, attr in CARD_FIELDS]
        rows += [(key.replace("_", " ").capitalize(), value) for key, value in sorted(card.extra.items())]
        table = "".join(f"<tr><td><b>{html.escape(label)}</b></td><td>{html.escape(str(value))}</td></tr>"
                        for label, value in rows)
        parts.append(f"<h3>{html.escape(card.name)}</h3><p><code>{html.escape(path)}</code></p>"
                     f"<table cellspacing='4'>{table}</table>")
    return "".join(parts)
