"""Atrous residual deblurring network (stage 1 of Brehm et al.).

Brehm, Scherer, Lienhart, "High-Resolution Dual-Stage Multi-Level Feature Aggregation for
Single and Multi-Frame Image Deblurring", NTIRE 2020 workshop (first in the single-image
deblurring track). A large-kernel conv, ONE stride-2 conv (the only downsampling), a trunk
of atrous residual blocks (four parallel 3x3 convs with dilation 1-4, concatenated and fused
back to the trunk width, plus the block input), a transposed conv back to full resolution
with the full-resolution features concatenated in (as the authors' released code does), two
convs, and the result added to the blurry input. LeakyReLU everywhere but the output, no
BatchNorm: every conv has a learned per-channel scale before its bias. Reflect padding;
images are mapped from [0, 1] to [-1, 1] inside the network.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

DILATIONS = (1, 2, 3, 4)
STRIDE = 2  # total downsampling: inputs are padded to a multiple of this

PRESETS: dict[str, dict] = {
    # The paper's network: 20 blocks, F=128 filters per dilation, trunk 256 (about 47M parameters).
    "paper": {"blocks": 20, "filters": 128, "trunk": 256, "stem": 128, "first_kernel": 9},
    # CPU preset trained and shipped here: the trunk runs at half resolution, so the cost per
    # input pixel is about 4 * 9 * trunk * filters / 4 multiply-adds per block.
    "cpu": {"blocks": 6, "filters": 16, "trunk": 32, "stem": 16, "first_kernel": 7},
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
        return self.conv(x) * self.scale.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class AtrousBlock(nn.Module):
    """Four parallel dilated 3x3 convs (F filters each) -> concat (4F) -> 3x3 fuse -> + input."""

    def __init__(self, trunk: int, filters: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList([ScaledConv(trunk, filters, 3, dilation=d) for d in DILATIONS])
        # A small initial fuse scale keeps the deep (20-block) preset stable at the start of training.
        self.fuse = ScaledConv(filters * len(DILATIONS), trunk, 3, scale_init=0.1)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = torch.cat([self.act(branch(x)) for branch in self.branches], dim=1)
        return x + self.act(self.fuse(feats))


class AtrousDeblur(nn.Module):
    """Blurry RGB in [0, 1] -> sharp RGB (same size, unclamped). Any input size: padded to the stride, cropped back."""

    def __init__(self, blocks: int = 6, filters: int = 16, trunk: int = 32, stem: int = 16,
                 first_kernel: int = 7) -> None:
        super().__init__()
        self.stride = STRIDE
        # Smallest padded side for which every reflect padding in the half-resolution trunk is valid.
        self.min_side = STRIDE * (DILATIONS[-1] + 1)
        self.stem = ScaledConv(3, stem, first_kernel)
        self.down = ScaledConv(stem, trunk, 3, stride=STRIDE)
        self.blocks = nn.Sequential(*[AtrousBlock(trunk, filters) for _ in range(blocks)])
        self.up = nn.ConvTranspose2d(trunk, stem, 4, stride=STRIDE, padding=1)
        self.merge = ScaledConv(2 * stem, stem, 3)
        self.out = ScaledConv(stem, 3, 3)
        self.act = nn.LeakyReLU(0.2)
        # Diameter in input pixels of the region one output pixel depends on (kept in the TorchScript
        # file, so the server can size its tile overlap): stem, stride-2 conv, blocks (widest dilated
        # branch, then the 3x3 fuse, at half resolution), transposed conv, merge and output convs.
        per_block = STRIDE * (2 * DILATIONS[-1] + 2)
        self.receptive_field = first_kernel + 2 + per_block * blocks + STRIDE + 2 + 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        pad_h = max(self.min_side, h + h % self.stride) - h
        pad_w = max(self.min_side, w + w % self.stride) - w
        xn = F.pad(x * 2.0 - 1.0, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x * 2.0 - 1.0
        full = self.act(self.stem(xn))
        trunk = self.act(self.down(full))
        trunk = self.blocks(trunk)
        up = self.act(self.up(trunk))
        res = self.out(self.act(self.merge(torch.cat([up, full], dim=1))))
        return (xn + res)[..., :h, :w] * 0.5 + 0.5


def atrous_deblur(preset: str = "cpu") -> AtrousDeblur:
    """Build a named preset (``paper`` or ``cpu``)."""
    return AtrousDeblur(**PRESETS[preset])
