"""TorchServe handler for ``colorize``: guided colorization in Lab space (the photo's L is kept).

Multipart fields: ``data`` (the photo; a colour photo is reduced to its L), optional
``reference`` (a colour image whose colours to borrow), optional ``hints`` (JSON list of
``{"x": int, "y": int, "rgb": [r, g, b]}`` in the photo's pixel coordinates), and the option
``mode`` = ensemble (default) | image | patch. A raw-body request is automatic mode.
The TorchScript module does all colour maths and its own working-size/patch inference, so
this handler only validates the guidance and lays it out as tensors.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import torch

from image_handler import ImageHandler, Request
from image_io import DecodedImage, RequestError, decode

MODES = ("ensemble", "image", "patch")
MAX_HINTS = 256


def parse_mode(value: str) -> str:
    mode = value.strip().lower()
    if mode not in MODES:
        raise ValueError(f"expected one of {', '.join(MODES)}")
    return mode


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_hints(raw: bytes, height: int, width: int) -> list[tuple[int, int, tuple[int, int, int]]]:
    """[(y, x, (r, g, b))] from the JSON field, or a 400 saying exactly what is wrong."""
    def bad(message: str) -> RequestError:
        return RequestError(400, "InvalidHints", message)

    try:
        hints = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad(f"'hints' is not valid JSON: {exc}") from None
    if not isinstance(hints, list):
        raise bad('\'hints\' must be a JSON list of {"x": int, "y": int, "rgb": [r, g, b]}')
    if len(hints) > MAX_HINTS:
        raise bad(f"{len(hints)} hints; at most {MAX_HINTS} are accepted")
    parsed = []
    for i, hint in enumerate(hints):
        if not isinstance(hint, dict) or set(hint) != {"x", "y", "rgb"}:
            raise bad(f'hint {i} must be an object with exactly the keys "x", "y" and "rgb"')
        x, y, rgb = hint["x"], hint["y"], hint["rgb"]
        if not (_is_int(x) and _is_int(y)) or not (0 <= x < width and 0 <= y < height):
            raise bad(f"hint {i}: x and y must be integers inside the {width}x{height} image, got ({x!r}, {y!r})")
        if not isinstance(rgb, list) or len(rgb) != 3 or not all(_is_int(c) and 0 <= c <= 255 for c in rgb):
            raise bad(f"hint {i}: rgb must be a list of three integers in 0..255, got {rgb!r}")
        parsed.append((y, x, tuple(rgb)))
    return parsed


class ColorizeHandler(ImageHandler):
    @dataclass
    class GuidedRequest(Request):
        """Nested: TorchServe wants exactly one class at the top of a handler module."""

        reference: DecodedImage | None = None
        hints: list[tuple[int, int, tuple[int, int, int]]] = field(default_factory=list)

        def batch_key(self) -> tuple:
            """Guided requests run alone (their guidance differs); automatic ones batch by size."""
            guided = self.reference is not None or bool(self.hints)
            return super().batch_key() + ((id(self),) if guided else ())

    options = {"mode": parse_mode}
    option_defaults = {"mode": "ensemble"}
    extra_fields = ("reference", "hints")
    keep_grayscale = False  # the point is to answer a grayscale photo in colour

    def parse_request(self, raw: dict, headers: dict[str, bytes] | None = None) -> GuidedRequest:
        req = super().parse_request(raw, headers)
        reference = None
        if "reference" in req.fields:
            try:
                limit = self.config.get("max_reference_pixels", self.config["max_input_pixels"])
                reference = decode(req.fields["reference"], int(limit))
            except RequestError as err:
                raise RequestError(err.code, err.kind, f"reference: {err.message}") from None
            if reference.grayscale:
                raise RequestError(400, "GrayscaleReference", "reference: the image has no colour to transfer")
        hints = parse_hints(req.fields["hints"], *req.image.size) if "hints" in req.fields else []
        return self.GuidedRequest(req.image, req.options, req.fields, reference, hints)

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
