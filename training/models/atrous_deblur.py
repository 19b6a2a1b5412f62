"""Atrous residual deblurring network (stage 1 of Brehm et al.).

Brehm, Scherer, Lienhart, "High-Resolution Dual-Stage Multi-Level Feature Aggregation for
Single and Multi-Frame Image Deblurring", NTIRE 2020 workshop (first in the single-image
deblurring track). A large-kernel conv, ONE stride-2 conv (the only downsampling), a trunk
of atrous residual blocks (four parallel 3x3 convs with dilation 1-4, concatenated and fused
back to the trunk width, plus the block input), a transposed conv back to full resolution
with the full-resolution features concatenated in (as the authors' released code does), two
convs, and the result added to the blurry input. ``mids`` adds further stride-2 levels (each
with its own transposed conv and skip on the way back), so the same blocks can run at quarter
resolution: four times the width for the same multiply-adds, and four times the reach, which long
shake kernels need. ``gated`` blocks (an option of this repository, after NAFNet: Chen, Chu, Zhang,
Sun, "Simple Baselines for Image Restoration", ECCV 2022) replace the branches' LeakyReLU by a
gate (the concatenated branches split in two halves, multiplied) and a channel attention (global
mean -> 1x1 conv -> per-channel weights), so the fuse conv reads half the channels: four gated
blocks cost what three plain ones do. LeakyReLU everywhere but the output, no
BatchNorm: every conv has a learned per-channel scale before its bias. Reflect padding;
images are mapped from [0, 1] to [-1, 1] inside the network. ``fft`` blocks (a trial of this
repository, after DeepRFT: Mao, Liu, Wang, Shen, "Deep Residual Fourier Transformation for Single
Image Deblurring", 2021) add a Fourier branch: the block input's rFFT, its real and imaginary parts
through 1x1 conv, ReLU, 1x1 conv, and back, which gives every block a global receptive field; its last
conv starts at zero, so the branch begins as nothing and a network grown with it where it was.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

DILATIONS = (1, 2, 3, 4)

PRESETS: dict[str, dict] = {
    # The paper's network: 20 blocks, F=128 filters per dilation, trunk 256 (about 47M parameters).
    "paper": {"blocks": 20, "filters": 128, "trunk": 256, "stem": 128, "first_kernel": 9},
    # CPU preset trained and shipped here: the trunk runs at half resolution, so the cost per
    # input pixel is about 4 * 9 * trunk * filters / 4 multiply-adds per block.
    "cpu": {"blocks": 6, "filters": 16, "trunk": 32, "stem": 16, "first_kernel": 7},
    # Same multiply-adds per pixel as ``cpu`` (about 70K), with the blocks at quarter resolution:
    # trunk 64 and F=32, and a receptive field of 267 px instead of 135.
    "cpu_quarter": {"blocks": 6, "filters": 32, "trunk": 64, "stem": 16, "first_kernel": 7, "mids": (32,)},
    # ``cpu_quarter``'s multiply-adds per pixel in 8 gated blocks (deeper: a 347 px receptive field).
    "cpu_gated": {"blocks": 8, "filters": 32, "trunk": 64, "stem": 16, "first_kernel": 7, "mids": (32,),
                  "gated": True},
    # ``cpu_quarter`` grown to 9 blocks (about 1.4x its multiply-adds, a 387 px receptive field; 1.4M
    # parameters keep a full training checkpoint under 25 MB): meant to start from ``cpu_quarter``'s
    # weights (``--init-from``); its fuse scales start at 0, so each block the smaller network lacks
    # begins as the identity and the grown network where the smaller one ended.
    "cpu_quarter_deep": {"blocks": 9, "filters": 32, "trunk": 64, "stem": 16, "first_kernel": 7, "mids": (32,),
                         "fuse_init": 0.0},
    # ``cpu_quarter_deep`` with a Fourier branch in every block (starting at zero: warm-starts from it exactly).
    "cpu_quarter_deep_fft": {"blocks": 9, "filters": 32, "trunk": 64, "stem": 16, "first_kernel": 7, "mids": (32,),
                             "fuse_init": 0.0, "fft": True},
}


class ScaledConv(nn.Module):
    """Conv without bias, then a learned per-channel scale, then the bias (the paper's BatchNorm-free layer)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1,
                 scale_init: float = 1.0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding=dilation * (kernel // 2), dilation=dilation,
                              bias=False, padding_mode="reflect")
        self.scale = nn.Parameter(torch.full((cout,), scale_init))
        self.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # conv(x, W) * s + b computed as conv(x, W * s) + b: the scale multiplies the small weight tensor,
        # not the activations (a cpu_quarter_deep bf16 training step: 0.86 s instead of 0.99).
        return self.conv._conv_forward(x, self.conv.weight * self.scale.view(-1, 1, 1, 1), self.bias)


class FourierBranch(nn.Module):
    """DeepRFT's FFT residual path: rFFT -> [real, imag] -> 1x1 conv -> ReLU -> 1x1 conv -> inverse rFFT."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.conv2 = nn.Conv2d(2 * channels, 2 * channels, 1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        spec = torch.fft.rfft2(x.float(), norm="ortho")  # FFTs run in float32 (no bf16 FFT on the CPU)
        y = self.conv2(torch.relu(self.conv1(torch.cat([spec.real, spec.imag], dim=1).to(x.dtype))))
        real, imag = y.float().chunk(2, dim=1)
        return torch.fft.irfft2(torch.complex(real, imag), s=(h, w), norm="ortho").to(x.dtype)


class AtrousBlock(nn.Module):
    """Four parallel dilated 3x3 convs (F filters each) -> concat (4F) -> 3x3 fuse -> + input.

    ``gated``: no activation on the branches; the 4F channels are gated (first half times second
    half) and weighted by a channel attention before a fuse that reads 2F."""

    def __init__(self, trunk: int, filters: int, gated: bool = False, fuse_init: float = 0.1,
                 fft: bool = False) -> None:
        super().__init__()
        self.gated = gated
        self.fourier = FourierBranch(trunk) if fft else None
        self.branches = nn.ModuleList([ScaledConv(trunk, filters, 3, dilation=d) for d in DILATIONS])
        fused = filters * len(DILATIONS) // (2 if gated else 1)
        self.attention = nn.Conv2d(fused, fused, 1) if gated else nn.Identity()
        # A small initial fuse scale keeps the deep (20-block) preset stable at the start of training;
        # 0 makes the block the identity until its scale learns (LeakyReLU(0) = 0), for grown networks.
        self.fuse = ScaledConv(fused, trunk, 3, scale_init=fuse_init)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gated:
            feats = torch.cat([branch(x) for branch in self.branches], dim=1)
            first, second = feats.chunk(2, dim=1)
            feats = first * second
            feats = feats * self.attention(feats.mean(dim=(2, 3), keepdim=True))
        else:
            feats = torch.cat([self.act(branch(x)) for branch in self.branches], dim=1)
        out = x + self.act(self.fuse(feats))
        if self.fourier is not None:
            out = out + self.fourier(x)
        return out


class AtrousDeblur(nn.Module):
    """Blurry RGB in [0, 1] -> sharp RGB (same size, unclamped). Any input size: padded to the stride, cropped back."""

    def __init__(self, blocks: int = 6, filters: int = 16, trunk: int = 32, stem: int = 16,
                 first_kernel: int = 7, mids: tuple[int, ...] = (), gated: bool = False,
                 fuse_init: float = 0.1, fft: bool = False) -> None:
        super().__init__()
        widths = [stem, *mids, trunk]  # channels at full, half, quarter, ... resolution
        self.stride = 2 ** (len(widths) - 1)
        # Smallest padded side for which every reflect padding in the lowest-resolution trunk is valid.
        self.min_side = self.stride * (DILATIONS[-1] + 1)
        self.stem = ScaledConv(3, stem, first_kernel)
        self.downs = nn.ModuleList([ScaledConv(a, b, 3, stride=2) for a, b in zip(widths[:-1], widths[1:])])
        self.blocks = nn.Sequential(*[AtrousBlock(trunk, filters, gated, fuse_init, fft) for _ in range(blocks)])
        # Back up, coarsest first: a transposed conv to the finer width, then a 3x3 merge with the skip.
        self.ups = nn.ModuleList([nn.ConvTranspose2d(b, a, 4, stride=2, padding=1)
                                  for a, b in reversed(list(zip(widths[:-1], widths[1:])))])
        self.merges = nn.ModuleList([ScaledConv(2 * a, a, 3) for a in reversed(widths[:-1])])
        self.out = ScaledConv(stem, 3, 3)
        self.act = nn.LeakyReLU(0.2)
        # Diameter in input pixels of the region one output pixel depends on (kept in the TorchScript
        # file, so the server can size its tile overlap): the stem; per level its stride-2 conv,
        # transposed conv and merge; the blocks (widest dilated branch, then the 3x3 fuse) at the
        # coarsest scale; the output conv.
        levels = [2 ** i for i in range(len(widths) - 1)]
        per_block = self.stride * (2 * DILATIONS[-1] + 2)
        self.receptive_field = first_kernel + sum(2 * s + 2 * s + 2 * s for s in levels) + per_block * blocks + 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        pad_h = max(self.min_side, -(-h // self.stride) * self.stride) - h
        pad_w = max(self.min_side, -(-w // self.stride) * self.stride) - w
        xn = F.pad(x * 2.0 - 1.0, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x * 2.0 - 1.0
        feats = self.act(self.stem(xn))
        skips: list[torch.Tensor] = []
        for down in self.downs:
            skips.append(feats)
            feats = self.act(down(feats))
        feats = self.blocks(feats)
        for i, (up, merge) in enumerate(zip(self.ups, self.merges)):
            feats = self.act(up(feats))
            feats = self.act(merge(torch.cat([feats, skips[len(skips) - 1 - i]], dim=1)))
        res = self.out(feats)
        return (xn + res)[..., :h, :w] * 0.5 + 0.5


def atrous_deblur(preset: str = "cpu") -> AtrousDeblur:
    """Build a named preset (see ``PRESETS``)."""
    return AtrousDeblur(**PRESETS[preset])
