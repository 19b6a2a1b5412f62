"""TorchServe handler for ``colorize``: guided colorization in Lab space (the photo's L is kept).

Multipart fields: ``data`` (the photo; a colour photo is reduced to its L), optional
``reference`` (a colour image whose colours to borrow), optional ``hints`` (JSON list of
``{"x": int, "y": int, "rgb": [r, g, b]}`` in the photo's pixel coordinates), and the option
``mode`` = ensemble (default) | image | patch. A raw-body request is automatic mode.
The TorchScript module does all colour maths and its own working-size/patch inference, so
this handler only validates the guidance and lays it out as tensors.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from image_handler import ImageHandler, Request
from image_io import DecodedImage, RequestError, decode
from options import options_for

Hint = tuple[int, int, tuple[int, int, int]]  # (y, x, (r, g, b))


class ColorizeHandler(ImageHandler):
    @dataclass
    class GuidedRequest(Request):
        """Nested: TorchServe wants exactly one class at the top of a handler module."""

        reference: DecodedImage | None = None
        hints: list[Hint] = field(default_factory=list)

    options = options_for("colorize")
    keep_grayscale = False  # the point is to answer a grayscale photo in colour

    def parse_request(self, raw: dict, headers: dict[str, bytes] | None = None) -> GuidedRequest:
        req = super().parse_request(raw, headers)
        reference = None
        if req.options["reference"] is not None:
            try:
                limit = self.config.get("max_reference_pixels", self.config["max_input_pixels"])
                reference = decode(req.options["reference"], int(limit))
            except RequestError as err:
                raise RequestError(err.code, err.kind, f"reference: {err.message}") from None
            if reference.grayscale:
                raise RequestError(400, "GrayscaleReference", "reference: the image has no colour to transfer")
        hints = self.place_hints(req.options["hints"] or [], *req.image.size)
        return self.GuidedRequest(req.image, req.options, reference, hints)

    @staticmethod
    def place_hints(hints: list[dict], height: int, width: int) -> list[Hint]:
        """Hints (their JSON shape already checked by the option) inside the image, or a 400."""
        placed = []
        for i, hint in enumerate(hints):
            x, y = hint["x"], hint["y"]
            if not (0 <= x < width and 0 <= y < height):
                raise RequestError(400, "InvalidHints", f"hint {i}: ({x}, {y}) lies outside the {width}x{height} image")
            placed.append((y, x, tuple(hint["rgb"])))
        return placed

    def restore(self, x: torch.Tensor, request: Request) -> torch.Tensor:
        """``x`` is a batch of automatic requests, or one guided request (see ``batch_key``)."""
        n, _, h, w = x.shape
        hint_rgb = torch.zeros(n, 3, h, w, device=x.device)
        mask = torch.zeros(n, 1, h, w, device=x.device)
        for y, xx, rgb in request.hints:
            hint_rgb[:, :, y, xx] = torch.tensor(rgb, dtype=torch.float32, device=x.device) / 255.0
            mask[:, :, y, xx] = 1.0
        if request.reference is not None:
            ref = torch.from_numpy(request.reference.rgb).to(x.device).permute(2, 0, 1)[None].float() / 255.0
            has_ref = torch.ones(n, device=x.device)
        else:
            ref, has_ref = torch.zeros(n, 3, 1, 1, device=x.device), torch.zeros(n, device=x.device)
        return self.model(x.float(), hint_rgb, mask, ref.expand(n, -1, -1, -1), has_ref, request.options["mode"])
