"""Random global photo edits (the bad retouching a retouching model must undo).

Each edit is a per-pixel colour transform with one random strength per image: exposure,
gamma, contrast, saturation, white balance/tint, S-curves and fades. ``random_global_edits``
applies one to ``max_edits`` of them per image, in a random order, so the model sees single
edits and combinations.
All functions take and return [N, 3, H, W] tensors in [0, 1].
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from training.degradations.colour_cast import random_cast

Generator = torch.Generator | None


def luma(x: torch.Tensor) -> torch.Tensor:
    """Rec. 601 luma, [N, 1, H, W]."""
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def exposure(x: torch.Tensor, stops: torch.Tensor) -> torch.Tensor:
    return (x * torch.exp2(stops)).clamp(0, 1)


def gamma(x: torch.Tensor, power: torch.Tensor) -> torch.Tensor:
    return x.clamp_min(1e-6) ** power


def contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Stretch around each image's mean luma (as PIL's ImageEnhance.Contrast)."""
    mean = luma(x).mean(dim=(2, 3), keepdim=True)
    return (mean + (x - mean) * factor).clamp(0, 1)


def saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    gray = luma(x)
    return (gray + (x - gray) * factor).clamp(0, 1)


def s_curve(x: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    """``x - a sin(2 pi x) / 2 pi``: a > 0 is an S-curve (more midtone contrast), a < 0 flattens.
    Fixes 0, 0.5 and 1 and stays monotonic for |a| < 1."""
    return x - amount * torch.sin(2 * math.pi * x) / (2 * math.pi)


def fade(x: torch.Tensor, black: torch.Tensor, white: torch.Tensor) -> torch.Tensor:
    """Lifted blacks and dimmed whites, the washed-out "matte" look."""
    return black + x * (1 - black - white)


def _uniform(n: int, low: float, high: float, gen: Generator, device: torch.device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, 1, 1, 1, generator=gen, device=device)


def _either(x: torch.Tensor, below: tuple[float, float], above: tuple[float, float], gen: Generator) -> torch.Tensor:
    """Per image, a strength from ``below`` or from ``above`` the identity (even odds), never close to it:
    an edit that changes nothing visible teaches nothing."""
    n = x.shape[0]
    low, high = _uniform(n, *below, gen, x.device), _uniform(n, *above, gen, x.device)
    return torch.where(torch.rand(n, 1, 1, 1, generator=gen, device=x.device) < 0.5, low, high)


# name -> edit with freshly sampled per-image strengths. Ranges are those of a careless edit or a
# difficult exposure: visible, but recoverable. Brightening is milder than darkening because
# clipped highlights are lost for good.
EDITS: dict[str, Callable[[torch.Tensor, Generator], torch.Tensor]] = {
    "exposure": lambda x, g: exposure(x, _either(x, (-1.4, -0.4), (0.25, 0.6), g)),
    "gamma": lambda x, g: gamma(x, torch.exp2(_either(x, (-0.6, -0.25), (0.25, 0.6), g))),
    "contrast": lambda x, g: contrast(x, _either(x, (0.6, 0.8), (1.15, 1.3), g)),
    "saturation": lambda x, g: saturation(x, _either(x, (0.4, 0.7), (1.3, 1.6), g)),
    "white_balance": lambda x, g: random_cast(x, 0.3, g),  # per-channel gains: temperature and tint
    "s_curve": lambda x, g: s_curve(x, _either(x, (-0.7, -0.3), (0.3, 0.7), g)),
    "fade": lambda x, g: fade(x, _uniform(x.shape[0], 0.05, 0.2, g, x.device), _uniform(x.shape[0], 0.0, 0.1, g, x.device)),
}


def random_global_edits(x: torch.Tensor, max_edits: int = 3, generator: Generator = None) -> torch.Tensor:
    """Apply 1 to ``max_edits`` distinct edits to each image (a uniform count), edits in a random
    order, then quantise to 8 bits as a saved photo would be."""
    names = list(EDITS)
    n = x.shape[0]
    count = torch.randint(1, max_edits + 1, (n, 1), generator=generator)
    rank = torch.rand(n, len(names), generator=generator).argsort(dim=1).argsort(dim=1)
    chosen = (rank < count).to(x.device)  # [N, edits]: a random subset of ``count`` edits per image
    for k in torch.randperm(len(names), generator=generator).tolist():
        x = torch.where(chosen[:, k, None, None, None], EDITS[names[k]](x, generator), x)
    return quantise(x)


def quantise(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x * 255) / 255
