"""Accuracy validation of DTM models on real DEMs rendered with gdaldem, and on held-out simulator pairs.

    .venv/bin/python -m validation.validate --models models/pix2pixcc.onnx models/mrfed.onnx \
        --out validation/results [--quick | --diagonal | --cases 270/30,315/45] [--synthetic 8]

Each validation DEM is shaded with GDAL's own hillshade (gdal.DEMProcessing) at every sun case; every
model runs through the plugin's own engine (dtm_estimator.engine.estimate_dtm, device cpu, the
render's azimuth); Pentland's linear shape from shading, given the true sun, is the physics baseline.
Writes results.json (every case, every metric), summary.md (tables and PASS/FAIL) and figures/.
See validation/README.md.
"""
import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
import traceback

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGINS_DIR = os.path.join(ROOT, "build", "plugins")
if not os.path.lexists(os.path.join(PLUGINS_DIR, "dtm_estimator")):
    os.makedirs(PLUGINS_DIR, exist_ok=True)
    os.symlink(ROOT, os.path.join(PLUGINS_DIR, "dtm_estimator"))
for _path in (PLUGINS_DIR, ROOT):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from osgeo import gdal  # noqa: E402

from validation.metrics import BORDER, HIGHER_IS_BETTER, METRICS, case_metrics, crop, relief_rmse  # noqa: E402
from validation.pentland import gdal_hillshade_array, pentland, sign_check, synthetic_smooth_dem  # noqa: E402

gdal.UseExceptions()

DEM_DIR = os.path.join(os.path.dirname(ROOT), "shared", "validation-dems")
AZIMUTHS = (270.0, 315.0, 225.0)
ALTITUDES = (30.0, 45.0, 60.0)
DIAGONAL = ((270.0, 30.0), (315.0, 45.0), (225.0, 60.0))
QUICK = ((315.0, 45.0),)
DEGREE_SCALE = 111120.0   # gdaldem's -s for geographic degrees → metres
MARS_PIXEL_M = 1.01
N_SYNTHETIC = 8
SYNTHETIC_SIZE = 512
BASELINE = "pentland"
BAR = {"r": 0.85, "detail_r": 0.90, "ssim": 0.85}
LABELS = {"r": "r", "detail_r": "detail r", "ssim": "SSIM", "relief_rmse_m": "relief RMSE (m)"}


# ----------------------------------------------------------------------------------------------
# DEMs and renders
# ----------------------------------------------------------------------------------------------
class Dem:
    """A truth DEM: GDAL-readable path, the gdaldem scale (horizontal units → metres), the array."""

    def __init__(self, name, path, scale, note):
        self.name, self.path, self.scale, self.note = name, path, scale, note
        ds = gdal.Open(path)
        band = ds.GetRasterBand(1)
        values = band.ReadAsArray().astype(np.float64)
        nodata = band.GetNoDataValue()
        if nodata is not None:
            values[values == nodata] = np.nan
        self.truth = values
        transform = ds.GetGeoTransform()
        self.dx, self.dy = abs(transform[1]) * scale, abs(transform[5]) * scale
        self.shape = values.shape


def write_geotiff(path, array, pixel, dtype=gdal.GDT_Float32):
    ds = gdal.GetDriverByName("GTiff").Create(path, array.shape[1], array.shape[0], 1, dtype)
    ds.SetGeoTransform((0.0, pixel, 0.0, 0.0, 0.0, -pixel))
    ds.GetRasterBand(1).WriteArray(array)
    ds.FlushCache()
    return path


def load_dems(work, names=None):
    """The validation DEMs (all, or those in `names`); only the wanted ones are read."""
    def mars_tif():
        mars = np.load(os.path.join(DEM_DIR, "mars_hirise_crop.npy")).astype(np.float32)
        return write_geotiff(os.path.join(work, "mars_hirise_crop.tif"), mars, MARS_PIXEL_M)

    specs = [
        ("bigtujunga", lambda: os.path.join(DEM_DIR, "bigtujunga.tif"), 1.0, "30 m, WGS 84 / UTM 11N, int16 m"),
        ("srtm_boulder_creek", lambda: os.path.join(DEM_DIR, "srtm_boulder_creek.asc"), DEGREE_SCALE,
         f"3″ geographic, shaded with gdaldem -s {DEGREE_SCALE:g} (no resampling), nodata 0"),
        ("mars_hirise_crop", mars_tif, 1.0,
         f"HiRISE DTM crop, written to GeoTIFF with a {MARS_PIXEL_M} m pixel (no CRS)"),
    ]
    return [Dem(name, path(), scale, note) for name, path, scale, note in specs if not names or name in names]


