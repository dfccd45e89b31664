"""terrain/: the real-DEM corpus reader and the renderer that training and validation share."""
import math

import numpy as np
import pytest
from osgeo import gdal, osr

from rasters import utm_wkt, write_raster
from terrain.corpus import Dem, load_cache, read_dem, save_cache
from terrain.render import ViewSource, albedo_map, cast_shadow, gdaldem_hillshade, random_plane, random_view
from validation.pentland import gdal_hillshade_array


def epsg_wkt(code):
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(code)
    return srs.ExportToWkt()


def rolling_dem(rows=300, cols=400, relief=500.0):
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float64)
    return relief * (np.sin(x / 23.0) * np.cos(y / 31.0) + 0.3 * np.sin((x + 2 * y) / 9.0))


def test_ground_pixel_from_geographic_mercator_projected_and_local_grids(tmp_path):
    dem = rolling_dem(40, 50).astype(np.float32)
    degree = 6378137.0 * math.pi / 180.0  # WGS 84's semi-major axis, as the corpus uses the CRS's own
    cases = {  # name: (geotransform, wkt, expected dx, expected dy)
        "geographic": ((10.0, 1 / 1200, 0, 40.0 + 20 / 1200, 0, -1 / 1200), epsg_wkt(4326),
                       degree / 1200 * math.cos(math.radians(40.0)), degree / 1200),
        "mercator": ((0.0, 30.0, 0, 5711000.0, 0, -30.0), epsg_wkt(3857), None, None),
        "utm": ((500000.0, 25.0, 0, 4000000.0, 0, -25.0), utm_wkt(), 25.0, 25.0),
        "local": ((0.0, 12.0, 0, 0.0, 0, -33.6), "", 12.0, 33.6),
    }
    for name, (transform, wkt, dx, dy) in cases.items():
        read = read_dem(write_raster(str(tmp_path / f"{name}.tif"), dem, gdal.GDT_Float32, transform, wkt),
                        name=f"earth/{name}")
        if name == "mercator":  # 30 m of Web Mercator grid at about 45.6° N is 30·cos φ on the ground
            latitude = math.degrees(2 * math.atan(math.exp((5711000.0 - 600.0) / 6378137.0)) - math.pi / 2)
            dx = dy = 30.0 * math.cos(math.radians(latitude))
        assert read.dx == pytest.approx(dx, rel=1e-3) and read.dy == pytest.approx(dy, rel=1e-3), name


def test_nodata_becomes_nan_and_relative_sites_get_their_guessed_relief(tmp_path):
    heights = rolling_dem(30, 30).astype(np.float32)
    heights[:5, :5] = -9999.0
    path = write_raster(str(tmp_path / "dem.tif"), heights, gdal.GDT_Float32, wkt=utm_wkt(), nodata=-9999.0)
    dem = read_dem(path, name="earth/some_site")
    assert np.isnan(dem.heights[:5, :5]).all() and np.isfinite(dem.heights[5:, 5:]).all() and not dem.relative
    relative = read_dem(path, name="mars/mars_hirise_cerberus_buttes")
    assert relative.relative and np.nanmax(relative.heights) - np.nanmin(relative.heights) == pytest.approx(200.0)


def test_cache_round_trip_keeps_nan_and_heights_to_the_quantisation_step(tmp_path):
    heights = rolling_dem(60, 80).astype(np.float32) + 3000.0
    heights[10:12, 20:25] = np.nan
    save_cache([Dem("moon/test", heights, 5.0, 6.0, False)], str(tmp_path / "c.npz"))
    (back,) = load_cache(str(tmp_path / "c.npz"))
    assert (back.name, back.dx, back.dy, back.relative) == ("moon/test", 5.0, 6.0, False)
    assert np.array_equal(np.isnan(back.heights), np.isnan(heights))
    step = (np.nanmax(heights) - np.nanmin(heights)) / 65534
    assert np.nanmax(np.abs(back.heights - heights)) <= step


def test_gdaldem_formula_matches_gdal_hillshade():
    dem = rolling_dem()
    for azimuth, altitude in ((270.0, 30.0), (315.0, 45.0)):
        ours = gdaldem_hillshade(dem / 30.0, altitude, azimuth).astype(np.float64)
        gdals = gdal_hillshade_array(dem, azimuth, altitude, 30.0)
        inner = (slice(1, -1), slice(1, -1))  # gdal extrapolates its edge pixels differently
        assert np.abs(ours[inner] - gdals[inner]).max() <= 1.0


def test_a_wall_casts_its_shadow_away_from_the_western_sun():
    heights = np.zeros((5, 40))
    heights[:, 10] = 10.0  # 10 px tall: at 45° the shadow reaches 10 px east, and nothing to the west
    shadow = cast_shadow(heights, 45.0)
    assert shadow[:, 11:20].all() and not shadow[:, 21:].any() and not shadow[:, :10].any()


def test_random_views_are_scale_free_and_pad_small_windows_as_the_engine_does():
    dem = Dem("earth/rolling", rolling_dem(600, 700).astype(np.float32), 30.0, 30.0, False)
    source = ViewSource(dem)
    rng = np.random.default_rng(1)
    views = [random_view(source, rng, 128, small_window=0.5) for _ in range(12)]
    assert all(view is not None for view in views)
    padded = 0
    for image, target, mask in views:
        assert image.dtype == np.uint8 and image.shape == target.shape == mask.shape == (128, 128)
        assert abs(float(target[mask > 0].mean())) < 1e-3  # heights in pixel units, mean removed
        # the DEM spans about 1,300 m; at the finest view pixel (0.75 × 30 m) that is about 58 pixel units
        assert 0.05 < np.ptp(target[mask > 0]) < 60.0
        padded += mask.mean() < 1.0
    assert padded > 0  # some views are small windows whose mirrored padding the loss ignores


