"""The training loop and the export, end to end on a tiny corpus (skipped where PyTorch is not installed:
CI installs only what the plugin and its tests need; `make setup-train` adds it)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from terrain.corpus import Dem, save_cache  # noqa: E402
from dtm_estimator.engine import EstimateOptions, estimate_dtm, read_model_card  # noqa: E402
from rasters import byte_image, utm_wkt, write_raster  # noqa: E402


def tiny_corpus(path, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:300, 0:300].astype(np.float64)
    heights = 200 * np.sin(x / rng.uniform(15, 30)) * np.cos(y / rng.uniform(15, 30))
    save_cache([Dem(f"earth/tiny{seed}", heights.astype(np.float32), 20.0, 20.0, False)], path)
    return path


def test_train_resume_and_export_give_a_pixel_unit_model_the_engine_runs(tmp_path):
    from training import export, train
    train_cache = tiny_corpus(str(tmp_path / "train.npz"), 0)
    heldout_cache = tiny_corpus(str(tmp_path / "heldout.npz"), 1)
    common = ["--model", "mrfed", "--out", str(tmp_path / "run"), "--crop", "128", "--batch", "2",
              "--workers", "0", "--n-heldout", "2", "--corpus-cache", train_cache, "--heldout-cache", heldout_cache]
    train.main(common + ["--minutes", "5", "--max-steps", "2"])
    last = torch.load(str(tmp_path / "run" / "last.pt"), weights_only=False)
    assert last["steps"] == 2 and (tmp_path / "run" / "last_optimiser.pt").exists()
    train.main(common + ["--minutes", "5", "--max-steps", "3", "--resume", str(tmp_path / "run" / "last.pt")])
    assert torch.load(str(tmp_path / "run" / "last.pt"), weights_only=False)["steps"] == 3
    model = str(tmp_path / "mrfed.onnx")
    export.main(["--checkpoint", str(tmp_path / "run" / "best.pt"), "--out", model,
                 "--corpus-cache", train_cache, "--calibration-views", "2"])
    card = read_model_card(model)
    assert card.extra["height_units"] == "pixel" and card.input_multiple == 128
    assert "amplitude_calibration" in card.extra
    image = write_raster(str(tmp_path / "in.tif"), byte_image(200, 300, seed=2), wkt=utm_wkt())
    report = estimate_dtm(image, str(tmp_path / "dtm.tif"), EstimateOptions(model, device="cpu",
                                                                            heights="pixel_size"))
    assert report.tiles == 1


def test_finetune_starts_a_new_phase_that_keeps_the_history(tmp_path):
    from training import train
    train_cache = tiny_corpus(str(tmp_path / "train.npz"), 0)
    heldout_cache = tiny_corpus(str(tmp_path / "heldout.npz"), 1)
    common = ["--model", "mrfed", "--batch", "1", "--workers", "0", "--n-heldout", "2",
              "--corpus-cache", train_cache, "--heldout-cache", heldout_cache, "--minutes", "5"]
    train.main(common + ["--out", str(tmp_path / "first"), "--crop", "128", "--max-steps", "2"])
    first = torch.load(str(tmp_path / "first" / "last.pt"), weights_only=False)
    train.main(common + ["--out", str(tmp_path / "second"), "--crop", "256", "--max-steps", "3", "--lr", "1e-4",
                         "--finetune", str(tmp_path / "first" / "last.pt")])
    second = torch.load(str(tmp_path / "second" / "last.pt"), weights_only=False)
    assert second["steps"] == 3 and second["wall_s"] > first["wall_s"]
    config = second["config"]
    assert config["phase_start"]["step"] == 2 and config["crop"] == 256
    assert config["phase_start"]["before"] == dict(batch=1, crop=128, lr=1e-3, hardware=first["config"]["hardware"],
                                                   head="heights", losses=train.LOSS_WEIGHTS,
                                                   albedo_contrast=0.15, tilt_max=0.0, tilt_direction="any")
    from training.export import describe_phases
    described = describe_phases(second)
    assert described.startswith("2 steps, ") and "batch 1 x 128px" in described
    assert "then fine-tuned 1 steps" in described and "batch 1 x 256px" in described and "lr 0.0001" in described
    assert " ; fine-tuned: " in config["command"]
    # a fine-tune of the fine-tune names all three phases, the first one's batch and crop included
    train.main(common + ["--out", str(tmp_path / "third"), "--crop", "128", "--max-steps", "4",
                         "--finetune", str(tmp_path / "second" / "last.pt")])
    third = torch.load(str(tmp_path / "third" / "last.pt"), weights_only=False)
    assert [p["steps"] for p in third["config"]["history"]] == [2, 1]
    phases = describe_phases(third).split("; then fine-tuned ")
    assert len(phases) == 3 and phases[0].startswith("2 steps, ") and "batch 1 x 128px" in phases[0]
    assert phases[1].startswith("1 steps, ") and "256px" in phases[1] and phases[2].startswith("1 steps, ")
    # the weights moved on from the checkpoint's: the fine-tune trained, it did not just copy
    changed = [not torch.equal(second["model"][k], first["model"][k]) for k in first["model"]]
    assert any(changed)
    with pytest.raises(SystemExit, match="exclude each other"):
        train.main(common + ["--out", str(tmp_path / "fourth"), "--crop", "128",
                             "--finetune", str(tmp_path / "first" / "last.pt"),
                             "--resume", str(tmp_path / "second" / "last.pt")])


def test_a_resumed_phase_keeps_its_loss_and_refuses_another(tmp_path):
    from training import train
    train_cache = tiny_corpus(str(tmp_path / "train.npz"), 0)
    heldout_cache = tiny_corpus(str(tmp_path / "heldout.npz"), 1)
    common = ["--model", "mrfed", "--batch", "1", "--workers", "0", "--n-heldout", "2", "--crop", "128",
              "--corpus-cache", train_cache, "--heldout-cache", heldout_cache, "--minutes", "5",
              "--out", str(tmp_path / "run")]
    last = str(tmp_path / "run" / "last.pt")
    train.main(common + ["--max-steps", "1", "--loss", "pearson=1,slope=0.5"])
    train.main(common + ["--max-steps", "2", "--resume", last])  # no --loss: the checkpoint's own
    resumed = torch.load(last, weights_only=False)
    assert resumed["steps"] == 2 and resumed["config"]["losses"] == dict(pearson=1.0, slope=0.5)
    with pytest.raises(SystemExit, match="start a new phase with --finetune"):
        train.main(common + ["--max-steps", "3", "--resume", last, "--loss", "cc=1"])


def test_integrate_slopes_gives_back_the_heights_whose_differences_they_are():
    from training.networks import integrate_slopes
    heights = torch.randn(2, 1, 37, 52, dtype=torch.float64).cumsum(-1).cumsum(-2)  # rough, with long tilts
    dx = torch.nn.functional.pad(heights[..., :, 1:] - heights[..., :, :-1], (0, 1))
    dy = torch.nn.functional.pad(heights[..., 1:, :] - heights[..., :-1, :], (0, 0, 0, 1))
    integrated = integrate_slopes(torch.cat([dx, dy], 1))
    expected = heights - heights.mean(dim=(-2, -1), keepdim=True)
    assert torch.allclose(integrated, expected, atol=1e-8 * float(heights.abs().max()))
    # slopes that are no height's differences: the least-squares heights, orthogonal residual
    rough = torch.randn(1, 2, 20, 24, dtype=torch.float64)
    z = integrate_slopes(rough).requires_grad_(True)
    residual = ((z[..., :, 1:] - z[..., :, :-1] - rough[:, :1, :, :-1]) ** 2).sum() + (
        (z[..., 1:, :] - z[..., :-1, :] - rough[:, 1:, :-1, :]) ** 2).sum()
    residual.backward()
    assert float(z.grad.abs().max()) < 1e-9


def test_a_slope_head_finetuned_from_a_heights_model_starts_where_it_was_and_exports(tmp_path):
    from training import export, networks, train
    train_cache = tiny_corpus(str(tmp_path / "train.npz"), 0)
    heldout_cache = tiny_corpus(str(tmp_path / "heldout.npz"), 1)
    common = ["--model", "mrfed", "--batch", "1", "--workers", "0", "--n-heldout", "2", "--crop", "128",
              "--corpus-cache", train_cache, "--heldout-cache", heldout_cache, "--minutes", "5"]
    train.main(common + ["--out", str(tmp_path / "heights"), "--max-steps", "1"])
    heights_ck = torch.load(str(tmp_path / "heights" / "last.pt"), weights_only=False)
    heights_model = networks.build("mrfed", **heights_ck["config"]["net"])
    heights_model.load_state_dict(heights_ck["model"])
    slopes_model = networks.build("mrfed", **dict(heights_ck["config"]["net"], head="slopes"))
    assert train.load_matching_weights(slopes_model, heights_ck["model"]) == []  # the head is seeded, not fresh
    image = torch.rand(1, 1, 128, 256) * 2 - 1
    with torch.no_grad():
        before = heights_model.eval()(image)
        after = slopes_model.eval()(image)
    assert torch.allclose(after, before - before.mean(), atol=1e-4 * float(before.abs().max()))

    train.main(common + ["--out", str(tmp_path / "slopes"), "--max-steps", "2", "--head", "slopes",
                         "--finetune", str(tmp_path / "heights" / "last.pt")])
    with pytest.raises(SystemExit, match="resume it with --head slopes"):
        train.main(common + ["--out", str(tmp_path / "slopes"), "--max-steps", "3",
                             "--resume", str(tmp_path / "slopes" / "last.pt")])
    model = str(tmp_path / "slopes.onnx")
    export.main(["--checkpoint", str(tmp_path / "slopes" / "best.pt"), "--out", model,
                 "--corpus-cache", train_cache, "--calibration-views", "2"])
    card = read_model_card(model)
    assert card.extra["output_head"].startswith("two slope fields") and card.extra["height_units"] == "pixel"
    assert "fine-tuned with a slopes head in place of the heights head" in card.extra["training"]
    image = write_raster(str(tmp_path / "in.tif"), byte_image(200, 300, seed=2), wkt=utm_wkt())
    report = estimate_dtm(image, str(tmp_path / "dtm.tif"), EstimateOptions(model, device="cpu",
                                                                            heights="pixel_size"))
    assert report.tiles == 1


def test_loss_terms_are_chosen_on_the_command_line_and_recorded(tmp_path):
    from training import train
    import argparse
    assert train.parse_loss_weights("pearson=1,slope=0.5") == {"pearson": 1.0, "slope": 0.5}
    with pytest.raises(argparse.ArgumentTypeError, match="not one of"):
        train.parse_loss_weights("ssim=1")
    torch.manual_seed(0)
    target = torch.randn(2, 1, 64, 64)
    mask = torch.ones_like(target)
    total, terms = train.losses(3.0 * target + 1.0, target, mask, {"pearson": 1.0})
    assert set(terms) == {"pearson"} and float(total) == pytest.approx(0.0, abs=1e-5)  # r ignores gain and offset
    _, terms = train.losses(torch.randn_like(target), target, mask, {"pearson": 1.0, "slope": 0.5})
    assert set(terms) == {"pearson", "slope"} and float(terms["pearson"]) > 0.5
    cache = tiny_corpus(str(tmp_path / "train.npz"), 0)
    train.main(["--model", "mrfed", "--out", str(tmp_path / "run"), "--crop", "128", "--batch", "2", "--workers", "0",
                "--n-heldout", "2", "--corpus-cache", cache, "--heldout-cache", tiny_corpus(str(tmp_path / "h.npz"), 1),
                "--minutes", "5", "--max-steps", "1", "--loss", "pearson=1,slope=0.5"])
    last = torch.load(str(tmp_path / "run" / "last.pt"), weights_only=False)
    assert last["config"]["losses"] == {"pearson": 1.0, "slope": 0.5}
    from training.export import describe_losses
    assert describe_losses(last["config"]) == "loss 1 x full-resolution Pearson r + 0.5 x relative slope L1"
    tuned = dict(last["config"], phase_start={"before": {"losses": train.LOSS_WEIGHTS}})
    assert describe_losses(tuned).startswith("loss 1 x multi-scale CC over pooling 1-32 + 0.5 x relative slope L1 "
                                             "+ 0.2 x log spread, then in the fine-tune 1 x full-resolution")


def test_the_views_scale_range_is_chosen_on_the_command_line_recorded_and_kept_on_resume(tmp_path, monkeypatch):
    from training import data, train
    import argparse
    assert train.parse_scale_range("0.4,8") == (0.4, 8.0)
    with pytest.raises(argparse.ArgumentTypeError, match="0 < low <= high"):
        train.parse_scale_range("2,1")
    asked = []
    real_view = data.random_view
    # the training views' range; the held-out views stay the renderer's default, a fixed yardstick (None here)
    monkeypatch.setattr(data, "random_view", lambda *a, **k: asked.append(k.get("scale_range")) or real_view(*a, **k))
    common = ["--model", "mrfed", "--crop", "128", "--batch", "2", "--workers", "0", "--n-heldout", "2",
              "--corpus-cache", tiny_corpus(str(tmp_path / "train.npz"), 0),
              "--heldout-cache", tiny_corpus(str(tmp_path / "h.npz"), 1), "--minutes", "5"]
    train.main(common + ["--out", str(tmp_path / "run"), "--max-steps", "1", "--scale-range", "0.4,8"])
    assert set(asked) == {None, (0.4, 8.0)}
    last = str(tmp_path / "run" / "last.pt")
    assert torch.load(last, weights_only=False)["config"]["scale_range"] == [0.4, 8.0]
    asked.clear()
    train.main(common + ["--out", str(tmp_path / "run"), "--max-steps", "2", "--resume", last])
    assert set(asked) == {None, (0.4, 8.0)}
    resumed = torch.load(last, weights_only=False)
    assert resumed["config"]["scale_range"] == [0.4, 8.0]
    from training.export import describe_scales
    assert describe_scales(resumed) == "0.4-8x"  # what the card's training_data says
    assert describe_scales(dict(resumed, config=dict(resumed["config"], phase_start={}))) == "0.4-8x"


VIEW_OPTIONS = [  # flag, config key, value asked, bad value, card text before and after the fine-tune
    ("--albedo-contrast", "albedo_contrast", 0.5, 1.5, "describe_albedo",
     "albedo (patches up to +-15 %)", "albedo (patches up to +-15 %, then +-50 % in the fine-tune)"),
    ("--tilt-max", "tilt_max", 0.3, -0.1, "describe_tilt",
     "", "half the views tilted by a random regional plane (slope none, then up to 0.3 in the fine-tune; "
         "pixel units), "),
    ("--tilt-direction", "tilt_direction", "sun", "sideways", "describe_tilt", "", ""),  # no tilt_max: no plane
]


@pytest.mark.parametrize("flag, key, value, bad, describe, before, after", VIEW_OPTIONS,
                         ids=[option[1] for option in VIEW_OPTIONS])
def test_a_view_option_is_chosen_on_the_command_line_recorded_kept_on_resume_and_carded(
        tmp_path, monkeypatch, flag, key, value, bad, describe, before, after):
    from training import data, export, train
    asked = []
    real_view = data.random_view
    monkeypatch.setattr(data, "random_view", lambda *a, **k: asked.append(k.get(key)) or real_view(*a, **k))
    common = ["--model", "mrfed", "--crop", "128", "--batch", "2", "--workers", "0", "--n-heldout", "2",
              "--corpus-cache", tiny_corpus(str(tmp_path / "train.npz"), 0),
              "--heldout-cache", tiny_corpus(str(tmp_path / "h.npz"), 1), "--minutes", "5"]
    train.main(common + ["--out", str(tmp_path / "base"), "--max-steps", "1"])
    base = str(tmp_path / "base" / "last.pt")
    assert getattr(export, describe)(torch.load(base, weights_only=False)) == before
    asked.clear()
    train.main(common + ["--out", str(tmp_path / "run"), "--max-steps", "2", "--finetune", base, flag, str(value)])
    assert set(asked) == {None, value}  # the held-out views keep the renderer's default
    last = str(tmp_path / "run" / "last.pt")
    asked.clear()
    train.main(common + ["--out", str(tmp_path / "run"), "--max-steps", "3", "--resume", last])
    assert set(asked) == {None, value}
    resumed = torch.load(last, weights_only=False)
    assert resumed["config"][key] == value
    assert getattr(export, describe)(resumed) == after
    with pytest.raises(SystemExit, match=flag.lstrip("-")):
        train.main(common + ["--out", str(tmp_path / "bad"), "--max-steps", "1", flag, str(bad)])


def test_pix2pixcc_cannot_see_a_windows_brightness_and_the_tilt_branch_can():
    """Pix2PixCC normalises each window after its first convolution, so a uniformly brighter window (one tilted
    towards the sun) gives the same heights: the tilt branch reads brightness against the flat grey level."""
    from training import networks as N
    torch.manual_seed(0)
    image = torch.rand(1, 1, 128, 128) * 0.5 - 0.25
    backbone = N.build("pix2pixcc", n_gf=8, n_downsample=3, n_residual=1, max_ch=32).eval()
    with torch.no_grad():
        plain, brighter = backbone(image), backbone(image + 0.3)
    assert torch.allclose(plain - plain.mean(), brighter - brighter.mean(), atol=1e-4)
    tilted = N.build("pix2pixcc", tilt_branch=True, n_gf=8, n_downsample=3, n_residual=1, max_ch=32).eval()
    tilted.backbone.load_state_dict(backbone.state_dict())
    flat = torch.zeros_like(image)
    with torch.no_grad():
        assert torch.allclose(tilted(torch.cat([image, flat], 1)), plain, atol=1e-5)  # starts as the backbone
        tilted.slopes.weight[0, -3] = 0.1  # x slope from the mean grey level against flat ground's
        tilted.slopes.weight[0, -1] = -0.1
        rise = [float((tilted(torch.cat([image + b, flat], 1)) - plain)[0, 0, 0].diff().mean()) for b in (0.0, 0.3)]
    assert rise[1] == pytest.approx(rise[0] + 0.1 * 0.3, abs=1e-4)  # brighter than flat: steeper along x
    from engine.flat_grey import UNKNOWN_FLAT_LEVEL
    assert N.UNKNOWN_FLAT_LEVEL == UNKNOWN_FLAT_LEVEL  # what the engine feeds when no grey level is given
    with torch.no_grad():  # unknown: no plane, the backbone's own heights
        unknown = tilted(torch.cat([image + 0.3, torch.full_like(image, UNKNOWN_FLAT_LEVEL)], 1))
    assert torch.allclose(unknown, backbone(image + 0.3), atol=1e-5)


def test_the_roughness_correction_starts_as_the_plain_branch_and_reads_the_fine_scale_image_spread():
    """Rough ground under a high sun is darker than flat ground without being tilted: the correction sees the
    spread of the image within the branch's 8-px pooling cells, which the plain branch pools away."""
    from training import networks as N
    torch.manual_seed(0)
    small = dict(n_gf=8, n_downsample=3, n_residual=1, max_ch=32)
    plain = N.build("pix2pixcc", tilt_branch=True, **small).eval()
    rough = N.build("pix2pixcc", tilt_branch=True, tilt_roughness=True, **small).eval()
    assert not N.has_tilt_roughness(dict(tilt_branch=True)) and N.has_tilt_roughness(
        dict(tilt_branch=True, tilt_roughness=True))
    missing, unexpected = rough.load_state_dict(plain.state_dict(), strict=False)
    assert sorted(missing) == ["roughness.0.bias", "roughness.0.weight", "roughness.2.bias", "roughness.2.weight"]
    assert not unexpected
    with torch.no_grad():
        plain.slopes.weight.normal_(0, 0.05)
        rough.slopes.weight.copy_(plain.slopes.weight)
    smooth_image = torch.full((1, 1, 128, 128), 0.2)
    checker = 0.2 + 0.3 * (torch.arange(128)[:, None] + torch.arange(128)[None] - 1).remainder(2).float()[None, None]
    checker = checker - checker.mean() + 0.2  # the same mean grey: only the fine spread differs
    flat = torch.zeros_like(smooth_image)

    def slopes(model, image):
        with torch.no_grad():
            out = model(torch.cat([image, flat], 1)) - model.backbone(image)
        return N.masked_plane_slopes(out, torch.ones_like(out))[0]

    for image in (smooth_image, checker):  # zero-initialised: exactly the plain branch
        assert torch.allclose(slopes(rough, image), slopes(plain, image), atol=1e-5)
    with torch.no_grad():
        rough.roughness[0].weight.zero_()
        rough.roughness[0].bias.zero_()
        rough.roughness[0].weight[0, -2] = 1.0  # the fine-scale standard deviation, passed on
        rough.roughness[2].weight[0, 0] = 0.5   # to the x slope
    gain = slopes(rough, checker)[0] - slopes(plain, checker)[0]
    assert float(gain) == pytest.approx(0.5 * 0.15, abs=1e-3)  # the checker's spread within a cell: 0.15
    assert float(slopes(rough, smooth_image)[0] - slopes(plain, smooth_image)[0]) == pytest.approx(0.0, abs=1e-3)
    with pytest.raises(ValueError, match="tilt_branch"):
        N.build("pix2pixcc", tilt_roughness=True, **small)


