"""TorchServe handler for ``colorize``: guided colorization in Lab space (the photo's L is kept).

Multipart fields: ``data`` (the photo; a colour photo is reduced to its L), optional
``reference`` (a colour image whose colours to borrow), optional ``hints`` (JSON list of
``{"x": int, "y": int, "rgb": [r, g, b]}`` in the photo's pixel coordinates), and the option
``mode`` = image (default) | ensemble | patch. A raw-body request is automatic mode.
The TorchScript module does all colour maths and its own working-size/patch inference, so
this handler only validates the guidance and lays it out as tensors.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from image_handler import ImageHandler
from image_io import DecodedImage, RequestError, decode
from options import options_for

Hint = tuple[int, int, tuple[int, int, int]]  # (y, x, (r, g, b))


class ColorizeHandler(ImageHandler):
    options = options_for("colorize")
    keep_grayscale = False  # the point is to answer a grayscale photo in colour

    def check_options(self, options: dict[str, Any], image: DecodedImage) -> dict[str, Any]:
        """``reference`` decoded (a colour image), ``hints`` placed inside the photo as (y, x, rgb) tuples."""
        reference = None
        if options["reference"] is not None:
            try:
                limit = self.config.get("max_reference_pixels", self.config["max_input_pixels"])
                reference = decode(options["reference"], int(limit))
            except RequestError as err:
                raise RequestError(err.code, err.kind, f"reference: {err.message}") from None
            if reference.grayscale:
                raise RequestError(400, "GrayscaleReference", "reference: the image has no colour to transfer")
        hints = self.place_hints(options["hints"] or [], *image.size)
        return {**options, "reference": reference, "hints": hints}

    @staticmethod
    def place_hints(hints: list[dict], height: int, width: int) -> tuple[Hint, ...]:
        """Hints (their JSON shape already checked by the option) inside the image, or a 400."""
        placed = []
        for i, hint in enumerate(hints):
            x, y = hint["x"], hint["y"]
            if not (0 <= x < width and 0 <= y < height):
                raise RequestError(400, "InvalidHints", f"hint {i}: ({x}, {y}) lies outside the {width}x{height} image")
            placed.append((y, x, tuple(hint["rgb"])))
        return tuple(placed)  # hashable: requests with the same hints may share a batch

    @torch.inference_mode()
    def predict(self, x: torch.Tensor, options: dict[str, Any]) -> torch.Tensor:
        """The module does its own working-size/patch inference (metadata ``large_image: model``);
        ``x`` is a batch sharing the same guidance (see ``Request.batch_key``)."""
        n, _, h, w = x.shape
        hint_rgb, mask = torch.zeros(n, 3, 1, 1, device=x.device), torch.zeros(n, 1, 1, 1, device=x.device)
        if options["hints"]:
            hint_rgb, mask = hint_rgb.repeat(1, 1, h, w), mask.repeat(1, 1, h, w)
        for y, xx, rgb in options["hints"]:
            hint_rgb[:, :, y, xx] = torch.tensor(rgb, dtype=torch.float32, device=x.device) / 255.0
            mask[:, :, y, xx] = 1.0
        hint_rgb, mask = hint_rgb.expand(n, 3, h, w), mask.expand(n, 1, h, w)  # no hints: no full-size zeros
        reference: DecodedImage | None = options["reference"]
        if reference is not None:
            peak = float(255 if reference.rgb.dtype == np.uint8 else 65535)  # a 16-bit reference keeps its depth
            ref = torch.from_numpy(reference.rgb.astype(np.float32)).to(x.device).permute(2, 0, 1)[None] / peak
            has_ref = torch.ones(n, device=x.device)
        else:
            ref, has_ref = torch.zeros(n, 3, 1, 1, device=x.device), torch.zeros(n, device=x.device)
        out = self.model(x.float(), hint_rgb, mask, ref.expand(n, -1, -1, -1), has_ref, options["mode"])
        return out.float().clamp_(0, 1)
