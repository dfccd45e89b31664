"""engine/sun.py: the turn to the canonical sun, and what fills the turned canvas's corners."""
import numpy as np
import pytest
from scipy import ndimage

from dtm_estimator.engine.sun import (EDGE_MIRROR_PX, across_light, point_reflections, rotate_back, rotate_clockwise,
                                      turned_shape)
from terrain.render import gdaldem_hillshade

OBLIQUE_SUN = 315.0  # turned 45° to the canonical 270°: the canvas's corners are half its area


def smooth_ground(height, width, seed=0):
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.normal(size=(height, width)), 4.0) * 40.0


def differs(a, b):
    return float(np.abs(a.astype(float) - b.astype(float))[4:-4, 4:-4].mean())


def test_a_180_degree_turn_shows_ground_lit_by_the_same_oblique_sun_and_a_mirror_does_not():
    """The premise of the corner fill: the 180°-turned image is the image of real ground (the ground turned
    and inverted) under the same sun; the mirrored image is not the image of the mirrored ground, nor of
    the mirrored and inverted ground."""
    ground = smooth_ground(96, 128)
    image = gdaldem_hillshade(ground, 45.0, OBLIQUE_SUN)
    assert differs(gdaldem_hillshade(-ground[::-1, ::-1], 45.0, OBLIQUE_SUN), image[::-1, ::-1]) < 0.5
    for mirrored in (ground[:, ::-1], -ground[:, ::-1]):
        assert differs(gdaldem_hillshade(mirrored, 45.0, OBLIQUE_SUN), image[:, ::-1]) > 5.0


@pytest.mark.parametrize("shape", [(37, 52), (36, 52), (643, 1197), (40, 600)])
@pytest.mark.parametrize("degrees", [45.0, -45.0, 30.0, -131.0, 12.5])
def test_the_canvas_has_scipys_shape_and_the_image_is_unchanged_inside_it(shape, degrees):
    image = np.random.default_rng(1).random(shape).astype(np.float32)
    reference = ndimage.rotate(image, -degrees, reshape=True, order=1, mode="mirror")
    assert turned_shape(*shape, degrees) == reference.shape
    turned = rotate_clockwise(image, degrees)
    assert turned.shape == reference.shape and turned.dtype == image.dtype
    inside = ndimage.rotate(np.ones(shape, np.float32), -degrees, reshape=True, order=1, cval=0.0) > 0.999
    np.testing.assert_allclose(turned[inside], reference[inside], atol=1e-5)


def test_the_corners_are_the_mirror_at_the_edges_fading_into_the_image_turned_180_degrees():
    """Every canvas pixel drawn from beyond the image's right or bottom edge holds the mirror's value weighted
    by exp(-d / EDGE_MIRROR_PX), d px outside the image, plus the 180°-turned image's value (about that edge's
    midpoint) weighted by the rest; a smooth image, so bilinear sampling is close to the exact value."""
    height, width, degrees = 160, 60, -45.0  # tall: the canvas reaches far beyond the right edge
    rows, cols = np.mgrid[0:height, 0:width].astype(float)

    def pattern(r, c):
        return np.sin(r / 9.0) + np.cos(c / 13.0) + 0.01 * r * c / 10.0

    turned = rotate_clockwise(pattern(rows, cols).astype(np.float32), degrees)
    # where each canvas pixel samples the unturned plane (the same map as rotate_clockwise's)
    cos, sin = np.cos(np.deg2rad(degrees)), np.sin(np.deg2rad(degrees))
    out_r, out_c = np.mgrid[0:turned.shape[0], 0:turned.shape[1]].astype(float)
    o_r, o_c = out_r - (turned.shape[0] - 1) / 2.0, out_c - (turned.shape[1] - 1) / 2.0
    src_r = cos * o_r - sin * o_c + (height - 1) / 2.0
    src_c = sin * o_r + cos * o_c + (width - 1) / 2.0
    right = (src_c > width) & (src_c < 2 * width - 2) & (src_r > 1) & (src_r < height - 2)
    below = (src_r > height) & (src_r < 2 * height - 2) & (src_c > 1) & (src_c < width - 2)
    assert right.sum() > 300 and below.sum() > 300  # both neighbours reach into the canvas
    r, c = src_r[right], src_c[right]
    weight = np.exp(-(c - (width - 1)) / EDGE_MIRROR_PX)
    assert weight.max() > 0.9 and weight.min() < 0.05  # from the mirror alone to the 180° turn alone
    expected = weight * pattern(r, 2 * (width - 1) - c) + (1 - weight) * pattern(height - 1 - r, 2 * width - 1 - c)
    np.testing.assert_allclose(turned[right], expected, atol=0.01)
    r, c = src_r[below], src_c[below]
    weight = np.exp(-(r - (height - 1)) / EDGE_MIRROR_PX)
    expected = weight * pattern(2 * (height - 1) - r, c) + (1 - weight) * pattern(2 * height - 1 - r, width - 1 - c)
    np.testing.assert_allclose(turned[below], expected, atol=0.01)


def test_point_reflections_put_the_image_at_the_centre_and_its_turns_across_each_edge():
    image = np.arange(6, dtype=np.float32).reshape(2, 3)
    tiles = point_reflections(image, 2, 6)
    assert tiles.shape == (6, 15)
    np.testing.assert_array_equal(tiles[2:4, 6:9], image)
    np.testing.assert_array_equal(tiles[2:4, 9:12], image[::-1, ::-1])
    np.testing.assert_array_equal(tiles[0:2, 6:9], image[::-1, ::-1])
    np.testing.assert_array_equal(tiles[0:2, 9:12], image)
    # one pixel around: e.g. above pixel (0, 0) lies (0, 2), its point reflection through the top edge's midpoint
    np.testing.assert_array_equal(point_reflections(image, 1, 1), [[5, 2, 1, 0, 3], [3, 0, 1, 2, 5],
                                                                   [0, 3, 4, 5, 2], [2, 5, 4, 3, 0]])


def test_turning_back_recovers_the_image():
    image = smooth_ground(120, 70, seed=3).astype(np.float32)
    for degrees in (45.0, -45.0, 20.0):
        back = rotate_back(rotate_clockwise(image, degrees), degrees, image.shape)
        assert np.abs(back - image)[3:-3, 3:-3].max() < 0.05 * np.ptp(image)


@pytest.mark.parametrize("sun, line", [(270.0, (0.0, 180.0)), (41.0, (131.0, 311.0)), (315.0, (45.0, 225.0)),
                                       (0.0, (90.0, 270.0)), (135.0, (45.0, 225.0))])
def test_the_line_across_the_light_is_the_one_a_plane_along_it_does_not_shade(sun, line):
    # gdaldem's law on planes: one falling along the line across the light shades as flat ground does, to
    # first order (only its slope squared darkens it), one falling towards the sun does not
    assert across_light(sun) == pytest.approx(line)
    rows, cols = np.mgrid[0:64, 0:64].astype(np.float64)
    across = np.deg2rad(line[0])  # azimuth clockwise from north; row 0 is north, so north is -row
    down_across = 0.02 * (cols * np.sin(across) - rows * np.cos(across))
    towards = np.deg2rad(sun)
    down_towards = 0.02 * (cols * np.sin(towards) - rows * np.cos(towards))
    def shade(heights):  # inside the edges, where Horn's gradient is whole
        return gdaldem_hillshade(heights, 45.0, sun)[2:-2, 2:-2].astype(int)
    flat = shade(np.zeros_like(rows))
    assert abs(shade(down_across) - flat).max() <= 1
    assert abs(shade(down_towards) - flat).min() >= 3
