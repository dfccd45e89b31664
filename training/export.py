"""Export a trained generator to ONNX obeying the plugin's model contract.

    python -m training.export --checkpoint runs/<model>/best.pt --out models/<model>.onnx

Contract (models/README.md): input `image` float32 [N,1,H,W] in [-1,1] (8-bit v/127.5-1; [N,2,H,W] for a model
with the regional-tilt branch, its second channel flat ground's grey level alike, card key flat_grey_input;
[N,3,H,W] for one that also takes the sun's elevation, card key sun_elevation_input), H, W multiples of
`input_multiple`; output `elevation` float32 [N,1,H,W]: height in pixel units (height / ground pixel
size, offset arbitrary), declared by the card key `height_units=pixel`.
"""
from __future__ import annotations

import argparse
import os
import warnings

import numpy as np
import onnx
import torch

from terrain.render import DEFAULT_ALBEDO_CONTRAST, DEFAULT_SCALE_RANGE, DEFAULT_TILT_DIRECTION, DEFAULT_TILT_MAX
from training import data
from training import networks as N
from training.train import LOSS_WEIGHTS, phase_records

# Nominal only: pixel-unit heights are not range-mapped; the engine's HEIGHTS mode scales them.
NOMINAL_OUTPUT_RANGE = "-1024,1024"


class SpreadCalibrated(torch.nn.Module):
    """The generator with its heights scaled by one constant, so their spread is unbiased in the median; a
    regional-tilt model has two, with and without a known flat grey level (its plane adds spread), and one
    that takes the sun's elevation a third, for a known flat grey level and elevation."""

    def __init__(self, G, gain, gain_unknown_flat=None, gain_known_sun=None):
        super().__init__()
        self.G, self.gain = G, float(gain)
        self.gain_unknown_flat = None if gain_unknown_flat is None else float(gain_unknown_flat)
        self.gain_known_sun = None if gain_known_sun is None else float(gain_known_sun)

    def forward(self, image):
        if self.gain_unknown_flat is None:
            return self.G(image) * self.gain
        known = N.flat_level_known(image)[:, None, None, None]
        gain = known * self.gain + (1 - known) * self.gain_unknown_flat
        if self.gain_known_sun is not None:
            sun = N.sun_path_on(image)[:, None, None, None]
            gain = sun * self.gain_known_sun + (1 - sun) * gain
        return self.G(image) * gain


CALIBRATION_VIEW_SIZE, CALIBRATION_SEED = 512, 2024  # the training views spread_gain calibrates on


@torch.no_grad()
def spread_gain(G, dems, count, size=CALIBRATION_VIEW_SIZE, seed=CALIBRATION_SEED, flat_known=True,
                sun_known=False):
    """Median over `count` training views of std(truth) / std(prediction): the networks learn the shape
    of the heights better than their amplitude (a log-spread loss of weight 0.2), and a model that is
    systematically too flat on its own training data would be too flat everywhere. A model that takes the
    sun's elevation is calibrated with it unknown unless `sun_known`."""
    takes_sun = isinstance(G, N.RegionalTiltGenerator) and G.sun is not None
    images, targets, masks = data.heldout_views(dems, size, count, seed=seed,
                                                with_flat=isinstance(G, N.RegionalTiltGenerator),
                                                with_sun_elevation=takes_sun)
    if takes_sun and not sun_known:
        images[:, 2:] = N.UNKNOWN_SUN_LEVEL
    if not flat_known:
        images[:, 1:2] = N.UNKNOWN_FLAT_LEVEL
    ratios = []
    for x, t, m in zip(images, targets, masks):
        ratios.append(float(torch.exp(N.amplitude_signed_log_ratio(G(x[None]), t[None], m[None]))[0]))
    return float(np.median(ratios))


def describe_head(net):
    if N.head_of(net) == "slopes":
        return ("two slope fields (x, y, pixel units) integrated to heights inside the graph by a least-squares "
                "Neumann Poisson solve (DCT as matrix products)")
    return "heights"


