"""Random global photo edits (the bad retouching a retouching model must undo).

Everything a global retouch corrects, each edit a per-pixel colour transform with one random
strength per image, in both directions (too dark and too bright, too flat and too contrasty, ...):
exposure, gamma, shadow/highlight tone curves, S-curves, contrast, saturation, white balance and
tint, per-channel colour curves, and levels (faded, lifted blacks and dimmed whites, or crushed
blacks and clipped whites). Strengths run from barely visible to strong, so the model also learns
when to do little. ``random_global_edits`` applies one to ``max_edits`` of them per image, in a
random order, and leaves a fraction of the images unedited (identity targets: a good photo must
come back unchanged).
All functions take and return [N, 3, H, W] tensors in [0, 1].
"""
from __future__ import annotations

import math
from typing import Callable

import torch

Generator = torch.Generator | None
MAX_EDITS = 3  # most edits combined on one image


def luma(x: torch.Tensor) -> torch.Tensor:
    """Rec. 601 luma, [N, 1, H, W]."""
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def exposure(x: torch.Tensor, stops: torch.Tensor) -> torch.Tensor:
    return (x * torch.exp2(stops)).clamp(0, 1)


def gamma(x: torch.Tensor, power: torch.Tensor) -> torch.Tensor:
    """``power`` [N, 1, 1, 1] (one curve) or [N, 3, 1, 1] (a curve per channel: a midtone colour cast)."""
    return x.clamp_min(1e-6) ** power


def contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Stretch around each image's mean luma (as PIL's ImageEnhance.Contrast)."""
    mean = luma(x).mean(dim=(2, 3), keepdim=True)
    return (mean + (x - mean) * factor).clamp(0, 1)


def saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    gray = luma(x)
    return (gray + (x - gray) * factor).clamp(0, 1)


def white_balance(x: torch.Tensor, temperature: torch.Tensor, tint: torch.Tensor) -> torch.Tensor:
    """Channel gains: ``temperature`` > 0 warmer (red up, blue down), ``tint`` > 0 greener (green up,
    red and blue down), both in stops; normalised so a mid-grey keeps its luma."""
    gains = torch.exp2(torch.cat([temperature / 2 - tint / 3, 2 * tint / 3, -temperature / 2 - tint / 3], dim=1))
    return (x * gains / luma(gains)).clamp(0, 1)


def s_curve(x: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    """``x - a sin(2 pi x) / 2 pi``: a > 0 is an S-curve (more midtone contrast), a < 0 flattens.
    Fixes 0, 0.5 and 1 and stays monotonic for |a| < 1."""
    return x - amount * torch.sin(2 * math.pi * x) / (2 * math.pi)


def tone_curve(x: torch.Tensor, shadows: torch.Tensor, highlights: torch.Tensor) -> torch.Tensor:
    """Shadows and highlights lifted (> 0) or pulled down (< 0) separately, ends fixed:
    ``x + s x (1 - x)^2 + h x^2 (1 - x)``, monotonic for |s|, |h| <= 1."""
    return x + shadows * x * (1 - x) ** 2 + highlights * x ** 2 * (1 - x)


def fade(x: torch.Tensor, black: torch.Tensor, white: torch.Tensor) -> torch.Tensor:
    """Levels: positive ``black``/``white`` lift the blacks and dim the whites (the washed-out "matte"
    look); negative ones crush the blacks and clip the whites."""
    return (black + x * (1 - black - white)).clamp(0, 1)


def _signed(x: torch.Tensor, low: float, high: float, gen: Generator, channels: int = 1) -> torch.Tensor:
    """Per image (and channel), a magnitude in [low, high] with a random sign: both directions, even odds."""
    n = x.shape[0]
    sign = torch.where(torch.rand(n, channels, 1, 1, generator=gen, device=x.device) < 0.5, -1.0, 1.0)
    return sign * (low + (high - low) * torch.rand(n, channels, 1, 1, generator=gen, device=x.device))


def _two_sided(x: torch.Tensor, down: float, up: float, gen: Generator) -> torch.Tensor:
    """Like ``_signed``, with different reaches: down to ``-down`` or up to ``up`` (from a tenth of either)."""
    amount = _signed(x, 0.1, 1.0, gen)
    return torch.where(amount < 0, down * amount, up * amount)


# name -> edit with freshly sampled per-image strengths. Ranges are those of a careless edit, a
# difficult exposure or a dull camera rendering: visible at the top of each range, but recoverable.
# Brightening is milder than darkening because clipped highlights are lost for good.
EDITS: dict[str, Callable[[torch.Tensor, Generator], torch.Tensor]] = {
    "exposure": lambda x, g: exposure(x, _two_sided(x, 1.4, 0.6, g)),
    "gamma": lambda x, g: gamma(x, torch.exp2(_signed(x, 0.05, 0.7, g))),
    "tone_curve": lambda x, g: tone_curve(x, _signed(x, 0.1, 0.9, g), _signed(x, 0.1, 0.9, g)),
    "s_curve": lambda x, g: s_curve(x, _signed(x, 0.1, 0.7, g)),
    "contrast": lambda x, g: contrast(x, torch.exp2(_signed(x, 0.05, 0.6, g))),
    "saturation": lambda x, g: saturation(x, torch.exp2(_signed(x, 0.1, 1.0, g))),
    "white_balance": lambda x, g: white_balance(x, _signed(x, 0.05, 0.5, g), _signed(x, 0.0, 0.3, g)),
    "colour_curves": lambda x, g: gamma(x, torch.exp2(_signed(x, 0.02, 0.25, g, channels=3))),
    "fade": lambda x, g: fade(x, _two_sided(x, 0.08, 0.2, g), _two_sided(x, 0.08, 0.12, g)),
}


def random_global_edits(x: torch.Tensor, max_edits: int = MAX_EDITS, identity_fraction: float = 0.0,
                        generator: Generator = None) -> torch.Tensor:
    """Apply 1 to ``max_edits`` distinct edits to each image (a uniform count), edits in a random
    order, none at all to a random ``identity_fraction`` of the images, then quantise to 8 bits as
    a saved photo would be."""
    names = list(EDITS)
    n = x.shape[0]
    count = torch.randint(1, max_edits + 1, (n, 1), generator=generator)
    count = torch.where(torch.rand(n, 1, generator=generator) < identity_fraction, 0, count)
    rank = torch.rand(n, len(names), generator=generator).argsort(dim=1).argsort(dim=1)
    chosen = (rank < count).to(x.device)  # [N, edits]: a random subset of ``count`` edits per image
    for k in torch.randperm(len(names), generator=generator).tolist():
        x = torch.where(chosen[:, k, None, None, None], EDITS[names[k]](x, generator), x)
    return quantise(x)


def quantise(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x * 255) / 255
