"""ESPCN: Efficient Sub-Pixel Convolutional Neural Network.

Shi et al., "Real-Time Single Image and Video Super-Resolution Using an Efficient
Sub-Pixel Convolutional Neural Network", CVPR 2016. All convolutions run at low
resolution; the last one produces ``3 * r * r`` channels that PixelShuffle rearranges
into an ``r``-times larger image.

Optionally (``residual=True``, the ``portrait`` preset) the bicubic upsampling of the input is added
to the output, so the network learns only the missing detail (global residual learning, as in VDSR,
Kim et al. 2016). It adds no parameters, starts exactly at bicubic quality (the last layer is
zero-initialised), and trains past bicubic in minutes on a CPU.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

# (kernel size, output channels[, dilation]) of every layer before the sub-pixel layer.
PRESETS: dict[str, dict] = {
    # The paper's network: f1=5, n1=64; f2=3, n2=32; f3=3 (sub-pixel), tanh activations.
    "paper": {"layers": ((5, 64), (3, 32)), "activation": "tanh", "residual": False},
    # Wider, deeper variant used for the shipped portrait/photo weights (71,840 parameters at r=4).
    "portrait": {"layers": ((5, 64), (3, 64), (3, 32), (3, 16)), "activation": "relu", "residual": True},
    # Deeper at low resolution, for JPEG'd/noisy/soft inputs (issue 30): deblocking needs more context
    # and capacity than adding detail does; all extra layers run before the sub-pixel step, so cost stays small.
    "real": {"layers": ((5, 64), (3, 64), (3, 64), (3, 32), (3, 32)), "activation": "relu", "residual": True},
    # "real" with two dilated middle layers and one more: a receptive field of 21 low-res pixels (15 for
    # "real"), so every output pixel sees the 8x8 JPEG block around it and its neighbours' edges (issue 30).
    "deblock": {"layers": ((5, 64), (3, 64), (3, 64, 2), (3, 64, 2), (3, 32), (3, 32)), "activation": "relu",
                "residual": True},
}


class ESPCN(nn.Module):
    """Sub-pixel CNN mapping an RGB image in [0, 1] to one ``scale`` times larger."""

    def __init__(
        self,
        scale: int = 4,
        layers: Sequence[tuple[int, ...]] = PRESETS["portrait"]["layers"],
        activation: str = "relu",
        channels: int = 3,
        last_kernel: int = 3,
        residual: bool = False,
    ) -> None:
        super().__init__()
        self.scale = scale
        self.residual = residual
        act = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]
        body: list[nn.Module] = []
        in_ch = channels
        for kernel, out_ch, *dilation in layers:
            d = dilation[0] if dilation else 1
            body += [nn.Conv2d(in_ch, out_ch, kernel, padding=d * (kernel // 2), dilation=d), act()]
            in_ch = out_ch
        self.body = nn.Sequential(*body)
        self.to_subpixels = nn.Conv2d(in_ch, channels * scale * scale, last_kernel, padding=last_kernel // 2)
        self.shuffle = nn.PixelShuffle(scale)
        if residual:
            nn.init.zeros_(self.to_subpixels.weight)
            nn.init.zeros_(self.to_subpixels.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.shuffle(self.to_subpixels(self.body(x)))
        if self.residual:
            out = out + F.interpolate(x, scale_factor=float(self.scale), mode="bicubic", align_corners=False)
        return out


def espcn(preset: str = "portrait", scale: int = 4) -> ESPCN:
    """Build a named preset (a key of ``PRESETS``)."""
    return ESPCN(scale=scale, **PRESETS[preset])