def hillshade(dem_path, out_path, azimuth, altitude, scale):
    gdal.DEMProcessing(out_path, dem_path, "hillshade", format="GTiff", azimuth=azimuth,
                       altitude=altitude, scale=scale, computeEdges=True)
    ds = gdal.Open(out_path)
    assert ds.GetRasterBand(1).DataType == gdal.GDT_Byte
    return ds.GetRasterBand(1).ReadAsArray().astype(np.float64)


# ----------------------------------------------------------------------------------------------
# models through the plugin's engine
# ----------------------------------------------------------------------------------------------
def read_prediction(path):
    ds = gdal.Open(path)  # kept: a band outlives its dataset in GDAL's Python bindings only by crashing
    band = ds.GetRasterBand(1)
    values = band.ReadAsArray().astype(np.float64)
    values[values == band.GetNoDataValue()] = np.nan  # the nodata value the engine declared
    return values


class ModelRunner:
    def __init__(self, path, name, threads, graph_optimization=None):
        self.path, self.name, self.threads = path, name, threads
        self.graph_optimization = graph_optimization
        self.fatal = None
        self.card = None
        self.seconds = []

    def open(self):
        from dtm_estimator.engine import read_model_card
        try:
            self.card = read_model_card(self.path)  # names a missing, corrupt or card-less file
        except Exception as exc:  # reported, not fatal to the run
            self.fatal = f"{type(exc).__name__}: {exc}"

    def predict(self, image_path, out_path, sun_azimuth):
        """Prediction array (NaN = nodata), or raises; a model that never opened raises at once."""
        if self.fatal:
            raise RuntimeError(self.fatal)
        from dtm_estimator.engine import EstimateOptions, estimate_dtm
        options = EstimateOptions(self.path, sun_azimuth=sun_azimuth, device="cpu", threads=self.threads,
                                  graph_optimization=self.graph_optimization)
        self.seconds.append(estimate_dtm(image_path, out_path, options).seconds)
        try:
            return read_prediction(out_path)
        finally:
            os.remove(out_path)


def card_summary(card):
    if card is None:
        return None
    return {"name": card.name, "version": card.version, "architecture": card.architecture,
            "input_size": card.input_size, "sun_azimuth_deg": card.sun_azimuth_deg,
            "training_gsd_m": card.training_gsd_m}


def evaluate_case(case, image, image_path, truth, runners, work, dx, dy, azimuth, altitude,
                  engine_azimuth, log, keep=None):
    """Fill case['results'] with the metrics of the baseline and of every model."""
    results = case["results"] = {}
    started = time.perf_counter()
    try:
        z = pentland(image, azimuth, altitude, dx, dy)
        results[BASELINE] = case_metrics(z, truth)
        results[BASELINE]["seconds"] = round(time.perf_counter() - started, 3)
        if keep is not None:
            keep[BASELINE] = z
    except Exception as exc:
        results[BASELINE] = {"error": f"{type(exc).__name__}: {exc}"}
    for runner in runners:
        out_path = os.path.join(work, f"pred_{runner.name}.tif")
        try:
            pred = runner.predict(image_path, out_path, engine_azimuth)
            # Shading fixes slopes, so relief scales with the pixel size: the calibration a user applies
            # by setting ELEVATION_MAX to 39586 × pixel size / training GSD (Pentland gets the true pixel too).
            gsd_factor = math.sqrt(dx * dy) / runner.card.training_gsd_m
            results[runner.name] = case_metrics(pred * gsd_factor, truth)
            results[runner.name]["relief_rmse_m_unscaled"] = float(relief_rmse(crop(pred), crop(truth)))
            results[runner.name]["gsd_factor"] = round(gsd_factor, 5)
            results[runner.name]["seconds"] = round(runner.seconds[-1], 3)
            if keep is not None:
                keep[runner.name] = pred
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}".strip()
            results[runner.name] = {"error": message}
            if not runner.fatal and len(message) and "Traceback" not in message:
                log(f"    {runner.name} failed: {message}")
                if os.environ.get("VALIDATION_DEBUG"):
                    traceback.print_exc()
    parts = []
    for name, metrics in results.items():
        if "error" in metrics:
            parts.append(f"{name}: ERROR")
        else:
            parts.append(f"{name}: r {metrics['r']:.3f} det {metrics['detail_r']:.3f} "
                         f"ssim {metrics['ssim']:.3f} rmse {metrics['relief_rmse_m']:.1f} m")
    log("    " + " | ".join(parts))


