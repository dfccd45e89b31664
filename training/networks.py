"""The two DTM generators and their losses.  Never imported by the plugin.

Both predict height in pixel units (height / ground pixel size) and see the whole 1024-px window:
* Pix2PixCC (Jeon et al. 2022, on pix2pixHD's global generator): 7×7 stem, strided convolutions down
  to 1/64, residual blocks there and at 1/8, transposed convolutions back up; encoder features are
  added back at each scale (pix2pixHD's local-enhancer sum), InstanceNorm + Mish.
* MRFED (the seed paper's multi-scale residual fusion encoder-decoder): MRF blocks down to 1/128 and
  back with concatenated skips; GroupNorm instead of BatchNorm, so training and inference agree.
Both are fully convolutional; H and W must be multiples of `multiple`.

With `head="slopes"` either one predicts the two slope fields (∂z/∂x, ∂z/∂y, pixel units) instead of
heights, and a fixed layer integrates them by least squares (SlopeIntegratingGenerator): the long
wavelengths then follow from slopes seen locally, as in Pentland's and Frankot–Chellappa's global
integration, instead of being guessed from context.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from terrain.engine_parts import grey_levels


# ---- Pix2PixCC ----------------------------------------------------------------------------------
class ResidualBlock(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch, affine=True), nn.Mish(),
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch, affine=True))

    def forward(self, x):
        return x + self.body(x)


def _down(cin, cout, kernel):
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride=2, padding=kernel // 2),
                         nn.InstanceNorm2d(cout, affine=True), nn.Mish())


def _up(cin, cout):
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1),
                         nn.InstanceNorm2d(cout, affine=True), nn.Mish())


class Pix2PixCCGenerator(nn.Module):
    def __init__(self, in_ch=1, out_ch=1, n_gf=16, n_downsample=6, n_residual=4, n_mid_residual=1,
                 max_ch=128, mid_level=3):
        super().__init__()
        self.config = dict(in_ch=in_ch, out_ch=out_ch, n_gf=n_gf, n_downsample=n_downsample,
                           n_residual=n_residual, n_mid_residual=n_mid_residual, max_ch=max_ch,
                           mid_level=mid_level)
        self.multiple = 2 ** n_downsample
        self.mid_level = mid_level
        widths = [min(n_gf * 2 ** i, max_ch) for i in range(n_downsample + 1)]
        self.stem = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(in_ch, n_gf, 7),
                                  nn.InstanceNorm2d(n_gf, affine=True), nn.Mish())
        # 5×5 strides at the fine levels (as in Pix2PixCC), 3×3 below, where channels are many
        self.down = nn.ModuleList([_down(widths[i], widths[i + 1], 5 if i < 3 else 3) for i in range(n_downsample)])
        self.mid = nn.Sequential(*[ResidualBlock(widths[mid_level]) for _ in range(n_mid_residual)])
        self.bottom = nn.Sequential(*[ResidualBlock(widths[-1]) for _ in range(n_residual)])
        self.up = nn.ModuleList([_up(widths[i + 1], widths[i]) for i in reversed(range(n_downsample))])
        self.head = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(n_gf, out_ch, 7))  # linear output

    def forward(self, x):
        x = self.stem(x)
        skips = [x]
        for level, down in enumerate(self.down, start=1):
            x = down(x)
            if level == self.mid_level:
                x = self.mid(x)
            skips.append(x)
        x = self.bottom(x)
        for up, skip in zip(self.up, reversed(skips[:-1])):
            x = up(x) + skip
        return self.head(x)


# ---- MRFED --------------------------------------------------------------------------------------
def _norm(ch):
    return nn.GroupNorm(min(4, ch), ch)


def _cascade(ch, n):
    """n cascaded 3×3 convolutions (same channels and size), each with GroupNorm + ReLU."""
    layers = []
    for _ in range(n):
        layers += [nn.Conv2d(ch, ch, 3, padding=1, bias=False), _norm(ch), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers) if layers else nn.Identity()


class MRFBlock(nn.Module):
    """Multi-scale residual fusion block: 1×1 conv to c channels, split in 4 groups x1..x4, y_i = K_i(x_i)
    with i-1 cascaded 3×3 convolutions, concatenated, then a stride-2 3×3 (transposed) convolution;
    residual: the block input through its own stride-2 (transposed) 3×3 convolution."""

    def __init__(self, in_ch, out_ch, up=False):
        super().__init__()
        c = out_ch * 2 if up else max(out_ch // 2, 4)
        self.inp = nn.Sequential(nn.Conv2d(in_ch, c, 1, bias=False), _norm(c), nn.ReLU(inplace=True))
        self.k = nn.ModuleList([_cascade(c // 4, i) for i in range(4)])
        if up:
            self.resample = nn.ConvTranspose2d(c, out_ch, 3, stride=2, padding=1, output_padding=1)
            self.skip = nn.ConvTranspose2d(in_ch, out_ch, 3, stride=2, padding=1, output_padding=1)
        else:
            self.resample = nn.Conv2d(c, out_ch, 3, stride=2, padding=1)
            self.skip = nn.Conv2d(in_ch, out_ch, 3, stride=2, padding=1)
        self.post = nn.Sequential(_norm(out_ch), nn.ReLU(inplace=True))

    def forward(self, x):
        parts = torch.chunk(self.inp(x), 4, dim=1)
        y = torch.cat([k(p) for k, p in zip(self.k, parts)], dim=1)
        return self.post(self.resample(y) + self.skip(x))


class MRFED(nn.Module):
    """Paper widths (64, 128, 256, 512, 1024) divided by `width_div`, capped at `max_ch`, over `levels`."""

    def __init__(self, in_ch=1, out_ch=1, width_div=8, levels=7, max_ch=128, head_kernel=1):
        super().__init__()
        self.config = dict(in_ch=in_ch, out_ch=out_ch, width_div=width_div, levels=levels, max_ch=max_ch,
                           head_kernel=head_kernel)
        self.multiple = 2 ** levels
        w = [min(64 // width_div * 2 ** i, max_ch) for i in range(levels)]
        self.enc = nn.ModuleList([MRFBlock(in_ch if i == 0 else w[i - 1], w[i]) for i in range(levels)])
        # decoder block j brings level L-1-j up one step; its output is concatenated with that encoder skip
        self.dec = nn.ModuleList([MRFBlock(w[-1], w[-2], up=True)]
                                 + [MRFBlock(2 * w[i], w[i - 1], up=True) for i in range(levels - 2, 0, -1)]
                                 + [MRFBlock(2 * w[0], w[0], up=True)])
        self.head = nn.Conv2d(w[0], out_ch, head_kernel, padding=head_kernel // 2)  # linear output
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
        for d, skip in zip(self.dec, reversed(skips[:-1])):
            x = torch.cat([d(x), skip], dim=1)
        return self.head(self.dec[-1](x))


# ---- slope integration ----------------------------------------------------------------------------
def dct_basis(n, like):
    """Orthonormal DCT-II matrix [n, n] and the Neumann Laplacian's eigenvalues 2 − 2cos(πk/n), built from
    n at run time (so an exported graph keeps dynamic H and W)."""
    k = torch.arange(n, dtype=like.dtype, device=like.device)
    basis = torch.cos(torch.pi * (k[None, :] + 0.5) * k[:, None] / n)
    scale = torch.where(k == 0, torch.sqrt(1.0 / (k * 0 + n)), torch.sqrt(2.0 / (k * 0 + n)))
    return basis * scale[:, None], 2.0 - 2.0 * torch.cos(torch.pi * k / n)


def integrate_slopes(slopes):
    """Least-squares heights [N,1,H,W] (mean 0) whose forward differences best match slopes [N,2,H,W]
    (x then y; the last column of x and last row of y have no partner pixel and are ignored).
    Solves the Neumann Poisson equation with the DCT as dense matrix products: exportable to ONNX and
    exact for slopes that are differences of a height field."""
    p, q = slopes[:, :1], slopes[:, 1:2]
    height, width = p.shape[-2], p.shape[-1]
    p = torch.cat([p[..., :, :-1], p[..., :, -1:] * 0], -1)
    q = torch.cat([q[..., :-1, :], q[..., -1:, :] * 0], -2)
    divergence = (torch.cat([p[..., :, :1] * 0, p[..., :, :-1]], -1) - p
                  + torch.cat([q[..., :1, :] * 0, q[..., :-1, :]], -2) - q)  # Dᵀ(p, q)
    rows, row_eig = dct_basis(height, p)
    cols, col_eig = dct_basis(width, p)
    eig = row_eig[:, None] + col_eig[None, :]
    spectrum = rows @ divergence @ cols.T
    spectrum = torch.where(eig > 0, spectrum / torch.where(eig > 0, eig, eig + 1), spectrum * 0)  # DC → 0
    return rows.T @ spectrum @ cols


class SlopeIntegratingGenerator(nn.Module):
    """A generator with a two-channel slope head, followed by integrate_slopes: outputs heights."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.multiple = backbone.multiple

    def forward(self, x):
        slopes = self.backbone(x).float()
        with torch.autocast(slopes.device.type, enabled=False):  # bf16 products would swamp the long waves
            return integrate_slopes(slopes)


