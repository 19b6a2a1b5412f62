"""The 8 flips/rotations of an image (the dihedral group) and the geometric self-ensemble over them.

Used for training augmentation (``training/data.py``) and for ``ensemble=true`` at serving time.
"""
from __future__ import annotations

from typing import Callable

import torch


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """One of the 8 flips/rotations of the last two dims (k in 0..7)."""
    if k >= 4:
        x = x.flip(-1)
    return torch.rot90(x, k % 4, dims=(-2, -1))


def undo_dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    x = torch.rot90(x, -(k % 4), dims=(-2, -1))
    return x.flip(-1) if k >= 4 else x


def self_ensemble(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The mean of ``model`` over the 8 transforms of ``x``, mapped back (float32, 8x the work)."""
    total = model(x).float()
    for k in range(1, 8):
        total += undo_dihedral(model(dihedral(x, k)), k).float()
    return total / 8
