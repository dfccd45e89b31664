"""Train a DTM generator on on-the-fly simulated pairs.

    python -m training.train --model pix2pixcc|mrfed --minutes M --seed S --out runs/<model> [--threads T]

Training samples use simulator seeds  seed*10**7 + k  (< 10**9); the held-out
validation set uses seeds 10**9 + j (never used for training).  The network
predicts relief (h - min h) in units of ``target_unit_m`` metres (100 m).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from training import networks as N
from training import simulator as sim

TARGET_UNIT_M = 100.0


def hardware_string(device):
    if device.type == "cuda":
        return f"CUDA {torch.cuda.get_device_name(0)}"
    return f"CPU {platform.machine()} x{torch.get_num_threads()} thread(s)"


def val_set(n, size):
    seeds = [sim.HELDOUT_SEED0 + j for j in range(n)]
    x, y = sim.batch(seeds, size)
    return torch.from_numpy(x), torch.from_numpy(y)


@torch.no_grad()
def evaluate(G, xv, yv, device, bs=4):
    G.eval()
    rs, maes = [], []
    for i in range(0, len(xv), bs):
        x = xv[i:i + bs].to(device)
        y = yv[i:i + bs].to(device)
        p = G(x) * TARGET_UNIT_M  # predicted relief (m), used as is, like the engine does
        rs.append(N.pearson(p, y).cpu())
        maes.append((p - y).abs().flatten(1).mean(1).cpu())
    G.train()
    return float(torch.cat(rs).mean()), float(torch.cat(maes).mean())


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, choices=["pix2pixcc", "mrfed"])
    ap.add_argument("--minutes", type=float, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--crop", type=int, default=192)
    ap.add_argument("--batch", type=int, default=None, help="default 4 (pix2pixcc) / 8 (mrfed)")
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--ckpt-minutes", type=float, default=5.0)
    ap.add_argument("--eval-minutes", type=float, default=5.0)
    ap.add_argument("--n-val", type=int, default=16)
    ap.add_argument("--val-size", type=int, default=256)
    ap.add_argument("--lambda-fm", type=float, default=10.0)
    ap.add_argument("--lambda-cc", type=float, default=5.0)
    ap.add_argument("--lambda-l1", type=float, default=10.0)
    ap.add_argument("--width-div", type=int, default=8)
    ap.add_argument("--resume", default=None,
                    help="continue from a checkpoint (last.pt): weights, step count and wall time carry on; "
                         "--minutes is then the total budget")
    args = ap.parse_args(argv)
    assert 0 <= args.seed < 100
    if args.batch is None:
        args.batch = 4 if args.model == "pix2pixcc" else 8

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    os.makedirs(args.out, exist_ok=True)
    logf = open(os.path.join(args.out, "train.log"), "a", buffering=1)
    command = "python -m training.train " + " ".join(sys.argv[1:] if argv is None else argv)

    def log(msg):
        line = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {msg}"
        print(line, flush=True)
        logf.write(line + "\n")

    if args.model == "pix2pixcc":
        net_cfg = dict(in_ch=1, out_ch=1, n_gf=16, n_downsample=3, n_residual=4)
        lr = args.lr or 2e-4
        betas = (0.5, 0.999)
    else:
        net_cfg = dict(in_ch=1, out_ch=1, width_div=args.width_div)
        lr = args.lr or 1e-4
        betas = (0.9, 0.999)
    G = N.build(args.model, **net_cfg).to(device)
    optG = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
    D = optD = None
    if args.model == "pix2pixcc":
        D = N.MultiScaleDiscriminator(in_ch=2, n_df=16, n_D=2).to(device)
        optD = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
    assert args.crop % G.multiple == 0

    log(f"start {command} device={hardware_string(device)} G params={N.n_params(G)} "
        f"lr={lr} crop={args.crop} batch={args.batch}")
    xv, yv = val_set(args.n_val, args.val_size)

    cfg = dict(model=args.model, net=net_cfg, target_unit_m=TARGET_UNIT_M, crop=args.crop,
               batch=args.batch, lr=lr, seed=args.seed, gsd_m=sim.GSD_M,
               sun_azimuth_deg=sim.SUN_AZIMUTH_DEG, recipe=sim.RECIPE,
               train_seeds=f"simulator seeds {args.seed}*10^7 + k (< 10^9)",
               heldout_seeds=f"10^9 .. 10^9+{args.n_val - 1}",
               losses=("LSGAN + %g*FM + %g*CC(4 scales) + %g*L1" % (args.lambda_fm, args.lambda_cc, args.lambda_l1))
               if args.model == "pix2pixcc" else "L1 (MAE)",
               command=command, hardware=hardware_string(device))

    best_r = -2.0
    step = 0
    t0 = time.time()
    if args.resume:
        ck = torch.load(args.resume, map_location=device, weights_only=False)
        G.load_state_dict(ck["model"])
        for module, key in ((optG, "opt_g"), (D, "disc"), (optD, "opt_d")):
            if module is not None and key in ck:
                module.load_state_dict(ck[key])
        step, t0 = ck["steps"], t0 - ck["wall_s"]
        best_path = os.path.join(args.out, "best.pt")
        if os.path.exists(best_path):
            best_r = torch.load(best_path, map_location="cpu", weights_only=False).get("val_r", best_r)
        cfg["command"] = ck["config"]["command"] + " ; resumed: " + command
        log(f"resumed from {args.resume} at step {step}, {ck['wall_s'] / 60:.1f} min done, best r {best_r:.4f}")
    last_ckpt = last_eval = time.time()  # not t0: a resumed run's checkpoint was evaluated and saved just now
    budget = args.minutes * 60.0
    acc = {}

    def save(path, extra):
        ck = dict(config=cfg, model=G.state_dict(), steps=step, wall_s=time.time() - t0, opt_g=optG.state_dict(),
                  **extra)
        if D is not None:
            ck.update(disc=D.state_dict(), opt_d=optD.state_dict())
        tmp = path + ".tmp"
        torch.save(ck, tmp)
        os.replace(tmp, path)

    def do_eval():
        nonlocal best_r
        r, mae = evaluate(G, xv, yv, device)
        log(f"eval step {step} val_pearson_r {r:.4f} val_mae_m {mae:.1f}")
        if r > best_r:
            best_r = r
            save(os.path.join(args.out, "best.pt"), dict(val_r=r, val_mae_m=mae))
        return r, mae

    while True:
        el = time.time() - t0
        if el >= budget or (args.max_steps and step >= args.max_steps):
            break
        seeds = [args.seed * 10 ** 7 + step * args.batch + i for i in range(args.batch)]
        assert seeds[-1] < sim.HELDOUT_SEED0
        xb, yb = sim.batch(seeds, args.crop)
        x = torch.from_numpy(xb).to(device)
        y = torch.from_numpy(yb / TARGET_UNIT_M).to(device)
        if args.model == "pix2pixcc":
            fake = G(x)
            # D step
            real_out = D(torch.cat([x, y], 1))
            fake_out = D(torch.cat([x, fake.detach()], 1))
            lossD = N.lsgan_d_loss(real_out, fake_out)
            optD.zero_grad(set_to_none=True)
            lossD.backward()
            optD.step()
            # G step
            fake_out = D(torch.cat([x, fake], 1))
            with torch.no_grad():
                real_out = D(torch.cat([x, y], 1))
            l_gan = N.lsgan_g_loss(fake_out)
            l_fm = N.feature_matching_loss(real_out, fake_out)
            l_cc = N.cc_loss(fake, y)
            l_l1 = F.l1_loss(fake, y)
            lossG = l_gan + args.lambda_fm * l_fm + args.lambda_cc * l_cc + args.lambda_l1 * l_l1
            optG.zero_grad(set_to_none=True)
            lossG.backward()
            optG.step()
            vals = dict(D=lossD.item(), G=lossG.item(), gan=l_gan.item(), fm=l_fm.item(),
                        cc=l_cc.item(), l1=l_l1.item())
        else:
            pred = G(x)
            loss = F.l1_loss(pred, y)
            optG.zero_grad(set_to_none=True)
            loss.backward()
            optG.step()
            vals = dict(l1=loss.item())
        step += 1
        for k, v in vals.items():
            acc[k] = acc.get(k, 0.0) + v
        if step % args.log_every == 0:
            el = time.time() - t0
            log(f"step {step} " + " ".join(f"{k} {v / args.log_every:.4f}" for k, v in acc.items())
                + f" s/step {el / step:.3f} elapsed_min {el / 60:.1f}")
            acc = {}
        now = time.time()
        if now - last_eval >= args.eval_minutes * 60:
            do_eval()
            last_eval = time.time()
        if now - last_ckpt >= args.ckpt_minutes * 60:
            save(os.path.join(args.out, "last.pt"), {})
            last_ckpt = time.time()

    r, mae = do_eval()
    save(os.path.join(args.out, "last.pt"), dict(val_r=r, val_mae_m=mae))
    el = time.time() - t0
    summary = dict(steps=step, wall_s=round(el, 1), s_per_step=round(el / max(step, 1), 3),
                   best_val_r=best_r, final_val_r=r, final_val_mae_m=mae)
    log("done " + json.dumps(summary))


if __name__ == "__main__":
    main()
