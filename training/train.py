"""Train a DTM generator on renders of real DEMs (terrain/), with scale-free targets.

    python -m training.train --model pix2pixcc|mrfed --minutes M --out runs/<model> [--corpus-cache runs/corpus.npz]

The network predicts height in pixel units (height / ground pixel size) from an image lit from the
canonical azimuth (270°). Loss: multi-scale correlation coefficient (Pix2PixCC's CC loss over pooling
factors 1–32) + relative slope L1 + log-spread, all masked to the valid truth. The held-out sites of
terrain.corpus.HELDOUT_SITES are never trained on; they give the evaluation that picks best.pt.
"""
import argparse
import json
import math
import os
import platform
import sys
import time

import torch
import torch.nn.functional as F

from terrain.render import (DEFAULT_ALBEDO_CONTRAST, DEFAULT_SCALE_RANGE, DEFAULT_TILT_DIRECTION, DEFAULT_TILT_MAX,
                            TILT_DIRECTIONS)
from training import data
from training import networks as N

NET_CONFIGS = {
    "pix2pixcc": dict(in_ch=1, out_ch=1, n_gf=16, n_downsample=6, n_residual=3, n_mid_residual=1, max_ch=128),
    "mrfed": dict(in_ch=1, out_ch=1, width_div=8, levels=7, max_ch=96),
}
# The tilt branch's options, each a --flag and a key of the net config (networks.build) when given
BRANCH_OPTIONS = ("tilt_branch", "tilt_roughness", "tilt_reads_backbone", "sun_elevation")
LOSS_WEIGHTS = dict(cc=1.0, slope=0.5, amplitude=0.2)
LOSS_FUNCTIONS = dict(  # per-sample loss terms (pred, target, mask); pearson: full-resolution r, no coarse scales
    cc=N.multiscale_cc_loss,
    pearson=lambda pred, target, mask: 1.0 - N.masked_pearson(pred, target, mask),
    slope=N.slope_loss,
    amplitude=N.amplitude_loss)


def hardware_string(device):
    if device.type == "cuda":
        return f"CUDA {torch.cuda.get_device_name(0)}"
    return f"CPU {platform.machine()} x{torch.get_num_threads()} thread(s)"


def parse_loss_weights(text):
    """'cc=1,slope=0.5' -> {'cc': 1.0, 'slope': 0.5}; the terms are those of LOSS_FUNCTIONS."""
    weights = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        if name.strip() not in LOSS_FUNCTIONS:
            raise argparse.ArgumentTypeError(f"loss term '{name}' is not one of {', '.join(LOSS_FUNCTIONS)}")
        weights[name.strip()] = float(value)
    return weights


def parse_scale_range(text):
    """'0.4,8' -> (0.4, 8.0): the training views' ground pixel, in multiples of each DEM's."""
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"scale range must be 'low,high', got '{text}'") from None
    if not 0 < low <= high:
        raise argparse.ArgumentTypeError(f"scale range must have 0 < low <= high, got '{text}'")
    return low, high


# The renderer's options a run chooses on the command line (--albedo-contrast, --tilt-max): each one's default
# (also what checkpoints from before the option had), its accepted values in words and their check
RENDER_SETTINGS = {
    "albedo_contrast": (DEFAULT_ALBEDO_CONTRAST, "[0, 1)", lambda value: 0 <= value < 1),
    "tilt_max": (DEFAULT_TILT_MAX, "[0, 1]", lambda value: 0 <= value <= 1),
    "tilt_direction": (DEFAULT_TILT_DIRECTION, " or ".join(TILT_DIRECTIONS), lambda value: value in TILT_DIRECTIONS),
}


def render_settings(config):
    """A run config's RENDER_SETTINGS, each its default where the config predates it."""
    return {key: config.get(key, default) for key, (default, _, _) in RENDER_SETTINGS.items()}


