"""The one-way degradation for retouch (training/degradations/camera_rendering.py): finished -> camera rendering."""
from __future__ import annotations

import numpy as np
import torch

from tests.support import photo
from training.degradations.camera_rendering import camera_rendering
from training.degradations.global_edits import luma, quantise


def finished_photos(n: int = 96) -> torch.Tensor:
    return torch.stack([torch.from_numpy(np.asarray(photo(48, 40, seed=i), np.float32) / 255).permute(2, 0, 1)
                        for i in range(n)])


def saturation(x: torch.Tensor) -> torch.Tensor:
    return (x.amax(1) - x.amin(1)).flatten(1).mean(1)


def test_same_generator_same_rendering_and_identity_share_unchanged():
    x = finished_photos(16)
    a = camera_rendering(x, 0.15, torch.Generator().manual_seed(1))
    b = camera_rendering(x, 0.15, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert torch.equal(camera_rendering(x, 1.0, torch.Generator().manual_seed(1)), quantise(x))


def test_it_goes_one_way_flatter_duller_lifted_blacks():
    """On average over photos, as FiveK's camera renderings against the experts': less luma contrast, less
    saturation, higher blacks, darker; and nearly every photo outside the identity share is changed."""
    x = finished_photos()
    y = camera_rendering(x, 0.0, torch.Generator().manual_seed(0))
    lx, ly = luma(x).flatten(1), luma(y).flatten(1)
    assert (ly.std(1) < lx.std(1)).float().mean() > 0.8
    assert (saturation(y) < saturation(x)).float().mean() > 0.7
    assert (ly.quantile(0.01, dim=1) > lx.quantile(0.01, dim=1)).float().mean() > 0.5
    assert ly.mean() < lx.mean()
    assert ((y - quantise(x)).abs().flatten(1).amax(1) > 2 / 255).float().mean() > 0.95
