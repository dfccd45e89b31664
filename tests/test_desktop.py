"""The plugin in a real QGIS desktop window under Xvfb: context-menu action → dialog → styled result."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import PLUGINS_DIR, ROOT

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "desktop", "in_qgis.py")
SAMPLE = os.path.join(ROOT, "sample_data", "mars_mola_shaded_relief.tif")
SCREENSHOT = os.path.join(ROOT, "build", "desktop-screenshot.png")
SITE_PACKAGES = os.path.join(ROOT, ".venv", "lib", "python3.11", "site-packages")


def profile_with_plugin_enabled(root):
    settings = root / "profiles" / "default" / "QGIS"
    settings.mkdir(parents=True)
    (settings / "QGIS3.ini").write_text(
        "[PythonPlugins]\ndtm_estimator=true\n\n[qgis]\ncheckVersion=false\nshowTips322=false\n"
        "showTips=false\n")
    return root


def test_estimate_dtm_from_the_layer_context_menu(tmp_path, identity_model):
    for program in ("xvfb-run", "qgis"):
        assert shutil.which(program), f"{program} is missing: run scripts/setup.sh"
    model = os.path.join(ROOT, "models", "pix2pixcc.onnx")
    sample = shutil.copy(SAMPLE, tmp_path)  # QGIS writes .aux.xml statistics beside what it opens
    env = dict(os.environ, QGIS_PLUGINPATH=PLUGINS_DIR, DTM_DESKTOP_INPUT=sample,
               DTM_DESKTOP_RESULT=str(tmp_path / "result.json"), DTM_DESKTOP_SCREENSHOT=SCREENSHOT,
               DTM_DESKTOP_MODEL_FILE="" if os.path.exists(model) else identity_model,
               PYTHONPATH=SITE_PACKAGES, XDG_RUNTIME_DIR=str(tmp_path))
    env.pop("QT_QPA_PLATFORM", None)  # a real X server (Xvfb), not offscreen
    os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
    command = ["xvfb-run", "-a", "-s", "-screen 0 1400x900x24", "qgis", "--noversioncheck", "--nologo",
               "--profiles-path", str(profile_with_plugin_enabled(tmp_path / "qgis")), "--code", SCRIPT]
    process = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    result_file = tmp_path / "result.json"
    assert result_file.exists(), f"QGIS ended without a result (rc {process.returncode}):\n{process.stderr[-3000:]}"
    result = json.loads(result_file.read_text())
    print(json.dumps(result, indent=1))
    assert "error" not in result, result["error"]
    assert result["context_menu_has_action"] and result["raster_menu_has_plugin"]
    assert result["prefilled_input"], "the dialog did not open with the right-clicked layer"
    assert result["result_name"] == "Mars MOLA DTM"
    assert result["result_renderer"] == "singlebandpseudocolor" and result["hillshade_renderer"] == "hillshade"
    assert result["result_valid"] and result["result_size"] == [1024, 512] and result["result_crs_equal"]
    assert os.path.getsize(SCREENSHOT) > 10_000
