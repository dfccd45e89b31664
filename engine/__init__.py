"""QGIS-free DTM estimation engine: numpy, scipy, GDAL and onnxruntime only."""
from .errors import Cancelled, EngineError
from .models import BUNDLED_MODELS, DEFAULT_MODEL, bundled_model_path
from .pipeline import EstimateOptions, EstimateReport, estimate_dtm
from .runtime import DEVICES, open_model, read_model_card, working_providers

__all__ = ["Cancelled", "EngineError", "BUNDLED_MODELS", "DEFAULT_MODEL", "bundled_model_path",
           "EstimateOptions", "EstimateReport", "estimate_dtm", "DEVICES", "open_model",
           "read_model_card", "working_providers"]
