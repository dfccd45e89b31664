"""Heights in metres on the validation DEMs: HEIGHTS=reference against the reference alone, and the
spread of HEIGHTS=pixel_size against the truth's.

    .venv/bin/python -m validation.heights --models models/pix2pixcc.onnx models/mrfed.onnx \
        --out validation/results/heights.md [--append-to validation/results/summary.md] [--cases 315/45]

Each DEM is cropped to a multiple of the reference factor (8), given the CRS it is documented in where
its file has none, and shaded with GDAL's hillshade at its own ground pixel size (the one the engine
derives from the CRS). Per model and sun case:
* reference: the engine in HEIGHTS=reference with the truth box-averaged 8 × 8 as REFERENCE_DEM; RMSE
  against the truth beside the RMSE of that reference bilinearly upsampled by gdal.Warp (bar: ≥ 20 %
  lower);
* pixel_size: the standard deviation of the engine's HEIGHTS=pixel_size output over the truth's
  (bar: between ½ and 2).
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np

from validation.validate import (DIAGONAL, ROOT, hillshade, load_dems, parse_cases, read_prediction,
                                 unique_names)
from validation.metrics import BORDER, crop
from osgeo import gdal, osr

gdal.UseExceptions()

FACTOR = 8            # the reference is the truth box-averaged FACTOR × FACTOR
RMSE_BAR = 0.8        # reference-mode RMSE at most this share of the upsampled reference's
SPREAD_BAR = 2.0      # pixel-size std within this factor of the truth's
NODATA = -9999.0
SECTION = "## Heights in metres (HEIGHTS=reference and pixel_size)"
# The CRS each DEM is documented in (validation/README.md), for files that carry none
DOCUMENTED_CRS = {
    "srtm_boulder_creek": "EPSG:4326",
    "mars_hirise_crop": "+proj=eqc +R=3396190 +units=m +no_defs",  # Mars 2015 sphere, metres
}


def _wkt(definition):
    srs = osr.SpatialReference()
    srs.SetFromUserInput(definition)
    return srs.ExportToWkt()


def prepare_truth(dem, work):
    """The DEM cropped to whole FACTOR-cells, as a GeoTIFF with its CRS; (path, truth array with NaN)."""
    source = gdal.Open(dem.path)
    rows, cols = (n - n % FACTOR for n in dem.shape)
    truth = dem.truth[:rows, :cols]
    path = os.path.join(work, f"{dem.name}_truth.tif")
    ds = gdal.GetDriverByName("GTiff").Create(path, cols, rows, 1, gdal.GDT_Float32)
    ds.SetGeoTransform(source.GetGeoTransform())
    ds.SetProjection(source.GetProjection() or _wkt(DOCUMENTED_CRS[dem.name]))
    ds.GetRasterBand(1).SetNoDataValue(NODATA)
    ds.GetRasterBand(1).WriteArray(np.where(np.isfinite(truth), truth, NODATA))
    ds = None
    return path, truth


def box_average(truth, factor=FACTOR):
    """Mean of the valid pixels of each factor × factor block (NaN where none is valid)."""
    rows, cols = truth.shape[0] // factor, truth.shape[1] // factor
    blocks = truth.reshape(rows, factor, cols, factor)
    counts = np.isfinite(blocks).sum(axis=(1, 3))
    sums = np.nansum(blocks, axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


def write_reference(truth_path, truth, work):
    """The truth box-averaged FACTOR × on a grid FACTOR times coarser, same origin and CRS."""
    source = gdal.Open(truth_path)
    coarse = box_average(truth)
    t = source.GetGeoTransform()
    path = os.path.join(work, os.path.basename(truth_path).replace("_truth", "_reference"))
    ds = gdal.GetDriverByName("GTiff").Create(path, coarse.shape[1], coarse.shape[0], 1, gdal.GDT_Float32)
    ds.SetGeoTransform((t[0], t[1] * FACTOR, t[2], t[3], t[4], t[5] * FACTOR))
    ds.SetProjection(source.GetProjection())
    ds.GetRasterBand(1).SetNoDataValue(NODATA)
    ds.GetRasterBand(1).WriteArray(np.where(np.isfinite(coarse), coarse, NODATA))
    ds = None
    return path


def upsample_bilinear(reference_path, like_path, work):
    """The reference bilinearly resampled onto the truth's grid by gdal.Warp (NaN where no data)."""
    like = gdal.Open(like_path)
    t = like.GetGeoTransform()
    bounds = (t[0], t[3] + t[5] * like.RasterYSize, t[0] + t[1] * like.RasterXSize, t[3])
    path = os.path.join(work, "upsampled.tif")
    gdal.Warp(path, reference_path, outputBounds=bounds, width=like.RasterXSize, height=like.RasterYSize,
              resampleAlg="bilinear", dstNodata=NODATA)
    values = read_prediction(path)
    os.remove(path)
    return values


