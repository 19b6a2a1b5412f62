"""Shared TorchServe handler for image-to-image models: a request's stages, in the order they run.

1. **decode**: fields and options parsed and validated (handlers/options.py), the image decoded;
   a bad request gets its own JSON 4xx here and goes no further.
2. **batch**: requests of the same size and options stacked into one tensor on the model's device.
3. **predict**: the model on that tensor, padded to its stride and, for a large image, in
   overlapping tiles (handlers/tiling.py ``run``), as the metadata stored in the TorchScript
   file says (handlers/model_metadata.py).
4. **encode**: each output to 8 bits (16 for a 16-bit upload answered as png, or ``depth=16``), back into
   the upload's colour profile, with its metadata (handlers/file_info.py), in the asked format.

Each stage is timed and counted per model at the metrics API (``/metrics``, Prometheus):
``DecodeMs``, ``BatchMs``, ``PredictMs`` and ``EncodeMs`` are cumulative milliseconds (divide their
increase by ``ts_inference_requests_total``'s for a mean per request). Queue time is TorchServe's own
``ts_queue_latency_microseconds``: the frontend hands a worker no enqueue time, so a handler cannot
measure it.

No exception leaves :meth:`ImageHandler.handle`: whatever goes wrong with one request answers that
request alone with JSON (``RequestError``'s 4xx when the input is at fault, 500 ``InternalError``
otherwise), logged with TorchServe's request id; the rest of the batch is answered normally.

A model handler subclasses :class:`ImageHandler`, declares its ``options`` and overrides
:meth:`forward` (the model on one padded tile) or :meth:`predict`. Another handler can run one
model's predict stage on its own: ``options = h.parse_options({...})``, ``options =
h.check_options(options, image)``, ``h.predict(h.to_batch([image]), options)``.
Settings come from the ``handler:`` section of the archive's model-config.yaml. TorchServe loads a
handler module's one top-level class, so a model handler defines exactly one (nest any helpers).
"""
from __future__ import annotations

import ctypes
import json
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch
from torch.nn import functional as F

from image_io import DecodedImage, RequestError, decode, encode, in_srgb
from model_metadata import ModelMetadata, load
from options import COMMON, Option
from tiling import run

logger = logging.getLogger(__name__)
IMAGE_FIELDS = ("data", "body")  # multipart field / raw body, as TorchServe names them
STAGES = ("Decode", "Batch", "Predict", "Encode")  # metric names: <stage>Ms
DEFAULTS: dict[str, Any] = {
    "max_input_pixels": 40_000_000,  # 12 MP photos and 4K frames with room to spare
    "max_output_pixels": 40_000_000,
    "max_response_bytes": 134_217_728,  # keep equal to max_response_size in config.properties
    "tile": 512,  # input pixels per tile side (tiled models); 0 disables tiling
    "threads": 2,
    # A group of at most this many input pixels runs on one thread. An idle worker's second OpenMP thread
    # sleeps, and waking it cost 6-10 ms a request here (a 16x16 superres predict: 2.2 ms on one thread,
    # 11.3 ms on two, after a 0.1 s pause; 32x32: 4.0 against 16.6). Not higher: under load the threads
    # are awake, and 64x64 superres uploads from 4 clients then lost throughput on one thread.
    "one_thread_pixels": 1024,
    "half_on_cuda": True,
    # Freeze the TorchScript module at load (torch.jit.freeze: weights become constants, each conv's
    # per-channel scale and bias fold into it): a 512x512 deblur predict took 305 ms instead of 380 on
    # two threads here, the other endpoints the same within noise; outputs agree within 3e-7.
    "freeze": True,
    # From this many output pixels in a batch on, its buffers over 1 MiB are mapped apart and unmapped when
    # freed (see _Allocator: a 12 MP enhance request peaked 0.87 GiB above idle instead of 1.68); 0: never.
    "mapped_output_pixels": 4_000_000,
}


