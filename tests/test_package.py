"""The plugin zip (`make package`): contents, size, and that QGIS loads the plugin from it as
"Install from ZIP" would (unzipped into a plugins folder, enabled, algorithm available)."""
import os
import subprocess
import zipfile

from conftest import ROOT

ZIP_LIMIT = 25 * 1024 * 1024
SITE_PACKAGES = os.path.join(ROOT, ".venv", "lib", "python3.11", "site-packages")


def test_zip_holds_the_plugin_only_and_loads_in_qgis(tmp_path):
    subprocess.run(["make", "-s", "package"], cwd=ROOT, check=True, capture_output=True, text=True)
    [name] = [n for n in os.listdir(os.path.join(ROOT, "dist")) if n.endswith(".zip")]
    path = os.path.join(ROOT, "dist", name)
    assert os.path.getsize(path) <= ZIP_LIMIT
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        tops = {n.split("/")[1] for n in names if n.count("/") > 1 or not n.endswith("/")}
        for required in ("metadata.txt", "__init__.py", "plugin.py", "resources_rc.py", "engine", "ui",
                         "processing_provider", "models", "icons"):
            assert required in tops, f"{required} missing from the zip"
        for excluded in ("training", "tests", "validation", "bench", "sample_data", "Makefile", ".ci"):
            assert excluded not in tops, f"{excluded} must not be in the plugin zip"
        archive.extractall(tmp_path / "plugins")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QGIS_PLUGINPATH=str(tmp_path / "plugins"),
               QGIS_CUSTOM_CONFIG_PATH=str(tmp_path / "profile"), PYTHONPATH=SITE_PACKAGES,
               XDG_RUNTIME_DIR=str(tmp_path))
    enable = subprocess.run(["qgis_process.bin", "plugins", "enable", "dtm_estimator"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert enable.returncode == 0, enable.stdout + enable.stderr
    listed = subprocess.run(["qgis_process.bin", "plugins"], env=env, capture_output=True, text=True, timeout=300)
    assert "* dtm_estimator" in listed.stdout
    helped = subprocess.run(["qgis_process.bin", "help", "dtmestimator:estimatedtm"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert helped.returncode == 0 and "ELEVATION_MAX" in helped.stdout
