"""Score `make demo`'s DTM against the true topography of its sample image.

    python -m validation.demo_score DTM.tif \
        --truth ../shared/validation-dems/mars_mola_topography_sample_grid.tif \
        --image sample_data/mars_mola_shaded_relief.tif --out validation/results/demo.md [--png demo_vs_truth.png]

The truth is MOLA MEGDR topography area-averaged onto the sample's exact grid (../shared/README.md); the
DTM must be on that grid too. Reported: Pearson r and detail r (validation.metrics) of the DTM against
the truth; the same for Pentland's linear shape from shading run on the sample image with the sun azimuth
the DTM was made with (its DTM_SUN_AZIMUTH metadata, or --sun-azimuth); and a feature table — the median
of a 3×3 px box at each named feature, as a percentile of the whole raster ("global") and of a window 3×
the feature's size around it ("local"), for the DTM and the truth. Rule: high = above the 75th percentile, low = below the 25th.
"""
import argparse
import math
import os

import numpy as np
from osgeo import gdal

from validation.metrics import detail_r, pearson
from validation.pentland import pentland
from validation.scenes import read_band

gdal.UseExceptions()

PENTLAND_ELEVATIONS = (30.0, 45.0)  # the elevation only scales Pentland's heights: r is the same for both
HIGH_PERCENTILE, LOW_PERCENTILE = 75.0, 25.0
BOX_HALF = 1                       # 3×3 px median (~60 km at the sample's 0.3516°/px)
WINDOW_DIAMETERS = 3.0             # local window side, in feature diameters
# Planetocentric latitude, east longitude (−180..180) and size from the IAU Gazetteer of Planetary
# Nomenclature (as cited by its Wikipedia articles), rounded; Valles Marineris's size is its width.
FEATURES = (
    ("Olympus Mons", 18.65, -133.80, 600.0, "high"),
    ("Arsia Mons", -8.26, -120.09, 435.0, "high"),
    ("Pavonis Mons", 1.48, -112.96, 375.0, "high"),
    ("Ascraeus Mons", 11.92, -104.08, 480.0, "high"),
    ("Hellas Planitia", -42.4, 70.5, 2300.0, "low"),
    ("Argyre Planitia", -49.7, -44.0, 1800.0, "low"),
    ("Valles Marineris", -13.9, -59.2, 200.0, "low"),
)


class Raster:
    """Band 1 as float64 (NaN at nodata), its geotransform and the body's radius in metres."""

    def __init__(self, path):
        self.path = path
        self.values, ds = read_band(path)
        self.transform = ds.GetGeoTransform()
        srs = ds.GetSpatialRef()
        if srs is None or not srs.IsGeographic():
            raise ValueError(f"{path}: need a geographic CRS (degrees), as the demo sample's")
        self.radius_m = srs.GetSemiMajor()
        self.metadata = ds.GetMetadata()

    def pixel_of(self, lat, lon):
        """(row, col) of a point; longitudes wrap around the globe."""
        gt = self.transform
        col = int(math.floor(((lon - gt[0]) % 360.0) / gt[1]))
        row = int(math.floor((lat - gt[3]) / gt[5]))
        if not (0 <= row < self.values.shape[0] and 0 <= col < self.values.shape[1]):
            raise ValueError(f"{self.path}: ({lat}, {lon}) is outside the raster")
        return row, col

    def window(self, row, col, half_rows, half_cols):
        """Rows clipped at the poles, columns wrapped around the globe."""
        rows = slice(max(row - half_rows, 0), row + half_rows + 1)
        cols = np.arange(col - half_cols, col + half_cols + 1) % self.values.shape[1]
        return self.values[rows][:, cols]

    @property
    def km_per_pixel(self):
        """North–south pixel size (and east–west at the equator), km."""
        return self.radius_m * math.pi / 180.0 * abs(self.transform[5]) / 1000.0


def require_same_grid(a, b):
    if a.values.shape != b.values.shape or not np.allclose(a.transform, b.transform, atol=1e-9):
        raise ValueError(f"{a.path} ({a.values.shape[1]}×{a.values.shape[0]}, {a.transform}) is not on the grid "
                         f"of {b.path} ({b.values.shape[1]}×{b.values.shape[0]}, {b.transform})")