def test_the_branch_reading_the_backbones_plane_starts_as_before_and_can_cancel_that_plane():
    """Both backbones tilt some scenes the wrong way along the light; a branch that reads the plane the backbone
    drew can take it away (weight −1 on its own slope), where the plain branch could only add to it."""
    from training import networks as N
    torch.manual_seed(0)
    small = dict(n_gf=8, n_downsample=3, n_residual=1, max_ch=32)
    plain = N.build("pix2pixcc", tilt_branch=True, tilt_roughness=True, **small).eval()
    reading = N.build("pix2pixcc", tilt_branch=True, tilt_roughness=True, tilt_reads_backbone=True, **small).eval()
    assert N.has_tilt_reads_backbone(dict(tilt_branch=True, tilt_reads_backbone=True))
    assert not N.has_tilt_reads_backbone(dict(tilt_reads_backbone=True))
    missing, unexpected = reading.load_state_dict(plain.state_dict(), strict=False)
    assert missing == ["backbone_plane.weight"] and not unexpected
    rows, cols = torch.meshgrid(torch.arange(96.0), torch.arange(128.0), indexing="ij")
    image = (0.1 * torch.sin(cols / 5) * torch.cos(rows / 7) + 0.02 * cols / 128)[None, None]
    x = torch.cat([image, torch.full_like(image, 0.4)], 1)
    with torch.no_grad():
        plain.slopes.weight.normal_(0, 0.05)
        reading.slopes.weight.copy_(plain.slopes.weight)
        assert torch.allclose(reading(x), plain(x), atol=1e-5)  # zero-initialised: exactly the branch before
        backbone = reading.backbone(image)
        drawn = N.masked_plane_slopes(backbone, torch.ones_like(backbone))[0]
        centred_cols, centred_rows = cols[0] - cols.mean(), rows[:, 0] - rows.mean()
        assert torch.allclose(N.plane_slopes(backbone, centred_cols, centred_rows)[0], drawn, atol=1e-4)
        scale = N.RegionalTiltGenerator.PLANE_READ_SCALE
        reading.backbone_plane.weight[0, 0] = reading.backbone_plane.weight[1, 1] = -1.0 / scale
        out = reading(x)
        branch_alone = plain(x) - plain.backbone(image)
        expected = N.masked_plane_slopes(branch_alone, torch.ones_like(out))[0]
        assert torch.allclose(N.masked_plane_slopes(out, torch.ones_like(out))[0], expected, atol=1e-4)
        reading.backbone_plane.weight.zero_()
        reading.backbone_plane.weight[0, 2] = 1.0 / scale  # the x slope, scaled by the flat grey level (0.4)
        gain = N.masked_plane_slopes(reading(x) - plain(x), torch.ones_like(out))[0]
        assert float(gain[0]) == pytest.approx(0.4 * float(drawn[0]), abs=1e-4) and abs(float(gain[1])) < 1e-5
    with pytest.raises(ValueError, match="tilt_branch"):
        N.build("pix2pixcc", tilt_reads_backbone=True, **small)


