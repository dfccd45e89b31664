"""Write a model's human-readable card (models/<name>.md) from its ONNX file and the validation results.

    python -m training.card models/pix2pixcc.onnx --validation validation/results/results.json
"""
import argparse
import json
import os

import numpy as np
import onnx

METRIC_LABELS = (("r", "Pearson r"), ("detail_r", "detail r (σ = 8 px high-pass)"), ("ssim", "SSIM"),
                 ("relief_rmse_m", "relief RMSE (m, GSD-calibrated)"))


def parameters(model):
    return int(sum(np.prod(init.dims) for init in model.graph.initializer))


SET_TITLES = {"validation": "validation DEMs", "heldout": "held-out sites", "real": "real image",
              "synthetic": "held-out synthetic"}  # the sets of validation/results/results.json


def _row(label, values, other):
    cells = [f"{values[m]:.3f} / {other.get(m, float('nan')):.3f}" if m != "relief_rmse_m"
             else f"{values[m]:.1f} / {other.get(m, float('nan')):.1f}" for m, _ in METRIC_LABELS]
    return f"| {label} | " + " | ".join(cells) + " |"


def validation_table(results, name):
    """Every validation DEM at each pixel size, then each set's overall average, beside Pentland."""
    averages = results["averages"]
    ours, base = averages.get(name, {}), averages.get("pentland", {})
    rows = ["| set | " + " | ".join(f"{label} model / Pentland" for _, label in METRIC_LABELS) + " |",
            "|" + "---|" * (1 + len(METRIC_LABELS))]
    for label, values in ours.get("validation", {}).items():
        if label != "overall":
            rows.append(_row(label, values, base.get("validation", {}).get(label, {})))
    for group, title in SET_TITLES.items():
        overall = ours.get(group, {}).get("overall")
        if overall:
            rows.append(_row(f"**{title}, overall**", overall, base.get(group, {}).get("overall", {})))
    verdict = next((m.get("verdict", "") + ": " + "; ".join(m.get("verdict_reasons", []))
                    for m in results["models"] if m["name"] == name), "")
    return "\n".join(rows) + f"\n\nVerdict against the bar (validation DEMs): {verdict}\n"


def card_markdown(path, results=None):
    model = onnx.load(path)
    props = {p.key: p.value for p in model.metadata_props}
    name = os.path.splitext(os.path.basename(path))[0]
    lines = [f"# {props['name']} — `models/{os.path.basename(path)}`", "",
             "| field | value |", "|---|---|"]
    fields = [("architecture", props["architecture"]), ("version", props["version"]),
              ("parameters", f"{parameters(model):,}"), ("file size", f"{os.path.getsize(path):,} bytes"),
              ("opset", str(model.opset_import[0].version))]
    fields += [(key.replace("_", " "), value) for key, value in props.items()
               if key not in ("name", "architecture", "version")]
    lines += [f"| {key} | {str(value).replace('|', '/')} |" for key, value in fields]
    if results is not None:
        config = results.get("config", {})
        scales = config.get("scales", "single")
        refined = ("FLAT_GREY and SUN_ELEVATION on the renders, so refined by photoclinometry"
                   if config.get("photoclinometry") else "no photoclinometric refinement")
        lines += ["", "## Validation", "", "Each DEM rendered with `gdaldem hillshade` at three suns (270°/30°, "
                  "315°/45°, 225°/60°) and at its own, 2× and (where it is large enough) 4× pixel size, run "
                  f"through the plugin's engine with SUN_AZIMUTH given, SCALES={scales} and {refined}; the "
                  "held-out training sites and a real HiRISE image (not refined: its photometry is unknown) as sets "
                  "of their own. `make validate`; every case in `validation/results/summary.md`.", "",
                  validation_table(results, name)]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--validation", default=None, help="validation/results/results.json")
    args = parser.parse_args()
    results = json.load(open(args.validation)) if args.validation else None
    out = os.path.splitext(args.model)[0] + ".md"
    with open(out, "w") as handle:
        handle.write(card_markdown(args.model, results))
    print(out)


if __name__ == "__main__":
    main()
