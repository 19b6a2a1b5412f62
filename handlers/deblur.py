"""TorchServe handler for ``deblur``: atrous residual deblurring network (Brehm et al., NTIRE 2020, stage 1).

Same-size output for any input size (padded to the stride, cropped back); large photos run in
tiles whose overlap covers the receptive field stored in the TorchScript file. ``ensemble=true``
averages the model over the 8 flips/rotations of the input (8x the time).
"""
from __future__ import annotations

from typing import Any

import torch

from image_handler import ImageHandler
from options import options_for
from self_ensemble import self_ensemble


class DeblurHandler(ImageHandler):
    options = options_for("deblur")

    def forward(self, x: torch.Tensor, options: dict[str, Any]) -> torch.Tensor:
        if not options["ensemble"]:
            return self.model(x)
        return self_ensemble(self.model, x).to(x.dtype)
