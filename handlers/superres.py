"""TorchServe handler for ``superres``: ESPCN x4 super-resolution (sub-pixel CNN).

Two networks of the same scale may travel in the archive: ``superres.pt``, trained on clean bicubic
downscales, and ``superres_real.pt`` (when archives/superres/ holds it), trained on real-looking small
photos (JPEG'd, noisy, soft; docs/superres_real.md). The option ``input`` picks one: ``clean``, ``real``
or ``auto`` (the default), which measures the decoded upload (handlers/input_quality.py: a JPEG's
quality from its own tables, 8x8 blockiness, noise). Without the second file every request is
answered by the clean network and ``input=real`` is refused with 400. Scale and receptive field come
from each TorchScript file; large inputs run in overlapping tiles.
"""
from __future__ import annotations

import os
from typing import Any

import torch

from image_handler import ImageHandler
from image_io import DecodedImage, RequestError
from input_quality import classify
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
        """``input`` resolved to the network that answers (so requests for either batch apart)."""
        asked = options["input"]
        if asked == "auto":
            chosen = classify(image.rgb, image.source.quantization) if "real" in self.networks else "clean"
            return {**options, "input": chosen}
        if asked not in self.networks:
            raise RequestError(400, "InvalidOption", f"input={asked}: this server carries no {REAL_WEIGHTS}; "
                               "send input=clean or auto")
        return options

    def network(self, options: dict[str, Any]) -> tuple[torch.jit.ScriptModule, ModelMetadata]:
        return self.networks[options["input"]]
