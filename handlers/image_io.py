"""Decoding, validation and encoding of request images, with JSON-ready errors.

Decoding is Pillow's, strict: any failure of any decoder becomes a 4xx :class:`RequestError`.
Lossless PNG answers are written by fpng when it is installed and the image is 8-bit RGB or RGBA
(17-21x less CPU than Pillow's fastest PNG, files 10-20% larger: benchmarks/codecs.py);
Pillow writes every other image and format.
"""
from __future__ import annotations

import io
import json
import struct
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

try:
    import fpng
except ImportError:  # optional: Pillow writes every PNG then
    fpng = None

ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated upload is an error, never half an image
INPUT_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "BMP")
# Magic bytes of each input format as (offset, bytes) parts; RIFF alone could be a WAV file.
SIGNATURES = (((0, b"\x89PNG\r\n\x1a\n"),), ((0, b"\xff\xd8\xff"),), ((0, b"RIFF"), (8, b"WEBP")),
              ((0, b"II*\x00"),), ((0, b"MM\x00*"),), ((0, b"II+\x00"),), ((0, b"MM\x00+"),), ((0, b"BM"),))
# What Pillow's decoders raise on truncated or malformed files: its own fuzz tests expect the first five
# (and MemoryError, handled apart); the others come out of plugins on fuzzed headers.
DECODER_ERRORS = (OSError, SyntaxError, ValueError, NotImplementedError, OverflowError, EOFError, struct.error,
                  IndexError, KeyError, TypeError, ZeroDivisionError)
OUTPUT_FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
# Pillow's PNG settings (zlib level 1, run-length strategy): in benchmarks/codecs.py faster than level 1's
# default strategy and no larger than level 4, which costs twice the time.
PILLOW_PNG = {"compress_level": 1, "compress_type": 3}


