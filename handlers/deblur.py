"""TorchServe handler for ``deblur``: atrous residual deblurring network (Brehm et al., NTIRE 2020, stage 1).

Same-size output for any input size (padded to the stride, cropped back); large photos run in
tiles whose overlap covers the receptive field stored in the TorchScript file. ``ensemble=true``
averages the model over the 8 flips/rotations of the input (8x the time).
"""
from __future__ import annotations

import torch

from image_handler import ImageHandler, Request
from options import options_for
from self_ensemble import self_ensemble


class DeblurHandler(ImageHandler):
    pad_multiple = 2  # the stride-2 conv: tiles must start on the same grid as the whole image
    options = options_for("deblur")

    def load_model(self, path: str) -> torch.jit.ScriptModule:
        model = super().load_model(path)
        self.receptive_field = (int(model.receptive_field) + 1) // 2  # the base wants one side
        return model

    def infer(self, x: torch.Tensor, request: Request) -> torch.Tensor:
        if not request.options["ensemble"]:
            return self.model(x)
        return self_ensemble(self.model, x).to(x.dtype)