def test_a_tilt_branch_finetunes_from_a_plain_checkpoint_as_it_was_and_exports_a_model_fed_flat_grey(tmp_path):
    from training import export, train
    common = ["--model", "mrfed", "--crop", "128", "--batch", "2", "--workers", "0", "--n-heldout", "2",
              "--corpus-cache", tiny_corpus(str(tmp_path / "train.npz"), 0),
              "--heldout-cache", tiny_corpus(str(tmp_path / "h.npz"), 1), "--minutes", "5"]
    train.main(common + ["--out", str(tmp_path / "base"), "--max-steps", "1"])
    base = str(tmp_path / "base" / "last.pt")
    train.main(common + ["--out", str(tmp_path / "run"), "--max-steps", "2", "--finetune", base, "--tilt-branch"])
    log = (tmp_path / "run" / "train.log").read_text()
    assert "weights left fresh" in log and "features.1.weight" in log and "backbone." not in log.split("fresh")[1]
    start = torch.load(str(tmp_path / "run" / "best.pt"), weights_only=False)
    assert start["steps"] == 1 and start["metrics"]["r"] == pytest.approx(
        torch.load(base, weights_only=False)["metrics"]["r"], abs=1e-5)  # the views differ in nothing but the channel
    last = str(tmp_path / "run" / "last.pt")
    assert torch.load(last, weights_only=False)["config"]["net"]["tilt_branch"] is True
    with pytest.raises(SystemExit, match="--tilt-branch"):
        train.main(common + ["--out", str(tmp_path / "run"), "--max-steps", "3", "--resume", last])
    train.main(common + ["--out", str(tmp_path / "run"), "--max-steps", "3", "--resume", last, "--tilt-branch"])
    train.main(common + ["--out", str(tmp_path / "rough"), "--max-steps", "4", "--finetune", last, "--tilt-branch",
                         "--tilt-roughness", "--freeze-backbone"])
    rough_log = (tmp_path / "rough" / "train.log").read_text().split("fresh")[1].split("\n")[0]
    # the branch carries on, the correction starts fresh
    assert "roughness.0.weight" in rough_log and "slopes" not in rough_log
    rough_last = str(tmp_path / "rough" / "last.pt")
    train.main(common + ["--out", str(tmp_path / "reads"), "--max-steps", "5", "--finetune", rough_last,
                         "--tilt-branch", "--tilt-roughness", "--tilt-reads-backbone", "--freeze-backbone"])
    reads_log = (tmp_path / "reads" / "train.log").read_text().split("fresh")[1].split("\n")[0]
    assert reads_log.strip().endswith("backbone_plane.weight") and "roughness" not in reads_log
    reads_last = str(tmp_path / "reads" / "last.pt")
    with pytest.raises(SystemExit, match="--tilt-reads-backbone"):
        train.main(common + ["--out", str(tmp_path / "reads"), "--max-steps", "6", "--resume", reads_last,
                             "--tilt-branch", "--tilt-roughness"])
    train.main(common + ["--out", str(tmp_path / "anew"), "--max-steps", "5", "--finetune", last, "--tilt-branch",
                         "--tilt-roughness", "--freeze-backbone", "--fresh-branch"])
    anew_log = (tmp_path / "anew" / "train.log").read_text().split("fresh")[1].split("\n")[0]
    assert "slopes.weight" in anew_log and "features.1.weight" in anew_log and "backbone." not in anew_log
    with pytest.raises(SystemExit, match="--fresh-branch"):
        train.main(common + ["--out", str(tmp_path / "anew"), "--max-steps", "6", "--fresh-branch"])
    with pytest.raises(SystemExit, match="--tilt-roughness"):
        train.main(common + ["--out", str(tmp_path / "rough"), "--max-steps", "5", "--resume",
                             str(tmp_path / "rough" / "last.pt"), "--tilt-branch"])
    rough_model = str(tmp_path / "rough.onnx")
    export.main(["--checkpoint", str(tmp_path / "rough" / "last.pt"), "--out", rough_model, "--calibration-views", "2",
                 "--corpus-cache", str(tmp_path / "train.npz")])
    assert "darkening of rough ground" in read_model_card(rough_model).extra["training"]
    reads_model = str(tmp_path / "reads.onnx")  # export checks onnxruntime against PyTorch on a 256 × 384 window
    export.main(["--checkpoint", reads_last, "--out", reads_model, "--calibration-views", "2",
                 "--corpus-cache", str(tmp_path / "train.npz")])
    assert "backbone's own plane" in read_model_card(reads_model).extra["training"]
    model = str(tmp_path / "m.onnx")
    export.main(["--checkpoint", last, "--out", model, "--calibration-views", "2",
                 "--corpus-cache", str(tmp_path / "train.npz")])
    card = read_model_card(model)
    assert card.extra["flat_grey_input"] == "true" and "regional-tilt branch" in card.extra["training"]
    image = write_raster(str(tmp_path / "in.tif"), byte_image(200, 300, seed=2), wkt=utm_wkt())
    lines = []
    estimate_dtm(image, str(tmp_path / "dtm.tif"), EstimateOptions(model, device="cpu", heights="pixel_size",
                                                                   flat_grey=128.0), log=lines.append)
    assert any("grey level: 128 (FLAT_GREY)" in line for line in lines)