def describe_network(arch, net):
    head = "; slope head integrated by least squares" if N.head_of(net) == "slopes" else ""
    if N.has_tilt_branch(net):
        head += ("; regional-tilt branch (no normalisation: the window's brightness against flat ground's grey "
                 "level, a second input channel, drawn as a plane"
                 + (", corrected for the darkening of rough ground by an MLP on the fine-scale image spread"
                    if N.has_tilt_roughness(net) else "")
                 + (", reading the backbone's own plane to keep, weaken or replace it"
                    if N.has_tilt_reads_backbone(net) else "")
                 + ("; where the sun's elevation is given (a third input channel), an MLP reads with it a change "
                    "of the plane and a gain on the backbone's heights" if N.has_sun_elevation(net) else "") + ")")
    if arch == "pix2pixcc":
        return (f"Pix2PixCC generator n_gf={net['n_gf']}, {net['n_downsample']} stride-2 levels (to 1/"
                f"{2 ** net['n_downsample']}), {net['n_residual']} residual blocks at the bottom and "
                f"{net['n_mid_residual']} at 1/{2 ** net.get('mid_level', 3)}, channels capped at {net['max_ch']}, "
                f"encoder features added back at each scale, InstanceNorm + Mish{head}")
    return (f"MRFED widths = paper/{net['width_div']} capped at {net['max_ch']}, {net['levels']} levels (to 1/"
            f"{2 ** net['levels']}), GroupNorm + ReLU, concatenated skips{head}")


def phase_changes(cfg, key, default):
    """One training setting as it changed from phase to phase, oldest first (repeats dropped); a phase that
    predates the setting, or a record that lacks it, had the default."""
    earlier = cfg.get("history") or ([cfg["phase_start"]["before"]] if cfg.get("phase_start") else [])
    values = [phase.get(key, default) for phase in earlier] + [cfg.get(key, default)]
    return [value for i, value in enumerate(values) if i == 0 or value != values[i - 1]]


def describe_scales(ck):
    """The views' ground pixel range, as multiples of each DEM's: '0.75-8x', or with the fine-tunes' where they
    changed it."""
    ranges = ["-".join(f"{v:g}" for v in r) + "x" for r in phase_changes(ck["config"], "scale_range",
                                                                         list(DEFAULT_SCALE_RANGE))]
    return ranges[0] + (f" (then {', then '.join(ranges[1:])} in the fine-tune)" if ranges[1:] else "")


def _then_in_fine_tunes(words):
    """'a' or 'a, then b, then c in the fine-tune': a setting's values phase by phase."""
    return words[0] + (f", then {', then '.join(words[1:])} in the fine-tune" if words[1:] else "")


def describe_albedo(ck):
    """'albedo (patches up to +-15 %)', or with the fine-tunes' contrast where they changed it."""
    contrasts = [f"+-{c * 100:g} %" for c in phase_changes(ck["config"], "albedo_contrast", DEFAULT_ALBEDO_CONTRAST)]
    return f"albedo (patches up to {_then_in_fine_tunes(contrasts)})"


def describe_tilt(ck):
    """'' where no phase tilted its views, else e.g. 'half the views tilted by a random regional plane (slope
    none, then up to 0.3 in the fine-tune; pixel units)'."""
    tilts = phase_changes(ck["config"], "tilt_max", DEFAULT_TILT_MAX)
    if tilts == [DEFAULT_TILT_MAX]:
        return ""
    words = [f"up to {t:g}" if t else "none" for t in tilts]
    directions = phase_changes(ck["config"], "tilt_direction", DEFAULT_TILT_DIRECTION)
    falling = "" if directions == [DEFAULT_TILT_DIRECTION] else "; falling " + _then_in_fine_tunes(
        ["any way" if d == "any" else "along the light's line" for d in directions])
    return (f"half the views tilted by a random regional plane (slope {_then_in_fine_tunes(words)}; pixel units"
            f"{falling}), ")


