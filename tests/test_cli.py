"""python -m engine: the algorithm's DTM without QGIS, with a progress bar and plain errors."""
import os
import subprocess
import sys

import numpy as np

from rasters import SAMPLE, byte_image, read, write_raster

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(*arguments):
    """The command line as a user runs it: from the plugin's folder, where engine/ is."""
    return subprocess.run([sys.executable, "-m", "engine", *arguments], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_the_command_line_gives_the_algorithms_dtm_on_the_sample(processing, tmp_path):
    by_cli, by_algorithm = str(tmp_path / "cli.tif"), str(tmp_path / "algorithm.tif")
    result = cli(SAMPLE, by_cli, "--model", "pix2pixcc", "--sun-azimuth", "90")
    assert result.returncode == 0, result.stderr
    processing.run("dtmestimator:estimatedtm", {"INPUT": SAMPLE, "MODEL": "pix2pixcc", "SUN_AZIMUTH": 90,
                                                "OUTPUT": by_algorithm})
    cli_values, nodata, cli_ds = read(by_cli)
    algorithm_values, _, algorithm_ds = read(by_algorithm)
    span = algorithm_values.max() - algorithm_values.min()
    assert np.abs(cli_values - algorithm_values).max() <= 1e-5 * span
    assert cli_ds.GetGeoTransform() == algorithm_ds.GetGeoTransform()
    assert cli_ds.GetProjection() == algorithm_ds.GetProjection()
    assert cli_ds.GetMetadata() == algorithm_ds.GetMetadata()
    assert "1/1 windows" in result.stderr and "CPUExecutionProvider" in result.stderr


def test_scales_single_on_the_command_line_is_the_algorithms_single_scale(processing, tmp_path):
    by_cli, by_algorithm = str(tmp_path / "cli.tif"), str(tmp_path / "algorithm.tif")
    result = cli(SAMPLE, by_cli, "--model", "mrfed", "--sun-azimuth", "41", "--scales", "single")
    assert result.returncode == 0, result.stderr
    processing.run("dtmestimator:estimatedtm", {"INPUT": SAMPLE, "MODEL": "mrfed", "SUN_AZIMUTH": 41,
                                                "SCALES": "single", "OUTPUT": by_algorithm})
    cli_values, _, cli_ds = read(by_cli)
    algorithm_values, _, algorithm_ds = read(by_algorithm)
    span = algorithm_values.max() - algorithm_values.min()
    assert np.abs(cli_values - algorithm_values).max() <= 1e-5 * span
    assert cli_ds.GetMetadataItem("DTM_SCALES") == algorithm_ds.GetMetadataItem("DTM_SCALES") == "1"
    assert "Scales: one (1×)." in result.stderr


def test_the_progress_bar_counts_windows(tmp_path, identity_model):
    source = write_raster(str(tmp_path / "in.tif"), byte_image(1500, 2300))
    result = cli(source, str(tmp_path / "out.tif"), "--model-file", identity_model, "--elevation-max", "1020")
    assert result.returncode == 0, result.stderr
    final = [line for line in result.stderr.splitlines() if "windows/s" in line][-1]
    assert final.startswith("[" + "#" * 30 + "] 6/6 windows") and final.endswith("0m00s left")
    values, *_ = read(str(tmp_path / "out.tif"))
    np.testing.assert_allclose(values, byte_image(1500, 2300) * 4.0, atol=1e-2)


def test_errors_are_one_plain_line_and_no_file(tmp_path, identity_model):
    source = write_raster(str(tmp_path / "in.tif"), byte_image(64, 64))
    output = str(tmp_path / "out.tif")
    missing = cli(str(tmp_path / "nothing.tif"), output, "--model-file", identity_model)
    assert missing.returncode == 1 and missing.stderr.startswith("error: Cannot open the input as a raster")
    bad_scheduler = cli(source, output, "--model-file", identity_model, "--scheduler", "localhost")
    assert bad_scheduler.returncode == 1 and "neither a scheduler address" in bad_scheduler.stderr
    assert sorted(os.listdir(tmp_path)) == ["in.tif"]


def test_the_progress_bar_total_is_the_engines_plan(tmp_path, identity_model):
    """A raster over the model's input size but within one window runs once: the bar must say so."""
    from dtm_estimator.engine import EstimateOptions
    from dtm_estimator.engine.__main__ import model_runs

    source = write_raster(str(tmp_path / "in.tif"), byte_image(1200, 1300))
    assert model_runs(source, EstimateOptions(model_path=identity_model)) == 1
    assert model_runs(source, EstimateOptions(model_path=identity_model, large_raster="fit")) == 3
