"""Random white-balance casts of training photos.

Applied to a photo *and* its reference alike, a cast makes the true colours follow the
reference rather than what the scene usually looks like, so the model learns to take colour
statistics from the reference (and an old photo's era/tint can be transferred).
"""
from __future__ import annotations

import torch


def random_cast(rgb: torch.Tensor, strength: float = 0.4, generator: torch.Generator | None = None) -> torch.Tensor:
    """Multiply each image's RGB channels by gains in [1 - strength, 1 + strength], renormalised to
    keep the mean gain 1, clipped to [0, 1]. ``rgb`` is [N, 3, H, W]."""
    gains = 1 + strength * (2 * torch.rand(rgb.shape[0], 3, 1, 1, generator=generator, device=rgb.device) - 1)
    gains = gains / gains.mean(dim=1, keepdim=True)
    return (rgb * gains).clamp(0, 1)
