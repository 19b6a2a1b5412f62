"""TorchServe handler for ``retouch``: CSRNet global retouching (He et al., ECCV 2020).

The TorchScript module computes its condition from a 128 px thumbnail of the whole photo and
runs the per-pixel base network at full resolution, so the image is never tiled (tiles would
each get their own condition). ``strength`` (0 to 1, default 1) blends the input towards the
retouched result.
"""
from __future__ import annotations

import torch

from image_handler import ImageHandler, Request
from options import options_for


class RetouchHandler(ImageHandler):
    receptive_field = 0  # the base network is 1x1 convolutions
    options = options_for("retouch")

    def restore(self, x: torch.Tensor, request: Request) -> torch.Tensor:
        """The whole photo in one call, whatever the tile setting: the condition must see all of it."""
        return self.infer(x, request)

    def infer(self, x: torch.Tensor, request: Request) -> torch.Tensor:
        out = self.model(x)
        strength = request.options["strength"]
        return out if strength == 1.0 else torch.lerp(x, out.to(x.dtype), strength)
