"""Check the simulator's shading convention against `gdaldem hillshade -az 270 -alt 45`.

Run from the repository root:  python -m training.check_simulator
Prints the Pearson correlation between the simulator's Lambert cos(i) (no cast
shadows, no albedo, no sensor effects) and GDAL's hillshade of the same DEM,
and the correlation with the east-lit (az 90) hillshade as a sign check.
"""
from __future__ import annotations

import numpy as np
from osgeo import gdal

from terrain.render import incidence
from training import simulator as sim
from validation.pentland import gdal_hillshade_array


def main():
    gdal.UseExceptions()
    rs, rs_east = [], []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        h = sim.make_terrain(rng, 256)
        cos_i, _ = incidence(h, 45.0, gsd=sim.GSD_M)
        lam = np.clip(255.0 * cos_i, 1, 255)
        hs = gdal_hillshade_array(h, 270.0, 45.0, sim.GSD_M)
        hs_e = gdal_hillshade_array(h, 90.0, 45.0, sim.GSD_M)
        c = (slice(2, -2), slice(2, -2))
        rs.append(np.corrcoef(lam[c].ravel(), hs[c].ravel())[0, 1])
        rs_east.append(np.corrcoef(lam[c].ravel(), hs_e[c].ravel())[0, 1])
        if seed == 0:
            print(f"seed 0: mean |sim - gdal| = {np.abs(lam[c] - hs[c]).mean():.2f} DN")
    print("corr(simulator Lambert az270 el45, gdaldem -az 270 -alt 45) per DEM:",
          np.round(rs, 4))
    print(f"mean r = {np.mean(rs):.4f}  min r = {np.min(rs):.4f}  "
          f"(sign check, vs -az 90: mean r = {np.mean(rs_east):.4f})")
    assert np.min(rs) > 0.95, "shading convention mismatch"


if __name__ == "__main__":
    main()
