"""Accuracy validation of DTM models: real DEMs rendered with gdaldem at several pixel sizes and suns,
held-out training sites, a real image with its DEM, and held-out simulator pairs.

    .venv/bin/python -m validation.validate --models models/pix2pixcc.onnx models/mrfed.onnx \
        --out validation/results [--quick | --full | --cases 270/30,315/45] [--sets ...] [--synthetic 8]

Every truth (validation/scenes.py) is shaded with GDAL's own hillshade (gdal.DEMProcessing) at each sun
case and pixel size, or is a real image (validation/real_pairs.py); every model runs through the plugin's
own engine (dtm_estimator.engine.estimate_dtm, device cpu, the image's azimuth), its output turned into
metres by validation/units.py; Pentland's linear shape from shading, given the same sun, is the physics
baseline. Writes results.json (every case, every metric), summary.md (tables and PASS/FAIL) and figures/.
The bar is judged on the validation DEMs only. See validation/README.md.
"""
import argparse
import glob
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

from validation.metrics import (BORDER, DIAGNOSTICS, HIGHER_IS_BETTER, METRICS, across_sun_part,  # noqa: E402
                                case_metrics, crop, relief_rmse)
from validation.pentland import gdal_hillshade_array, pentland, sign_check, synthetic_smooth_dem  # noqa: E402
from validation.real_pairs import REAL_FACTORS, real_scenes  # noqa: E402
from validation.scenes import (MIN_COARSE_PIXELS, heldout_scenes, read_band, render, validation_scenes,  # noqa: E402
                               write_geotiff)
from validation.units import engine_options, height_units, to_metres  # noqa: E402
from dtm_estimator.engine.flat_grey import hillshade_flat_grey  # noqa: E402
from dtm_estimator.engine.shading import AXIS_TOLERANCE_DEG, axis_difference, shading_axis  # noqa: E402

gdal.UseExceptions()

AZIMUTHS = (270.0, 315.0, 225.0)
ALTITUDES = (30.0, 45.0, 60.0)
DIAGONAL = ((270.0, 30.0), (315.0, 45.0), (225.0, 60.0))
QUICK = ((315.0, 45.0),)
N_SYNTHETIC = 8
SYNTHETIC_SIZE = 512
BASELINE = "pentland"
# Not a method: the truth less its least-squares slope across the sun, i.e. a DTM right in everything shading
# shows and flat across the sun, which it does not show (validation/metrics.py): what r that leaves.
SHADING_REACH = "truth flat across the sun"
BAR = {"r": 0.85, "detail_r": 0.90, "ssim": 0.85}
LABELS = {"r": "r", "detail_r": "detail r", "ssim": "SSIM", "relief_rmse_m": "relief RMSE (m)",
          "tilt_free_r": "r, planes removed", "across_sun_r": "r, truth's across-sun tilt"}
SETS = ("validation", "heldout", "real", "synthetic")
SET_TITLES = {"validation": "validation DEMs", "heldout": "held-out sites", "real": "real image",
              "synthetic": "held-out synthetic"}


# ----------------------------------------------------------------------------------------------
# models through the plugin's engine
# ----------------------------------------------------------------------------------------------
def read_prediction(path):
    return read_band(path)[0]  # NaN at the nodata value the engine declared


class ModelRunner:
    def __init__(self, path, name, threads, graph_optimization=None, scales="multi", photoclinometry=True):
        self.path, self.name, self.threads = path, name, threads
        self.graph_optimization, self.scales = graph_optimization, scales
        self.photoclinometry = photoclinometry
        self.fatal = None
        self.card = None
        self.seconds = []

    def open(self):
        from dtm_estimator.engine import read_model_card
        try:
            self.card = read_model_card(self.path)  # names a missing, corrupt or card-less file
        except Exception as exc:  # reported, not fatal to the run
            self.fatal = f"{type(exc).__name__}: {exc}"

    def predict(self, image_path, out_path, sun_azimuth, flat_grey=None, sun_elevation=None):
        """Prediction array (NaN = nodata), or raises; a model that never opened raises at once."""
        if self.fatal:
            raise RuntimeError(self.fatal)
        from dtm_estimator.engine import estimate_dtm
        options = engine_options(self.card, sun_azimuth, self.threads, self.graph_optimization, self.scales,
                                 flat_grey, sun_elevation, self.photoclinometry)
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
            "training_gsd_m": card.training_gsd_m, "height_units": height_units(card),
            "output_range": list(card.output_range)}


