"""onnxruntime sessions: honest provider choice, model validation and a per-(file, device) cache.

onnxruntime-gpu lists CUDAExecutionProvider even where no CUDA library loads; asking for it then
logs errors and silently falls back to CPU. We probe with the logger muted and report the provider
the session really uses.
"""
import os
import threading

from .errors import EngineError
from .flat_grey import input_channels
from .model_card import GRAPH_OPTIMIZATION_LEVELS, ModelCard

DEVICES = ("auto", "cpu", "gpu")
GPU_PROVIDERS = ("CUDAExecutionProvider", "ROCMExecutionProvider", "DmlExecutionProvider",
                 "CoreMLExecutionProvider")
INSTALL_HINT = ("Install it into the Python that QGIS uses, e.g. `python3 -m pip install onnxruntime-gpu` "
                "(or `onnxruntime` for CPU only) — see the plugin's README.")

_cache = {}
_cache_lock = threading.Lock()


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise EngineError(f"onnxruntime is not installed ({exc}). {INSTALL_HINT}") from None
    return onnxruntime


class ModelSession:
    """A validated onnxruntime session, its model card and the provider that really runs it."""

    def __init__(self, session, card, provider, graph_optimization="all", warning=None):
        self.session = session
        self.card = card
        self.provider = provider
        self.graph_optimization = graph_optimization
        self.warning = warning  # why the GPU was not used, given to every run on this session
        self.input_name = session.get_inputs()[0].name
        self.output_name = session.get_outputs()[0].name
        # onnxruntime's run() is thread-safe, but serialising keeps memory flat when two
        # QGIS tasks share one session.
        self.lock = threading.Lock()

    def run(self, batch):
        with self.lock:
            return self.session.run([self.output_name], {self.input_name: batch})[0]


def _muted_session(ort, path, providers, options):
    """Create a session with onnxruntime's logger silenced, so a failed CUDA load prints nothing."""
    ort.set_default_logger_severity(4)
    try:
        return ort.InferenceSession(path, sess_options=options, providers=providers)
    finally:
        ort.set_default_logger_severity(2)


# the card's level names, in order, as onnxruntime's GraphOptimizationLevel members
_LEVELS = dict(zip(GRAPH_OPTIMIZATION_LEVELS,
                   ("ORT_DISABLE_ALL", "ORT_ENABLE_BASIC", "ORT_ENABLE_EXTENDED", "ORT_ENABLE_ALL")))


def _session_options(ort, threads, graph_optimization="all"):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _LEVELS[graph_optimization])
    if threads:
        options.intra_op_num_threads = int(threads)
    return options


def _open(ort, path, device, threads, graph_optimization):
    available = ort.get_available_providers()
    gpu = [p for p in GPU_PROVIDERS if p in available]
    options = _session_options(ort, threads, graph_optimization)
    if device in ("auto", "gpu") and gpu:
        try:
            session = _muted_session(ort, path, [gpu[0], "CPUExecutionProvider"], options)
            if session.get_providers()[0] == gpu[0]:
                return session, gpu[0], None
            reason = f"{gpu[0]} is installed but could not start (no usable GPU driver/CUDA libraries)"
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises many types for a broken GPU stack
            reason = f"{gpu[0]} failed to start: {str(exc).splitlines()[0]}"
    else:
        reason = "this onnxruntime has no GPU provider" if not gpu else None
    if device == "gpu":
        raise EngineError(f"DEVICE=gpu was requested but no GPU provider works: {reason}. "
                          f"Available providers: {', '.join(available)}. Use DEVICE=auto or cpu, or "
                          "install onnxruntime-gpu with a matching CUDA/cuDNN.")
    session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
    warning = f"GPU not used: {reason}; running on CPU." if device == "auto" and reason else None
    return session, "CPUExecutionProvider", warning


