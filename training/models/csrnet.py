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
base runs over the full-resolution pixels in chunks (or once per distinct colour on large
photos). Per-pixel work makes both exact, so there are no tiling seams at any size.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

PRESETS: dict[str, dict] = {
    # The paper's network: base 64-64-3 channels, condition 32 channels (36,489 parameters).
    "paper": {"base_channels": 64, "cond_channels": 32, "residual": False},
    # The same 36,489 parameters plus a parameter-free skip (output = input + base), starting
    # at the identity: it reaches in minutes what the paper's 600K iterations reach without it.
    "paper-skip": {"base_channels": 64, "cond_channels": 32, "residual": True},
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
    """Maps an RGB image in [0, 1] to its retouched version (same size, any size); with
    ``residual`` the base network predicts the change instead of the result."""

    def __init__(self, base_channels: int = 64, cond_channels: int = 32, channels: int = 3,
                 residual: bool = False) -> None:
        super().__init__()
        self.residual = residual
        widths = [base_channels, base_channels, channels]
        self.condition = Condition(cond_channels, channels)
        ins = [channels] + widths[:-1]
        self.base = nn.ModuleList([nn.Conv2d(i, o, 1) for i, o in zip(ins, widths)])
        self.scales = nn.ModuleList([nn.Linear(cond_channels, o) for o in widths])
        self.shifts = nn.ModuleList([nn.Linear(cond_channels, o) for o in widths])
        if residual:  # start exactly at the identity
            for module in (self.base[-1], self.shifts[-1]):
                nn.init.zeros_(module.weight)
                nn.init.zeros_(module.bias)

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
        y = x
        for i, conv in enumerate(self.base):
            scale, shift = mods[i]
            y = conv(y)
            y = y * (1 + scale[:, :, None, None]) + shift[:, :, None, None]
            if i < last:
                y = F.relu(y)
        return x + y if self.residual else y

    def forward(self, x: torch.Tensor, cond_image: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Retouch ``x``; the condition comes from ``cond_image`` (e.g. a thumbnail) or ``x`` itself."""
        return self.modulate(x, self.condition(x if cond_image is None else cond_image))


def thumbnail(x: torch.Tensor, size: int, min_side: int = 8) -> torch.Tensor:
    """Antialiased resize so the long side is at most ``size`` and the short side at least
    ``min_side`` (the condition network's 7x7 stride-2 input needs a few pixels)."""
    h, w = x.shape[-2], x.shape[-1]
    scale = min(1.0, size / max(h, w))
    th, tw = max(min_side, int(round(h * scale))), max(min_side, int(round(w * scale)))
    if th == h and tw == w:
        return x
    return F.interpolate(x, size=[th, tw], mode="bilinear", antialias=True, align_corners=False)


class ThumbnailCSRNet(nn.Module):
    """Serving wrapper: condition from a ``thumb_size`` thumbnail, base at full resolution.

    The GFM scale and shift are folded into each 1x1 convolution (``(1 + s)(Wx + b) + t``
    is ``W'x + b'``), and pixels go through in chunks of ``chunk`` so the 64-channel
    activations stay in cache instead of filling gigabytes on a 12-megapixel photo.
    Above ``table_min_pixels`` the input is taken as 8-bit (as decoded uploads are) and the
    base runs once per distinct colour, then the results are gathered back to the pixels:
    a photo has far fewer colours than pixels, and since the base is per-pixel this gives
    the same values. Output is clamped to [0, 1].
    """

    def __init__(self, net: CSRNet, thumb_size: int = 128, chunk: int = 16384,
                 table_min_pixels: int = 1 << 19) -> None:
        super().__init__()
        self.net = net
        self.thumb_size = thumb_size
        self.chunk = chunk
        self.table_min_pixels = table_min_pixels

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

    def per_pixel(self, pixels: torch.Tensor, layers: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """The folded base network on pixels [3, P], ``chunk`` pixels at a time."""
        out = torch.empty_like(pixels)
        last = len(layers) - 1
        for start in range(0, pixels.shape[1], self.chunk):
            y = pixels[:, start:start + self.chunk]
            for i, (weight, bias) in enumerate(layers):
                y = torch.addmm(bias, weight, y)
                if i < last:
                    y = y.relu_()
            out[:, start:start + self.chunk] = y + pixels[:, start:start + self.chunk] if self.net.residual else y
        return out

    def per_colour(self, pixels: torch.Tensor, layers: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """``per_pixel`` evaluated once per distinct 8-bit colour of ``pixels`` [3, P]."""
        q = pixels.clamp(0, 1).mul(255).round_().to(torch.int32)
        keys = (q[0] * 256 + q[1]) * 256 + q[2]
        seen = torch.zeros(1 << 24, dtype=torch.bool, device=pixels.device)
        seen[keys] = True
        colours = seen.nonzero().squeeze(1)
        index = torch.empty(1 << 24, dtype=torch.int64, device=pixels.device)
        index[colours] = torch.arange(colours.numel(), device=pixels.device)
        rgb = torch.stack([colours >> 16, (colours >> 8) & 255, colours & 255]).to(pixels.dtype) / 255
        return self.per_pixel(rgb, layers).index_select(1, index[keys])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conds = self.net.condition(thumbnail(x, self.thumb_size))
        n, c, h, w = x.shape
        flat = x.reshape(n, c, h * w)
        out = torch.empty_like(flat)
        for b in range(n):
            layers = self.folded_weights(conds[b])
            if h * w >= self.table_min_pixels:
                out[b] = self.per_colour(flat[b], layers)
            else:
                out[b] = self.per_pixel(flat[b], layers)
        return out.clamp_(0, 1).reshape(n, c, h, w)


def csrnet(preset: str = "paper") -> CSRNet:
    """Build a named preset (``paper``)."""
    return CSRNet(**PRESETS[preset])