def one_thread_base(tmp_path):
    """The tiny runs' common arguments (one thread) and a one-step MRFED checkpoint to fine-tune from."""
    from training import train
    common = ["--model", "mrfed", "--crop", "128", "--batch", "2", "--workers", "0", "--n-heldout", "2",
              "--corpus-cache", tiny_corpus(str(tmp_path / "train.npz"), 0),
              "--heldout-cache", tiny_corpus(str(tmp_path / "h.npz"), 1), "--minutes", "5", "--threads", "1"]
    train.main(common + ["--out", str(tmp_path / "base"), "--max-steps", "1"])
    return common, str(tmp_path / "base" / "last.pt")


def test_a_frozen_backbone_run_by_onnxruntime_scores_as_pytorch_and_only_the_branch_learns(tmp_path):
    from training import train
    common, base = one_thread_base(tmp_path)
    branch = ["--finetune", base, "--tilt-branch", "--tilt-roughness", "--freeze-backbone", "--max-steps", "3"]
    with pytest.raises(SystemExit, match="--freeze-backbone"):
        train.main(common + ["--out", str(tmp_path / "no"), "--finetune", base, "--tilt-branch", "--onnx-backbone"])
    train.main(common + branch + ["--out", str(tmp_path / "torch")])
    train.main(common + branch + ["--out", str(tmp_path / "ort"), "--onnx-backbone"])
    assert "frozen backbone run by onnxruntime" in (tmp_path / "ort" / "train.log").read_text()
    starts = [torch.load(str(tmp_path / run / "best.pt"), weights_only=False) for run in ("torch", "ort")]
    assert starts[0]["steps"] == starts[1]["steps"] == 1  # scored before the first step, the branch at zero
    assert starts[1]["metrics"]["r"] == pytest.approx(starts[0]["metrics"]["r"], abs=1e-5)
    before = torch.load(base, weights_only=False)["model"]
    after = torch.load(str(tmp_path / "ort" / "last.pt"), weights_only=False)
    assert after["steps"] == 3
    for name, value in after["model"].items():
        if name.startswith("backbone."):
            assert torch.equal(value, before[name[len("backbone."):]]), name
    assert float(after["model"]["roughness.0.weight"].abs().sum()) > 0 and float(
        after["model"]["slopes.weight"].abs().sum()) > 0  # the slopes started at zero and have learned


