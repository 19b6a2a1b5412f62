"""TorchServe handler for ``superres``: ESPCN x4 super-resolution (sub-pixel CNN).

Two networks of the same scale may travel in the archive: ``superres.pt``, trained on clean bicubic
downscales, and ``superres_real.pt`` (when archives/superres/ holds it), trained on real-looking small
photos (JPEG'd, noisy, soft; docs/superres_real.md). The option ``input`` picks one: ``clean``, ``real``
or ``auto`` (the default), which measures the decoded upload (handlers/input_quality.py: a JPEG's
quality from its own tables, its 8x8 block grid, noise). In a chain (handlers/restore.py) a later
superres step's ``auto`` measures that step's input, 8-bit, as a separate call would measure the PNG
it was sent. Without the second file every request is answered by the clean network and
``input=real`` is refused with 400. Scale and receptive field come from each TorchScript file; large
inputs run in overlapping tiles.
"""
from __future__ import annotations

import os
from typing import Any

import torch

from image_handler import ImageHandler
from image_io import DecodedImage, RequestError
from input_quality import central_crop, classify
from model_metadata import ModelMetadata
from options import options_for

REAL_WEIGHTS = "superres_real.pt"  # beside superres.pt in the archive


class SuperResHandler(ImageHandler):
    options = options_for("superres")

    def initialize(self, context) -> None:
        super().initialize(context)
        self.networks = {"clean": (self.model, self.metadata)}
        path = os.path.join(context.system_properties.get("model_dir"), REAL_WEIGHTS)
        if os.path.exists(path):
            model, metadata = self.load_model(path)
            if metadata.scale != self.metadata.scale:  # one output size per request, whichever answers
                raise ValueError(f"{REAL_WEIGHTS} scales x{metadata.scale}, superres.pt x{self.metadata.scale}")
            self.networks["real"] = (model, metadata)

    def check_options(self, options: dict[str, Any], image: DecodedImage) -> dict[str, Any]:
        """``network``: the one that answers (so requests for either batch apart); None for a chain's
        later step under ``auto``, decided in :meth:`predict` once its input exists."""
        asked = options["input"]
        if asked != "auto" and asked not in self.networks:
            raise RequestError(400, "InvalidOption", f"input={asked}: this server carries no {REAL_WEIGHTS}; "
                               "send input=clean or auto")
        if asked != "auto":
            network = asked
        elif "real" not in self.networks:
            network = "clean"
        else:
            network = None if image.placeholder else classify(image.rgb, image.source.quantization)
        return {**options, "network": network}

    @torch.inference_mode()
    def predict(self, x: torch.Tensor, options: dict[str, Any]) -> torch.Tensor:
        if options["network"] is not None:
            return super().predict(x, options)
        picks = [self.classify_tensor(image) for image in x]
        if len(set(picks)) == 1:
            return super().predict(x, {**options, "network": picks[0]})
        return torch.cat([super().predict(x[i:i + 1], {**options, "network": pick}) for i, pick in enumerate(picks)])

    @staticmethod
    def classify_tensor(image: torch.Tensor) -> str:
        """``auto``'s rule on one [3, H, W] image in [0, 1], as its 8-bit PNG would be measured (no JPEG tables)."""
        rgb = central_crop(image.permute(1, 2, 0))
        return classify(rgb.float().mul(255).round().clamp(0, 255).to(torch.uint8).cpu().numpy(), None)

    def network(self, options: dict[str, Any]) -> tuple[torch.jit.ScriptModule, ModelMetadata]:
        return self.networks[options["network"]]