def run_validation_dems(dems, sun_cases, runners, work, log, figures):
    cases = []
    for dem in dems:
        log(f"{dem.name}: {dem.shape[1]}×{dem.shape[0]} px, pixel {dem.dx:.2f}×{dem.dy:.2f} m, "
            f"relief {np.nanmax(dem.truth) - np.nanmin(dem.truth):.0f} m")
        for azimuth, altitude in sun_cases:
            image_path = os.path.join(work, f"{dem.name}_az{azimuth:g}_alt{altitude:g}.tif")
            image = hillshade(dem.path, image_path, azimuth, altitude, dem.scale)
            case = {"set": "validation", "dem": dem.name, "azimuth": azimuth, "altitude": altitude}
            log(f"  az {azimuth:g}° alt {altitude:g}°")
            keep = {} if (figures is not None and dem.name not in figures) else None
            evaluate_case(case, image, image_path, dem.truth, runners, work, dem.dx, dem.dy,
                          azimuth, altitude, azimuth, log, keep)
            if keep is not None:
                figures[dem.name] = {"image": image, "truth": dem.truth, "preds": keep,
                                     "title": f"{dem.name}, az {azimuth:g}° alt {altitude:g}°"}
            os.remove(image_path)
            cases.append(case)
    return cases


def heldout_seeds(simulator, count):
    seed0 = getattr(simulator, "HELDOUT_SEED0", None)
    if seed0 is None:
        raise AttributeError("training.simulator has no HELDOUT_SEED0: its held-out seeds are undocumented")
    return [int(seed0) + i for i in range(count)]


def run_synthetic(count, size, runners, work, log, figures):
    """Held-out simulator pairs (seeds HELDOUT_SEED0 + i), rendered at the canonical azimuth."""
    try:
        from training import simulator
    except ImportError as exc:
        message = f"training.simulator is not available ({exc}): held-out synthetic set skipped."
        log(message)
        return [], message
    try:
        seeds = heldout_seeds(simulator, count)
        gsd = float(getattr(simulator, "GSD_M", 50.0))
        azimuth = float(getattr(simulator, "SUN_AZIMUTH_DEG", 270.0))
    except Exception as exc:
        message = f"training.simulator API mismatch ({exc}): held-out synthetic set skipped."
        log(message)
        return [], message
    log(f"held-out synthetic: {count} pairs of {size}×{size} px, seeds {seeds[0]}..{seeds[-1]}, "
        f"GSD {gsd:g} m, sun azimuth {azimuth:g}°")
    cases = []
    for seed in seeds:
        try:
            image, relief, info = simulator.sample(seed, size)
        except Exception as exc:
            message = f"training.simulator.sample({seed}, {size}) failed: {type(exc).__name__}: {exc}"
            log(message)
            return cases, message
        altitude = float(info.get("sun_el", 45.0))
        image_path = write_geotiff(os.path.join(work, f"synthetic_{seed}.tif"), np.asarray(image, np.uint8),
                                   gsd, gdal.GDT_Byte)
        case = {"set": "synthetic", "dem": "synthetic", "seed": seed, "azimuth": azimuth,
                "altitude": altitude, "relief_m": float(np.ptp(relief))}
        log(f"  seed {seed}: sun elevation {altitude:.1f}°, relief {np.ptp(relief):.0f} m")
        keep = {} if (figures is not None and "synthetic" not in figures) else None
        evaluate_case(case, np.asarray(image, np.float64), image_path, np.asarray(relief, np.float64),
                      runners, work, gsd, gsd, azimuth, altitude, None, log, keep)
        if keep is not None:
            figures["synthetic"] = {"image": np.asarray(image, np.float64), "truth": relief, "preds": keep,
                                    "title": f"held-out seed {seed}, az {azimuth:g}° alt {altitude:.0f}°"}
        os.remove(image_path)
        cases.append(case)
    return cases, None