def describe_phases(ck):
    """Steps, wall time, batch, rate and hardware of the run, phase by phase where it was fine-tuned."""
    phases = phase_records(ck["config"], ck["steps"], ck["wall_s"])
    words = []
    for index, phase in enumerate(phases):
        mirror = {True: " (+ north-south mirror)", False: ""}.get(phase.get("flip_double"), "")
        text = (f"{phase['steps']} steps, {phase['wall_s'] / 60:.1f} min wall, batch {phase['batch']} x "
                f"{phase['crop']}px{mirror}, AdamW lr {phase['lr']} cosine")
        if index:
            head_before, head_now = N.head_of(phases[index - 1]), N.head_of(phase)
            new_head = f" with a {head_now} head in place of the {head_before} head" if head_now != head_before else ""
            text = f"then fine-tuned{new_head} {text} (fresh optimiser)"
        words.append(f"{text}, {phase['hardware']}")
    return "; ".join(words)


def model_card(ck, ckpt_path, G, gain, calibration_views, version, gain_unknown_flat=None, gain_known_sun=None):
    """The card's metadata_props for generator G trained as checkpoint `ck` records."""
    cfg = ck["config"]
    arch = cfg["model"]
    metrics = ck.get("metrics") or {}
    heldout = ""
    if metrics:
        heldout = (f"; held-out sites {', '.join(cfg['heldout_sites'])}: Pearson r {metrics['r']:.4f} "
                   f"over {cfg['crop']}px views")
    props = {
        "name": {"pix2pixcc": "Pix2PixCC real terrain", "mrfed": "MRFED real terrain"}[arch],
        "version": version,
        "architecture": arch,
        "input_size": "1024",
        "input_multiple": str(G.multiple),
        "input_normalisation": "8-bit v/127.5-1; deeper types percentile-stretched by the engine",
        "input_range": "-1,1",
        "output_range": NOMINAL_OUTPUT_RANGE,
        "height_units": "pixel",
        **({"flat_grey_input": "true"} if N.has_tilt_branch(cfg["net"]) else {}),
        **({"sun_elevation_input": "true"} if N.has_sun_elevation(cfg["net"]) else {}),
        "output_head": describe_head(cfg["net"]),
        "sun_azimuth_deg": "270",
        "training_gsd_m": "1",
        "license": "GPL-2.0-or-later",
        "amplitude_calibration": (f"outputs x{gain:.4f}"
                                  + ("" if gain_unknown_flat is None else
                                     " with a flat grey level" + ("" if gain_known_sun is None else " (no sun elevation)")
                                     + ("" if gain_known_sun is None else
                                        f", x{gain_known_sun:.4f} with a flat grey level and the sun's elevation")
                                     + f", x{gain_unknown_flat:.4f} without (no plane)")
                                  + f": the median ratio of true to predicted height spread over "
                                  f"{calibration_views} views of the training sites (seed 2024)"),
        "training_data": (f"{len(cfg['train_sites'])} real DEMs of ../shared/training-dems (Earth, Mars, Moon; "
                          f"provenance in its MANIFEST.md) seen at {describe_scales(ck)} their pixel size, turned and mirrored, "
                          f"{describe_tilt(ck)}"
                          "lit from 270+-8 deg at 10-70 deg elevation, shaded by gdaldem's formula (40 %) or "
                          f"Lambert/Lunar-Lambert/Hapke with cast shadows, {describe_albedo(ck)}, haze, blur, noise, 8-bit "
                          "(60 %), 30 % as small windows mirror-padded like the engine pads; targets height / "
                          f"pixel size; held out: {', '.join(cfg['heldout_sites'])}; never any validation DEM"),
        "training": (f"{describe_phases(ck)}; "
                     f"{describe_network(arch, cfg['net'])}"
                     f"{frozen_words(cfg)}"
                     f"; {describe_losses(cfg)}; command: {cfg['command']}{heldout}; "
                     f"checkpoint {os.path.basename(ckpt_path)}"),
    }
    return props


def frozen_words(cfg):
    if cfg.get("frozen_tilt"):
        return " (the sun elevation's path trained alone in the last phase, the backbone and the branch kept)"
    return " (the branch trained alone in the last phase, the backbone kept)" if cfg.get("frozen_backbone") else ""


LOSS_NAMES = {"cc": "multi-scale CC over pooling 1-32", "pearson": "full-resolution Pearson r",
              "slope": "relative slope L1", "amplitude": "log spread"}


