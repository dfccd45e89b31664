"""Export a trained generator to ONNX obeying the plugin's model contract.

    python -m training.export --checkpoint runs/<model>/best.pt --out models/<model>.onnx

Contract: input `image` float32 [N,1,H,W] in [-1,1] (8-bit v/127.5-1), H, W
multiples of `input_multiple`; output `elevation` float32 [N,1,H,W] in [-1,1]
where -1 = 0 m and +1 = 39,586 m of relief above the tile minimum.
"""
from __future__ import annotations

import argparse
import os
import warnings

import numpy as np
import onnx
import torch
import torch.nn as nn

from training import networks as N

ELEVATION_RANGE_M = 39586.0


class ContractWrapper(nn.Module):
    def __init__(self, G, target_unit_m):
        super().__init__()
        self.G = G
        self.scale = float(target_unit_m) / ELEVATION_RANGE_M * 2.0

    def forward(self, image):
        relief_units = self.G(image)
        return relief_units * self.scale - 1.0  # relief_m / 39586 * 2 - 1


def model_card(ck, ckpt_path):
    cfg = ck["config"]
    arch = cfg["model"]
    G = N.build(arch, **cfg["net"])
    multiple = G.multiple
    if arch == "pix2pixcc":
        name = "Pix2PixCC Mars synthetic"
        net_desc = (f"Pix2PixCC generator n_gf={cfg['net']['n_gf']} n_downsample={cfg['net']['n_downsample']} "
                    f"n_residual={cfg['net']['n_residual']}, 2-scale PatchGAN n_df=16; loss {cfg['losses']}")
    else:
        name = "MRFED Mars synthetic"
        net_desc = (f"MRFED widths = paper/{cfg['net']['width_div']}, BN+ReLU in cascades, xavier-normal init; "
                    f"loss {cfg['losses']}")
    val = ""
    if "val_r" in ck:
        val = f"; held-out synthetic val (seeds {cfg['heldout_seeds']}, 256 px) Pearson r {ck['val_r']:.4f}, MAE {ck['val_mae_m']:.1f} m"
    props = {
        "name": name,
        "version": "1.0.0",
        "architecture": arch,
        "input_size": "1024",
        "input_multiple": str(multiple),
        "input_normalisation": "8-bit v/127.5-1; deeper types percentile-stretched by the engine",
        "input_range": "-1,1",
        "output_range": "-1,1",
        "elevation_range_m": "0,39586",
        "sun_azimuth_deg": "270",
        "training_gsd_m": "50",
        "license": "GPL-2.0-or-later",
        "training_data": f"{cfg['recipe']}; train seeds {cfg['train_seeds']} (seed {cfg['seed']}), never any real/validation DEM",
        "training": (f"{ck['steps']} steps, {ck['wall_s'] / 60:.1f} min wall, batch {cfg['batch']} x {cfg['crop']}px, "
                     f"Adam lr {cfg['lr']}, {cfg['hardware']}; {net_desc}; command: {cfg['command']}{val}; "
                     f"checkpoint {os.path.basename(ckpt_path)}"),
    }
    return G, props


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--opset", type=int, default=17)
    args = ap.parse_args(argv)

    ck = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    G, props = model_card(ck, args.checkpoint)
    G.load_state_dict(ck["model"])
    W = ContractWrapper(G, ck["config"]["target_unit_m"]).eval()

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    dummy = torch.zeros(1, 1, 256, 256)
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
    x = rng.uniform(-1, 1, (1, 1, 256, 384)).astype(np.float32)
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
    assert diff <= 1e-4, diff
    assert size <= 10 * 2 ** 20, size


if __name__ == "__main__":
    main()
