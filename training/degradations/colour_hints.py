"""Simulated user colour hints (Zhang et al., "Real-Time User-Guided Image Colorization with
Learned Deep Priors", SIGGRAPH 2017): a random number of points, 0 to ``max_count`` per photo
(uniform, so one to twenty clicks are all seen often), each revealing the mean true ab of a
small square patch.
"""
from __future__ import annotations

import torch

MAX_HINTS = 20


def sample_hints(ab: torch.Tensor, max_count: int = MAX_HINTS, max_size: int = 5,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(hint ab map [N, 2, H, W], hint mask [N, 1, H, W]) revealed from the true ``ab`` [N, 2, H, W]."""
    n, _, h, w = ab.shape
    hints = torch.zeros_like(ab)
    mask = torch.zeros(n, 1, h, w, dtype=ab.dtype, device=ab.device)
    for i in range(n):
        for _ in range(int(torch.randint(0, max_count + 1, (), generator=generator))):
            size = int(torch.randint(1, max_size + 1, (), generator=generator))
            y = int(torch.randint(0, h - size + 1, (), generator=generator))
            x = int(torch.randint(0, w - size + 1, (), generator=generator))
            patch = ab[i, :, y:y + size, x:x + size]
            hints[i, :, y:y + size, x:x + size] = patch.mean(dim=(1, 2), keepdim=True)
            mask[i, :, y:y + size, x:x + size] = 1.0
    return hints, mask
