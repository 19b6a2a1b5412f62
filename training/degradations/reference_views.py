"""Colour references for training a reference-guided colorizer.

A reference is, per sample, either another view of the same photo (a random crop covering
50-100% of each side, maybe mirrored, resized back: same scene, different framing, as a user
would pick), a view of a different photo in the batch (colours that do not match, so the
model learns not to copy blindly), or absent (automatic mode).
"""
from __future__ import annotations

import torch
from torch.nn import functional as F


def random_view(img: torch.Tensor, min_frac: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random crop of [3, H, W] (each side 50-100%), mirrored half the time, resized to H x W."""
    _, h, w = img.shape
    frac = min_frac + (1 - min_frac) * float(torch.rand((), generator=generator))
    ch, cw = max(1, round(h * frac)), max(1, round(w * frac))
    y = int(torch.randint(0, h - ch + 1, (), generator=generator))
    x = int(torch.randint(0, w - cw + 1, (), generator=generator))
    crop = img[None, :, y:y + ch, x:x + cw]
    if float(torch.rand((), generator=generator)) < 0.5:
        crop = crop.flip(-1)
    return F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False, antialias=True)[0].clamp(0, 1)


def sample_references(clean: torch.Tensor, p_same: float = 0.45, p_other: float = 0.15,
                      generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(references [N, 3, H, W], has_reference [N] in {0, 1}) for a batch of photos [N, 3, H, W]."""
    n = clean.shape[0]
    refs = torch.zeros_like(clean)
    has = torch.zeros(n, dtype=clean.dtype, device=clean.device)
    for i in range(n):
        u = float(torch.rand((), generator=generator))
        if u < p_same + p_other:
            source = i if u < p_same or n == 1 else (i + 1 + int(torch.randint(0, n - 1, (), generator=generator))) % n
            refs[i] = random_view(clean[source], generator=generator)
            has[i] = 1.0
    return refs, has