def test_albedo_patches_change_brightness_by_the_contrast_asked_and_no_more():
    spreads = []
    for seed in range(8):
        smooth = albedo_map(np.random.default_rng(seed), (96, 96), contrast=0.0)  # same draws, patches without effect
        assert 0.8 <= smooth.min() and smooth.max() <= 1.2
        ratios = [albedo_map(np.random.default_rng(seed), (96, 96), contrast=c) / smooth for c in (0.15, 0.5)]
        assert 0.85 ** 4 - 1e-9 <= ratios[0].min() and ratios[0].max() <= 1.15 ** 4 + 1e-9  # at most 4 patches
        assert 0.5 ** 4 - 1e-9 <= ratios[1].min() and ratios[1].max() <= 1.5 ** 4 + 1e-9
        spreads.append([np.ptp(np.log(r)) for r in ratios])
    spreads = np.array(spreads)
    patched = spreads[:, 0] > 0
    assert patched.any() and (spreads[patched, 1] > 2.5 * spreads[patched, 0]).all()


def _plane_fit(values):
    """(slope x, slope y, offset) and the residual sum of squares of a least-squares plane through values."""
    rows, cols = np.mgrid[0:values.shape[0], 0:values.shape[1]]
    design = np.c_[cols.ravel(), rows.ravel(), np.ones(values.size)]
    fit, residual = np.linalg.lstsq(design, values.ravel(), rcond=None)[:2]
    return fit, residual[0]


def test_a_plane_along_the_light_falls_along_the_columns_with_the_slope_any_direction_draws():
    # "sun": the canonical light's line is the columns (light from the west), so such a plane has no slope
    # across it (down the rows), and the same draws give it the same slope as a plane in any direction
    for seed in range(8):
        anywhere = _plane_fit(random_plane(np.random.default_rng(seed), (64, 96), 0.3))[0]
        along = _plane_fit(random_plane(np.random.default_rng(seed), (64, 96), 0.3, "sun"))[0]
        assert abs(along[1]) < 1e-12 and abs(along[0]) == pytest.approx(np.hypot(*anywhere[:2]))
    with pytest.raises(ValueError, match="any, sun"):
        random_plane(np.random.default_rng(0), (8, 8), 0.3, "sideways")
    flat = ViewSource(Dem("earth/flat", np.zeros((400, 400), np.float32), 10.0, 10.0, False))
    fits = [_plane_fit(random_view(flat, np.random.default_rng(seed), 96, small_window=0.0, tilt_max=0.3,
                                   tilt_direction="sun")[1])[0] for seed in range(8)]
    assert all(abs(fit[1]) < 1e-6 for fit in fits) and sum(abs(fit[0]) > 1e-6 for fit in fits) >= 2


def test_an_added_regional_tilt_is_a_plane_of_the_slope_drawn_on_half_the_views_and_none_by_default():
    plane = random_plane(np.random.default_rng(3), (64, 96), 0.3)
    fit, residual = _plane_fit(plane)
    assert 0.003 <= np.hypot(*fit[:2]) <= 0.3 and abs(plane.mean()) < 1e-9 and residual < 1e-9  # through the centre
    flat = ViewSource(Dem("earth/flat", np.zeros((400, 400), np.float32), 10.0, 10.0, False))
    slopes = []
    for seed in range(16):
        _, target, _ = random_view(flat, np.random.default_rng(seed), 96, small_window=0.0, tilt_max=0.3)
        fit, residual = _plane_fit(target)
        assert residual < 1e-3  # the flat DEM tilted: a plane and nothing else
        slopes.append(np.hypot(*fit[:2]))
        _, untilted, _ = random_view(flat, np.random.default_rng(seed), 96, small_window=0.0)
        assert not np.abs(untilted).any()  # without tilt_max a flat DEM stays flat
    slopes = np.array(slopes)
    assert (slopes <= 0.3 + 1e-6).all() and 3 <= (slopes > 1e-6).sum() <= 13


def test_a_view_drawn_with_flat_carries_the_grey_level_flat_ground_has_in_its_image():
    from terrain.render import hillshade_flat_grey, render
    flat_dem = np.zeros((128, 128))
    sunward = 0.1 * np.mgrid[0:128, 0:128][1].astype(float)  # rising to the east: it faces the sun in the west
    for elevation in (20.0, 45.0, 70.0):  # gdaldem: flat ground is exactly the grey level named; sunward brighter
        assert np.all(gdaldem_hillshade(flat_dem, elevation) == round(hillshade_flat_grey(elevation)))
        assert np.all(gdaldem_hillshade(sunward, elevation)[1:-1, 1:-1] > hillshade_flat_grey(elevation) + 5)
    for seed in range(8):  # physical renders, stretched or absolute: flat ground of mean albedo at that grey level
        image, flat = render(flat_dem, np.random.default_rng(seed), 40.0, albedo_contrast=0.0, with_flat=True)
        assert abs(np.median(image) - min(flat, 255.0)) < 0.12 * min(flat, 255.0) + 3
    source = ViewSource(Dem("earth/hills", 30 * np.sin(np.mgrid[0:300, 0:300][1] / 9.0), 10.0, 10.0, False))
    for seed in range(6):  # the same views per seed, with the flat grey level as a fourth item
        plain = random_view(source, np.random.default_rng(seed), 96)
        with_flat = random_view(source, np.random.default_rng(seed), 96, with_flat=True)
        assert len(plain) == 3 and len(with_flat) == 4 and np.isfinite(with_flat[3])
        assert all(np.array_equal(a, b) for a, b in zip(plain, with_flat[:3]))