def _validate_io(session, path, input_channels=1):
    """input_channels: 2 where the card declares the flat-grey input (engine/flat_grey.py), else 1."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) < 1:
        raise EngineError(f"{path} is not a DTM model: it must have exactly one input and one output "
                          f"(has {len(inputs)} inputs, {len(outputs)} outputs).")
    for kind, arg in (("input", inputs[0]), ("output", outputs[0])):
        shape = arg.shape
        if len(shape) != 4:
            raise EngineError(f"{path} is not a DTM model: its {kind} '{arg.name}' has rank {len(shape)}; "
                              "expected [N, 1, H, W].")
        expected = input_channels if kind == "input" else 1
        if shape[1] != expected:
            raise EngineError(f"{path} is not a DTM model: its {kind} '{arg.name}' has {shape[1]} channels; "
                              f"expected {expected} (single-band image{' and flat grey level' if expected == 2 else ''} "
                              "in, elevation out, as its card says).")
        if "float" not in arg.type:
            raise EngineError(f"{path} is not a DTM model: its {kind} is {arg.type}, expected float32.")


def _read_card(ort, path):
    """Check a model file's inputs, outputs and card on a light, unoptimised CPU session.

    The card can name the graph optimisation level the real session should use, so it is read first.
    """
    try:
        session = ort.InferenceSession(path, sess_options=_session_options(ort, 1, "disabled"),
                                       providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - a corrupt file raises onnxruntime-specific errors
        raise EngineError(f"Cannot load the model {path}: it is missing, truncated or not an ONNX "
                          f"model ({str(exc).splitlines()[0]}).") from None
    try:
        card = ModelCard.from_metadata(path, session.get_modelmeta().custom_metadata_map)
    except ValueError as exc:
        raise EngineError(str(exc)) from None
    _validate_io(session, path, input_channels(card))
    return card


def open_model(path, device="auto", threads=None, graph_optimization=None):
    """Return (ModelSession, warning or None); sessions are cached per (file, mtime, device, threads, level).

    graph_optimization: onnxruntime level (disabled|basic|extended|all); None: the card's choice.
    """
    if device not in DEVICES:
        raise EngineError(f"Unknown device '{device}'; choose one of {', '.join(DEVICES)}.")
    if graph_optimization is not None and graph_optimization not in _LEVELS:
        raise EngineError(f"Unknown graph optimisation level '{graph_optimization}'; choose one of "
                          f"{', '.join(_LEVELS)}.")
    if not os.path.isfile(path):
        raise EngineError(f"Model file not found: {path}")
    key = (os.path.realpath(path), os.path.getmtime(path), device, threads, graph_optimization)
    with _cache_lock:
        if key in _cache:
            return _cache[key], _cache[key].warning
        ort = import_onnxruntime()
        card = _read_card(ort, path)
        level = graph_optimization or card.graph_optimization
        try:
            session, provider, warning = _open(ort, path, device, threads, level)
        except EngineError:
            raise
        except Exception as exc:  # noqa: BLE001 - the optimised session can fail where the light one did not
            raise EngineError(f"Cannot start the model {path}: {str(exc).splitlines()[0]}") from None
        model = ModelSession(session, card, provider, level, warning)
        _cache[key] = model
        return model, warning


def read_model_card(path):
    """The card of a model file, without starting (or keeping) an optimised or GPU session."""
    if not os.path.isfile(path):
        raise EngineError(f"Model file not found: {path}")
    return _read_card(import_onnxruntime(), path)


def working_providers(model_path):
    """Providers that really start a session for this model here (all but the CPU one are probed)."""
    ort = import_onnxruntime()
    return [p for p in ort.get_available_providers()
            if p == "CPUExecutionProvider" or _provider_starts(ort, p, model_path)]


def _provider_starts(ort, provider, model_path):
    try:
        session = _muted_session(ort, model_path, [provider, "CPUExecutionProvider"], _session_options(ort, 1))
    except Exception:  # noqa: BLE001 - any failure means the provider does not work here
        return False
    return session.get_providers()[0] == provider


def clear_cache():
    with _cache_lock:
        _cache.clear()
