"""Shared TorchServe handler for image-to-image models.

It owns everything but the model: request parsing (raw body, or multipart ``data`` plus
option fields, or query parameters), validation with a JSON 4xx per bad request, decoding,
batching of same-size inputs, tiled inference for large inputs, encoding, and metrics.
A model handler subclasses it and sets a few class attributes (``scale``, ``pad_multiple``,
``receptive_field``, ``options``) or overrides :meth:`infer`.

Settings come from the ``handler:`` section of the archive's model-config.yaml. TorchServe loads a
handler module's one top-level class, so a model handler defines exactly one (nest any helpers).
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from image_io import DecodedImage, RequestError, decode, encode
from options import COMMON, Option
from tiling import run_padded, run_tiled

logger = logging.getLogger(__name__)
IMAGE_FIELDS = ("data", "body")  # multipart field / raw body, as TorchServe names them
DEFAULTS: dict[str, Any] = {
    "max_input_pixels": 40_000_000,  # 12 MP photos and 4K frames with room to spare
    "max_output_pixels": 40_000_000,
    "max_response_bytes": 134_217_728,  # keep equal to max_response_size in config.properties
    "tile": 512,  # input pixels per tile side; 0 disables tiling
    "threads": 2,
    "half_on_cuda": True,
}


@dataclass
class Request:
    """One decoded, validated request."""

    image: DecodedImage
    options: dict[str, Any]  # every declared option: the value sent, or its default

    def batch_key(self) -> tuple:
        """Requests with equal keys run as one batch; one carrying a document or a file (guidance) runs alone."""
        if any(isinstance(v, (bytes, list, dict)) for v in self.options.values()):
            return (id(self),)
        return (self.image.size, tuple(sorted(self.options.items())))


class ImageHandler:
    """Base handler: subclasses describe the model's geometry and options."""

    scale: int = 1  # output size / input size
    pad_multiple: int = 1  # the model needs H and W divisible by this
    receptive_field: int = 16  # input pixels of context each output pixel needs, one side
    options: tuple[Option, ...] = COMMON  # every option the endpoint accepts (handlers/options.py)
    keep_grayscale: bool = True  # answer a grayscale upload in grayscale

    def __init__(self) -> None:
        self.initialized = False
        self.model: torch.jit.ScriptModule | None = None
        self.context = None

    # ---- TorchServe entry points -------------------------------------------------------
    def initialize(self, context) -> None:
        self.context = context
        cfg = dict(DEFAULTS)
        cfg.update((getattr(context, "model_yaml_config", None) or {}).get("handler", {}) or {})
        self.config = cfg
        torch.set_num_threads(int(cfg["threads"]))
        self.device = self._pick_device(context)
        self.half = self.device.type == "cuda" and bool(cfg["half_on_cuda"])
        model_dir = context.system_properties.get("model_dir")
        weights = os.path.join(model_dir, context.manifest["model"]["serializedFile"])
        self.model = self.load_model(weights)
        self.initialized = True
        logger.info("%s ready on %s (half=%s, threads=%s)", type(self).__name__, self.device, self.half, cfg["threads"])

    def handle(self, data: list[dict], context) -> list[bytes]:
        """Answer every request of a batch; a bad one gets its own 4xx, the others still run."""
        self.context = context
        responses: list[bytes | None] = [None] * len(data)
        parsed: dict[int, Request] = {}
        for idx, raw in enumerate(data):
            try:
                parsed[idx] = self.parse_request(raw, self._option_headers(context, idx))
            except RequestError as err:
                responses[idx] = self._error(idx, err)
        groups: dict[tuple, list[int]] = {}
        for idx, req in parsed.items():
            groups.setdefault(req.batch_key(), []).append(idx)
        for indices in groups.values():
            self._answer_group(indices, [parsed[i] for i in indices], responses)
        return responses

    # ---- request parsing ---------------------------------------------------------------
    def parse_request(self, raw: dict, headers: dict[str, bytes] | None = None) -> Request:
        """``raw`` is TorchServe's dict of body/form fields; ``headers`` are options sent as X-<Option> headers."""
        fields = {str(k): (v if isinstance(v, (bytes, bytearray)) else str(v).encode()) for k, v in raw.items()}
        images = [name for name in IMAGE_FIELDS if name in fields]
        declared = {option.name for option in self.options}
        unknown = sorted(set(fields) - set(IMAGE_FIELDS) - declared)
        if unknown:
            raise RequestError(400, "UnknownField",
                               f"unknown field(s) {', '.join(unknown)}; send the image as the body or as the "
                               f"multipart field 'data', with options among: {', '.join(sorted(declared))}")
        if not images:
            raise RequestError(400, "MissingImage", "no image: send it as the request body or the multipart field 'data'")
        options = self.parse_options({**(headers or {}), **{k: v for k, v in fields.items() if k in declared}})
        image = decode(bytes(fields[images[0]]), int(self.config["max_input_pixels"]))
        self.check_output_size(*image.size)
        return Request(image, options)

    def parse_options(self, given: dict[str, bytes]) -> dict[str, Any]:
        """Every declared option: parsed from ``given`` (name -> raw value) or its default."""
        options: dict[str, Any] = {}
        for option in self.options:
            if option.name not in given:
                options[option.name] = option.default
                continue
            try:
                options[option.name] = option.parse(given[option.name])
            except (ValueError, UnicodeDecodeError) as exc:
                raise RequestError(400, option.error, f"invalid value for '{option.name}': {exc}") from None
        return options

    def check_output_size(self, height: int, width: int) -> None:
        out_h, out_w = height * self.scale, width * self.scale
        limit = int(self.config["max_output_pixels"])
        if out_h * out_w > limit:
            raise RequestError(413, "OutputTooLarge", f"the output would be {out_w}x{out_h} pixels; the limit is {limit}")
        # Worst case: uncompressed RGBA plus container overhead. Over the frontend's limit the worker would die.
        if out_h * out_w * 4 + 65536 > int(self.config["max_response_bytes"]):
            raise RequestError(413, "OutputTooLarge",
                               f"the output would be {out_w}x{out_h} pixels, too large for the server's response limit")

    # ---- inference ---------------------------------------------------------------------
    def load_model(self, path: str) -> torch.jit.ScriptModule:
        model = torch.jit.load(path, map_location=self.device).eval()
        if self.half:
            model = model.half().to(memory_format=torch.channels_last)
        return model

    def infer(self, x: torch.Tensor, request: Request) -> torch.Tensor:
        """Model output for a padded batch [N, 3, H, W] in [0, 1]. Override for options/ensembles."""
        return self.model(x)

    def restore(self, x: torch.Tensor, request: Request) -> torch.Tensor:
        """Full-size output for [N, 3, H, W], tiled when the input exceeds the tile size."""
        model = lambda t: self.infer(t, request)  # noqa: E731
        tile = int(self.config["tile"])
        if tile <= 0:
            return run_padded(model, x, self.pad_multiple, self.scale)
        overlap = self._round_up(2 * self.receptive_field)
        return run_tiled(model, x, self._round_up(max(tile, overlap)), overlap, self.pad_multiple, self.scale)

    @torch.inference_mode()
    def run_batch(self, requests: list[Request]) -> torch.Tensor:
        x = torch.stack([torch.from_numpy(r.image.rgb) for r in requests]).to(self.device)
        x = x.permute(0, 3, 1, 2).float().div_(255.0)
        if self.half:
            x = x.half().contiguous(memory_format=torch.channels_last)
        return self.restore(x, requests[0]).float().clamp_(0, 1)

    # ---- helpers -----------------------------------------------------------------------
    def _answer_group(self, indices: list[int], requests: list[Request], responses: list) -> None:
        started = time.perf_counter()
        try:
            out = self.run_batch(requests)
        except RequestError as err:
            for idx in indices:
                responses[idx] = self._error(idx, err)
            return
        except Exception:  # noqa: BLE001 - a model failure must not kill the worker
            logger.exception("inference failed")
            for idx in indices:
                responses[idx] = self._error(idx, RequestError(500, "InferenceError", "the model failed on this input"))
            return
        arrays = out.mul(255.0).round_().byte().permute(0, 2, 3, 1).cpu().numpy()
        for idx, req, rgb in zip(indices, requests, arrays):
            body, content_type = encode(rgb, self._output_alpha(req.image, rgb.shape[:2]),
                                        req.image.grayscale and self.keep_grayscale,
                                        req.options["format"], req.options["quality"])
            responses[idx] = body
            self.context.set_response_content_type(idx, content_type)
        self._record(requests, time.perf_counter() - started)

    def _option_headers(self, context, idx: int) -> dict[str, bytes]:
        """Options sent as ``X-Format: webp`` style headers: TorchServe 0.12 does not pass query strings to handlers."""
        names = {option.header.lower(): option.name for option in self.options if option.header}
        try:
            headers = context.get_all_request_header(idx)
        except (AttributeError, IndexError, KeyError, TypeError):
            return {}
        return {names[k.lower()]: str(v).encode() for k, v in headers.items() if k.lower() in names}

    def _output_alpha(self, image: DecodedImage, size: tuple[int, int]) -> np.ndarray | None:
        """The input's alpha, resized bicubically when the output is larger."""
        if image.alpha is None:
            return None
        if image.alpha.shape == size:
            return image.alpha
        alpha = torch.from_numpy(image.alpha)[None, None].float()
        alpha = F.interpolate(alpha, size=size, mode="bicubic", align_corners=False)
        return alpha.clamp_(0, 255).round_().byte()[0, 0].numpy()

    def _error(self, idx: int, err: RequestError) -> bytes:
        if self.context is not None:
            self.context.set_response_status(err.code, err.message, idx)
            self.context.set_response_content_type(idx, "application/json")
        return err.to_json()

    def _record(self, requests: list[Request], seconds: float) -> None:
        metrics = getattr(self.context, "metrics", None)
        if metrics is None:
            return
        megapixels = sum(r.image.size[0] * r.image.size[1] for r in requests) / 1e6
        metrics.add_counter("MegapixelsProcessed", megapixels)
        logger.debug("%d image(s), %.2f MP in %.2fs", len(requests), megapixels, seconds)

    def _round_up(self, value: int) -> int:
        return -(-value // self.pad_multiple) * self.pad_multiple

    @staticmethod
    def _pick_device(context) -> torch.device:
        gpu = context.system_properties.get("gpu_id")
        if torch.cuda.is_available() and gpu is not None:
            return torch.device(f"cuda:{gpu}")
        return torch.device("cpu")
