"""The tile plan's overlaps and the least-squares offset solve that closes the seams between windows."""
import numpy as np
import pytest

import onnx_fixtures
from rasters import byte_image, read, write_raster
from dtm_estimator.engine import EstimateOptions, estimate_dtm
from dtm_estimator.engine.offsets import OverlapLedger
from dtm_estimator.engine.raster_io import NODATA
from dtm_estimator.engine.tile_plan import TilePlan


def window_box(plan, index):
    x0, y0 = plan.origin(index)
    return y0, y0 + plan.tile_h, x0, x0 + plan.tile_w


@pytest.mark.parametrize("width, height", [(2300, 1500), (1025, 4000), (2817, 1800), (1024, 3000)])
def test_pairs_are_exactly_the_overlapping_windows(width, height):
    plan = TilePlan(width, height, 1024, 128)
    expected = set()
    for i in range(len(plan)):
        for j in range(i + 1, len(plan)):
            (top_i, bottom_i, left_i, right_i), (top_j, bottom_j, left_j, right_j) = \
                window_box(plan, i), window_box(plan, j)
            if max(top_i, top_j) < min(bottom_i, bottom_j) and max(left_i, left_j) < min(right_i, right_j):
                expected.add((i, j))
    first, second = plan.pairs()
    assert set(zip(first.tolist(), second.tolist())) == expected
    for i, j in expected:
        assert j in plan.neighbours(i) and i in plan.neighbours(j)
        shared_i, shared_j = plan.overlap_in(i, j), plan.overlap_in(j, i)
        assert np.zeros((plan.tile_h, plan.tile_w))[shared_i].shape == \
            np.zeros((plan.tile_h, plan.tile_w))[shared_j].shape


def test_the_solve_recovers_each_windows_offset_around_holes_and_empty_windows():
    """Windows = one smooth field + an unknown constant each; a nodata hole and a window without any
    valid pixel (which splits nothing here) must not disturb the solved offsets."""
    plan = TilePlan(3000, 2600, 1024, 128)
    rng = np.random.default_rng(3)
    field = byte_image(2600, 3000, seed=8).astype(np.float32)
    valid = np.ones(field.shape, bool)
    valid[1100:1500, 1000:1900] = False
    empty = 5
    y0, y1, x0, x1 = window_box(plan, empty)
    valid[y0:y1, x0:x1] = False
    constants = rng.normal(0, 300, len(plan))
    ledger = OverlapLedger(plan)
    for index in range(len(plan)):
        y0, y1, x0, x1 = window_box(plan, index)
        window_valid = valid[y0:y1, x0:x1]
        elevation = field[y0:y1, x0:x1] + np.float32(constants[index]) if window_valid.any() else None
        ledger.record(index, elevation, None if window_valid.all() else window_valid)
    offsets = ledger.solve()
    present = np.arange(len(plan)) != empty
    # adding the offsets must bring every window back to one level: the first window's
    np.testing.assert_allclose((constants + offsets)[present], constants[0], atol=1e-3)
    assert offsets[0] == 0 and offsets[empty] == 0


def test_windows_with_arbitrary_offsets_blend_into_one_seamless_level(tmp_path):
    """A model that removes each window's own mean gives every window another offset; after the solve
    the DTM is the image itself up to one constant, nodata hole included."""
    model = onnx_fixtures.mean_removed(str(tmp_path / "mean_removed.onnx"))
    image = byte_image(2300, 3100, seed=2)
    image[900:1200, 1400:2000] = 0
    source = write_raster(str(tmp_path / "in.tif"), image, nodata=0)
    report = estimate_dtm(source, str(tmp_path / "out.tif"), EstimateOptions(model, elevation_max=1020.0))
    values, *_ = read(str(tmp_path / "out.tif"))
    assert report.tiles == 3 * 4
    valid = image > 0
    assert (values[~valid] == NODATA).all()
    level = values[valid] - image[valid] * 4.0
    assert level.max() - level.min() < 1e-2 * 4
