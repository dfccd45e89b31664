"""The real DEMs of ../shared/training-dems, read in place, with ground pixel sizes in metres.

    python -m terrain.corpus --cache runs/corpus.npz    # pack the training sites for a machine without GDAL

Provenance, licences and vertical units of every file: ../shared/training-dems/MANIFEST.md. Whole sites in
HELDOUT_SITES are never trained on; validation scores them beside ../shared/validation-dems.
"""
import argparse
import glob
import math
import os
from dataclasses import dataclass

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAINING_DEMS = os.path.join(os.path.dirname(ROOT), "shared", "training-dems")

# Held out for validation: one site per kind of terrain and body (Earth range, Earth lidar, Moon, Mars).
HELDOUT_SITES = ("earth/white_mtns_nh_srtm3", "earth/gabilan_mesa_ca_lidar1m", "moon/moon_shoemaker_5m",
                 "mars/mars_hirise_gale_crater_floor")

# HiRISE files with relative heights (DN/65535): a relief guess from MANIFEST.md turns them into metres
# so that renders have plausible slopes. Their amplitude is not trusted (Dem.relative).
RELATIVE_RELIEF_GUESS_M = {
    "mars/mars_hirise_cerberus_buttes": 200.0,
    "mars/mars_hirise_olympia_undae_dunes": 100.0,
    "mars/mars_hirise_candor_chasma_faults": 1000.0,
    "mars/mars_hirise_noctis_labyrinthus": 150.0,
    "mars/mars_hirise_gale_crater_floor": 50.0,
}


@dataclass
class Dem:
    name: str            # body/file stem, e.g. "earth/inyo_mtns_ca_30m"
    heights: np.ndarray  # float32 metres, NaN where invalid
    dx: float            # ground pixel size, metres (east)
    dy: float            # ground pixel size, metres (north)
    relative: bool       # heights only known up to a scale (relief guessed)

    @property
    def body(self):
        return self.name.split("/")[0]

    @property
    def pixel_m(self):
        return math.sqrt(self.dx * self.dy)


def ground_pixel_size(dataset):
    """(dx, dy) in metres from the geotransform and CRS; without a CRS the geotransform is taken as metres."""
    from osgeo import osr
    gt = dataset.GetGeoTransform()
    dx, dy = abs(gt[1]), abs(gt[5])
    srs = dataset.GetSpatialRef()
    if srs is None:
        return dx, dy
    centre_y = gt[3] + gt[5] * dataset.RasterYSize / 2.0
    if srs.IsGeographic():
        metres_per_degree = srs.GetSemiMajor() * math.pi / 180.0
        return dx * metres_per_degree * math.cos(math.radians(centre_y)), dy * metres_per_degree
    scale = srs.GetLinearUnits()
    projection = (srs.GetAttrValue("PROJECTION") or "").lower()
    if "mercator" in projection and "transverse" not in projection:
        # Web/plain Mercator stretches by 1/cos(latitude): ground pixel = grid pixel · cos(lat)
        geographic = srs.CloneGeogCS()
        geographic.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        centre_x = gt[0] + gt[1] * dataset.RasterXSize / 2.0
        _, latitude, _ = osr.CoordinateTransformation(srs, geographic).TransformPoint(centre_x, centre_y)
        scale *= math.cos(math.radians(latitude))
    return dx * scale, dy * scale


def read_dem(path, name=None):
    """One DEM as a Dem; nodata and non-finite values become NaN."""
    from osgeo import gdal
    gdal.UseExceptions()
    name = name or _site_name(path)
    dataset = gdal.Open(path)
    band = dataset.GetRasterBand(1)
    heights = band.ReadAsArray().astype(np.float32)
    nodata = band.GetNoDataValue()
    if nodata is not None and np.isfinite(nodata):
        heights[heights == nodata] = np.nan
    heights[~np.isfinite(heights)] = np.nan
    relative = name in RELATIVE_RELIEF_GUESS_M
    if relative:
        low, high = np.nanmin(heights), np.nanmax(heights)
        heights = (heights - low) / max(high - low, 1e-9) * RELATIVE_RELIEF_GUESS_M[name]
    dx, dy = ground_pixel_size(dataset)
    return Dem(name=name, heights=heights, dx=float(dx), dy=float(dy), relative=relative)


def _site_name(path):
    body = os.path.basename(os.path.dirname(path))
    return f"{body}/{os.path.splitext(os.path.basename(path))[0]}"


def site_paths(root=TRAINING_DEMS):
    """Every DEM of the corpus (orthoimages excluded), sorted by name."""
    paths = [p for p in glob.glob(os.path.join(root, "*", "*.tif")) if not p.endswith("_ortho.tif")]
    return sorted(paths, key=_site_name)


def load_sites(split="train", root=TRAINING_DEMS):
    """split: 'train' (all but HELDOUT_SITES), 'heldout', or 'all'."""
    if split not in ("train", "heldout", "all"):
        raise ValueError(f"split must be train, heldout or all, not {split!r}")
    dems = []
    for path in site_paths(root):
        held_out = _site_name(path) in HELDOUT_SITES
        if split == "all" or (split == "heldout") == held_out:
            dems.append(read_dem(path))
    return dems


# ---- a GDAL-free cache, so training runs where GDAL is not installed --------------------------------
_INVALID = 65535


def save_cache(dems, path):
    """Heights quantised to uint16 over each DEM's own range (steps ≤ relief/65534), NaN kept as 65535."""
    arrays, meta = {}, []
    for i, dem in enumerate(dems):
        low, high = float(np.nanmin(dem.heights)), float(np.nanmax(dem.heights))
        step = max(high - low, 1e-6) / (_INVALID - 1)
        codes = np.round((np.nan_to_num(dem.heights, nan=low) - low) / step).astype(np.uint16)
        codes[~np.isfinite(dem.heights)] = _INVALID
        arrays[f"h{i}"] = codes
        meta.append((dem.name, low, step, dem.dx, dem.dy, dem.relative))
    arrays["meta"] = np.array(meta, dtype=object)
    np.savez_compressed(path, **arrays)


def load_cache(path):
    packed = np.load(path, allow_pickle=True)
    dems = []
    for i, (name, low, step, dx, dy, relative) in enumerate(packed["meta"]):
        codes = packed[f"h{i}"]
        heights = (codes.astype(np.float32) * np.float32(step) + np.float32(low))
        heights[codes == _INVALID] = np.nan
        dems.append(Dem(name=str(name), heights=heights, dx=float(dx), dy=float(dy), relative=bool(relative)))
    return dems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", required=True, help="npz to write")
    parser.add_argument("--split", default="train", choices=("train", "heldout", "all"))
    args = parser.parse_args(argv)
    dems = load_sites(args.split)
    save_cache(dems, args.cache)
    for dem in dems:
        valid = np.isfinite(dem.heights).mean()
        print(f"{dem.name:45s} {dem.heights.shape[1]:5d}x{dem.heights.shape[0]:<5d} "
              f"{dem.dx:8.2f} x {dem.dy:8.2f} m  valid {valid:5.1%}  relief {np.nanmax(dem.heights) - np.nanmin(dem.heights):8.1f} m"
              + ("  (relative, guessed)" if dem.relative else ""))
    print(f"{len(dems)} DEMs -> {args.cache} ({os.path.getsize(args.cache) / 2 ** 20:.1f} MiB)")


if __name__ == "__main__":
    main()