def phase_records(config, steps, wall_s):
    """Every training phase of a checkpoint, oldest first: that phase's own steps and wall time, batch, crop, rate,
    mirror, head, loss, view scales, albedo contrast, added tilt and hardware. A fine-tune keeps the phases before it in
    `history`; checkpoints from before that name only the phase just before theirs (its mirror unknown)."""
    start = config.get("phase_start")
    if "history" in config:
        earlier = [dict(p) for p in config["history"]]
    elif start:
        earlier = [dict(start["before"], steps=start["step"], wall_s=start["wall_s"])]
    else:
        earlier = []
    current = dict(steps=steps - sum(p["steps"] for p in earlier), wall_s=wall_s - sum(p["wall_s"] for p in earlier),
                   batch=config["batch"], crop=config["crop"], lr=config["lr"], hardware=config["hardware"],
                   flip_double=config["flip_double"], head=N.head_of(config["net"]),
                   losses=config.get("losses", LOSS_WEIGHTS),  # runs from before --loss used the default
                   scale_range=list(config.get("scale_range", DEFAULT_SCALE_RANGE)),
                   **render_settings(config))
    return earlier + [current]


def format_loss_weights(weights):
    """{'cc': 1.0, 'slope': 0.5} -> 'cc=1,slope=0.5', what parse_loss_weights reads."""
    return ",".join(f"{k}={v:g}" for k, v in weights.items())


def losses(pred, target, mask, weights=None):
    weights = weights or LOSS_WEIGHTS
    pred = pred.float()
    terms = {k: LOSS_FUNCTIONS[k](pred, target, mask).mean() for k in weights}
    return sum(weights[k] * v for k, v in terms.items()), terms


@torch.no_grad()
def evaluate(model, heldout, device, run_model=None, batch=8):
    """Mean Pearson r (whole view, and at 1/8 resolution), spread ratio, and the cosine between the predicted
    and the true regional plane's slope vectors (scale-free: 1 right way, −1 inverted) on the held-out views."""
    model.eval()
    rs, coarse, spread, plane = [], [], [], []
    for i in range(0, len(heldout[0]), batch):
        x, t, m = (v[i:i + batch].to(device) for v in heldout)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            p = (run_model or model)(x)
        p = p.float()
        rs.append(N.masked_pearson(p, t, m))
        pc, mc = N.masked_pool(p, m, 8)
        tc, _ = N.masked_pool(t, m, 8)
        coarse.append(N.masked_pearson(pc, tc, mc))
        spread.append(torch.exp(-N.amplitude_loss(p, t, m)))
        plane.append(F.cosine_similarity(N.masked_plane_slopes(p, m), N.masked_plane_slopes(t, m), dim=1))
    model.train()
    return {k: float(torch.cat(v).mean())
            for k, v in (("r", rs), ("coarse_r", coarse), ("spread", spread), ("plane_cos", plane))}


def load_matching_weights(model, state):
    """Load every tensor of `state` that fits `model` (a heights checkpoint into a slopes model: same
    backbone, new head) and return the names left at their fresh initialisation."""
    own = model.state_dict()
    if any(k.startswith("backbone.") for k in own) and not any(k.startswith("backbone.") for k in state):
        state = {"backbone." + k: v for k, v in state.items()}
    elif any(k.startswith("backbone.") for k in state) and not any(k.startswith("backbone.") for k in own):
        state = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}  # a branch dropped
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(fitting, strict=False)
    fresh = sorted(set(own) - set(fitting))
    if (fresh == ["backbone.head.bias", "backbone.head.weight"] and isinstance(model, N.SlopeIntegratingGenerator)
            and own["backbone.head.weight"].shape[-1] == 3 and state["backbone.head.weight"].shape[-1] == 1):
        N.seed_slope_head(model.backbone.head, state["backbone.head.weight"])
        return []
    return fresh


def learning_rate(base, elapsed, budget, step, warmup=200):
    """Linear warm-up, then cosine decay over the wall-clock budget (so a resumed run continues it)."""
    return base * min(1.0, (step + 1) / warmup) * 0.5 * (1.0 + math.cos(math.pi * min(elapsed / budget, 1.0)))