def describe_losses(cfg):
    """The loss in words, with the later phases' where fine-tunes changed it."""
    def words(weights):
        return " + ".join(f"{weight:g} x {LOSS_NAMES.get(name, name)}" for name, weight in weights.items())
    losses = phase_changes(cfg, "losses", LOSS_WEIGHTS)
    later = f", then in the fine-tune {', then '.join(words(w) for w in losses[1:])}" if losses[1:] else ""
    return f"loss {words(losses[0])}{later}"


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--calibration-views", type=int, default=60)
    ap.add_argument("--version", default="2.0.0", help="the model's version in its card")
    ap.add_argument("--corpus-cache", default=None, help="npz of the training sites (python -m terrain.corpus)")
    args = ap.parse_args(argv)

    ck = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    G = N.build(ck["config"]["model"], **ck["config"]["net"])
    G.load_state_dict(ck["model"])
    G.eval()
    dems = data.load_dems("train", args.corpus_cache)
    gain = spread_gain(G, dems, args.calibration_views)
    gain_unknown = (spread_gain(G, dems, args.calibration_views, flat_known=False)
                    if isinstance(G, N.RegionalTiltGenerator) else None)
    gain_sun = (spread_gain(G, dems, args.calibration_views, sun_known=True)
                if N.has_sun_elevation(ck["config"]["net"]) else None)
    props = model_card(ck, args.checkpoint, G, gain, args.calibration_views, args.version, gain_unknown, gain_sun)
    W = SpreadCalibrated(G, gain, gain_unknown, gain_sun).eval()  # output: pixel-unit heights, as the contract says

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    channels = G.in_channels if isinstance(G, N.RegionalTiltGenerator) else 1  # image, flat grey, sun elevation
    dummy = torch.zeros(1, channels, 256, 256)
    dyn = {"image": {0: "N", 2: "H", 3: "W"}, "elevation": {0: "N", 2: "H", 3: "W"}}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(W, (dummy,), args.out, input_names=["image"], output_names=["elevation"],
                              dynamic_axes=dyn, opset_version=args.opset, dynamo=False,
                              do_constant_folding=True)
        how = "legacy TorchScript exporter"
    except Exception as e:  # legacy exporter unavailable -> dynamo exporter
        print(f"legacy exporter failed ({type(e).__name__}: {e}); using dynamo exporter")
        Hd = torch.export.Dim("H8", min=1, max=1024)
        Wd = torch.export.Dim("W8", min=1, max=1024)
        m = G.multiple
        shapes = {"image": {0: torch.export.Dim("N", min=1, max=64), 2: m * Hd, 3: m * Wd}}
        prog = torch.onnx.export(W, (dummy,), input_names=["image"], output_names=["elevation"],
                                 dynamic_shapes=shapes, opset_version=max(args.opset, 18), dynamo=True)
        prog.save(args.out)
        how = "dynamo exporter"

    model = onnx.load(args.out)
    onnx.helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    onnx.save(model, args.out)

    import onnxruntime as ort
    sess = ort.InferenceSession(args.out, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (1, channels, 256, 384)).astype(np.float32)
    x[:, 1:] = rng.uniform(-1, 1, (channels - 1, 1, 1))  # flat grey level and sun elevation: one value each
    with torch.no_grad():
        ref = W(torch.from_numpy(x)).numpy()
    out = sess.run(["elevation"], {"image": x})[0]
    diff = float(np.abs(out - ref).max())
    size = os.path.getsize(args.out)
    ins = [(i.name, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]) for i in model.graph.input]
    outs = [(o.name, [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]) for o in model.graph.output]
    print(f"exported {args.out} via {how}, opset {args.opset}; inputs {ins} outputs {outs}")
    print(f"ORT vs PyTorch max abs diff on 1x1x256x384: {diff:.3e}; output range [{out.min():.4f}, {out.max():.4f}]")
    print(f"file size {size} bytes ({size / 2 ** 20:.2f} MiB); params {N.n_params(G)}")
    for k, v in props.items():
        print(f"  {k}: {v}")
    assert out.shape == (1, 1, 256, 384)
    assert diff <= 1e-4 * max(1.0, float(np.abs(ref).max())), diff  # pixel-unit outputs reach tens
    assert size <= 10 * 2 ** 20, size


if __name__ == "__main__":
    main()