def test_the_sun_elevations_path_starts_as_the_branch_is_off_where_unknown_and_scales_the_relief():
    """Given the sun's elevation (a third channel) the branch may change its plane and the backbone's gain;
    it starts at zero, so the model is the one without it, and an unknown elevation switches it off."""
    from training import data, networks as N
    from terrain.engine_parts import grey_levels
    torch.manual_seed(0)
    small = dict(n_gf=8, n_downsample=3, n_residual=1, max_ch=32)
    plain = N.build("pix2pixcc", tilt_branch=True, tilt_roughness=True, **small).eval()
    sunny = N.build("pix2pixcc", tilt_branch=True, tilt_roughness=True, sun_elevation=True, **small).eval()
    assert N.has_sun_elevation(dict(tilt_branch=True, sun_elevation=True)) and sunny.in_channels == 3
    missing, unexpected = sunny.load_state_dict(plain.state_dict(), strict=False)
    assert sorted(missing) == ["sun.0.bias", "sun.0.weight", "sun.2.bias", "sun.2.weight"] and not unexpected
    image = 0.1 * torch.randn(1, 1, 96, 128)
    two = torch.cat([image, torch.full_like(image, 0.4)], 1)
    known = torch.cat([two, torch.full_like(image, grey_levels.sun_elevation_level(30.0))], 1)
    unknown = torch.cat([two, torch.full_like(image, grey_levels.UNKNOWN_SUN_LEVEL)], 1)
    assert float(N.sun_tangent(known)[0]) == pytest.approx(np.tan(np.radians(30.0)), rel=1e-5)
    with torch.no_grad():
        plain.slopes.weight.normal_(0, 0.05)
        sunny.slopes.weight.copy_(plain.slopes.weight)
        assert torch.allclose(sunny(known), plain(two), atol=1e-5)  # zero-initialised
        log_gain = 2.0 * np.arctanh(np.log(2.0) / 2.0)  # held to ±2 by 2·tanh(·/2)
        sunny.sun[-1].bias.copy_(torch.tensor([0.0, 0.0, log_gain]))  # gain ×2, no change of plane
        backbone = sunny.backbone(image)
        assert torch.allclose(sunny(known) - plain(two), backbone, atol=1e-4)
        assert torch.allclose(sunny(unknown), plain(two), atol=1e-5)  # unknown elevation: off
        no_flat = torch.cat([image, torch.full_like(image, N.UNKNOWN_FLAT_LEVEL), known[:, 2:]], 1)
        assert torch.allclose(sunny(no_flat), backbone, atol=1e-5)  # nor without a flat grey level
    views = [(np.full((8, 8), 100, np.uint8), np.zeros((8, 8), np.float32), np.ones((8, 8), np.float32), 128.0,
              elevation) for elevation in (30.0, 60.0)]
    x, _, _ = data.to_tensors(views)
    assert x.shape == (2, 3, 8, 8)
    assert x[:, 2, 0, 0].tolist() == pytest.approx([grey_levels.sun_elevation_level(30.0),
                                                     grey_levels.sun_elevation_level(60.0)])
    with pytest.raises(ValueError, match="tilt_branch"):
        N.build("pix2pixcc", sun_elevation=True, **small)