# ----------------------------------------------------------------------------------------------
# summary
# ----------------------------------------------------------------------------------------------
def _mean(values):
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def averages(cases, method):
    """{group: {metric: mean}} per DEM, plus 'overall' = mean of the per-DEM means (equal weight)."""
    groups = {}
    failures = {}
    for case in cases:
        result = case["results"].get(method, {})
        if "error" in result:
            failures[case["dem"]] = failures.get(case["dem"], 0) + 1
            continue
        groups.setdefault(case["dem"], []).append(result)
    table = {dem: {m: _mean([r[m] for r in rows]) for m in METRICS} for dem, rows in groups.items()}
    if table:
        table["overall"] = {m: _mean([table[d][m] for d in groups]) for m in METRICS}
    return table, failures


def verdict(model_avg, baseline_avg, validation_failures):
    """PASS when the overall validation averages beat the baseline on every metric and meet the bar."""
    reasons = []
    overall, base = model_avg.get("overall"), baseline_avg.get("overall")
    if overall is None:
        return False, ["no successful validation case"]
    if validation_failures:
        reasons.append(f"{sum(validation_failures.values())} validation case(s) failed")
    for metric in METRICS:
        value, reference = overall[metric], base[metric] if base else float("nan")
        better = value > reference if HIGHER_IS_BETTER[metric] else value < reference
        if not (np.isfinite(value) and better):
            reasons.append(f"{LABELS[metric]} {value:.3f} does not beat the baseline's {reference:.3f}")
    for metric, bar in BAR.items():
        if not (np.isfinite(overall[metric]) and overall[metric] >= bar):
            reasons.append(f"{LABELS[metric]} {overall[metric]:.3f} < {bar}")
    return not reasons, reasons


def score(payload):
    """Every method's averages (payload["averages"]) and each usable model's verdict, computed once."""
    sets = {group: [c for c in payload["cases"] if c["set"] == group] for group in ("validation", "synthetic")}
    methods = [BASELINE] + [model["name"] for model in payload["models"]]
    computed = {method: {group: averages(cases, method) for group, cases in sets.items()} for method in methods}
    payload["averages"] = {method: {group: table for group, (table, _) in groups.items()}
                           for method, groups in computed.items()}
    baseline = payload["averages"][BASELINE]["validation"]
    for model in payload["models"]:
        if not model.get("error"):
            table, failures = computed[model["name"]]["validation"]
            passed, model["verdict_reasons"] = verdict(table, baseline, failures)
            model["verdict"] = "PASS" if passed else "FAIL"


