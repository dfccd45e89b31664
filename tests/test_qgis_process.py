"""The algorithm from the command line: qgis_process.bin with the plugin linked at build/plugins.

Debian's /usr/bin/qgis_process wrapper adds an option 3.22 rejects, so qgis_process.bin is called
directly. Each test session uses a throw-away HOME (QGIS profile) so the user's profile is never
touched. onnxruntime lives in the test venv, so its site-packages go on PYTHONPATH, as a user would
install onnxruntime into the Python QGIS uses.
"""
import os
import re
import shutil
import site
import subprocess

import numpy as np
import onnxruntime
import pytest
from osgeo import gdal

from rasters import byte_image, read, utm_wkt, write_raster

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QGIS_PROCESS = shutil.which("qgis_process.bin") or "/usr/bin/qgis_process.bin"
ALG = "dtmestimator:estimatedtm"
TIMEOUT = 300  # s; a cold QGIS start on a busy 2-core machine is slow

pytestmark = pytest.mark.skipif(not os.path.exists(QGIS_PROCESS), reason=f"{QGIS_PROCESS} is not installed")


@pytest.fixture(scope="module")
def qgis_env(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    env = dict(os.environ)
    env.update({
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_RUNTIME_DIR": str(home),
        "QT_QPA_PLATFORM": "offscreen",
        "QGIS_PLUGINPATH": os.path.join(ROOT, "build", "plugins"),
        "PYTHONPATH": os.pathsep.join(site.getsitepackages() + [env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    })
    os.chmod(home, 0o700)
    done = qgis_process(env, "plugins", "enable", "dtm_estimator")
    assert done.returncode == 0, done.stdout + done.stderr
    return env


def qgis_process(env, *args):
    return subprocess.run([QGIS_PROCESS, *args], env=env, capture_output=True, text=True, timeout=TIMEOUT,
                          cwd=ROOT)


def test_help_lists_every_parameter(qgis_env):
    done = qgis_process(qgis_env, "help", ALG)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Estimate DTM (dtmestimator:estimatedtm)" in done.stdout
    for name in ("INPUT", "BAND", "MODEL", "MODEL_FILE", "DEVICE", "SUN_AZIMUTH", "LARGE_RASTER", "SCALES",
                 "HEIGHTS", "REFERENCE_DEM", "ELEVATION_MIN", "ELEVATION_MAX", "OUTPUT"):
        assert f"\n{name}: " in done.stdout, name
    for option in ("pix2pixcc", "mrfed", "auto", "gpu", "tile", "fit", "multi", "single", "range", "pixel_size",
                   "reference"):
        assert option in done.stdout


def test_run_writes_the_dtm(qgis_env, identity_model, tmp_path):
    image = byte_image(120, 150)
    src = write_raster(str(tmp_path / "image.tif"), image)
    out = str(tmp_path / "dtm.tif")
    done = qgis_process(qgis_env, "run", ALG, "--", f"INPUT={src}", f"MODEL_FILE={identity_model}",
                        f"OUTPUT={out}")
    assert done.returncode == 0, done.stdout + done.stderr
    provider = re.search(r"^PROVIDER:\t(\w+)$", done.stdout, re.MULTILINE)
    assert provider and provider.group(1) in onnxruntime.get_available_providers(), done.stdout
    values, nodata, ds = read(out)
    assert (ds.RasterXSize, ds.RasterYSize) == (150, 120)
    assert ds.GetGeoTransform() == gdal.Open(src).GetGeoTransform()
    assert ds.GetProjection() == gdal.Open(src).GetProjection()
    np.testing.assert_allclose(values, image / 255.0 * 39586.0, atol=0.02)


def test_run_with_static_enum_strings(qgis_env, identity_model, tmp_path):
    image = byte_image(90, 70, seed=3)
    src = write_raster(str(tmp_path / "image.tif"), image, wkt=utm_wkt())
    out = str(tmp_path / "dtm.tif")
    done = qgis_process(qgis_env, "--json", "run", ALG, "--", f"INPUT={src}", f"MODEL_FILE={identity_model}",
                        "DEVICE=cpu", "LARGE_RASTER=fit", "SUN_AZIMUTH=180", "ELEVATION_MIN=-100",
                        "ELEVATION_MAX=100", f"OUTPUT={out}")
    assert done.returncode == 0, done.stdout + done.stderr
    import json
    results = json.loads(done.stdout)["results"]
    assert results["OUTPUT"] == out and results["PROVIDER"] == "CPUExecutionProvider"
    assert gdal.Open(out).GetMetadataItem("DTM_SUN_AZIMUTH") == "180"
    values, _, _ = read(out)
    np.testing.assert_allclose(values, -100 + image / 255.0 * 200, atol=1e-3)


def test_run_with_a_bad_model_fails_with_its_message(qgis_env, tmp_path):
    src = write_raster(str(tmp_path / "image.tif"), byte_image(40, 40))
    fake = tmp_path / "fake.onnx"
    fake.write_text("not a model")
    out = tmp_path / "dtm.tif"
    done = qgis_process(qgis_env, "run", ALG, "--", f"INPUT={src}", f"MODEL_FILE={fake}", f"OUTPUT={out}")
    assert done.returncode != 0
    assert "not an ONNX model" in done.stdout + done.stderr
    assert not out.exists()


def test_run_with_heights_and_a_reference_dem(qgis_env, tmp_path):
    """HEIGHTS=reference with REFERENCE_DEM given as a path: static strings and a second raster headless."""
    import onnx_fixtures
    from test_heights import UTM, box_average, truth_and_image
    model = onnx_fixtures.identity(str(tmp_path / "pixel.onnx"), onnx_fixtures.PIXEL_CARD, scale=10.0)
    image, truth = truth_and_image(rows=160, cols=200, seed=31)
    src = write_raster(str(tmp_path / "image.tif"), image, wkt=utm_wkt(), geotransform=UTM)
    reference = write_raster(str(tmp_path / "reference.tif"), box_average(truth, 8).astype(np.float32),
                             dtype=gdal.GDT_Float32, wkt=utm_wkt(), geotransform=(UTM[0], 160.0, 0, UTM[3], 0, -160.0))
    out = str(tmp_path / "dtm.tif")
    done = qgis_process(qgis_env, "run", ALG, "--", f"INPUT={src}", f"MODEL_FILE={model}", "SCALES=single",
                        "HEIGHTS=reference", f"REFERENCE_DEM={reference}", f"OUTPUT={out}")
    assert done.returncode == 0, done.stdout + done.stderr
    values, _, ds = read(out)
    assert ds.GetMetadataItem("DTM_SCALES") == "1"
    assert float(ds.GetMetadataItem("DTM_REFERENCE_GAIN")) == pytest.approx(3.0, rel=1e-4)
    np.testing.assert_allclose(values, truth, atol=0.05)