# The flat-grey channel's "unknown" value, the engine's own (engine/grey_levels.py): far below any grey level
# (−1…1), it switches the plane off, so a model given no flat grey level runs as its backbone.
UNKNOWN_FLAT_LEVEL = grey_levels.UNKNOWN_FLAT_LEVEL


def flat_level_known(x):
    """[N] 1.0 where the input's flat-grey channel holds a grey level, 0.0 where it says unknown."""
    return (x[:, 1].mean((1, 2)) > UNKNOWN_FLAT_LEVEL / 2).to(x.dtype)


UNKNOWN_SUN_LEVEL = grey_levels.UNKNOWN_SUN_LEVEL


def sun_level_known(x):
    """[N] 1.0 where the input has a sun-elevation channel holding an elevation, else 0.0."""
    if x.shape[1] < 3:
        return x.new_zeros(x.shape[0])
    return (x[:, 2].mean((1, 2)) > UNKNOWN_SUN_LEVEL / 2).to(x.dtype)


def sun_path_on(x):
    """[N] 1.0 where the elevation's path of RegionalTiltGenerator works: both the elevation and the flat grey
    level known."""
    return sun_level_known(x) * flat_level_known(x)


def sun_tangent(x):
    """[N] tan(sun elevation) from the sun-elevation channel (45° where unknown), the elevation held to 5–80°:
    to first order a slope g towards the sun brightens a facet by cot(e)·g against flat ground, so g = ΔI/I·tan e."""
    level = x[:, 2].mean((1, 2)) if x.shape[1] >= 3 else x.new_zeros(x.shape[0])
    elevation = torch.where(sun_level_known(x) > 0, (level + 1.0) * 45.0, torch.full_like(level, 45.0))
    return torch.tan(elevation.clamp(5.0, 80.0) * (math.pi / 180.0))