def render_scale(truth_path):
    """gdaldem's scale (map units → metres) that shades the DEM at the ground pixel the engine uses."""
    from dtm_estimator.engine.ground_pixel import ground_pixel
    ds = gdal.Open(truth_path)
    return ground_pixel(ds, "The DEM").size_m / abs(ds.GetGeoTransform()[1])


def rmse(values, truth):
    values, truth = crop(values, BORDER), crop(truth, BORDER)
    both = np.isfinite(values) & np.isfinite(truth)
    return float(np.sqrt(np.mean((values[both] - truth[both]) ** 2)))


def run_engine(model, image_path, work, azimuth, **heights):
    from dtm_estimator.engine import EstimateOptions, estimate_dtm
    out = os.path.join(work, "heights_out.tif")
    logged = []
    estimate_dtm(image_path, out, EstimateOptions(model, device="cpu", threads=2, sun_azimuth=azimuth, **heights),
                 log=logged.append)
    metadata = gdal.Open(out).GetMetadata()
    values = read_prediction(out)
    os.remove(out)
    return values, metadata


def evaluate_dem(dem, models, names, sun_cases, work, log):
    """Per model, per sun case: the reference-mode and pixel-size figures."""
    truth_path, truth = prepare_truth(dem, work)
    reference_path = write_reference(truth_path, truth, work)
    baseline = rmse(upsample_bilinear(reference_path, truth_path, work), truth)
    truth_std = float(np.nanstd(crop(truth, BORDER)))
    scale = render_scale(truth_path)
    log(f"{dem.name}: {truth.shape[1]}×{truth.shape[0]} px, reference {FACTOR}× coarser; upsampled reference "
        f"RMSE {baseline:.2f} m, truth std {truth_std:.1f} m")
    cases = []
    for azimuth, altitude in sun_cases:
        image_path = os.path.join(work, f"{dem.name}_render.tif")
        hillshade(truth_path, image_path, azimuth, altitude, scale)
        for model, name in zip(models, names):
            tied, tie = run_engine(model, image_path, work, azimuth, heights="reference",
                                   reference_dem=reference_path)
            metres, _ = run_engine(model, image_path, work, azimuth, heights="pixel_size")
            case = {"dem": dem.name, "model": name, "azimuth": azimuth, "altitude": altitude,
                    "reference_rmse_m": rmse(tied, truth), "upsampled_rmse_m": baseline,
                    "gain": float(tie["DTM_REFERENCE_GAIN"]),
                    "pixel_size_std_m": float(np.nanstd(crop(np.where(np.isfinite(truth), metres, np.nan), BORDER))),
                    "truth_std_m": truth_std}
            log(f"  {name} az {azimuth:g}° alt {altitude:g}°: reference RMSE {case['reference_rmse_m']:.2f} m "
                f"(gain {case['gain']:.3g}), pixel_size std {case['pixel_size_std_m']:.1f} m")
            cases.append(case)
        os.remove(image_path)
    return cases


def _verdict(passed):
    return "PASS" if passed else "FAIL"


def summarise(cases, models, names, sun_cases):
    """Markdown: per model and DEM, the means over the sun cases and the verdicts."""
    lines = [SECTION, "",
             f"Reference = the truth box-averaged {FACTOR}×{FACTOR}; bar: reference-mode RMSE ≤ {RMSE_BAR:g} × "
             f"that of the reference bilinearly upsampled (gdal.Warp), and the pixel_size output's standard "
             f"deviation within a factor {SPREAD_BAR:g} of the truth's. Means over {len(sun_cases)} sun case(s): "
             + ", ".join(f"az {a:g}°/alt {e:g}°" for a, e in sun_cases) + f"; {BORDER}-px border cropped.", "",
             "| model | DEM | upsampled reference RMSE (m) | reference-mode RMSE (m) | ratio | fitted gain | "
             "reference verdict | pixel_size std (m) | truth std (m) | std ratio | pixel_size verdict |",
             "|" + "---|" * 11]
    for model, name in zip(models, names):
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
        for dem in load_dems(work, args.dems):
            cases += evaluate_dem(dem, args.models, names, args.cases, work, log)
    summary = summarise(cases, args.models, names, args.cases)
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