def test_the_sun_elevations_path_trains_alone_and_exports_a_three_channel_model_the_engine_feeds(tmp_path):
    from training import export, train
    common, base = one_thread_base(tmp_path)
    branch = str(tmp_path / "branch" / "last.pt")
    train.main(common + ["--out", str(tmp_path / "branch"), "--max-steps", "2", "--finetune", base,
                         "--tilt-branch", "--tilt-roughness", "--freeze-backbone"])
    with pytest.raises(SystemExit, match="--freeze-tilt"):
        train.main(common + ["--out", str(tmp_path / "no"), "--finetune", branch, "--tilt-branch", "--freeze-tilt"])
    sun = ["--finetune", branch, "--tilt-branch", "--tilt-roughness", "--sun-elevation", "--freeze-backbone",
           "--freeze-tilt", "--max-steps", "4"]
    train.main(common + sun + ["--out", str(tmp_path / "sun")])
    fresh = (tmp_path / "sun" / "train.log").read_text().split("fresh")[1].split("\n")[0]
    assert "sun.2.weight" in fresh and "slopes" not in fresh and "roughness" not in fresh
    before = torch.load(branch, weights_only=False)["model"]
    after = torch.load(str(tmp_path / "sun" / "last.pt"), weights_only=False)
    assert after["config"]["net"]["sun_elevation"] is True and after["config"]["frozen_tilt"] is True
    for name, value in after["model"].items():  # everything but the elevation's path as it was
        if not name.startswith("sun."):
            assert torch.equal(value, before[name]), name
    assert float(after["model"]["sun.2.weight"].abs().sum()) > 0
    with pytest.raises(SystemExit, match="--sun-elevation"):
        train.main(common + ["--out", str(tmp_path / "sun"), "--max-steps", "5", "--resume",
                             str(tmp_path / "sun" / "last.pt"), "--tilt-branch", "--tilt-roughness"])
    model = str(tmp_path / "sun.onnx")
    export.main(["--checkpoint", str(tmp_path / "sun" / "last.pt"), "--out", model, "--calibration-views", "2",
                 "--corpus-cache", str(tmp_path / "train.npz")])
    card = read_model_card(model)
    assert card.extra["sun_elevation_input"] == "true" and "sun's elevation" in card.extra["amplitude_calibration"]
    assert "sun elevation's path trained alone" in card.extra["training"]
    image = write_raster(str(tmp_path / "in.tif"), byte_image(200, 300, seed=2), wkt=utm_wkt())
    lines = []
    estimate_dtm(image, str(tmp_path / "dtm.tif"), EstimateOptions(model, device="cpu", heights="pixel_size",
                                                                   flat_grey=128.0, sun_elevation=40.0),
                 log=lines.append)
    assert any("Sun elevation 40° (SUN_ELEVATION)" in line for line in lines)
