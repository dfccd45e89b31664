"""Bad input and faults end in a correct DTM or one clear message, never a partial file."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from osgeo import gdal, osr

from rasters import byte_image, mosaic_vrt, read, smooth_image, write_raster
from dtm_estimator.engine import Cancelled, EngineError, EstimateOptions, estimate_dtm

PLUGINS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build", "plugins")
MOON_WKT = ('GEOGCRS["Moon (2015) - Sphere / Ocentric",DATUM["Moon (2015) - Sphere",'
            'ELLIPSOID["Moon (2015) - Sphere",1737400,0,LENGTHUNIT["metre",1]]],'
            'PRIMEM["Reference Meridian",0,ANGLEUNIT["degree",0.0174532925199433]],CS[ellipsoidal,2],'
            'AXIS["latitude",north,ORDER[1],ANGLEUNIT["degree",0.0174532925199433]],'
            'AXIS["longitude",east,ORDER[2],ANGLEUNIT["degree",0.0174532925199433]]]')


def custom_mars_eqc_wkt():
    srs = osr.SpatialReference()
    srs.ImportFromProj4("+proj=eqc +lat_ts=0 +lon_0=137 +R=3396190 +units=m +no_defs")
    return srs.ExportToWkt()



@pytest.mark.parametrize("wkt_name", ["moon", "custom"])
def test_planetary_and_custom_crs_are_kept_exactly(tmp_path, identity_model, wkt_name):
    wkt = MOON_WKT if wkt_name == "moon" else custom_mars_eqc_wkt()
    source = write_raster(str(tmp_path / "in.tif"), byte_image(40, 60), wkt=wkt)
    estimate_dtm(source, str(tmp_path / "out.tif"), EstimateOptions(identity_model))
    written = osr.SpatialReference(wkt=gdal.Open(str(tmp_path / "out.tif")).GetProjection())
    assert written.IsSame(osr.SpatialReference(wkt=gdal.Open(source).GetProjection()))
    assert gdal.Open(str(tmp_path / "out.tif")).GetProjection() == gdal.Open(source).GetProjection()


@pytest.mark.parametrize("shape", [(3, 3), (15, 15), (10, 5000), (5000, 10), (1023, 1025)])
def test_tiny_thin_and_odd_sizes(tmp_path, identity_model, shape):
    image = byte_image(*shape)
    image[0, 0], image[-1, -1] = 10, 240  # never constant
    source = write_raster(str(tmp_path / "in.tif"), image)
    estimate_dtm(source, str(tmp_path / "out.tif"), EstimateOptions(identity_model, elevation_max=1020.0))
    values, *_ = read(str(tmp_path / "out.tif"))
    np.testing.assert_allclose(values, image * 4.0, atol=1e-2)


def test_one_pixel_raster_is_a_clear_error(tmp_path, identity_model):
    source = write_raster(str(tmp_path / "in.tif"), np.array([[100]], np.uint8))
    with pytest.raises(EngineError, match="constant"):
        estimate_dtm(source, str(tmp_path / "out.tif"), EstimateOptions(identity_model))
    assert not os.path.exists(tmp_path / "out.tif")


@pytest.mark.parametrize("dtype, numpy_type", [
    (gdal.GDT_Byte, np.uint8), (gdal.GDT_UInt16, np.uint16), (gdal.GDT_Int16, np.int16),
    (gdal.GDT_UInt32, np.uint32), (gdal.GDT_Float32, np.float32), (gdal.GDT_Float64, np.float64)])
def test_data_types(tmp_path, identity_model, dtype, numpy_type):
    image = smooth_image(64, 96, low=10, high=250).astype(numpy_type)
    source = write_raster(str(tmp_path / "in.tif"), image, dtype=dtype)
    estimate_dtm(source, str(tmp_path / "out.tif"), EstimateOptions(identity_model))
    values, nodata, _ = read(str(tmp_path / "out.tif"))
    assert (values != nodata).all() and values.min() >= 0 and values.max() <= 39586.0 + 0.01  # float32 rounding
    assert np.corrcoef(values.ravel(), image.astype(float).ravel())[0, 1] > 0.999


def test_complex_data_is_refused(tmp_path, identity_model):
    source = write_raster(str(tmp_path / "in.tif"), (smooth_image(32, 32) * (1 + 1j)).astype(np.complex64),
                          dtype=gdal.GDT_CFloat32)
    with pytest.raises(EngineError, match="Complex data"):
        estimate_dtm(source, str(tmp_path / "out.tif"), EstimateOptions(identity_model))


def test_two_bands_without_alpha_need_a_band(tmp_path, identity_model):
    source = write_raster(str(tmp_path / "in.tif"), np.stack([byte_image(32, 32), byte_image(32, 32, 1)]))
    with pytest.raises(EngineError, match="set BAND"):
        estimate_dtm(source, str(tmp_path / "out.tif"), EstimateOptions(identity_model))
    gray_alpha = write_raster(str(tmp_path / "ga.tif"), np.stack([byte_image(32, 32), np.full((32, 32), 255)]),
                              alpha_band=2)
    estimate_dtm(gray_alpha, str(tmp_path / "out.tif"), EstimateOptions(identity_model))


def test_failed_run_keeps_the_existing_output(tmp_path, identity_model):
    output = tmp_path / "out.tif"
    output.write_bytes(b"an earlier DTM")
    source = write_raster(str(tmp_path / "in.tif"), np.full((30, 30), 9, np.uint8))
    with pytest.raises(EngineError):
        estimate_dtm(source, str(output), EstimateOptions(identity_model))
    assert output.read_bytes() == b"an earlier DTM" and sorted(os.listdir(tmp_path)) == ["in.tif", "out.tif"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_folder(tmp_path, identity_model):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    source = write_raster(str(tmp_path / "in.tif"), byte_image(30, 30))
    with pytest.raises(EngineError, match="not writable"):
        estimate_dtm(source, str(locked / "out.tif"), EstimateOptions(identity_model))


def test_folder_even_root_cannot_write(tmp_path, identity_model):
    source = write_raster(str(tmp_path / "in.tif"), byte_image(30, 30))
    with pytest.raises(EngineError, match="(Cannot create the output in|output folder is not writable).*sys"):
        estimate_dtm(source, "/sys/out.tif", EstimateOptions(identity_model))


def test_output_in_a_file_path_that_cannot_be_a_folder(tmp_path, identity_model):
    source = write_raster(str(tmp_path / "in.tif"), byte_image(30, 30))
    with pytest.raises(EngineError, match="does not exist"):
        estimate_dtm(source, str(tmp_path / "in.tif" / "out.tif"), EstimateOptions(identity_model))


def test_cancellation_stops_within_one_tile(tmp_path, identity_model):
    source = write_raster(str(tmp_path / "in.tif"), byte_image(2000, 2000))
    seen = []
    with pytest.raises(Cancelled):
        estimate_dtm(source, str(tmp_path / "out.tif"), EstimateOptions(identity_model),
                     progress=seen.append, is_canceled=lambda: len(seen) >= 1)
    assert len(seen) == 1 and os.listdir(tmp_path) == ["in.tif"]


def test_concurrent_runs_match_sequential_ones(tmp_path, blur_model):
    sources = [write_raster(str(tmp_path / f"in{i}.tif"), byte_image(1100, 1300, seed=i)) for i in range(2)]
    for i, source in enumerate(sources):
        estimate_dtm(source, str(tmp_path / f"seq{i}.tif"), EstimateOptions(blur_model))
    errors = []

    def work(i):
        try:
            estimate_dtm(sources[i], str(tmp_path / f"par{i}.tif"), EstimateOptions(blur_model))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    for i in range(2):
        np.testing.assert_array_equal(read(str(tmp_path / f"seq{i}.tif"))[0], read(str(tmp_path / f"par{i}.tif"))[0])


def test_huge_virtual_raster_runs_with_bounded_memory(tmp_path, identity_model):
    """A 40000×40000 VRT mosaic of one small tile: progress comes, memory stays flat, cancel is clean."""
    vrt = mosaic_vrt(str(tmp_path), byte_image(1000, 1000), 40)
    assert gdal.Open(vrt).RasterXSize == 40000
    # In a child process, so its peak resident memory is this run's alone: VmHWM, not ru_maxrss,
    # which Linux carries over from the forked copy of this (large) test process. GDAL's block cache
    # is bounded by its own setting (GDAL_CACHEMAX); it is set to 128 MB to measure the engine's share.
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from osgeo import gdal; gdal.SetCacheMax(128 * 1024 * 1024)\n"
            "from dtm_estimator.engine import Cancelled, EstimateOptions, estimate_dtm\n"
            "seen = []\n"
            "try:\n    estimate_dtm(%r, %r, EstimateOptions(%r), progress=seen.append,\n"
            "                 is_canceled=lambda: len(seen) >= 6)\n"
            "except Cancelled:\n    print('cancelled')\n"
            "peak = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
            "print(len(seen), seen[-1], int(peak.split()[1]) / 1024)\n"
            % (PLUGINS, vrt, str(tmp_path / "out.tif"), identity_model))
    lines = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert lines[0] == "cancelled"
    tiles, percent, peak_mib = (float(v) for v in lines[1].split())
    assert tiles == 6 and percent < 1.0  # of about 45×45 tiles
    assert peak_mib < 1024
    assert sorted(os.listdir(tmp_path)) == ["huge.vrt", "tile.tif"]


def test_without_onnxruntime_the_engine_explains_how_to_install(tmp_path, identity_model):
    source = write_raster(str(tmp_path / "in.tif"), byte_image(30, 30))
    code = ("import sys; sys.modules['onnxruntime'] = None; sys.path.insert(0, %r)\n"
            "from dtm_estimator.engine import EngineError, EstimateOptions, estimate_dtm\n"
            "try:\n    estimate_dtm(%r, %r, EstimateOptions(%r))\n"
            "except EngineError as e:\n    print('ERROR:', e)\n"
            % (PLUGINS, source, str(tmp_path / "out.tif"), identity_model))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "onnxruntime is not installed" in out and "pip install onnxruntime-gpu" in out
