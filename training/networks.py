"""Generators, discriminator and losses for DTM estimation.  Never imported by the plugin.

* Pix2PixCC (Jeon et al. 2022) generator + 2-scale PatchGAN discriminator,
  LSGAN + feature matching + multi-scale correlation-coefficient (Inspector) loss.
* MRFED: five-level encoder-decoder with multi-scale residual fusion blocks.
Both are fully convolutional (H, W multiples of the total stride).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


# ----------------------------------------------------------------------------
# Pix2PixCC
# ----------------------------------------------------------------------------
class ResidualBlock(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch), nn.Mish(),
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch))

    def forward(self, x):
        return x + self.body(x)


class Pix2PixCCGenerator(nn.Module):
    def __init__(self, in_ch=1, out_ch=1, n_gf=16, n_downsample=3, n_residual=4):
        super().__init__()
        self.config = dict(in_ch=in_ch, out_ch=out_ch, n_gf=n_gf, n_downsample=n_downsample,
                           n_residual=n_residual)
        self.multiple = 2 ** n_downsample
        ch = n_gf
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_ch, ch, 7), nn.InstanceNorm2d(ch), nn.Mish()]
        for _ in range(n_downsample):
            layers += [nn.Conv2d(ch, 2 * ch, 5, stride=2, padding=2), nn.InstanceNorm2d(2 * ch), nn.Mish()]
            ch *= 2
        layers += [ResidualBlock(ch) for _ in range(n_residual)]
        for _ in range(n_downsample):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1),
                       nn.InstanceNorm2d(ch // 2), nn.Mish()]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_ch, 7)]  # no output activation
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """70x70-style PatchGAN returning all intermediate features (last = patch logits)."""

    def __init__(self, in_ch=2, n_df=16):
        super().__init__()
        act = lambda: nn.LeakyReLU(0.2, inplace=False)  # noqa: E731
        self.blocks = nn.ModuleList([
            nn.Sequential(nn.Conv2d(in_ch, n_df, 4, 2, 1), act()),
            nn.Sequential(nn.Conv2d(n_df, 2 * n_df, 4, 2, 1), nn.InstanceNorm2d(2 * n_df), act()),
            nn.Sequential(nn.Conv2d(2 * n_df, 4 * n_df, 4, 2, 1), nn.InstanceNorm2d(4 * n_df), act()),
            nn.Sequential(nn.Conv2d(4 * n_df, 8 * n_df, 4, 1, 1), nn.InstanceNorm2d(8 * n_df), act()),
            nn.Conv2d(8 * n_df, 1, 4, 1, 1),
        ])

    def forward(self, x):
        feats = []
        for b in self.blocks:
            x = b(x)
            feats.append(x)
        return feats


class MultiScaleDiscriminator(nn.Module):
    def __init__(self, in_ch=2, n_df=16, n_D=2):
        super().__init__()
        self.ds = nn.ModuleList([PatchDiscriminator(in_ch, n_df) for _ in range(n_D)])

    def forward(self, x):
        out = []
        for i, d in enumerate(self.ds):
            if i > 0:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            out.append(d(x))
        return out


def lsgan_d_loss(real_out, fake_out):
    loss = 0.0
    for r, f in zip(real_out, fake_out):
        loss = loss + 0.5 * (F.mse_loss(r[-1], torch.ones_like(r[-1])) + F.mse_loss(f[-1], torch.zeros_like(f[-1])))
    return loss / len(real_out)


def lsgan_g_loss(fake_out):
    return sum(F.mse_loss(f[-1], torch.ones_like(f[-1])) for f in fake_out) / len(fake_out)


def feature_matching_loss(real_out, fake_out):
    loss, n = 0.0, 0
    for r, f in zip(real_out, fake_out):
        for rf, ff in zip(r[:-1], f[:-1]):
            loss = loss + F.l1_loss(ff, rf.detach())
            n += 1
    return loss / n


def pearson(a, b, eps=1e-8):
    """Per-sample Pearson correlation of [N, C, H, W] tensors -> [N]."""
    a = a.flatten(1)
    b = b.flatten(1)
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + eps)


def cc_loss(fake, real, n_scales=4):
    """Inspector loss: mean(1 - CC) over scales full, /2, /4, /8 (avg-pool)."""
    loss = 0.0
    for s in range(n_scales):
        if s > 0:
            fake = F.avg_pool2d(fake, 2)
            real = F.avg_pool2d(real, 2)
        loss = loss + (1.0 - pearson(fake, real)).mean()
    return loss / n_scales


# ----------------------------------------------------------------------------
# MRFED
# ----------------------------------------------------------------------------
def _cascade(ch, n):
    """n cascaded 3x3 convs (same channels/size), each followed by BN + ReLU."""
    if n == 0:
        return nn.Identity()
    layers = []
    for _ in range(n):
        layers += [nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class MRFBlock(nn.Module):
    """Multi-scale residual fusion block.

    1x1 conv in->c; split into 4 groups x1..x4; y1=x1, yi = K_i(x_i) with i-1
    cascaded 3x3 convs; concat; then a stride-2 3x3 conv (encoder, c -> 2c = out)
    or a stride-2 3x3 transposed conv (decoder, c -> c/2 = out); residual: the
    block input through its own stride-2 (transposed) 3x3 conv to the same shape.
    """

    def __init__(self, in_ch, out_ch, up=False):
        super().__init__()
        c = out_ch // 2 if not up else out_ch * 2
        assert c % 4 == 0
        self.c = c
        self.inp = nn.Sequential(nn.Conv2d(in_ch, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        g = c // 4
        self.k = nn.ModuleList([_cascade(g, i) for i in range(4)])
        if up:
            self.resample = nn.ConvTranspose2d(c, out_ch, 3, stride=2, padding=1, output_padding=1)
            self.skip = nn.ConvTranspose2d(in_ch, out_ch, 3, stride=2, padding=1, output_padding=1)
        else:
            self.resample = nn.Conv2d(c, out_ch, 3, stride=2, padding=1)
            self.skip = nn.Conv2d(in_ch, out_ch, 3, stride=2, padding=1)
        self.post = nn.Sequential(nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))

    def forward(self, x):
        z = self.inp(x)
        parts = torch.chunk(z, 4, dim=1)
        y = torch.cat([k(p) for k, p in zip(self.k, parts)], dim=1)
        return self.post(self.resample(y) + self.skip(x))


class MRFED(nn.Module):
    """Paper widths (64,128,256,512,1024) divided by ``width_div``."""

    def __init__(self, in_ch=1, out_ch=1, width_div=8):
        super().__init__()
        self.config = dict(in_ch=in_ch, out_ch=out_ch, width_div=width_div)
        self.multiple = 32
        w = [64 // width_div * 2 ** i for i in range(5)]  # e.g. /8: 8,16,32,64,128
        self.enc = nn.ModuleList([MRFBlock(in_ch if i == 0 else w[i - 1], w[i]) for i in range(5)])
        # decoder: 16->32 (w3), cat w3 -> 2w3; ... ; last block 2*w0 -> w0 at full resolution
        self.dec = nn.ModuleList([
            MRFBlock(w[4], w[3], up=True),
            MRFBlock(2 * w[3], w[2], up=True),
            MRFBlock(2 * w[2], w[1], up=True),
            MRFBlock(2 * w[1], w[0], up=True),
            MRFBlock(2 * w[0], w[0], up=True),
        ])
        self.head = nn.Conv2d(w[0], out_ch, 1)  # linear output
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.xavier_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        skips = []
        for e in self.enc:
            x = e(x)
            skips.append(x)
        # skips[0..3] are concatenated after decoder blocks 4..1
        for i, d in enumerate(self.dec):
            x = d(x)
            if i < 4:
                x = torch.cat([x, skips[3 - i]], dim=1)
        return self.head(x)


def build(name: str, **kw) -> nn.Module:
    if name == "pix2pixcc":
        return Pix2PixCCGenerator(**kw)
    if name == "mrfed":
        return MRFED(**kw)
    raise ValueError(name)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


if __name__ == "__main__":
    import time
    torch.set_num_threads(1)
    for name, kw in [("pix2pixcc", {}), ("mrfed", {"width_div": 8}), ("mrfed", {"width_div": 4})]:
        m = build(name, **kw)
        x = torch.randn(4, 1, 192, 192)
        t = time.perf_counter()
        y = m(x)
        y.mean().backward()
        print(name, kw, "params", n_params(m), "out", tuple(y.shape), f"fwd+bwd b4 192: {time.perf_counter()-t:.2f}s")
    d = MultiScaleDiscriminator()
    print("D params", n_params(d))