class RegionalTiltGenerator(nn.Module):
    """A generator plus a plane read from the window's absolute brightness against flat ground's.

    Input: [N, 2, H, W], the image and a constant channel, the grey level of flat ground (training/data.py).
    A window tilted towards the sun is brighter as a whole; the backbones cannot see that (Pix2PixCC's
    InstanceNorm after its first convolution removes each window's mean and gain), and a fully convolutional
    network cannot turn a uniform cue into a ramp. This branch has no normalisation: it pools the image
    and the flat grey level to 1/8, convolves, averages over the window and maps that to two slopes (pixel
    units per pixel, x then y), drawn as a plane over the window. Its last layer starts at zero, so a
    fine-tune starts from the backbone's own output. A flat-grey channel at UNKNOWN_FLAT_LEVEL draws no plane.

    `roughness` adds a correction for what the 1/8 pooling hides: rough ground under a high sun is darker on
    average than flat ground (the mean of cos(incidence) over its facets falls), which the linear read takes
    for a tilt away from the sun. A small MLP sees the window's fine-scale (within 8 px) image spread beside
    the branch's summary and adds to the slopes; its last layer starts at zero, so it starts as the plain branch.

    `reads_backbone` lets the branch see the plane the backbone itself drew (its least-squares slopes over the
    window) and keep, weaken or replace it: both backbones tilt some scenes the wrong way along the light
    (Boulder Creek), and a branch that can only add to that plane must first cancel it. The slopes, and the
    slopes times the flat grey level (the sun's elevation), map linearly to a change of slopes; that map
    starts at zero, so it starts as the branch without it.

    `sun_elevation` adds a third input channel, the sun's elevation (engine/grey_levels.py), and a path that
    uses it where it is known (with the flat grey level): a window's brightness against flat ground gives its
    slope towards the sun only with the elevation (ΔI / I_flat ≈ cot(e)·g), and so does the image's contrast
    give the relief's amplitude. A small MLP reads `sun_features` (the branch's summary as it is and times
    tan(e), and first-order photometric estimates of the window's slope and contrast) and returns a change of
    the two slopes and a log gain on the backbone's heights. Its last layer starts at zero, and without a known elevation it is switched off: the model is
    then exactly the one without it.
    """
    # The backbone's slopes are around 0.1 pixel units a pixel and the map's weights must reach about 1 to
    # cancel them; AdamW moves a weight by about the learning rate a step, so the slopes are read ×10.
    PLANE_READ_SCALE = 10.0

    def __init__(self, backbone, width=32, pool=8, roughness=False, reads_backbone=False, sun_elevation=False):
        super().__init__()
        self.backbone, self.multiple, self.pool = backbone, backbone.multiple, pool
        self.features = nn.Sequential(
            nn.AvgPool2d(pool), nn.Conv2d(2, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU())
        self.slopes = nn.Linear(width + 3, 2)
        nn.init.zeros_(self.slopes.weight)
        nn.init.zeros_(self.slopes.bias)
        self.roughness = None
        if roughness:
            self.roughness = nn.Sequential(nn.Linear(width + 5, width), nn.ReLU(), nn.Linear(width, 2))
            nn.init.zeros_(self.roughness[-1].weight)
            nn.init.zeros_(self.roughness[-1].bias)
        self.backbone_plane = None
        if reads_backbone:
            self.backbone_plane = nn.Linear(4, 2, bias=False)
            nn.init.zeros_(self.backbone_plane.weight)
        self.sun = None
        if sun_elevation:
            self.sun = nn.Sequential(nn.Linear(2 * (width + 3) + 8, width), nn.ReLU(), nn.Linear(width, 3))
            nn.init.zeros_(self.sun[-1].weight)
            nn.init.zeros_(self.sun[-1].bias)

    @property
    def in_channels(self):
        return 3 if self.sun is not None else 2

    def forward(self, x, heights=None):
        """`heights`: the backbone's output for x's image where it was computed elsewhere (a frozen backbone run
        by onnxruntime, training/onnx_backbone.py)."""
        heights = self.backbone(x[:, :1]).float() if heights is None else heights.float()
        with torch.autocast(heights.device.type, enabled=False):  # a plane over 1024 px needs float32
            x = x.float()
            image, flat = x[:, :1], x[:, 1:2]
            stats = image.mean((2, 3)), image.std((2, 3)), flat.mean((2, 3))  # [N, 1] each
            summary = torch.cat([self.features(x[:, :2]).mean((2, 3)), *stats], 1)
            slopes = self.slopes(summary)
            fine_var = (F.avg_pool2d(image * image, self.pool) - F.avg_pool2d(image, self.pool) ** 2).mean((2, 3))
            fine_std = (fine_var.clamp_min(0) + 1e-8).sqrt()
            if self.roughness is not None:
                slopes = slopes + self.roughness(torch.cat([summary, fine_std, fine_var], 1))
            height, width = x.shape[-2], x.shape[-1]
            cols = torch.arange(width, dtype=x.dtype, device=x.device) - (width - 1) / 2.0
            rows = torch.arange(height, dtype=x.dtype, device=x.device) - (height - 1) / 2.0
            if self.backbone_plane is not None:
                drawn = plane_slopes(heights, cols, rows) * self.PLANE_READ_SCALE
                slopes = slopes + self.backbone_plane(torch.cat([drawn, drawn * flat.mean((2, 3))], 1))
            if self.sun is not None:  # the elevation's path, off where it (or the flat grey level) is unknown
                change = self.sun(self.sun_features(x, summary, stats, fine_std, heights)) * sun_path_on(x)[:, None]
                slopes = slopes + change[:, :2]
                heights = heights * torch.exp(2.0 * torch.tanh(change[:, 2, None, None, None] / 2.0))
            plane = slopes[:, 0, None, None] * cols[None, None, :] + slopes[:, 1, None, None] * rows[None, :, None]
            return heights + (plane * flat_level_known(x)[:, None, None])[:, None]

    @staticmethod
    def sun_features(x, summary, stats, fine_std, heights):
        """What the elevation's path reads: the branch's summary as it is and times tan(e), and the first-order
        photometric estimates, given flat ground's brightness I_flat (the 8-bit value is 127.5·(level + 1)):
        the window's mean slope towards the sun, (I − I_flat) / I_flat · tan(e), and in logarithms the image's
        contrast in the same slope units, fine-scale and whole, beside the backbone's own spread, whose
        difference is the gain its heights need. `stats`: the image's mean and spread and the flat grey level
        over the window, [N, 1] each, as forward computed them for the summary."""
        tan_e = sun_tangent(x)[:, None]
        image_mean, image_std, flat = stats
        to_slope = tan_e / (flat + 1.0).clamp_min(0.05)
        return torch.cat([summary, summary * tan_e, tan_e, fine_std * tan_e, fine_std, image_std * tan_e,
                          (image_mean - flat) * to_slope, torch.log(fine_std * to_slope + 1e-4),
                          torch.log(image_std * to_slope + 1e-4), torch.log(heights.std((2, 3)) + 1e-3)], 1)


def plane_slopes(heights, cols, rows):
    """[N, 2] slopes (x, y) of the least-squares plane through heights [N, 1, H, W], given the centred column
    and row coordinates. masked_plane_slopes without a mask: on a full grid the two coordinates are orthogonal,
    so each slope is one projection and the exported graph needs no linear solve (ONNX has none)."""
    along_x = (heights * cols[None, None, None, :]).sum((1, 2, 3)) / (cols.square().sum() * rows.numel())
    along_y = (heights * rows[None, None, :, None]).sum((1, 2, 3)) / (rows.square().sum() * cols.numel())
    return torch.stack([along_x, along_y], 1)


@torch.no_grad()
def seed_slope_head(slope_head, height_weight):
    """Set a 3×3 two-channel head to the forward differences (x, y) of a 1×1 heights head, so the
    integrated output starts as the heights model's own (mean removed; its bias differences to 0)."""
    a = height_weight[0, :, 0, 0]
    slope_head.weight.zero_()
    slope_head.bias.zero_()
    slope_head.weight[0, :, 1, 2], slope_head.weight[0, :, 1, 1] = a, -a
    slope_head.weight[1, :, 2, 1], slope_head.weight[1, :, 1, 1] = a, -a


def head_of(net):
    """The head a config declares (a checkpoint's config["net"], or a fine-tune's phase_start["before"]);
    those written before there were heads: heights."""
    return net.get("head", "heights")


def has_tilt_branch(net):
    """Whether a config (a checkpoint's config["net"]) declares the regional-tilt branch and its flat-grey input."""
    return bool(net.get("tilt_branch", False))


def has_tilt_roughness(net):
    """Whether a config's tilt branch carries the roughness correction (RegionalTiltGenerator)."""
    return has_tilt_branch(net) and bool(net.get("tilt_roughness", False))


def has_sun_elevation(net):
    """Whether a config's tilt branch takes the sun's elevation as a third input channel (RegionalTiltGenerator)."""
    return has_tilt_branch(net) and bool(net.get("sun_elevation", False))


def has_tilt_reads_backbone(net):
    """Whether a config's tilt branch reads the backbone's own plane (RegionalTiltGenerator)."""
    return has_tilt_branch(net) and bool(net.get("tilt_reads_backbone", False))


def build(name, head="heights", tilt_branch=False, tilt_roughness=False, tilt_reads_backbone=False,
          sun_elevation=False, **kw):
    """A generator by name; head "heights" predicts heights, "slopes" integrates two predicted slope fields;
    `tilt_branch` adds RegionalTiltGenerator's plane (input: image and flat grey level), `tilt_roughness`
    its roughness correction, `tilt_reads_backbone` its reading of the backbone's own plane, `sun_elevation`
    its use of the sun's elevation (a third input channel)."""
    if (tilt_roughness or tilt_reads_backbone or sun_elevation) and not tilt_branch:
        raise ValueError("tilt_roughness, tilt_reads_backbone and sun_elevation change the tilt branch: "
                         "give tilt_branch too")
    if head not in ("heights", "slopes"):
        raise ValueError(f"head {head!r}: expected heights or slopes")
    if head == "slopes":
        kw["out_ch"] = 2
        if name == "mrfed":
            kw["head_kernel"] = 3  # room for the forward differences of seed_slope_head
    if name == "pix2pixcc":
        G = Pix2PixCCGenerator(**kw)
    elif name == "mrfed":
        G = MRFED(**kw)
    else:
        raise ValueError(name)
    G = SlopeIntegratingGenerator(G) if head == "slopes" else G
    if not tilt_branch:
        return G
    return RegionalTiltGenerator(G, roughness=tilt_roughness, reads_backbone=tilt_reads_backbone,
                                 sun_elevation=sun_elevation)


def n_params(m):
    return sum(p.numel() for p in m.parameters())


# ---- losses (targets and predictions in pixel units; mask 1 where the truth is valid) -----------------
def masked_pearson(a, b, mask, eps=1e-6):
    """Per-sample Pearson r of [N,1,H,W] tensors over mask-weighted pixels -> [N]."""
    w = mask.flatten(1)
    total = w.sum(1, keepdim=True).clamp_min(eps)
    a = a.flatten(1)
    b = b.flatten(1)
    a = a - (a * w).sum(1, keepdim=True) / total
    b = b - (b * w).sum(1, keepdim=True) / total
    cov = (w * a * b).sum(1)
    return cov / ((w * a * a).sum(1).sqrt() * (w * b * b).sum(1).sqrt() + eps)


def masked_plane_slopes(z, mask):
    """Per-sample least-squares plane of [N,1,H,W] z over mask -> its slopes [N, 2] (x then y, z per pixel)."""
    rows, cols = torch.meshgrid(torch.arange(z.shape[-2], dtype=z.dtype, device=z.device),
                                torch.arange(z.shape[-1], dtype=z.dtype, device=z.device), indexing="ij")
    w, z = mask.flatten(1), z.flatten(1)
    total = w.sum(1, keepdim=True).clamp_min(1e-6)
    centred = [c.flatten()[None] - (c.flatten()[None] * w).sum(1, keepdim=True) / total for c in (cols, rows)]
    normal = torch.stack([torch.stack([(w * a * b).sum(1) for b in centred], -1) for a in centred], -2)
    moments = torch.stack([(w * a * z).sum(1) for a in centred], -1)
    return torch.linalg.solve(normal + 1e-6 * torch.eye(2, dtype=z.dtype, device=z.device), moments)


def masked_pool(x, mask, factor):
    """Mask-weighted average pooling of x, and the pooled mask."""
    weight = F.avg_pool2d(mask, factor)
    return F.avg_pool2d(x * mask, factor) / weight.clamp_min(1e-6), (weight > 0.5).float()


def multiscale_cc_loss(pred, target, mask, factors=(1, 2, 4, 8, 16, 32)):
    """Pix2PixCC's correlation-coefficient loss over scales: mean of (1 - r) at each pooling factor,
    so whole basins and regional tilts weigh as much as the finest relief."""
    losses = []
    for factor in factors:
        if factor == 1:
            p, t, m = pred, target, mask
        else:
            p, m = masked_pool(pred, mask, factor)
            t, _ = masked_pool(target, mask, factor)
        losses.append(1.0 - masked_pearson(p, t, m))
    return torch.stack(losses).mean(0)


def slope_loss(pred, target, mask):
    """L1 of the slope fields relative to the mean true slope: teaches detail and the amplitude of
    heights in pixel units, in a way every pixel size shares."""
    def grads(x):
        return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]
    mx = mask[..., :, 1:] * mask[..., :, :-1]
    my = mask[..., 1:, :] * mask[..., :-1, :]
    (px, py), (tx, ty) = grads(pred), grads(target)
    scale = ((tx.abs() * mx).flatten(1).sum(1) + (ty.abs() * my).flatten(1).sum(1)) / (
        mx.flatten(1).sum(1) + my.flatten(1).sum(1)).clamp_min(1.0)
    error = ((px - tx).abs() * mx).flatten(1).sum(1) + ((py - ty).abs() * my).flatten(1).sum(1)
    # the floor (a 1-in-50 slope) keeps near-flat views (lakes, sea) from dominating
    return error / (mx.flatten(1).sum(1) + my.flatten(1).sum(1)).clamp_min(1.0) / scale.clamp_min(0.02)


def amplitude_signed_log_ratio(pred, target, mask):
    """log(std truth / std pred) per sample: how much too flat (> 0) the predicted heights are."""
    def std(x):
        w = mask.flatten(1)
        total = w.sum(1).clamp_min(1.0)
        x = x.flatten(1)
        mean = (x * w).sum(1) / total
        return (((x - mean[:, None]) ** 2 * w).sum(1) / total).clamp_min(1e-4).sqrt()
    return torch.log(std(target)) - torch.log(std(pred))


def amplitude_loss(pred, target, mask):
    """|log(std pred / std truth)| per sample: the spread of the heights, in pixel units."""
    return amplitude_signed_log_ratio(pred, target, mask).abs()