def _json_safe(value):
    """NaN and infinities become null (strict JSON); numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _fmt(value, metric):
    if value is None or not np.isfinite(value):
        return "—"
    return f"{value:.1f}" if metric == "relief_rmse_m" else f"{value:.3f}"


def summary_markdown(payload):
    lines = ["# DTM Estimator — accuracy validation", ""]
    cfg = payload["config"]
    lines += [f"Run {cfg['date']} ({cfg['mode']}: {len(cfg['sun_cases'])} sun case(s) per DEM: "
              + ", ".join(f"az {a:g}°/alt {e:g}°" for a, e in cfg["sun_cases"]) + "). "
              "Models run through `dtm_estimator.engine.estimate_dtm` on CPU with the render's azimuth; "
              f"baseline: Pentland (1990) linear SFS given the true sun. Metrics on pixels valid in both, "
              f"{cfg['border_px']}-px border cropped. Averages: per DEM over its sun cases; overall = mean of "
              "the per-DEM averages. Bar (validation renders, overall): beat the baseline on all four "
              f"averaged metrics AND r ≥ {BAR['r']}, detail r ≥ {BAR['detail_r']}, SSIM ≥ {BAR['ssim']}. "
              "Model relief RMSE is GSD-calibrated: the DTM × pixel size / training GSD, what setting "
              "ELEVATION_MAX = 39586 × pixel size / training GSD does (Pentland is given the true pixel size "
              "too); the uncalibrated figure, as the default 0–39,586 range gives, follows each table.", ""]
    check = payload.get("pentland_sign_check")
    if check:
        lines += ["Pentland sign check (smooth synthetic DEM, gdaldem hillshade alt 45°, r of Pentland's height "
                  "with the DEM using the true azimuth / the opposite one): "
                  + ", ".join(f"az {float(a):g}°: {r:+.3f} / {w:+.3f}" for a, (r, w) in check.items()), ""]
    validation = [c for c in payload["cases"] if c["set"] == "validation"]
    synthetic = [c for c in payload["cases"] if c["set"] == "synthetic"]
    base_val, base_syn = (payload["averages"][BASELINE][group] for group in ("validation", "synthetic"))
    for model in payload["models"]:
        name = model["name"]
        lines += [f"## {name} (`{model['path']}`)", ""]
        if model.get("error"):
            lines += [f"**FAIL** — the model could not be used: {model['error']}", ""]
            continue
        avg_val, avg_syn = (payload["averages"][name][group] for group in ("validation", "synthetic"))
        header = "| set | " + " | ".join(f"{LABELS[m]} model | {LABELS[m]} Pentland" for m in METRICS) + " |"
        lines += [header, "|" + "---|" * (1 + 2 * len(METRICS))]
        rows = [(dem, avg_val.get(dem), base_val.get(dem)) for dem in payload["dems"]]
        rows.append(("**overall (validation)**", avg_val.get("overall"), base_val.get("overall")))
        if synthetic:
            rows.append(("held-out synthetic", avg_syn.get("overall"), base_syn.get("overall")))
        for label, ours, theirs in rows:
            cells = []
            for metric in METRICS:
                cells += [_fmt(ours[metric] if ours else None, metric), _fmt(theirs[metric] if theirs else None, metric)]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        passed = model["verdict"] == "PASS"
        lines += ["", f"**{model['verdict']}**" + ("" if passed else ": " + "; ".join(model["verdict_reasons"])), ""]
        unscaled = [c["results"][name]["relief_rmse_m_unscaled"] for c in validation
                    if "relief_rmse_m_unscaled" in c["results"].get(name, {})]
        if unscaled:
            lines += [f"Uncalibrated relief RMSE (default 0–39,586 range), mean over validation cases: "
                      f"{np.mean(unscaled):.1f} m.", ""]
        syn_failures = sum("error" in c["results"].get(name, {}) for c in synthetic)
        if syn_failures:
            lines += [f"Held-out synthetic: {syn_failures} case(s) failed.", ""]
        if model.get("seconds_per_case"):
            lines += [f"Mean engine time per case: {model['seconds_per_case']:.2f} s.", ""]
    if payload.get("synthetic_note"):
        lines += [f"Held-out synthetic set: {payload['synthetic_note']}", ""]
    return "\n".join(lines)


def draw_figures(figures, out_dir, log):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception as exc:
        log(f"figures skipped (matplotlib: {exc})")
        return []
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for name, fig_data in figures.items():
        panels = [("render", fig_data["image"], "gray"), ("truth", fig_data["truth"], "terrain")]
        panels += [(method, pred, "terrain") for method, pred in fig_data["preds"].items()]
        fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4), squeeze=False)
        for ax, (label, array, cmap) in zip(axes[0], panels):
            array = np.asarray(array, np.float64)
            if label != "render":
                array = array - np.nanmin(array)
            shown = ax.imshow(array, cmap=cmap, interpolation="nearest")
            ax.set_title(label, fontsize=9)
            ax.set_xticks([]); ax.set_yticks([])
            if label != "render":
                fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=7)
        fig.suptitle(fig_data["title"] + " (relief above minimum, m)", fontsize=10)
        fig.tight_layout()
        path = os.path.join(out_dir, f"{name}.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


# ----------------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------------
def parse_cases(text):
    cases = []
    for item in text.split(","):
        azimuth, altitude = item.strip().split("/")
        cases.append((float(azimuth), float(altitude)))
    return tuple(cases)


def unique_names(paths):
    names, seen = [], {}
    for path in paths:
        base = os.path.splitext(os.path.basename(path))[0] or "model"
        if base == BASELINE:
            base = "model_" + base
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
    return names


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", required=True, help="ONNX model files (with a model card)")
    parser.add_argument("--out", default=os.path.join(ROOT, "validation", "results"))
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="one sun case per DEM (az 315°, alt 45°)")
    mode.add_argument("--diagonal", action="store_true", help="3 cases: 270/30, 315/45, 225/60")
    mode.add_argument("--cases", type=parse_cases, help="explicit sun cases 'az/alt,az/alt,...'")
    parser.add_argument("--dems", nargs="+", help="subset of DEM names")
    parser.add_argument("--synthetic", type=int, default=None,
                        help=f"held-out simulator pairs (default {N_SYNTHETIC}, 1 with --quick; 0 skips)")
    parser.add_argument("--synthetic-size", type=int, default=SYNTHETIC_SIZE)
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    parser.add_argument("--graph-optimization", choices=("disabled", "basic", "extended", "all"),
                        help="onnxruntime graph optimisation level for every model (default: each card's)")
    parser.add_argument("--no-figures", action="store_true")
    args = parser.parse_args(argv)

    if args.quick:
        sun_cases, mode_name = QUICK, "quick"
    elif args.diagonal:
        sun_cases, mode_name = DIAGONAL, "diagonal"
    elif args.cases:
        sun_cases, mode_name = args.cases, "custom"
    else:
        sun_cases, mode_name = tuple((a, e) for a in AZIMUTHS for e in ALTITUDES), "full"
    n_synthetic = args.synthetic if args.synthetic is not None else (1 if args.quick else N_SYNTHETIC)

    def log(text):
        print(text, flush=True)

    os.makedirs(args.out, exist_ok=True)
    runners = [ModelRunner(path, name, args.threads, args.graph_optimization)
               for path, name in zip(args.models, unique_names(args.models))]
    for runner in runners:
        runner.open()
        if runner.fatal:
            log(f"model {runner.name}: cannot be used — {runner.fatal}")
        else:
            log(f"model {runner.name}: {runner.card.name} {runner.card.version} ({runner.card.architecture}), "
                f"canonical sun {runner.card.sun_azimuth_deg:g}°")
    figures = None if args.no_figures else {}
    started = time.perf_counter()
    check = sign_check()
    log("Pentland sign check (r true azimuth / opposite): "
        + ", ".join(f"{a:g}°: {r:+.3f}/{w:+.3f}" for a, (r, w) in check.items()))
    if not all(r > 0 > w for r, w in check.values()):
        log("WARNING: the Pentland baseline's sign convention check failed")
    with tempfile.TemporaryDirectory(prefix="dtm_validation_") as work:
        dems = load_dems(work, args.dems)
        cases = run_validation_dems(dems, sun_cases, runners, work, log, figures)
        synthetic_note = None
        if n_synthetic > 0:
            synthetic_cases, synthetic_note = run_synthetic(n_synthetic, args.synthetic_size, runners, work,
                                                            log, figures)
            cases += synthetic_cases
        else:
            synthetic_note = "skipped (--synthetic 0)."

    payload = {
        "config": {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "mode": mode_name,
                   "sun_cases": [list(c) for c in sun_cases], "border_px": BORDER,
                   "metrics": list(METRICS), "bar": BAR, "baseline": "Pentland 1990 linear SFS, true sun",
                   "synthetic_pairs": n_synthetic, "synthetic_size": args.synthetic_size,
                   "threads": args.threads, "graph_optimization": args.graph_optimization or "card",
                   "python": platform.python_version(),
                   "gdal": gdal.__version__, "seconds": round(time.perf_counter() - started, 1)},
        "dems": [d.name for d in dems],
        "dem_notes": {d.name: d.note for d in dems},
        "models": [{"name": r.name, "path": r.path, "card": card_summary(r.card), "error": r.fatal,
                    "seconds_per_case": float(np.mean(r.seconds)) if r.seconds else None} for r in runners],
        "synthetic_note": synthetic_note,
        "pentland_sign_check": {f"{a:g}": list(v) for a, v in check.items()},
        "cases": cases,
    }
    score(payload)
    summary = summary_markdown(payload)
    if figures is not None:
        dem = synthetic_smooth_dem()
        image = gdal_hillshade_array(dem, 315.0, 45.0, 30.0)
        figures["pentland_sign_check"] = {
            "image": image, "truth": dem, "title": "Pentland sign check, gdaldem az 315° alt 45°",
            "preds": {"Pentland az 315 (true)": pentland(image, 315.0, 45.0, 30.0),
                      "Pentland az 135 (opposite)": pentland(image, 135.0, 45.0, 30.0)}}
    if figures:
        payload["figures"] = [os.path.relpath(p, args.out) for p in
                              draw_figures(figures, os.path.join(args.out, "figures"), log)]
    with open(os.path.join(args.out, "results.json"), "w") as handle:
        json.dump(_json_safe(payload), handle, indent=1, allow_nan=False, default=str)
    with open(os.path.join(args.out, "summary.md"), "w") as handle:
        handle.write(summary + "\n")
    print()
    print(summary)
    return 0 if runners and all(m.get("verdict") == "PASS" for m in payload["models"]) else 1


if __name__ == "__main__":
    sys.exit(main())
