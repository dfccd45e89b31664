"""The model card every DTM model carries in its ONNX metadata_props, and its validation."""
from dataclasses import dataclass

REQUIRED_KEYS = (
    "name", "version", "architecture", "input_size", "input_multiple", "input_normalisation",
    "input_range", "output_range", "sun_azimuth_deg", "training_gsd_m", "license",
)
# Optional runtime hint: the onnxruntime graph optimisation level that runs this network fastest.
# "all" adds CPU layout rewrites (NCHWc) that pay off for plain conv stacks but cost more than they
# save around ops without an NCHWc kernel (MRFED's ConvTranspose spends 30 ms of 130 in reorders).
GRAPH_OPTIMIZATION_KEY = "ort_graph_optimization"
GRAPH_OPTIMIZATION_LEVELS = ("disabled", "basic", "extended", "all")
# Optional: what the output's numbers are. "range" (the default, today's models): output_range maps
# linearly onto ELEVATION_MIN…ELEVATION_MAX. "pixel": height divided by the ground pixel size, offset
# arbitrary, so metres = output × pixel size; output_range is then nominal.
HEIGHT_UNITS_KEY = "height_units"
HEIGHT_UNITS = ("range", "pixel")


def _pair(text, key, path):
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"model card of {path}: '{key}' must be 'low,high', got '{text}'") from None
    if not low < high:
        raise ValueError(f"model card of {path}: '{key}' must have low < high, got '{text}'")
    return low, high


@dataclass(frozen=True)
class ModelCard:
    path: str
    name: str
    version: str
    architecture: str
    input_size: int
    input_multiple: int
    input_normalisation: str
    input_range: tuple
    output_range: tuple
    sun_azimuth_deg: float
    training_gsd_m: float
    license: str
    extra: dict
    graph_optimization: str = "all"
    height_units: str = "range"

    @classmethod
    def from_metadata(cls, path, props):
        """Build a card from ONNX metadata_props; ValueError names the file and what is missing."""
        missing = [k for k in REQUIRED_KEYS if not props.get(k, "").strip()]
        if missing:
            raise ValueError(
                f"{path} has no usable model card: missing metadata_props {', '.join(missing)}. "
                "A DTM model must carry its card (see models/README.md).")
        try:
            input_size = int(props["input_size"])
            multiple = int(props["input_multiple"])
            azimuth = float(props["sun_azimuth_deg"])
            gsd = float(props["training_gsd_m"])
        except ValueError as exc:
            raise ValueError(f"model card of {path} has a malformed number: {exc}") from None
        if multiple < 1 or input_size < multiple or input_size % multiple:
            raise ValueError(f"model card of {path}: input_size {input_size} must be a positive multiple "
                             f"of input_multiple {multiple}")
        level = props.get(GRAPH_OPTIMIZATION_KEY, "all").strip() or "all"
        if level not in GRAPH_OPTIMIZATION_LEVELS:
            raise ValueError(f"model card of {path}: '{GRAPH_OPTIMIZATION_KEY}' must be one of "
                             f"{', '.join(GRAPH_OPTIMIZATION_LEVELS)}, got '{level}'")
        units = props.get(HEIGHT_UNITS_KEY, "range").strip() or "range"
        if units not in HEIGHT_UNITS:
            raise ValueError(f"model card of {path}: '{HEIGHT_UNITS_KEY}' must be one of "
                             f"{', '.join(HEIGHT_UNITS)}, got '{units}'")
        extra = {k: v for k, v in props.items() if k not in REQUIRED_KEYS}
        return cls(path=path, name=props["name"], version=props["version"],
                   architecture=props["architecture"], input_size=input_size, input_multiple=multiple,
                   input_normalisation=props["input_normalisation"],
                   input_range=_pair(props["input_range"], "input_range", path),
                   output_range=_pair(props["output_range"], "output_range", path),
                   sun_azimuth_deg=azimuth % 360.0, training_gsd_m=gsd, license=props["license"],
                   extra=extra, graph_optimization=level, height_units=units)

    def summary(self):
        return f"{self.name} {self.version} ({self.architecture})"