def evaluate_case(case, image, image_path, truth, runners, work, dx, dy, azimuth, altitude,
                  engine_azimuth, log, keep=None, flat_grey=None, sun_elevation=None):
    """Fill case['results'] with the metrics of the baseline and of every model. `flat_grey` and
    `sun_elevation`: flat ground's grey level and the sun's elevation, known for `gdaldem hillshade` renders
    (as Pentland is given the sun's elevation)."""
    results = case["results"] = {}
    started = time.perf_counter()
    try:
        z = pentland(image, azimuth, altitude, dx, dy)
        results[BASELINE] = case_metrics(z, truth, sun_azimuth=azimuth)
        results[BASELINE]["seconds"] = round(time.perf_counter() - started, 3)
        if keep is not None:
            keep[BASELINE] = z
    except Exception as exc:
        results[BASELINE] = {"error": f"{type(exc).__name__}: {exc}"}
    results[SHADING_REACH] = case_metrics(truth - across_sun_part(truth, azimuth), truth, sun_azimuth=azimuth)
    for runner in runners:
        out_path = os.path.join(work, f"pred_{runner.name}.tif")
        try:
            pred = runner.predict(image_path, out_path, engine_azimuth, flat_grey, sun_elevation)
            metres = to_metres(pred, runner.card, dx, dy)  # Pentland too is given the true pixel size
            results[runner.name] = case_metrics(metres, truth, sun_azimuth=azimuth)
            if height_units(runner.card) == "legacy":  # what the default 0–39,586 range gives as it is
                results[runner.name]["relief_rmse_m_unscaled"] = float(relief_rmse(crop(pred), crop(truth)))
            results[runner.name]["seconds"] = round(runner.seconds[-1], 3)
            if keep is not None:
                keep[runner.name] = metres
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


def load_scenes(sets, names=None, factors=None):
    """The scenes of the rendered sets and the real pairs (factors: None = each set's default)."""
    scenes = []
    if "validation" in sets:
        scenes += validation_scenes(names, factors)
    if "heldout" in sets:
        scenes += heldout_scenes(names, factors)
    if "real" in sets:
        scenes += real_scenes(names, factors or REAL_FACTORS)
    return scenes


def scene_image(scene, work, azimuth, altitude):
    """(GeoTIFF path, image array) the models and the baseline see: a gdaldem render of the truth, or
    the scene's real image written as Byte on the truth's grid."""
    if scene.image is None:
        return render(scene, work, azimuth, altitude)
    if not np.isfinite(scene.image).all():
        raise ValueError(f"the real image of {scene.label} has invalid pixels")
    path = os.path.join(work, f"{scene.dem.replace('/', '_')}_x{scene.factor}_image.tif")
    write_geotiff(path, np.clip(np.round(scene.image), 0, 255).astype(np.uint8), scene.dx, scene.dy,
                  dtype=gdal.GDT_Byte)
    return path, scene.image


def measured_axis(image, azimuth):
    """The engine's sun azimuth check on this image: the light's line it measures, and how far off the
    true azimuth that line is."""
    axis = shading_axis(image)
    if axis is None:
        return None
    return {"azimuth": round(axis.azimuth, 1), "anisotropy": round(axis.anisotropy, 2), "clear": axis.clear,
            "error_deg": round(axis_difference(azimuth, axis.azimuth), 1)}


