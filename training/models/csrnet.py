"""CSRNet: Conditional Sequential Retouching Network.

He et al., "Conditional Sequential Modulation for Efficient Global Image Retouching",
ECCV 2020. Global retouching operations (exposure, contrast, saturation, white balance,
tone curves) are per-pixel colour transforms whose parameters depend on the whole image.
So the base network is three 1x1 convolutions, and a small condition network looks at the
image, average-pools to one vector, and predicts a per-channel scale and shift for every
base layer (global feature modulation, GFM: ``y = conv(x) * (1 + scale) + shift``).
The paper's configuration has 36,489 parameters.

``ThumbnailCSRNet`` is the served form: the condition is computed from a fixed-size
thumbnail (its job is global), then the modulation is folded into the 1x1 weights and the
base runs over the full-resolution pixels in chunks. Per-pixel work makes the chunking
exact, so there are no tiling seams at any size.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

PRESETS: dict[str, dict] = {
    # The paper's network: base 64-64-3 channels, condition 32 channels (36,489 parameters).
    "paper": {"base_channels": 64, "cond_channels": 32},
}


class Condition(nn.Module):
    """7x7 then two 3x3 convolutions, all stride 2 with ReLU, then global average pooling."""

    def __init__(self, channels: int = 32, in_channels: int = 3) -> None:
        super().__init__()
        # Padding 1 on every layer, as the authors' code (ZeroPad2d(1) before each conv).
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, channels, 7, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean(dim=(2, 3))


class CSRNet(nn.Module):
    """Maps an RGB image in [0, 1] to its retouched version (same size, any size)."""

    def __init__(self, base_channels: int = 64, cond_channels: int = 32, channels: int = 3) -> None:
        super().__init__()
        widths = [base_channels, base_channels, channels]
        self.condition = Condition(cond_channels, channels)
        ins = [channels] + widths[:-1]
        self.base = nn.ModuleList([nn.Conv2d(i, o, 1) for i, o in zip(ins, widths)])
        self.scales = nn.ModuleList([nn.Linear(cond_channels, o) for o in widths])
        self.shifts = nn.ModuleList([nn.Linear(cond_channels, o) for o in widths])

    def modulation(self, cond: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per-layer (scale, shift), each [N, C_out], from condition vectors [N, cond_channels]."""
        out: list[tuple[torch.Tensor, torch.Tensor]] = []
        for scale, shift in zip(self.scales, self.shifts):
            out.append((scale(cond), shift(cond)))
        return out

    def modulate(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The base network on pixels ``x`` [N, 3, H, W] under condition vectors [N, cond_channels]."""
        mods = self.modulation(cond)
        last = len(mods) - 1
        for i, conv in enumerate(self.base):
            scale, shift = mods[i]
            x = conv(x)
            x = x * (1 + scale[:, :, None, None]) + shift[:, :, None, None]
            if i < last:
                x = F.relu(x)
        return x

    def forward(self, x: torch.Tensor, cond_image: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Retouch ``x``; the condition comes from ``cond_image`` (e.g. a thumbnail) or ``x`` itself."""
        return self.modulate(x, self.condition(x if cond_image is None else cond_image))


def thumbnail(x: torch.Tensor, size: int) -> torch.Tensor:
    """Antialiased downscale so the long side is at most ``size`` (smaller images pass through)."""
    h, w = x.shape[-2], x.shape[-1]
    long_side = max(h, w)
    if long_side <= size:
        return x
    th, tw = max(1, int(round(h * size / long_side))), max(1, int(round(w * size / long_side)))
    return F.interpolate(x, size=[th, tw], mode="bilinear", antialias=True, align_corners=False)


class ThumbnailCSRNet(nn.Module):
    """Serving wrapper: condition from a ``thumb_size`` thumbnail, base at full resolution.

    The GFM scale and shift are folded into each 1x1 convolution (``(1 + s)(Wx + b) + t``
    is ``W'x + b'``), and pixels go through in chunks of ``chunk`` so the 64-channel
    activations stay in cache instead of filling gigabytes on a 12-megapixel photo.
    Output is clamped to [0, 1].
    """

    def __init__(self, net: CSRNet, thumb_size: int = 256, chunk: int = 16384) -> None:
        super().__init__()
        self.net = net
        self.thumb_size = thumb_size
        self.chunk = chunk

    def folded_weights(self, cond: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per-layer (weight [C_out, C_in], bias [C_out, 1]) for ONE condition vector [cond_channels]."""
        mods = self.net.modulation(cond[None])
        out: list[tuple[torch.Tensor, torch.Tensor]] = []
        for i, conv in enumerate(self.net.base):
            gain, shift = 1 + mods[i][0][0], mods[i][1][0]
            weight = conv.weight.flatten(1) * gain[:, None]
            bias = conv.bias
            assert bias is not None  # built with bias; the assert refines the type for TorchScript
            out.append((weight, (bias * gain + shift)[:, None]))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conds = self.net.condition(thumbnail(x, self.thumb_size))
        n, c, h, w = x.shape
        flat = x.reshape(n, c, h * w)
        out = torch.empty_like(flat)
        last = len(self.net.base) - 1
        for b in range(n):
            layers = self.folded_weights(conds[b])
            for start in range(0, h * w, self.chunk):
                y = flat[b, :, start:start + self.chunk]
                for i, (weight, bias) in enumerate(layers):
                    y = torch.addmm(bias, weight, y)
                    if i < last:
                        y = y.relu_()
                out[b, :, start:start + self.chunk] = y.clamp_(0, 1)
        return out.reshape(n, c, h, w)


def csrnet(preset: str = "paper") -> CSRNet:
    """Build a named preset (``paper``)."""
    return CSRNet(**PRESETS[preset])
