"""FiLM²: light-bleed (flare, glow, veiling glare) removal by "adjusting the film" in feature space.

The idea of the FiLM² camera image-quality challenge entry: restoration as feature-wise linear
modulation (FiLM; Perez et al., "FiLM: Visual Reasoning with a General Conditioning Layer",
AAAI 2018). An ImageNet-style torchvision ResNet/ResNeXt encodes the photo; a condition branch
pools its deepest features over the whole image and predicts per-channel ``gamma`` and ``beta``
for the features of every scale (``gamma * x + beta``), so image-wide light (veiling glare, the
colour of the stray light) steers local processing. Two decoders read the modulated features:

- the main decoder, U-Net style, predicts a full-resolution residual (``x + r``);
- the supplementary light decoder, smaller, predicts where the glare is and how much of it there
  is as a ReLU-masked, non-negative light layer that is subtracted (``x - relu(l)``): stray light
  only ever adds to a photo.

The output is the 0.5/0.5 average of the two estimates, inside the one module. The network is
fully convolutional: inputs are edge-padded to the encoder stride and the result cropped back.

For serving large photos in tiles, the condition and the conditioned decoders are also exported
apart (``global_condition``, ``conditioned``): a photo wider or taller than ``condition_side`` takes
its condition from a copy downscaled to that side, once, and every tile is decoded under it, so a
tiled photo gets one global correction and matches the untiled result.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

PRESETS: dict[str, dict] = {
    # The paper's encoder, torchvision's resnext101_32x8d (88.8M parameters with its classifier).
    "paper": {"block": "bottleneck", "layers": (3, 4, 23, 3), "groups": 32, "width_per_group": 8, "stages": 4,
              "main_widths": (256, 128, 64, 32, 32), "light_widths": (64, 32, 16, 16, 16), "hidden": 512},
    # CPU preset: the same torchvision builder, ResNeXt-style but one bottleneck block per stage,
    # 4 groups of width 4, truncated after the third stage (stride 16). Trains on one core.
    "cpu": {"block": "bottleneck", "layers": (1, 1, 1, 1), "groups": 4, "width_per_group": 4, "stages": 3,
            "main_widths": (96, 64, 32, 24), "light_widths": (32, 16, 16, 16), "hidden": 128},
}
BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}
# Photos up to this side take their FiLM condition from themselves (as in training); larger ones from a
# copy downscaled to it, which also bounds the condition pass of a 12 MP photo.
CONDITION_SIDE = 1024


class ResNetEncoder(nn.Module):
    """A torchvision ResNet without its classifier, returning the features of every stage.

    Feature strides: 2 (stem), 4 (layer1), 8, 16, 32 (layer4), truncated after ``stages``."""

    def __init__(self, block: str, layers: Sequence[int], groups: int, width_per_group: int, stages: int,
                 weights: str | Path | None = None) -> None:
        super().__init__()
        net = ResNet(BLOCKS[block], list(layers), groups=groups, width_per_group=width_per_group)
        if weights is not None:
            # A local ImageNet checkpoint (e.g. torchvision's resnext101_32x8d file); nothing is downloaded.
            net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu)
        self.pool = net.maxpool
        self.stages = nn.ModuleList([net.layer1, net.layer2, net.layer3, net.layer4][:stages])
        # torchvision's fixed layout: a 64-channel stem, then 64 * 2**i planes times the block's expansion.
        self.channels = [64] + [64 * 2 ** i * BLOCKS[block].expansion for i in range(stages)]
        self.stride = 2 ** (len(self.stages) + 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = [self.stem(x)]
        y = self.pool(feats[0])
        for stage in self.stages:
            y = stage(y)
            feats.append(y)
        return feats


class FiLM(nn.Module):
    """Feature-wise linear modulation ``gamma * x + beta`` with per-image, per-channel parameters."""

    def forward(self, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        return gamma[:, :, None, None] * x + beta[:, :, None, None]


class Condition(nn.Module):
    """Global average pool of the deepest features -> MLP -> (gamma, beta) for every scale.

    The last layer starts at zero so training starts from the identity modulation (gamma=1, beta=0)."""

    def __init__(self, channels: Sequence[int], hidden: int) -> None:
        super().__init__()
        self.channels = list(channels)
        self.mlp = nn.Sequential(nn.Linear(self.channels[-1], hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, 2 * sum(self.channels)))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, deepest: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        params = self.mlp(deepest.mean((-2, -1)))
        gammas, betas = [], []
        start = 0
        for c in self.channels:
            gammas.append(1 + params[:, start:start + c])
            betas.append(params[:, start + c:start + 2 * c])
            start += 2 * c
        return gammas, betas


class DecoderStage(nn.Module):
    """Upsample the coarser decoder state to the skip's size, add the projected skip, 3x3 conv."""

    def __init__(self, coarse: int, skip: int, out: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(coarse, out, 1)
        self.lateral = nn.Conv2d(skip, out, 1)
        self.conv = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(out, out, 3, padding=1), nn.ReLU(inplace=True))

    def forward(self, y: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        y = F.interpolate(self.reduce(y), size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(y + self.lateral(skip))


class Decoder(nn.Module):
    """U-Net decoder from the deepest features to a 3-channel full-resolution map.

    ``widths`` run deep to shallow, one per encoder feature; the last stage sits at stride 2 and
    a sub-pixel convolution (PixelShuffle) brings it to full resolution."""

    def __init__(self, channels: Sequence[int], widths: Sequence[int]) -> None:
        super().__init__()
        channels = list(channels)[::-1]  # deep -> shallow
        if len(widths) != len(channels):
            raise ValueError(f"need one decoder width per encoder feature ({len(channels)}), got {len(widths)}")
        self.bottom = nn.Sequential(nn.Conv2d(channels[0], widths[0], 1), nn.ReLU(inplace=True),
                                    nn.Conv2d(widths[0], widths[0], 3, padding=1), nn.ReLU(inplace=True))
        self.ups = nn.ModuleList([DecoderStage(widths[i - 1], channels[i], widths[i]) for i in range(1, len(widths))])
        self.head = nn.Sequential(nn.Conv2d(widths[-1], 3 * 4, 3, padding=1), nn.PixelShuffle(2))

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        y = self.bottom(feats[-1])
        for i, up in enumerate(self.ups):
            y = up(y, feats[-2 - i])
        return self.head(y)


class FiLM2(nn.Module):
    """RGB in [0, 1] of any size -> RGB with the light bleed removed (same size)."""

    def __init__(self, block: str = "bottleneck", layers: Sequence[int] = (1, 1, 1, 1), groups: int = 4,
                 width_per_group: int = 4, stages: int = 3, main_widths: Sequence[int] = (96, 64, 32, 24),
                 light_widths: Sequence[int] = (32, 16, 16, 16), hidden: int = 128,
                 encoder_weights: str | Path | None = None, condition_side: int = CONDITION_SIDE) -> None:
        super().__init__()
        self.encoder = ResNetEncoder(block, layers, groups, width_per_group, stages, encoder_weights)
        self.stride = self.encoder.stride
        self.condition = Condition(self.encoder.channels, hidden)
        self.film = FiLM()
        self.main_decoder = Decoder(self.encoder.channels, main_widths)
        self.light_decoder = Decoder(self.encoder.channels, light_widths)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        # Serving facts, stored in the exported file's metadata (training/export.py):
        self.condition_side = condition_side  # larger photos are conditioned on a copy downscaled to this side
        self.large_image = "tiles"  # tiles share one condition (global_condition), so tiling is seamless
        # Diameter treated as local by tiling: the decoders' own reach is about 150 px; glow tails
        # are longer, and beyond this the shared global condition carries them.
        self.receptive_field = 192

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Encoder features of every scale (x already padded to the stride)."""
        return self.encoder((x - self.mean) / self.std)

    def modulate(self, feats: list[torch.Tensor], gammas: list[torch.Tensor],
                 betas: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self.film(f, g, b) for f, g, b in zip(feats, gammas, betas)]

    def decode(self, x: torch.Tensor, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(main estimate, light estimate) from modulated features, x padded like them."""
        return x + self.main_decoder(feats), x - F.relu(self.light_decoder(feats))

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.stride, (-w) % self.stride
        return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph > 0 or pw > 0 else x

    @torch.jit.export
    def global_condition(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(gammas, betas) of the photo ``x`` [N, 3, H, W]: from ``x`` itself, or from ``x`` downscaled
        to ``condition_side`` when it is larger (then every tile of it can share them)."""
        h, w = x.shape[-2], x.shape[-1]
        side = max(h, w)
        if side > self.condition_side:
            scale = self.condition_side / side
            size = [max(1, int(round(h * scale))), max(1, int(round(w * scale)))]
            x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        return self.condition(self.features(self._pad(x))[-1])

    @torch.jit.export
    def conditioned(self, x: torch.Tensor, gammas: list[torch.Tensor],
                    betas: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The two decoders' estimates for ``x`` (a photo or a tile of one) under a given condition."""
        xp = self._pad(x)
        return self._decode_cropped(xp, self.features(xp), gammas, betas, x.shape[-2], x.shape[-1])

    @torch.jit.export
    def branches(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two decoders' estimates, each on its own (for training and the ablation)."""
        h, w = x.shape[-2], x.shape[-1]
        if max(h, w) > self.condition_side:
            gammas, betas = self.global_condition(x)
            return self.conditioned(x, gammas, betas)
        xp = self._pad(x)
        feats = self.features(xp)  # one encoder pass serves both the condition and the decoders
        gammas, betas = self.condition(feats[-1])
        return self._decode_cropped(xp, feats, gammas, betas, h, w)

    def _decode_cropped(self, xp: torch.Tensor, feats: list[torch.Tensor], gammas: list[torch.Tensor],
                        betas: list[torch.Tensor], h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode ``feats`` (consumed: without gradients they are modulated in place, which halves
        the features' memory on a large photo; ``gamma * x + beta`` either way, the same numbers)."""
        if feats[0].requires_grad:
            feats = self.modulate(feats, gammas, betas)
        else:
            feats = [f.mul_(g[:, :, None, None]).add_(b[:, :, None, None]) for f, g, b in zip(feats, gammas, betas)]
        main, light = self.decode(xp, feats)
        return main[..., :h, :w], light[..., :h, :w]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        main, light = self.branches(x)
        return 0.5 * main + 0.5 * light


def film2(preset: str = "cpu", encoder_weights: str | Path | None = None) -> FiLM2:
    """Build a named preset (``paper`` or ``cpu``), optionally from local ImageNet encoder weights."""
    return FiLM2(**PRESETS[preset], encoder_weights=encoder_weights)
