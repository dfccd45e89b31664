"""Heights in metres on the validation DEMs: HEIGHTS=reference against the reference alone, and the
spread of HEIGHTS=pixel_size against the truth's.

    .venv/bin/python -m validation.heights --models models/pix2pixcc.onnx models/mrfed.onnx \
        --out validation/results/heights.md [--append-to validation/results/summary.md] [--cases 315/45]

Each validation DEM (validation/scenes.py, native pixel size) is cropped to whole FACTOR × FACTOR cells
and shaded by scenes.render at its own pixel size in metres. Per model and sun case:
* reference: the engine in HEIGHTS=reference with the truth box-averaged FACTOR × FACTOR as REFERENCE_DEM;
  RMSE against the truth beside the RMSE of that reference bilinearly upsampled by gdal.Warp (bar: ≥ 20 %
  lower);
* pixel_size: the standard deviation of the engine's HEIGHTS=pixel_size output over the truth's
  (bar: between ½ and 2).
"""
import argparse
import dataclasses
import json
import os
import sys
import tempfile

import numpy as np
from osgeo import gdal

from validation.metrics import BORDER, crop
from validation.scenes import box_average, render, validation_scenes, write_geotiff
from validation.validate import DIAGONAL, ROOT, parse_cases, read_prediction, unique_names

gdal.UseExceptions()

FACTOR = 8            # the reference is the truth box-averaged FACTOR × FACTOR
RMSE_BAR = 0.8        # reference-mode RMSE at most this share of the upsampled reference's
SPREAD_BAR = 2.0      # pixel-size std within this factor of the truth's
SECTION = "## Heights in metres (HEIGHTS=reference and pixel_size)"


def whole_cells(scene):
    """The scene cropped to whole FACTOR × FACTOR cells, so the reference's grid matches it exactly."""
    rows, cols = (n - n % FACTOR for n in scene.truth.shape)
    return dataclasses.replace(scene, truth=scene.truth[:rows, :cols])


def write_reference(scene, work):
    """The truth box-averaged FACTOR × on a grid FACTOR times coarser (same origin, CRS and nodata NaN)."""
    path = os.path.join(work, f"{scene.dem}_reference.tif")
    return write_geotiff(path, box_average(scene.truth, FACTOR), scene.dx * FACTOR, scene.dy * FACTOR,
                         nodata=float("nan"))


def upsample_bilinear(reference_path, scene):
    """The reference bilinearly resampled by gdal.Warp onto the scene's grid, the grid scenes.render
    writes (origin 0, 0, north up; NaN where no data)."""
    rows, cols = scene.truth.shape
    bounds = (0.0, -scene.dy * rows, scene.dx * cols, 0.0)
    warped = gdal.Warp("", reference_path, format="MEM", outputBounds=bounds, width=cols, height=rows,
                       resampleAlg="bilinear", dstNodata=float("nan"))
    return warped.GetRasterBand(1).ReadAsArray().astype(np.float64)


def rmse(values, truth):
    values, truth = crop(values, BORDER), crop(truth, BORDER)
    both = np.isfinite(values) & np.isfinite(truth)
    return float(np.sqrt(np.mean((values[both] - truth[both]) ** 2)))


def run_engine(model, image_path, work, azimuth, altitude, **heights):
    """The engine's output (NaN = nodata) and metadata for one gdaldem render, on CPU (flat ground's grey
    level, as the render's sun elevation fixes it, and that elevation given, for models that take them)."""
    from dtm_estimator.engine import EstimateOptions, estimate_dtm
    from dtm_estimator.engine.flat_grey import hillshade_flat_grey
    out = os.path.join(work, "heights_out.tif")
    estimate_dtm(image_path, out, EstimateOptions(model, device="cpu", threads=2, sun_azimuth=azimuth,
                                                  flat_grey=hillshade_flat_grey(altitude),
                                                  sun_elevation=altitude, **heights))
    metadata = gdal.Open(out).GetMetadata()
    values = read_prediction(out)
    os.remove(out)
    return values, metadata