def run_scenes(scenes, sun_cases, runners, work, log, figures):
    """Every scene at every sun case (a real image: at its own sun); figures of the first sun case of
    each native-pixel scene and of each real one."""
    cases = []
    for scene in scenes:
        truth = scene.truth
        log(f"[{SET_TITLES[scene.set]}] {scene.label}: {truth.shape[1]}×{truth.shape[0]} px, "
            f"pixel {scene.dx:.3g}×{scene.dy:.3g} m, relief {np.nanmax(truth) - np.nanmin(truth):.0f} m")
        for azimuth, altitude in ([scene.sun] if scene.image is not None else sun_cases):
            image_path, image = scene_image(scene, work, azimuth, altitude)
            case = {"set": scene.set, "dem": scene.dem, "factor": scene.factor,
                    "pixel_m": round(scene.pixel_m, 4), "azimuth": azimuth, "altitude": altitude}
            log(f"  az {azimuth:g}° alt {altitude:g}°")
            case["shading_axis"] = measured_axis(image, azimuth)
            name = f"{scene.set}_{scene.dem.replace('/', '_')}_x{scene.factor}"
            wanted = figures is not None and name not in figures and (scene.factor == 1 or scene.set == "real")
            keep = {} if wanted else None
            rendered = scene.image is None  # a gdaldem render: flat ground's grey level follows from the sun
            evaluate_case(case, image, image_path, truth, runners, work, scene.dx, scene.dy,
                          azimuth, altitude, azimuth, log, keep, hillshade_flat_grey(altitude) if rendered else None,
                          altitude if rendered else None)
            if keep is not None:
                figures[name] = {"image": image, "truth": truth, "preds": keep,
                                 "title": f"{scene.label}, az {azimuth:g}° alt {altitude:g}°"}
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
                                   gsd, dtype=gdal.GDT_Byte)
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


def group_label(case):
    """A case's row: its DEM and pixel size (the synthetic pairs have no pixel factor: their seed set)."""
    if case.get("factor") is None:
        return case["dem"]
    return f"{case['dem']} ×{case['factor']} ({case['pixel_m']:.3g} m)"


def _metric_means(results):
    return {m: _mean([r[m] for r in results if m in r]) for m in METRICS + DIAGNOSTICS}


def averages(cases, method):
    """({row: {metric: mean}}, {dem: failed cases}). Rows: each DEM at each pixel size (mean over its sun
    cases); 'all ×F' for each pixel factor F when there are several (mean over the DEMs at F); 'overall' =
    mean over DEMs of each DEM's mean over its pixel sizes (every DEM weighs the same, and in it every
    pixel size)."""
    rows, members, failures = {}, {}, {}
    for case in cases:
        result = case["results"].get(method, {})
        if "error" in result:
            failures[case["dem"]] = failures.get(case["dem"], 0) + 1
            continue
        label = group_label(case)
        rows.setdefault(label, []).append(result)
        members[label] = (case["dem"], case.get("factor"))
    table = {label: _metric_means(results) for label, results in rows.items()}
    if not table:
        return table, failures
    factors = sorted({factor for _, factor in members.values() if factor is not None})
    if len(factors) > 1:
        for factor in factors:
            table[f"all ×{factor}"] = _metric_means([table[label] for label, (_, f) in members.items()
                                                     if f == factor])
    per_dem = {}
    for label, (dem, _) in members.items():
        per_dem.setdefault(dem, []).append(table[label])
    table["overall"] = _metric_means([_metric_means(sizes) for sizes in per_dem.values()])
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
    sets = {group: [c for c in payload["cases"] if c["set"] == group] for group in SETS}
    methods = [BASELINE, SHADING_REACH] + [model["name"] for model in payload["models"]]
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


def _cells(ours, theirs):
    cells = []
    for metric in METRICS:
        cells += [_fmt(ours[metric] if ours else None, metric), _fmt(theirs[metric] if theirs else None, metric)]
    return " | ".join(cells)