@dataclass
class Request:
    """One decoded, validated request."""

    image: DecodedImage
    options: dict[str, Any]  # every declared option: the value sent (checked against the image), or its default

    def batch_key(self) -> tuple:
        """Requests with equal keys run as one batch; one whose options cannot be compared (a decoded
        reference image, say) runs alone."""
        key = (self.image.size, self.image.rgb.dtype.str, tuple(sorted(self.options.items())))
        try:
            hash(key)
        except TypeError:
            return (id(self),)
        return key


class _Allocator:
    """glibc's threshold above which a buffer gets its own mmap, returned to the system when freed.

    glibc starts at 128 KiB with a 128 KiB trim threshold and raises both only as mapped buffers are
    freed, so a fresh worker hands its activations back to the system after every request and
    page-faults them in again on the next: measured on 512 px requests in-process, 8,000-26,000 page
    faults per request and retouch 77 ms instead of 44 (enhance 106-131 ms instead of 79-98). From
    its start a worker therefore keeps buffers up to 32 MiB (glibc's own ceiling) in its heap and up to
    ``TRIM`` of free heap: no faults on those requests. On a large photo each stage's differently sized
    tensors would then pile up in the heap: measured on a 12 MP enhance request, 1.68 GiB above idle
    with heap buffers and 0.87 GiB with 1 MiB buffers mapped apart (tile 1024), so a large request maps
    them apart (mapping every buffer of a small request costs page faults: +70% on 512 px enhance). A model
    whose large photos run in tiles of one size reuses the same heap buffers tile after tile, and mapping
    them costs it dearly: a 12 MP deblur took 44 s mapped (15 million page faults) and 28 s in the heap,
    for about the same peak; its setting ``mapped_output_pixels`` is 0. A no-op without glibc's ``mallopt``."""

    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    HEAP = 32 << 20  # glibc's ceiling for the threshold
    MAPPED = 1 << 20
    TRIM = 256 << 20  # 64 MiB still faulted 1,000 pages per 512 px enhance request; 256 MiB none

    def __init__(self) -> None:
        try:
            self.mallopt = ctypes.CDLL("libc.so.6").mallopt
        except (OSError, AttributeError):
            self.mallopt = None
        self.set(self.HEAP)

    def set(self, threshold: int) -> None:
        if self.mallopt is not None:
            self.mallopt(self.M_MMAP_THRESHOLD, threshold)
            self.mallopt(self.M_TRIM_THRESHOLD, self.TRIM)

    @contextmanager
    def mapped(self, large: bool) -> Iterator[None]:
        """Large buffers mapped apart inside the block when ``large``."""
        if not large:
            yield
            return
        self.set(self.MAPPED)
        try:
            yield
        finally:
            self.set(self.HEAP)