def evaluate_scene(scene, models, names, sun_cases, work, log):
    """Per model, per sun case: the reference-mode and pixel-size figures."""
    scene = whole_cells(scene)
    truth = scene.truth
    reference_path = write_reference(scene, work)
    truth_std = float(np.nanstd(crop(truth, BORDER)))
    baseline = rmse(upsample_bilinear(reference_path, scene), truth)  # the same for every sun case
    log(f"{scene.dem}: {truth.shape[1]}×{truth.shape[0]} px of {scene.dx:.4g}×{scene.dy:.4g} m, reference "
        f"{FACTOR}× coarser; truth std {truth_std:.1f} m")
    cases = []
    for azimuth, altitude in sun_cases:
        image_path, _ = render(scene, work, azimuth, altitude)
        for model, name in zip(models, names):
            tied, tie = run_engine(model, image_path, work, azimuth, altitude, heights="reference",
                                   reference_dem=reference_path)
            metres, _ = run_engine(model, image_path, work, azimuth, altitude, heights="pixel_size")
            case = {"dem": scene.dem, "model": name, "azimuth": azimuth, "altitude": altitude,
                    "reference_rmse_m": rmse(tied, truth), "upsampled_rmse_m": baseline,
                    "gain": float(tie["DTM_REFERENCE_GAIN"]),
                    "pixel_size_std_m": float(np.nanstd(crop(np.where(np.isfinite(truth), metres, np.nan), BORDER))),
                    "truth_std_m": truth_std}
            log(f"  {name} az {azimuth:g}° alt {altitude:g}°: reference RMSE {case['reference_rmse_m']:.2f} m "
                f"against {baseline:.2f} m (gain {case['gain']:.3g}), pixel_size std {case['pixel_size_std_m']:.1f} m")
            cases.append(case)
        os.remove(image_path)
    return cases


def _verdict(passed):
    return "PASS" if passed else "FAIL"


def summarise(cases, names, sun_cases):
    """Markdown: per model and DEM, the means over the sun cases and the two verdicts."""
    lines = [SECTION, "",
             f"Reference = the truth box-averaged {FACTOR}×{FACTOR}; bar: reference-mode RMSE ≤ {RMSE_BAR:g} × "
             f"that of the reference bilinearly upsampled (gdal.Warp), and the pixel_size output's standard "
             f"deviation within a factor {SPREAD_BAR:g} of the truth's. Means over {len(sun_cases)} sun case(s): "
             + ", ".join(f"az {a:g}°/alt {e:g}°" for a, e in sun_cases) + f"; {BORDER}-px border cropped; the engine "
             "at its default scales (SCALES=multi: ½×, 1×, 2× averaged).", "",
             "| model | DEM | upsampled reference RMSE (m) | reference-mode RMSE (m) | ratio | fitted gain | "
             "reference verdict | pixel_size std (m) | truth std (m) | std ratio | pixel_size verdict |",
             "|" + "---|" * 11]
    for name in names:
        for dem in dict.fromkeys(c["dem"] for c in cases):
            rows = [c for c in cases if c["model"] == name and c["dem"] == dem]
            mean = {key: float(np.mean([c[key] for c in rows])) for key in
                    ("reference_rmse_m", "upsampled_rmse_m", "gain", "pixel_size_std_m", "truth_std_m")}
            ratio = mean["reference_rmse_m"] / mean["upsampled_rmse_m"]
            spread = mean["pixel_size_std_m"] / mean["truth_std_m"]
            tied_ok, spread_ok = ratio <= RMSE_BAR, 1 / SPREAD_BAR <= spread <= SPREAD_BAR
            lines.append(f"| {name} | {dem} | {mean['upsampled_rmse_m']:.2f} | {mean['reference_rmse_m']:.2f} | "
                         f"{ratio:.3f} | {mean['gain']:.3g} | {_verdict(tied_ok)} | {mean['pixel_size_std_m']:.1f} | "
                         f"{mean['truth_std_m']:.1f} | {spread:.3f} | {_verdict(spread_ok)} |")
    return "\n".join(lines) + "\n"


def append_section(path, section):
    """Put the section at the end of an existing summary, replacing an earlier copy of it."""
    with open(path) as handle:
        text = handle.read()
    text = text.split(SECTION)[0].rstrip("\n")
    with open(path, "w") as handle:
        handle.write(text + "\n\n" + section)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", required=True, help="ONNX models with pixel-unit heights")
    parser.add_argument("--out", default=os.path.join(ROOT, "validation", "results", "heights.md"))
    parser.add_argument("--append-to", help="also append the table to this Markdown summary")
    parser.add_argument("--cases", type=parse_cases, default=DIAGONAL, help="sun cases 'az/alt,...'")
    parser.add_argument("--dems", nargs="+", help="subset of DEM names")
    args = parser.parse_args(argv)

    def log(text):
        print(text, flush=True)

    names = unique_names(args.models)
    with tempfile.TemporaryDirectory(prefix="dtm_heights_") as work:
        cases = []
        for scene in validation_scenes(args.dems, factors=[1]):
            cases += evaluate_scene(scene, args.models, names, args.cases, work, log)
    summary = summarise(cases, names, args.cases)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as handle:
        handle.write(summary)
    with open(os.path.splitext(args.out)[0] + ".json", "w") as handle:
        json.dump({"factor": FACTOR, "sun_cases": [list(c) for c in args.cases], "cases": cases}, handle, indent=1)
    if args.append_to:
        append_section(args.append_to, summary)
    print()
    print(summary)
    return 0 if "FAIL" not in summary else 1


if __name__ == "__main__":
    sys.exit(main())
