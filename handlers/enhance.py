"""TorchServe handler for ``enhance``: FiLM² light-bleed removal (glow, flare, veiling glare).

Same-size output for any input size. A photo that fits one tile runs whole (the module pads to its
encoder stride and takes its FiLM condition from the photo itself, or from a copy downscaled to the
module's ``condition_side`` when larger). A photo past the tile size (a memory budget) gets that
condition once and every overlapping tile is decoded under it, so it gets one global correction,
as untiled. ``decoder=main|light`` answers with one decoder's estimate instead of the 0.5/0.5
ensemble (the ablation of the original work, for inspection).
"""
from __future__ import annotations

from typing import Any

import torch

from image_handler import ImageHandler
from options import options_for
from tiling import tiles


class EnhanceHandler(ImageHandler):
    options = options_for("enhance")
    model_methods = ("global_condition", "branches", "conditioned")

    @torch.inference_mode()
    def predict(self, x: torch.Tensor, options: dict[str, Any]) -> torch.Tensor:
        if tiles(x.shape, self.metadata, int(self.config["tile"])):
            options = {**options, "condition": self.model.global_condition(x)}  # once per photo, for all its tiles
        return super().predict(x, options)

    def forward(self, x: torch.Tensor, options: dict[str, Any]) -> torch.Tensor:
        condition = options.get("condition")
        main, light = self.model.branches(x) if condition is None else self.model.conditioned(x, *condition)
        decoder = options["decoder"]
        return 0.5 * main + 0.5 * light if decoder == "ensemble" else (main if decoder == "main" else light)