class ImageHandler:
    """Base handler: the stages; subclasses bring the model's options and forward pass."""

    options: tuple[Option, ...] = COMMON  # every option the endpoint accepts (handlers/options.py)
    keep_grayscale: bool = True  # answer a grayscale upload in grayscale
    model_methods: tuple[str, ...] = ()  # the module's methods the handler calls besides forward (kept by freezing)

    def __init__(self) -> None:
        self.initialized = False
        self.model: torch.jit.ScriptModule | None = None
        self.metadata: ModelMetadata | None = None  # the model's geometry, read with its weights
        self.context = None

    # ---- TorchServe entry points -------------------------------------------------------
    def initialize(self, context) -> None:
        self.configure(context)
        model_dir = context.system_properties.get("model_dir")
        self.model, self.metadata = self.load_model(os.path.join(model_dir, context.manifest["model"]["serializedFile"]))
        self.initialized = True
        logger.info("%s ready on %s (half=%s, threads=%s, %s)", type(self).__name__, self.device, self.half,
                    self.config["threads"], self.metadata)

    def configure(self, context) -> None:
        """Settings (the ``handler:`` section of model-config.yaml over DEFAULTS), threads and device:
        what :meth:`initialize` does before it loads the weights; a handler without weights of its own
        (handlers/restore.py) calls only this."""
        self.context = context
        cfg = dict(DEFAULTS)
        cfg.update((getattr(context, "model_yaml_config", None) or {}).get("handler", {}) or {})
        self.config = cfg
        torch.set_num_threads(int(cfg["threads"]))
        self.allocator = _Allocator()
        self.device = self._pick_device(context)
        self.half = self.device.type == "cuda" and bool(cfg["half_on_cuda"])

    def handle(self, data: list[dict], context) -> list[bytes]:
        """Answer every request of a batch: decode, batch, predict, encode. Never raises."""
        self.context = context
        replies: list[bytes | None] = [None] * len(data)
        timings = dict.fromkeys(STAGES, 0.0)
        try:
            with self._timed(timings, "Decode"):
                requests = self.decode_stage(data, replies)
            for indices in self.groups(requests):
                self.answer_group(indices, [requests[i] for i in indices], replies, timings)
            self._record(timings, requests.values())
        except Exception:  # noqa: BLE001 - a bug in the stages must not fail the worker or the others
            logger.exception("the batch failed outside any one request")
        for idx, reply in enumerate(replies):
            if reply is None:
                replies[idx] = self._error(idx, RequestError(500, "InternalError", "the server failed on this request"))
        return replies

    # ---- 1. decode ---------------------------------------------------------------------
    def decode_stage(self, data: list[dict], replies: list) -> dict[int, Request]:
        """Each raw request parsed and decoded; a failing one gets its error reply instead."""
        requests: dict[int, Request] = {}
        for idx, raw in enumerate(data):
            try:
                requests[idx] = self.parse_request(raw, self._option_headers(idx))
            except Exception as exc:  # noqa: BLE001 - any failure answers this request alone
                replies[idx] = self._failure(idx, exc, "decoding")
        return requests

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
        self.check_answer(options, image)
        return Request(image, self.check_options(options, image))

    @staticmethod
    def check_answer(options: dict[str, Any], image: DecodedImage) -> None:
        """The answer's colour space against the upload. Raises RequestError."""
        if options["colorspace"] == "srgb" and not in_srgb(image.source):
            raise RequestError(400, "InvalidOption", "colorspace=srgb: this 16-bit upload's ICC profile is not sRGB, "
                               "and only 8-bit samples are converted; send depth=8 samples or colorspace=source")

    @staticmethod
    def answer_depth(options: dict[str, Any], image: DecodedImage) -> int:
        """8 or 16: ``depth`` as asked, or (auto) the upload's, where the format holds 16 bits (png); jpeg
        and webp answers are 8-bit whatever is asked, so that every option's every value stays valid alone."""
        if options["format"] != "png":
            return 8
        if options["depth"] != "auto":
            return int(options["depth"])
        return image.source.depth

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

    def check_options(self, options: dict[str, Any], image: DecodedImage) -> dict[str, Any]:
        """Model options that need the image to be checked or prepared (default: none). Raises RequestError."""
        return options

    def check_output_size(self, height: int, width: int) -> None:
        out_h, out_w = height * self.metadata.scale, width * self.metadata.scale
        limit = int(self.config["max_output_pixels"])
        if out_h * out_w > limit:
            raise RequestError(413, "OutputTooLarge", f"the output would be {out_w}x{out_h} pixels; the limit is {limit}")
        # Worst case: uncompressed RGBA plus container overhead. Over the frontend's limit the worker would die.
        if out_h * out_w * 4 + 65536 > int(self.config["max_response_bytes"]):
            raise RequestError(413, "OutputTooLarge",
                               f"the output would be {out_w}x{out_h} pixels, too large for the server's response limit")

    def output_scale(self, options: dict[str, Any]) -> int:
        """Output side / input side for a request with ``options``: the model's scale (a chain's product)."""
        return self.metadata.scale

    # ---- 2. batch ----------------------------------------------------------------------
    @staticmethod
    def groups(requests: dict[int, Request]) -> list[list[int]]:
        """Indices of the requests that run together (same batch key), in arrival order."""
        groups: dict[tuple, list[int]] = {}
        for idx, req in requests.items():
            groups.setdefault(req.batch_key(), []).append(idx)
        return list(groups.values())

    def to_batch(self, images: list[DecodedImage]) -> torch.Tensor:
        """Same-size images of one depth as one [N, 3, H, W] tensor in [0, 1] on the model's device (half on
        CUDA); 16-bit samples in float32 from their 65535 levels (batch keys keep depths apart)."""
        pixels = images[0].rgb[None] if len(images) == 1 else np.stack([im.rgb for im in images])  # no copy for one
        peak = float(np.iinfo(pixels.dtype).max)
        if pixels.dtype == np.uint16:  # torch has no uint16 arithmetic on every device: go through int32
            pixels = pixels.astype(np.int32)
        x = torch.from_numpy(pixels).to(self.device).permute(0, 3, 1, 2).float().div_(peak)
        return x.half().contiguous(memory_format=torch.channels_last) if self.half else x

    # ---- 3. predict --------------------------------------------------------------------
    def load_model(self, path: str) -> tuple[torch.jit.ScriptModule, ModelMetadata]:
        model, metadata = load(path, map_location=self.device)
        model = model.eval()
        if self.half:
            model = model.half().to(memory_format=torch.channels_last)
        if self.config["freeze"]:
            model = torch.jit.freeze(model, preserved_attrs=list(self.model_methods))
        return model, metadata

    def network(self, options: dict[str, Any]) -> tuple[torch.jit.ScriptModule, ModelMetadata]:
        """The network that answers a request with ``options``, and its geometry: the archive's one
        (superres carries two and picks by its ``input`` option)."""
        return self.model, self.metadata

    @torch.inference_mode()
    def predict(self, x: torch.Tensor, options: dict[str, Any]) -> torch.Tensor:
        """Output [N, 3, H * scale, W * scale] in [0, 1] (float32) for a batch ``x`` from :meth:`to_batch`."""
        out = run(lambda t: self.forward(t, options), x, self.network(options)[1], int(self.config["tile"]))
        return out.float().clamp_(0, 1)

    def forward(self, x: torch.Tensor, options: dict[str, Any]) -> torch.Tensor:
        """The model on a padded batch or tile [N, 3, h, w]. Override for model options and ensembles."""
        return self.network(options)[0](x)

    # ---- 4. encode ---------------------------------------------------------------------
    def encode_one(self, idx: int, request: Request, out: torch.Tensor) -> bytes:
        """One output [3, H, W] in [0, 1] as the asked format; sets the reply's content type."""
        options = request.options
        if self.answer_depth(options, request.image) == 16:
            rgb = out.mul_(65535.0).round_().to(torch.int32).permute(1, 2, 0).cpu().numpy().astype(np.uint16)
        else:
            rgb = out.mul_(255.0).round_().to(torch.uint8).permute(1, 2, 0).contiguous().cpu().numpy()
        body, content_type = encode(rgb, self._output_alpha(request.image, rgb.shape[:2]),
                                    request.image.grayscale and self.keep_grayscale,
                                    options["format"], options["quality"], request.image.source,
                                    options["colorspace"], options["metadata"])
        self.context.set_response_content_type(idx, content_type)
        return body

    # ---- the stages for one group ------------------------------------------------------
    def answer_group(self, indices: list[int], requests: list[Request], replies: list,
                     timings: dict[str, float]) -> None:
        height, width = requests[0].image.size
        scale = self.output_scale(requests[0].options)
        pixels = len(requests) * height * width
        mapped_from = int(self.config["mapped_output_pixels"])
        with self.allocator.mapped(0 < mapped_from <= pixels * scale ** 2), self.threads_for(pixels):
            self._run_group(indices, requests, replies, timings)

    @contextmanager
    def threads_for(self, pixels: int) -> Iterator[None]:
        """One thread for a small group on the CPU (``one_thread_pixels``), the configured ``threads`` otherwise."""
        if self.device.type != "cpu" or pixels > int(self.config["one_thread_pixels"]):
            yield
            return
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(int(self.config["threads"]))

    @torch.inference_mode()
    def _run_group(self, indices: list[int], requests: list[Request], replies: list,
                   timings: dict[str, float]) -> None:
        """Batch, predict and encode one group; a failure answers its requests, never the worker."""
        try:
            with self._timed(timings, "Batch"):
                x = self.to_batch([r.image for r in requests])
            with self._timed(timings, "Predict"):
                out = self.predict(x, requests[0].options)
            del x  # the input batch is not needed while encoding
        except Exception as exc:  # noqa: BLE001 - a model failure answers this group, not the worker
            for idx in indices:
                replies[idx] = self._failure(idx, exc, "inference")
            return
        with self._timed(timings, "Encode"):
            for i, (idx, request) in enumerate(zip(indices, requests)):
                try:
                    replies[idx] = self.encode_one(idx, request, out[i])
                except Exception as exc:  # noqa: BLE001
                    replies[idx] = self._failure(idx, exc, "encoding")

    # ---- helpers -----------------------------------------------------------------------
    def _option_headers(self, idx: int) -> dict[str, bytes]:
        """Options sent as ``X-Format: webp`` style headers: TorchServe 0.12 does not pass query strings to handlers."""
        names = {option.header.lower(): option.name for option in self.options if option.header}
        try:
            headers = self.context.get_all_request_header(idx)
        except (AttributeError, IndexError, KeyError, TypeError):
            return {}
        return {names[k.lower()]: str(v).encode() for k, v in headers.items() if k.lower() in names}

    def _output_alpha(self, image: DecodedImage, size: tuple[int, int]) -> np.ndarray | None:
        """The input's alpha (its own depth), resized bicubically when the output is larger."""
        if image.alpha is None:
            return None
        if image.alpha.shape == size:
            return image.alpha
        peak = np.iinfo(image.alpha.dtype).max
        alpha = torch.from_numpy(image.alpha.astype(np.float32))[None, None]
        alpha = F.interpolate(alpha, size=size, mode="bicubic", align_corners=False)
        return alpha.clamp_(0, peak).round_()[0, 0].numpy().astype(image.alpha.dtype)

    def _request_id(self, idx: int) -> str | None:
        try:
            return self.context.get_request_id(idx)
        except (AttributeError, KeyError, TypeError):
            return None

    def _failure(self, idx: int, exc: Exception, stage: str) -> bytes:
        """The reply for a request that failed in ``stage``: its own 4xx, or a logged 500."""
        if isinstance(exc, RequestError):
            logger.info("request %s: %d %s: %s", self._request_id(idx), exc.code, exc.kind, exc.message)
            return self._error(idx, exc)
        logger.exception("request %s failed while %s", self._request_id(idx), stage)
        return self._error(idx, RequestError(500, "InternalError", f"the server failed while {stage} this request"))

    def _error(self, idx: int, err: RequestError) -> bytes:
        self.context.set_response_status(err.code, err.message, idx)
        self.context.set_response_content_type(idx, "application/json")
        return json.dumps({**json.loads(err.to_json()), "request_id": self._request_id(idx)}).encode()

    @contextmanager
    def _timed(self, timings: dict[str, float], stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            timings[stage] += (time.perf_counter() - started) * 1000.0

    def _record(self, timings: dict[str, float], requests) -> None:
        """Per-model counters at /metrics: milliseconds in each stage, and megapixels in."""
        metrics = getattr(self.context, "metrics", None)
        if metrics is None:
            return
        for stage, ms in timings.items():
            metrics.add_metric(f"{stage}Ms", ms, "ms", dimensions=[])
        megapixels = sum(r.image.size[0] * r.image.size[1] for r in requests) / 1e6
        metrics.add_counter("MegapixelsProcessed", megapixels, dimensions=[])
        logger.debug("stages (ms): %s", {k: round(v, 1) for k, v in timings.items()})

    @staticmethod
    def _pick_device(context) -> torch.device:
        gpu = context.system_properties.get("gpu_id")
        if torch.cuda.is_available() and gpu is not None:
            return torch.device(f"cuda:{gpu}")
        return torch.device("cpu")