def percentile_of(value, values):
    """Share (%) of the valid pixels of `values` below `value`."""
    valid = values[np.isfinite(values)]
    return 100.0 * float(np.mean(valid < value))


def verdict(percentile):
    if percentile > HIGH_PERCENTILE:
        return "high"
    return "low" if percentile < LOW_PERCENTILE else "middle"


def feature_row(raster, lat, lon, diameter_km):
    """(box median, global percentile, local percentile) of one feature in one raster."""
    row, col = raster.pixel_of(lat, lon)
    value = float(np.nanmedian(raster.window(row, col, BOX_HALF, BOX_HALF)))
    half_rows = int(round(0.5 * WINDOW_DIAMETERS * diameter_km / raster.km_per_pixel))
    half_cols = int(round(half_rows / max(math.cos(math.radians(lat)), 0.05)))  # same ground size E–W
    local = raster.window(row, col, half_rows, min(half_cols, raster.values.shape[1] // 2))
    return value, percentile_of(value, raster.values), percentile_of(value, local)


def dtm_sun_azimuth(dtm):
    """The sun azimuth the engine was given for this DTM (its DTM_SUN_AZIMUTH metadata)."""
    azimuth = dtm.metadata.get("DTM_SUN_AZIMUTH", "")
    if azimuth == "":
        raise ValueError(f"{dtm.path} records no sun azimuth (DTM_SUN_AZIMUTH): pass --sun-azimuth, the one "
                         "the DTM was made with, so Pentland sees the same light")
    return float(azimuth)


def pentland_scores(image, truth, sun_azimuth):
    """{elevation: (r, detail r)} of Pentland's height from the image against the truth. Pixel size: the
    sample's north–south pixel in metres for both sides (an equirectangular map's east–west pixel shrinks
    with latitude; r and detail r do not depend on a single scale)."""
    pixel = truth.km_per_pixel * 1000.0
    scores = {}
    for elevation in PENTLAND_ELEVATIONS:
        z = pentland(image.values, sun_azimuth, elevation, pixel, pixel)
        z = np.where(np.isfinite(image.values), z, np.nan)
        scores[elevation] = (pearson(z, truth.values), detail_r(z, truth.values)), z
    return scores


def score(dtm_path, truth_path, image_path, sun_azimuth=None):
    dtm, truth, image = Raster(dtm_path), Raster(truth_path), Raster(image_path)
    sun_azimuth = dtm_sun_azimuth(dtm) if sun_azimuth is None else sun_azimuth
    require_same_grid(dtm, truth)
    require_same_grid(image, truth)
    features = []
    for name, lat, lon, diameter, expected in FEATURES:
        ours, true = feature_row(dtm, lat, lon, diameter), feature_row(truth, lat, lon, diameter)
        features.append({"name": name, "lat": lat, "lon": lon, "diameter_km": diameter, "expected": expected,
                         "dtm": ours, "truth": true})
    pentland_runs = pentland_scores(image, truth, sun_azimuth)
    return {"dtm": dtm, "truth": truth, "image": image, "sun_azimuth": sun_azimuth,
            "r": pearson(dtm.values, truth.values), "detail_r": detail_r(dtm.values, truth.values),
            "pentland": {e: s for e, (s, _) in pentland_runs.items()},
            "pentland_height": pentland_runs[PENTLAND_ELEVATIONS[-1]][1], "features": features}


def markdown(result):
    dtm, truth, image, sun_azimuth = result["dtm"], result["truth"], result["image"], result["sun_azimuth"]
    lines = ["# `make demo` scored against its true topography", "",
             f"DTM `{dtm.path}` against `{truth.path}` (MOLA MEGDR topography area-averaged onto the sample's "
             f"grid; provenance in ../shared/README.md), {truth.values.shape[1]}×{truth.values.shape[0]} px, "
             "pixels valid in both.", "",
             "| method | r | detail r (σ = 8 px high-pass) |", "|---|---|---|",
             f"| DTM | {result['r']:.3f} | {result['detail_r']:.3f} |"]
    for elevation, (r, detail) in result["pentland"].items():
        lines.append(f"| Pentland on `{image.path}`, sun az {sun_azimuth:g}° el {elevation:g}° | {r:.3f} | {detail:.3f} |")
    lines += ["", f"Pentland is given the sun azimuth the DTM was made with ({sun_azimuth:g}°); the "
              f"elevation is not known and only scales Pentland's heights, so r and detail r are the same at "
              f"{' and '.join(f'{e:g}°' for e in PENTLAND_ELEVATIONS)}; no other choice was made on the truth.", "",
              "## Features", "",
              f"Value: median of a {2 * BOX_HALF + 1}×{2 * BOX_HALF + 1} px box at the feature (DTM units; truth in m). "
              "Percentiles: share of pixels below that value, over the whole raster (global) and over a window "
              f"{WINDOW_DIAMETERS:g}× the feature's size around it (local). Rule: **high** above the "
              f"{HIGH_PERCENTILE:g}th percentile, **low** below the {LOW_PERCENTILE:g}th, otherwise middle. "
              "Coordinates: planetocentric latitude, east longitude (IAU Gazetteer).", "",
              "| feature | lat, lon | expected | DTM value | DTM global % | DTM local % | truth (m) | truth global % "
              "| truth local % | DTM verdict global / local |", "|---|---|---|---|---|---|---|---|---|---|"]
    for f in result["features"]:
        (value, glob_p, loc_p), (t_value, t_glob, t_loc) = f["dtm"], f["truth"]
        lines.append(f"| {f['name']} | {f['lat']:g}, {f['lon']:g} | {f['expected']} | {value:.1f} | {glob_p:.0f} | "
                     f"{loc_p:.0f} | {t_value:.0f} | {t_glob:.0f} | {t_loc:.0f} | "
                     f"{verdict(glob_p)} / {verdict(loc_p)} |")
    right = {rule: sum(verdict(f["dtm"][i]) == f["expected"] for f in result["features"])
             for rule, i in (("global", 1), ("local", 2))}
    truth_right = {rule: sum(verdict(f["truth"][i]) == f["expected"] for f in result["features"])
                   for rule, i in (("global", 1), ("local", 2))}
    n = len(result["features"])
    lines += ["", f"As expected: DTM {right['global']}/{n} (global rule), {right['local']}/{n} (local rule); "
              f"the truth itself {truth_right['global']}/{n} (global), {truth_right['local']}/{n} (local) — the "
              "global rule cannot call Argyre or Valles Marineris low even on the truth (the northern lowlands "
              "are lower), which is why the local rule is shown beside it.", ""]
    return "\n".join(lines)


def stretched(values):
    low, high = np.nanpercentile(values, (1, 99))
    return np.clip((values - low) / max(high - low, 1e-12), 0, 1)


def write_png(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = [("sample image", result["image"].values, "gray"),
              (f"DTM (r {result['r']:.2f}, detail r {result['detail_r']:.2f})", result["dtm"].values, "terrain"),
              ("true MOLA topography", result["truth"].values, "terrain")]
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.3))
    for ax, (title, values, cmap) in zip(axes, panels):
        ax.imshow(stretched(values), cmap=cmap, interpolation="nearest")
        ax.set_title(title + " — own 1–99 % stretch", fontsize=9)
        ax.set_xticks([]); ax.set_yticks([])
    for f in result["features"]:
        row, col = result["truth"].pixel_of(f["lat"], f["lon"])
        for ax in axes[1:]:
            ax.plot(col, row, "o", ms=4, mfc="none", mec="red" if f["expected"] == "high" else "blue")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dtm")
    parser.add_argument("--truth", required=True)
    parser.add_argument("--image", required=True, help="the image the DTM was made from")
    parser.add_argument("--out", required=True, help="Markdown report to write")
    parser.add_argument("--png", help="image | DTM | truth side by side")
    parser.add_argument("--sun-azimuth", type=float,
                        help="the sun azimuth the DTM was made with (default: its DTM_SUN_AZIMUTH metadata)")
    args = parser.parse_args(argv)
    result = score(args.dtm, args.truth, args.image, args.sun_azimuth)
    text = markdown(result)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as handle:
        handle.write(text)
    if args.png:
        write_png(result, args.png)
    print(text)


if __name__ == "__main__":
    main()