class RequestError(Exception):
    """A problem with one request: becomes a 4xx JSON answer for that request alone."""

    def __init__(self, code: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.code, self.kind, self.message = code, kind, message

    def to_json(self) -> bytes:
        return json.dumps({"code": self.code, "type": self.kind, "message": self.message}).encode()


@dataclass
class DecodedImage:
    rgb: np.ndarray  # uint8 [H, W, 3]
    alpha: np.ndarray | None  # uint8 [H, W], or None when the image is opaque
    grayscale: bool  # the upload had no colour: answer in grayscale too

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)"""
        return self.rgb.shape[0], self.rgb.shape[1]


def claims_input_format(data: bytes) -> bool:
    """True if ``data`` starts like one of the input formats (or is cut inside its magic bytes)."""
    return any(all(data[at:at + len(magic)] == magic[:max(0, len(data) - at)] for at, magic in parts)
               for parts in SIGNATURES)


def _open(data: bytes, max_pixels: int) -> Image.Image:
    img = Image.open(io.BytesIO(data), formats=INPUT_FORMATS)
    width, height = img.size
    if width * height > max_pixels:
        raise RequestError(413, "TooManyPixels",
                           f"the image has {width}x{height} = {width * height} pixels; the limit is {max_pixels}")
    if width == 0 or height == 0:
        raise RequestError(400, "EmptyImage", "the image has no pixels")
    img.load()
    return img


def _to_8bit_gray(img: Image.Image) -> Image.Image:
    """16-bit, 32-bit and float grayscale scaled (not clipped) to 8 bits."""
    arr = np.asarray(img).astype(np.float64)
    if img.mode.startswith("I;16") or (img.mode == "I" and arr.max(initial=0) > 255):
        peak = 65535.0  # 16-bit samples (Pillow opens some 16-bit files as mode I)
    elif img.mode == "F":
        peak = max(1.0, float(arr.max(initial=1.0)))
    else:
        peak = 255.0
    return Image.fromarray(np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")


def decode(data: bytes, max_pixels: int) -> DecodedImage:
    """Validate and decode an upload; EXIF orientation applied; any mode mapped to RGB (+alpha).

    Every way a decoder can fail is a :class:`RequestError`: 415 for data that is no input format,
    413 for what would take too much memory, 400 ``CorruptImage`` for a truncated or malformed file."""
    if not data:
        raise RequestError(400, "EmptyImage", "the request carries no image data")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _decode(data, max_pixels)
    except RequestError:
        raise
    except UnidentifiedImageError:
        if not claims_input_format(data):
            raise RequestError(415, "UnsupportedImage", "the data is not a PNG, JPEG, WebP, TIFF or BMP image") from None
        raise RequestError(400, "CorruptImage", "the image could not be decoded: its header is truncated or corrupt") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise RequestError(413, "DecompressionBomb", f"refused as a decompression bomb: {exc}") from None
    except MemoryError:  # a header asking for absurd buffers (the pixel count was within limits)
        raise RequestError(413, "DecompressionBomb", "decoding this image would need more memory than allowed") from None
    except DECODER_ERRORS as exc:
        raise RequestError(400, "CorruptImage",
                           f"the image could not be decoded (truncated or corrupt): {type(exc).__name__}: {exc}") from None


def _decode(data: bytes, max_pixels: int) -> DecodedImage:
    img = _open(data, max_pixels)
    img = ImageOps.exif_transpose(img)
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    grayscale = img.mode in GRAY_MODES
    alpha = None
    if img.mode in ("LA", "RGBA", "PA", "RGBa", "La"):
        alpha = np.asarray(img.getchannel("A")).copy()
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        img = _to_8bit_gray(img)
    rgb = np.asarray(img.convert("RGB")).copy()  # CMYK, YCbCr, 1, L, LA -> RGB
    if alpha is not None and alpha.min() == 255:
        alpha = None
    return DecodedImage(rgb, alpha, grayscale)


def encode(rgb: np.ndarray, alpha: np.ndarray | None, grayscale: bool, fmt: str, quality: int) -> tuple[bytes, str]:
    """Encode uint8 [H, W, 3] (+ alpha) as png/jpeg/webp; returns (bytes, content type)."""
    pil_format, content_type = OUTPUT_FORMATS[fmt]
    if pil_format == "PNG":
        return encode_png(answer_samples(rgb, alpha, grayscale)), content_type
    img = Image.fromarray(answer_samples(rgb, None if pil_format == "JPEG" else alpha, grayscale))  # JPEG: no alpha
    buf = io.BytesIO()
    img.save(buf, pil_format, quality=quality)
    return buf.getvalue(), content_type


def answer_samples(rgb: np.ndarray, alpha: np.ndarray | None, grayscale: bool) -> np.ndarray:
    """uint8 [H, W, C] of the answer: luma (ITU-R 601-2, Pillow's "L") when grayscale, then alpha if any."""
    samples = np.asarray(Image.fromarray(rgb, "RGB").convert("L")) if grayscale else rgb
    return samples if alpha is None else np.dstack((samples, alpha))


def encode_png(samples: np.ndarray) -> bytes:
    """Lossless PNG of [H, W] gray, [H, W, 2] gray+alpha, [H, W, 3] RGB or [H, W, 4] RGBA samples:
    fpng for 8-bit RGB/RGBA, Pillow for the rest (and for everything when fpng is not installed)."""
    if fpng is not None and samples.dtype == np.uint8 and samples.ndim == 3 and samples.shape[2] in (3, 4):
        return fpng.from_ndarray(np.ascontiguousarray(samples))  # fpng reads raw rows and checks no dtype
    return encode_png_pillow(samples)


def encode_png_pillow(samples: np.ndarray) -> bytes:
    """Pillow's PNG of the same samples (gray, gray+alpha and 16-bit gray included)."""
    buf = io.BytesIO()
    Image.fromarray(samples).save(buf, "PNG", **PILLOW_PNG)
    return buf.getvalue()
