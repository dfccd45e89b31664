"""A frozen backbone run by onnxruntime, for branch-only training on a CPU (train.py --onnx-backbone).

With --freeze-backbone a step's cost is nearly all the backbone's forward pass, and onnxruntime's CPU kernels
run these generators several times faster than PyTorch's (Pix2PixCC: a 1024² window in about 0.9 s on two
threads, against about 4 s a thread in PyTorch). The backbone is exported as it is at the start of the run, to a
file beside the run's checkpoints, and checked against PyTorch on a batch before training starts.
"""
import os
import warnings

import numpy as np
import torch

AGREEMENT = 1e-3  # largest difference allowed, as a share of the output's spread


class OnnxBackbone:
    def __init__(self, backbone, path, threads):
        import onnxruntime as ort
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            side = 4 * backbone.multiple  # InstanceNorm needs more than one element at the deepest level
            dummy = torch.zeros(1, 1, side, side)
            dynamic = {"image": {0: "n", 2: "h", 3: "w"}, "heights": {0: "n", 2: "h", 3: "w"}}
            torch.onnx.export(_Float32(backbone), (dummy,), path, input_names=["image"],
                              output_names=["heights"], dynamic_axes=dynamic, opset_version=17, dynamo=False)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count()
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    @torch.no_grad()
    def __call__(self, image):
        """Heights [N, 1, H, W] for images [N, 1, H, W] (CPU tensors)."""
        array = np.ascontiguousarray(image.float().numpy())
        return torch.from_numpy(self.session.run(None, {"image": array})[0])

    @torch.no_grad()
    def check(self, backbone, image):
        """The largest difference from PyTorch's output on `image`, as a share of its spread; SystemExit past AGREEMENT."""
        expected = backbone(image).float()
        share = float((self(image) - expected).abs().max() / (expected.max() - expected.min()).clamp_min(1e-12))
        if share > AGREEMENT:
            raise SystemExit(f"--onnx-backbone: onnxruntime's backbone differs from PyTorch's by {share:.2e} of the "
                             "output's spread: train without --onnx-backbone")
        return share


class _Float32(torch.nn.Module):
    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone

    def forward(self, image):
        return self.backbone(image).float()
