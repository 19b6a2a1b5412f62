"""TorchServe handler for ``enhance``: FiLM² light-bleed removal (glow, flare, veiling glare).

Same-size output for any input size: the TorchScript model pads to its encoder stride and crops
back itself, and runs on the whole image; only photos past the tile size (a memory budget) run
in overlapping tiles. ``decoder=main|light`` answers with one decoder's estimate instead of the
0.5/0.5 ensemble (the ablation of the original work, for inspection).
"""
from __future__ import annotations

import torch

from image_handler import ImageHandler, Request
from options import options_for


class EnhanceHandler(ImageHandler):
    pad_multiple = 16  # the encoder's stride: tiles must sample the same grid as the whole image
    receptive_field = 96  # glow tails are long; beyond this, global FiLM conditioning covers the rest
    options = options_for("enhance")

    def infer(self, x: torch.Tensor, request: Request) -> torch.Tensor:
        decoder = request.options["decoder"]
        if decoder == "ensemble":
            return self.model(x)
        main, light = self.model.branches(x)
        return main if decoder == "main" else light