def _intro(payload):
    cfg = payload["config"]
    return [f"Run {cfg['date']} ({cfg['mode']}: {len(cfg['sun_cases'])} sun case(s) per rendered DEM and "
            "pixel size: " + ", ".join(f"az {a:g}°/alt {e:g}°" for a, e in cfg["sun_cases"])
            + f"; pixel sizes: {cfg['factors']}; {cfg['seconds']:.0f} s). "
            "Sets: **validation DEMs** (../shared/validation-dems, the bar is judged on these only), "
            "**held-out sites** (real DEMs of ../shared/training-dems never trained on), **real image** (a real "
            "orbital image with its DEM, sun estimated from the truth), **held-out synthetic** (simulator). "
            "Renders: gdaldem hillshade of the truth at its pixel size; a coarser pixel is the truth "
            "box-averaged and rendered at that pixel size. Models run through `dtm_estimator.engine.estimate_dtm` "
            f"on CPU with the image's azimuth (and, on the renders, flat ground's grey level 1 + 254·sin(altitude) and the sun's altitude, for models that take them and for the engine's photoclinometric refinement, PHOTOCLINOMETRY={'on' if cfg.get('photoclinometry', True) else 'off'}), SCALES={cfg.get('scales', 'single')}"
            + (" (½×, 1×, 2× averaged)" if cfg.get("scales") == "multi" else " (1×)")
            + "; baseline: Pentland (1990) linear SFS given the same sun. Metrics on "
            f"pixels valid in both, {cfg['border_px']}-px border cropped. Rows: each DEM at each pixel size (mean "
            "over its sun cases); 'all ×F': mean over the DEMs at pixel factor F; overall: mean over DEMs of each "
            "DEM's mean over its pixel sizes. Bar (validation DEMs, overall): beat the baseline on all four "
            f"averaged metrics AND r ≥ {BAR['r']}, detail r ≥ {BAR['detail_r']}, SSIM ≥ {BAR['ssim']}. "
            "Relief RMSE in metres: pixel-unit models' output × pixel size; legacy models' output × pixel size / "
            "training GSD (ELEVATION_MAX = 39586 × pixel size / training GSD); Pentland is given the true pixel "
            "size too.", ""]


def _overview(payload, sets, usable):
    lines = ["## Overview (overall averages per set)", "",
             "| set | method | " + " | ".join(LABELS[m] for m in METRICS + DIAGNOSTICS) + " |",
             "|---|---|" + "---|" * len(METRICS + DIAGNOSTICS)]
    for group in sets:
        for method in [SHADING_REACH, BASELINE] + usable:
            overall = payload["averages"].get(method, {}).get(group, {}).get("overall")
            cells = " | ".join(_fmt(overall.get(m) if overall else None, m) for m in METRICS + DIAGNOSTICS)
            lines.append(f"| {SET_TITLES[group]} | {method} | {cells} |")
    verdicts = [f"{m['name']}: **{m['verdict']}**" for m in payload["models"] if m.get("verdict")]
    lines += ["", "r, planes removed: Pearson r after removing from each DTM and truth its own least-squares "
              "plane, i.e. the shape of the relief without the regional tilt (a diagnostic, not part of the bar).",
              "", "r, truth's across-sun tilt: Pearson r after the DTM's least-squares slope across the sun's "
              "direction is replaced by the truth's. Shading shows the slope towards the sun, not (to first order) "
              "the slope across it, so this is r without the one part of the regional tilt that an image does "
              "not show: the gap between it and r is what that part costs (a diagnostic, not part of the bar).",
              "", f"{SHADING_REACH}: not a method but the reach of shading: the truth less its own least-squares "
              "slope across the sun, i.e. a DTM right in everything the image shows and flat across the sun, where "
              "it shows nothing (to first order). Its r is what an estimate that does not guess that slope from the "
              "terrain's texture can reach; its detail r is 1 and its SSIM near 1."]
    return lines + ["", "Verdict on the validation DEMs — " + "; ".join(verdicts) + ".", ""]


