"""Simulated user colour hints (Zhang et al., "Real-Time User-Guided Image Colorization with
Learned Deep Priors", SIGGRAPH 2017): a geometric number of points (zero included, so the
model also learns automatic mode), each revealing the mean true ab of a small square patch.
"""
from __future__ import annotations

import torch


def geometric_count(p: float, cap: int, generator: torch.Generator | None = None) -> int:
    """Number of failures before the first success, capped: P(0) = p, mean (1 - p) / p."""
    u = float(torch.rand((), generator=generator))
    return min(cap, int(torch.log1p(torch.tensor(-u)) / torch.log1p(torch.tensor(-p))))


def sample_hints(ab: torch.Tensor, p: float = 0.125, cap: int = 64, max_size: int = 5,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(hint ab map [N, 2, H, W], hint mask [N, 1, H, W]) revealed from the true ``ab`` [N, 2, H, W]."""
    n, _, h, w = ab.shape
    hints = torch.zeros_like(ab)
    mask = torch.zeros(n, 1, h, w, dtype=ab.dtype, device=ab.device)
    for i in range(n):
        for _ in range(geometric_count(p, cap, generator)):
            size = int(torch.randint(1, max_size + 1, (), generator=generator))
            y = int(torch.randint(0, h - size + 1, (), generator=generator))
            x = int(torch.randint(0, w - size + 1, (), generator=generator))
            patch = ab[i, :, y:y + size, x:x + size]
            hints[i, :, y:y + size, x:x + size] = patch.mean(dim=(1, 2), keepdim=True)
            mask[i, :, y:y + size, x:x + size] = 1.0
    return hints, mask

