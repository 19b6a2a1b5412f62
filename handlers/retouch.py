"""TorchServe handler for ``retouch``: CSRNet global retouching (He et al., ECCV 2020).

The TorchScript module computes its condition from a 128 px thumbnail of the whole photo and
runs the per-pixel base network at full resolution, so its metadata says the image is never
tiled (tiles would each get their own condition). ``strength`` (0 to 1, default 1) blends the
input towards the retouched result.
"""
from __future__ import annotations

from typing import Any

import torch

from image_handler import ImageHandler
from options import options_for


class RetouchHandler(ImageHandler):
    options = options_for("retouch")

    def forward(self, x: torch.Tensor, options: dict[str, Any]) -> torch.Tensor:
        out = self.model(x)
        strength = options["strength"]
        return out if strength == 1.0 else torch.lerp(x, out.to(x.dtype), strength)