def _model_section(payload, model, sets):
    name = model["name"]
    lines = [f"## {name} (`{model['path']}`)", ""]
    if model.get("error"):
        return lines + [f"**FAIL** — the model could not be used: {model['error']}", ""]
    header = "| set | DEM × pixel | " + " | ".join(f"{LABELS[m]} model | {LABELS[m]} Pentland" for m in METRICS)
    lines += [header + " |", "|" + "---|" * (2 + 2 * len(METRICS))]
    for group in sets:
        ours, theirs = payload["averages"][name][group], payload["averages"][BASELINE][group]
        for label in ours:
            shown = f"**overall ({SET_TITLES[group]})**" if label == "overall" else label
            lines.append(f"| {SET_TITLES[group]} | {shown} | {_cells(ours[label], theirs.get(label))} |")
    passed = model["verdict"] == "PASS"
    lines += ["", f"**{model['verdict']}**" + ("" if passed else ": " + "; ".join(model["verdict_reasons"])), ""]
    unscaled = [c["results"][name]["relief_rmse_m_unscaled"] for c in payload["cases"]
                if c["set"] == "validation" and "relief_rmse_m_unscaled" in c["results"].get(name, {})]
    if unscaled:
        lines += [f"Uncalibrated relief RMSE (default 0–39,586 range), mean over validation cases: "
                  f"{np.mean(unscaled):.1f} m.", ""]
    for group in sets:
        failed = sum("error" in c["results"].get(name, {}) for c in payload["cases"] if c["set"] == group)
        if failed:
            lines += [f"{SET_TITLES[group]}: {failed} case(s) failed.", ""]
    if model.get("seconds_per_case"):
        lines += [f"Mean engine time per case: {model['seconds_per_case']:.2f} s.", ""]
    return lines


def _sun_check(payload, sets):
    """How well the engine's sun azimuth check (engine/shading.py) reads the light's line from each image."""
    lines = ["## Sun azimuth check (the engine's measured light line against the true azimuth)", "",
             f"The engine warns when the azimuth it is given is more than {AXIS_TOLERANCE_DEG:g}° off the line it "
             "measures in the image (modulo 180°; images without a clear direction are not checked).", "",
             "| set | images | median error | worst error | clear | false warnings |", "|---|---|---|---|---|---|"]
    for group in sets:
        axes = [c.get("shading_axis") for c in payload["cases"] if c["set"] == group]
        measured = [a for a in axes if a]
        if not measured:
            continue
        errors = [a["error_deg"] for a in measured]
        false_warnings = sum(a["clear"] and a["error_deg"] > AXIS_TOLERANCE_DEG for a in measured)
        lines.append(f"| {SET_TITLES[group]} | {len(axes)} | {np.median(errors):.1f}° | {max(errors):.1f}° | "
                     f"{sum(a['clear'] for a in measured)} | {false_warnings} |")
    return lines + [""]


def _data_notes(payload):
    lines = ["## Data", ""]
    seen = set()
    for scene in payload["scenes"]:
        if (scene["set"], scene["dem"]) not in seen:
            seen.add((scene["set"], scene["dem"]))
            lines.append(f"* {SET_TITLES[scene['set']]}: `{scene['dem']}` — {scene['note']}")
    if payload.get("synthetic_note"):
        lines.append(f"* held-out synthetic: {payload['synthetic_note']}")
    return lines + [""]


def summary_markdown(payload):
    lines = ["# DTM Estimator — accuracy validation", ""] + _intro(payload)
    check = payload.get("pentland_sign_check")
    if check:
        lines += ["Pentland sign check (smooth synthetic DEM, gdaldem hillshade alt 45°, r of Pentland's height "
                  "with the DEM using the true azimuth / the opposite one): "
                  + ", ".join(f"az {float(a):g}°: {r:+.3f} / {w:+.3f}" for a, (r, w) in check.items()), ""]
    sets = [group for group in SETS if any(c["set"] == group for c in payload["cases"])]
    usable = [m["name"] for m in payload["models"] if not m.get("error")]
    lines += _overview(payload, sets, usable)
    for model in payload["models"]:
        lines += _model_section(payload, model, sets)
    return "\n".join(lines + _sun_check(payload, sets) + _data_notes(payload))


