"""The models shipped in the plugin's models/ folder."""
import os

from .errors import EngineError

MODELS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models")
BUNDLED_MODELS = ("pix2pixcc", "mrfed")
DEFAULT_MODEL = "mrfed"  # the more accurate on make validate (README, Accuracy), and the faster


def bundled_model_path(name):
    if name not in BUNDLED_MODELS:
        raise EngineError(f"Unknown bundled model '{name}'; choose one of {', '.join(BUNDLED_MODELS)}.")
    return os.path.join(MODELS_DIR, f"{name}.onnx")