def optimiser_path(checkpoint):
    return checkpoint[:-3] + "_optimiser.pt" if checkpoint.endswith(".pt") else checkpoint + ".optimiser"


def compact_optimiser_state(state):
    """Adam moments as bf16 (loaded back into float32 by load_state_dict's dtype cast)."""
    compact = dict(state)
    compact["state"] = {i: {k: (v.to(torch.bfloat16) if v.dim() else v) for k, v in moments.items()}
                        for i, moments in state["state"].items()}
    return compact


def _atomic_save(obj, path):
    torch.save(obj, path + ".tmp")
    os.replace(path + ".tmp", path)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, choices=sorted(NET_CONFIGS))
    ap.add_argument("--minutes", type=float, required=True,
                    help="wall-clock budget (total, when resuming; of this phase, when fine-tuning)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--head", choices=("heights", "slopes"), default="heights",
                    help="predict heights, or two slope fields integrated by least squares (networks.py)")
    ap.add_argument("--tilt-branch", action="store_true",
                    help="add the regional-tilt branch (networks.RegionalTiltGenerator), fed the grey level of flat "
                         "ground beside the image (the engine's FLAT_GREY)")
    ap.add_argument("--tilt-roughness", action="store_true",
                    help="with --tilt-branch: add its roughness correction (rough ground under a high sun is darker "
                         "than flat ground, not tilted); fine-tuned from a branch checkpoint it starts at zero")
    ap.add_argument("--tilt-reads-backbone", action="store_true",
                    help="with --tilt-branch: the branch also reads the backbone's own plane and may keep, weaken or "
                         "replace it; fine-tuned from a branch checkpoint it starts at zero")
    ap.add_argument("--sun-elevation", action="store_true",
                    help="with --tilt-branch: the branch also takes the sun's elevation, a third input channel, and "
                         "reads the regional slope and the relief's amplitude with it; fine-tuned from a branch "
                         "checkpoint it starts at zero")
    ap.add_argument("--freeze-tilt", action="store_true",
                    help="with --sun-elevation and --freeze-backbone: keep the tilt branch's weights too and train "
                         "the elevation's path alone, so the model given no elevation stays the checkpoint's")
    ap.add_argument("--freeze-backbone", action="store_true",
                    help="with --tilt-branch: train the branch alone, the backbone's weights kept as they are")
    ap.add_argument("--onnx-backbone", action="store_true",
                    help="with --freeze-backbone on a CPU: run the frozen backbone in onnxruntime, several times faster "
                         "(training/onnx_backbone.py)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--workers", type=int, default=1, help="data-loading processes")
    ap.add_argument("--crop", type=int, default=512)
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--loss", type=parse_loss_weights, default=None,
                    help=f"loss terms and weights, e.g. 'pearson=1,slope=0.5' (terms: {', '.join(LOSS_FUNCTIONS)}; "
                         f"default {format_loss_weights(LOSS_WEIGHTS)}, "
                         "or with --resume the checkpoint's own)")
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--eval-minutes", type=float, default=2.0)
    ap.add_argument("--n-heldout", type=int, default=48)
    ap.add_argument("--flip-double", action="store_true",
                    help="also train on each batch mirrored north-south (the sun stays in the west)")
    ap.add_argument("--scale-range", type=parse_scale_range, default=None,
                    help="the views' ground pixel in multiples of each DEM's, log-uniform (default "
                         f"{','.join(f'{v:g}' for v in DEFAULT_SCALE_RANGE)}, or with --resume the checkpoint's own); "
                         "below 1 the DEM is upsampled (terrain/render.py holds it at 0.5 at most)")
    ap.add_argument("--albedo-contrast", type=float, default=None,
                    help="largest relative change of the physical renderer's albedo patches (default "
                         f"{DEFAULT_ALBEDO_CONTRAST:g}, or with --resume the checkpoint's own); at 0.5 a patch "
                         "can be half as bright as its surroundings, as lunar maria are beside the highlands")
    ap.add_argument("--tilt-max", type=float, default=None,
                    help="tilt half the views by a random regional plane before shading, its slope (height per "
                         "pixel, pixel units) log-uniform up to this (default 0: none, or with --resume the "
                         "checkpoint's own); 0.3 is about 17 deg. Teaches that the tilt does not follow the texture")
    ap.add_argument("--tilt-direction", default=None,
                    help="which way --tilt-max's planes fall: any (the default, or with --resume the checkpoint's own) "
                         "or sun, along the light's line only: shading shows no slope across the light")
    ap.add_argument("--corpus-cache", default=None, help="npz of the training sites (python -m terrain.corpus)")
    ap.add_argument("--heldout-cache", default=None, help="npz of the held-out sites (--split heldout)")
    ap.add_argument("--resume", default=None, help="last.pt to continue (weights, optimiser, steps, wall time)")
    ap.add_argument("--finetune", default=None,
                    help="a checkpoint whose weights start a new phase: fresh optimiser, its own warm-up and "
                         "cosine over --minutes, steps and wall time counted on from the checkpoint's")
    ap.add_argument("--fresh-branch", action="store_true",
                    help="with --finetune and --tilt-branch: keep the checkpoint's backbone only, the branch from zero")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    os.makedirs(args.out, exist_ok=True)
    logf = open(os.path.join(args.out, "train.log"), "a", buffering=1)

    def log(msg):
        line = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {msg}"
        print(line, flush=True)
        logf.write(line + "\n")

    if (args.tilt_roughness or args.tilt_reads_backbone or args.sun_elevation) and not args.tilt_branch:
        raise SystemExit("--tilt-roughness, --tilt-reads-backbone and --sun-elevation change the tilt branch: "
                         "give --tilt-branch too")
    if args.freeze_tilt and not (args.sun_elevation and args.freeze_backbone):
        raise SystemExit("--freeze-tilt trains the sun elevation's path alone: give --sun-elevation and "
                         "--freeze-backbone too")
    # only the options given: a plain run's config stays as before there were any
    branch = {key: True for key in BRANCH_OPTIONS if getattr(args, key)}
    net = dict(NET_CONFIGS[args.model], head=args.head, **branch)
    model = N.build(args.model, **net).to(device).to(memory_format=torch.channels_last)
    if args.freeze_backbone:  # no gradient through the backbone: a step costs its forward pass alone
        if not args.tilt_branch:
            raise SystemExit("--freeze-backbone trains the tilt branch alone: give --tilt-branch too")
        model.backbone.requires_grad_(False)
    if args.freeze_tilt:  # everything but the elevation's path
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name.startswith("sun."))
    if args.onnx_backbone and not (args.freeze_backbone and device.type == "cpu"):
        raise SystemExit("--onnx-backbone runs a frozen backbone on the CPU: give --freeze-backbone, without a GPU")
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=1e-4)
    assert args.crop % model.multiple == 0, f"--crop must be a multiple of {model.multiple}"
    command = "python -m training.train " + " ".join(sys.argv[1:] if argv is None else argv)
    train_dems = data.load_dems("train", args.corpus_cache)
    heldout_dems = data.load_dems("heldout", args.heldout_cache)
    cfg = dict(model=args.model, net=net, height_units="pixel", crop=args.crop, frozen_backbone=args.freeze_backbone,
               **({"frozen_tilt": True} if args.freeze_tilt else {}),
               batch=args.batch, flip_double=args.flip_double, lr=args.lr, seed=args.seed,
               command=command,
               hardware=hardware_string(device), train_sites=[d.name for d in train_dems],
               heldout_sites=[d.name for d in heldout_dems])
    step, t0, best_r = 0, time.time(), -2.0
    if args.fresh_branch and not (args.finetune and args.tilt_branch):
        raise SystemExit("--fresh-branch starts a new tilt branch over a checkpoint's backbone: give --finetune and "
                         "--tilt-branch")
    if args.resume and args.finetune:
        raise SystemExit("--resume and --finetune exclude each other")
    if args.resume or args.finetune:  # weights, steps and wall time carry on from the checkpoint
        ck = torch.load(args.resume or args.finetune, map_location=device, weights_only=False)
        if args.resume:
            head = N.head_of(ck["config"]["net"])
            if head != args.head:
                raise SystemExit(f"{args.resume} has a {head} head: resume it with --head {head} "
                                 "(or --finetune to change the head)")
            trained = {key: True for key in BRANCH_OPTIONS if ck["config"]["net"].get(key)}
            if trained != branch:
                flags = " ".join("--" + key.replace("_", "-") for key in trained) or "no branch options"
                raise SystemExit(f"{args.resume} was trained with {flags}: resume it with the same, or --finetune "
                                 "to change the branch")
            model.load_state_dict(ck["model"])
        else:
            state = ck["model"]
            if args.fresh_branch and any(k.startswith("backbone.") for k in state):  # a plain one has no branch
                state = {k: v for k, v in state.items() if k.startswith("backbone.")}  # the branch from zero
            fresh = load_matching_weights(model, state)
            if fresh:
                log(f"weights left fresh (no match in {args.finetune}): {', '.join(fresh)}")
        step, t0, previous = ck["steps"], t0 - ck["wall_s"], ck["config"]
        trained_with = previous.get("losses", LOSS_WEIGHTS)  # checkpoints from before --loss used the default
    if args.resume:  # one phase, one loss: the card names a phase's loss once
        if args.loss not in (None, trained_with):
            raise SystemExit(f"{args.resume} was trained with --loss {format_loss_weights(trained_with)}: "
                             "resume it with that loss, or start a new phase with --finetune")
        args.loss = dict(trained_with)
    cfg["losses"] = args.loss = args.loss or dict(LOSS_WEIGHTS)
    if args.resume and args.scale_range is None:  # a resumed phase keeps its views
        args.scale_range = tuple(previous.get("scale_range", DEFAULT_SCALE_RANGE))
    cfg["scale_range"] = list(args.scale_range or DEFAULT_SCALE_RANGE)
    for key, (default, accepted, ok) in RENDER_SETTINGS.items():
        value = getattr(args, key)
        if args.resume and value is None:  # a resumed phase keeps its renders
            value = previous.get(key, default)
        if value is not None and not ok(value):
            raise SystemExit(f"--{key.replace('_', '-')} must be in {accepted}, got {value}")
        cfg[key] = default if value is None else value
    if args.finetune:  # a new phase: fresh optimiser, its own schedule from here
        cfg["phase_start"] = dict(wall_s=ck["wall_s"], step=step, before=dict(
            batch=previous["batch"], crop=previous["crop"], lr=previous["lr"], hardware=previous["hardware"],
            head=N.head_of(previous["net"]), losses=trained_with,
            **render_settings(previous)))
        cfg["history"] = phase_records(previous, step, ck["wall_s"])
        cfg["command"] = previous["command"] + " ; fine-tuned: " + command
        log(f"fine-tuning from {args.finetune} (step {step}, {ck['wall_s'] / 60:.1f} min done)")
    if args.resume:
        if os.path.exists(optimiser_path(args.resume)):
            optimiser.load_state_dict(torch.load(optimiser_path(args.resume), map_location=device))
        else:
            log(f"no {optimiser_path(args.resume)}: the optimiser starts afresh")
        best_r = ck.get("best_r", best_r)
        if "phase_start" in previous:  # a resumed fine-tune keeps its schedule and history
            cfg["phase_start"] = previous["phase_start"]
        if "history" in previous:
            cfg["history"] = previous["history"]
        cfg["command"] = previous["command"] + " ; resumed: " + command
        log(f"resumed from {args.resume} at step {step}, {ck['wall_s'] / 60:.1f} min done, best r {best_r:.4f}")
    log(f"start {command} device={cfg['hardware']} params={N.n_params(model)} "
        f"train sites {len(train_dems)}, held-out {cfg['heldout_sites']}")
    heldout = data.heldout_views(heldout_dems, args.crop, args.n_heldout, with_flat=args.tilt_branch,
                                 with_sun_elevation=args.sun_elevation)
    run_model = model
    if args.onnx_backbone:  # after loading the weights: the export is of the backbone this run keeps frozen
        from training.onnx_backbone import OnnxBackbone
        onnx_backbone = OnnxBackbone(model.backbone, os.path.join(args.out, "frozen_backbone.onnx"), args.threads)
        share = onnx_backbone.check(model.backbone, heldout[0][:2, :1])
        log(f"frozen backbone run by onnxruntime (differs from PyTorch's by {share:.1e} of the output's spread)")

        def run_model(x):
            return model(x, heights=onnx_backbone(x[:, :1]))
    batches = iter(data.loader(train_dems, args.crop, args.batch, args.workers, args.seed + step,
                               scale_range=tuple(cfg["scale_range"]), albedo_contrast=cfg["albedo_contrast"],
                               tilt_max=cfg["tilt_max"], tilt_direction=cfg["tilt_direction"],
                               with_flat=args.tilt_branch, with_sun_elevation=args.sun_elevation))
    budget = args.minutes * 60.0
    phase = cfg.get("phase_start", dict(wall_s=0.0, step=0))  # where the learning-rate schedule starts

    def save(path, metrics, with_optimiser=False):
        ck = dict(config=cfg, model=model.state_dict(), steps=step, wall_s=time.time() - t0, best_r=best_r,
                  metrics=metrics)
        _atomic_save(ck, path)
        if with_optimiser:  # beside it, moments in bf16: each file stays small enough to fetch and keep
            _atomic_save(compact_optimiser_state(optimiser.state_dict()), optimiser_path(path))

    def evaluate_and_keep_best():
        nonlocal best_r
        metrics = evaluate(model, heldout, device, run_model)
        log(f"eval step {step} " + " ".join(f"heldout_{k} {v:.4f}" for k, v in metrics.items()))
        if metrics["r"] > best_r:
            best_r = metrics["r"]
            save(os.path.join(args.out, "best.pt"), metrics)
        save(os.path.join(args.out, "last.pt"), metrics, with_optimiser=True)
        return metrics

    sums, last_eval, data_wait = {}, time.time(), 0.0
    if args.finetune:
        evaluate_and_keep_best()  # the starting point, on this run's held-out views
        last_eval = time.time()
    while time.time() - t0 - phase["wall_s"] < budget and not (args.max_steps and step >= args.max_steps):
        waited = time.time()
        x, t, m = (v.to(device, non_blocking=True) for v in next(batches))
        data_wait += time.time() - waited
        if args.flip_double:
            x, t, m = (torch.cat([v, v.flip(-2)]) for v in (x, t, m))
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(args.lr, time.time() - t0 - phase["wall_s"], budget, step - phase["step"])
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            pred = run_model(x.contiguous(memory_format=torch.channels_last))
        loss, terms = losses(pred, t, m, args.loss)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        step += 1
        for k, v in dict(loss=loss, **terms).items():
            sums[k] = sums.get(k, 0.0) + v.detach()  # summed on the device: no sync per step
        if step % args.log_every == 0:
            elapsed = time.time() - t0
            log(f"step {step} " + " ".join(f"{k} {float(v) / args.log_every:.4f}" for k, v in sums.items())
                + f" s/step {(elapsed - phase['wall_s']) / (step - phase['step']):.3f} data_wait {data_wait / args.log_every:.3f} elapsed_min {elapsed / 60:.1f}")
            sums, data_wait = {}, 0.0
        if time.time() - last_eval >= args.eval_minutes * 60:
            evaluate_and_keep_best()
            last_eval = time.time()
    metrics = evaluate_and_keep_best()
    elapsed = time.time() - t0
    log("done " + json.dumps(dict(steps=step, wall_s=round(elapsed, 1), best_heldout_r=best_r, final=metrics)))


if __name__ == "__main__":
    main()