def draw_figures(figures, out_dir, log):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception as exc:
        log(f"figures skipped (matplotlib: {exc})")
        return []
    os.makedirs(out_dir, exist_ok=True)
    for stale in glob.glob(os.path.join(out_dir, "*.png")):  # figures/ holds this run's figures only
        os.remove(stale)
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
    mode.add_argument("--quick", action="store_true",
                      help="one sun case (az 315°, alt 45°), native pixel only (unless --factors), 1 synthetic pair")
    mode.add_argument("--diagonal", action="store_true", help="3 cases: 270/30, 315/45, 225/60 (the default)")
    mode.add_argument("--full", action="store_true", help="9 cases: azimuths 270/315/225 × altitudes 30/45/60")
    mode.add_argument("--cases", type=parse_cases, help="explicit sun cases 'az/alt,az/alt,...'")
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS), help="sets to run (default all)")
    parser.add_argument("--factors", nargs="+", type=int,
                        help="pixel factors (default: 1, 2, and 4 where the DEM keeps 200×200 px)")
    parser.add_argument("--dems", nargs="+", help="subset of DEM / site names (file stems or body/stem)")
    parser.add_argument("--synthetic", type=int, default=None,
                        help=f"held-out simulator pairs (default {N_SYNTHETIC}, 1 with --quick; 0 skips)")
    parser.add_argument("--synthetic-size", type=int, default=SYNTHETIC_SIZE)
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    parser.add_argument("--graph-optimization", choices=("disabled", "basic", "extended", "all"),
                        help="onnxruntime graph optimisation level for every model (default: each card's)")
    parser.add_argument("--no-photoclinometry", dest="photoclinometry", action="store_false",
                        help="run the engine with PHOTOCLINOMETRY off on the renders (default: on, the engine's default)")
    parser.add_argument("--scales", choices=("multi", "single"), default="multi",
                        help="the engine's SCALES: multi (its default, ½×, 1×, 2× averaged) or single (1×)")
    parser.add_argument("--no-figures", action="store_true")
    args = parser.parse_args(argv)

    if args.quick:
        sun_cases, mode_name = QUICK, "quick"
    elif args.full:
        sun_cases, mode_name = tuple((a, e) for a in AZIMUTHS for e in ALTITUDES), "full"
    elif args.cases:
        sun_cases, mode_name = args.cases, "custom"
    else:
        sun_cases, mode_name = DIAGONAL, "diagonal"
    factors = args.factors or ([1] if args.quick else None)
    if factors and min(factors) < 1:
        parser.error("--factors must be positive integers")
    n_synthetic = args.synthetic if args.synthetic is not None else (1 if args.quick else N_SYNTHETIC)
    if "synthetic" not in args.sets:
        n_synthetic = 0

    def log(text):
        print(text, flush=True)

    os.makedirs(args.out, exist_ok=True)
    runners = [ModelRunner(path, name, args.threads, args.graph_optimization, args.scales, args.photoclinometry)
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
    scenes = load_scenes(args.sets, args.dems, factors)
    unmatched = [n for n in args.dems or () if not any(n in (s.dem, s.dem.split("/")[-1]) for s in scenes)]
    if unmatched:
        parser.error(f"no DEM or site named {', '.join(unmatched)} in the sets {', '.join(args.sets)}")
    for scene in scenes:
        if scene.set == "real":
            log(f"real image {scene.label}: {scene.note}")
    with tempfile.TemporaryDirectory(prefix="dtm_validation_") as work:
        cases = run_scenes(scenes, sun_cases, runners, work, log, figures)
        synthetic_note = None
        if n_synthetic > 0:
            synthetic_cases, synthetic_note = run_synthetic(n_synthetic, args.synthetic_size, runners, work,
                                                            log, figures)
            cases += synthetic_cases
        else:
            synthetic_note = "skipped (--synthetic 0 or not in --sets)."

    payload = {
        "config": {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "mode": mode_name,
                   "sun_cases": [list(c) for c in sun_cases], "border_px": BORDER, "sets": args.sets,
                   "factors": ", ".join(f"×{f}" for f in factors) if factors else
                   f"×1, ×2, and ×4 where ≥ {MIN_COARSE_PIXELS} px remain (real image: ×1, ×2)",
                   "metrics": list(METRICS), "bar": BAR, "baseline": "Pentland 1990 linear SFS, true sun",
                   "synthetic_pairs": n_synthetic, "synthetic_size": args.synthetic_size,
                   "threads": args.threads, "graph_optimization": args.graph_optimization or "card",
                   "scales": args.scales, "photoclinometry": args.photoclinometry,
                   "python": platform.python_version(),
                   "gdal": gdal.__version__, "seconds": round(time.perf_counter() - started, 1)},
        "scenes": [{"set": s.set, "dem": s.dem, "factor": s.factor, "pixel_m": s.pixel_m,
                    "shape": list(s.truth.shape), "sun": s.sun, "note": s.note} for s in scenes],
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
