"""Decoding, validation and encoding of request images (Pillow), with JSON-ready errors."""
from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated upload is an error, never half an image
INPUT_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "BMP")
OUTPUT_FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


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


def _open(data: bytes, max_pixels: int) -> Image.Image:
    if not data:
        raise RequestError(400, "EmptyImage", "the request carries no image data")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=INPUT_FORMATS)
    except UnidentifiedImageError:
        raise RequestError(415, "UnsupportedImage", "the data is not a PNG, JPEG, WebP, TIFF or BMP image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise RequestError(413, "DecompressionBomb", f"refused as a decompression bomb: {exc}") from None
    width, height = img.size
    if width * height > max_pixels:
        raise RequestError(413, "TooManyPixels",
                           f"the image has {width}x{height} = {width * height} pixels; the limit is {max_pixels}")
    if width == 0 or height == 0:
        raise RequestError(400, "EmptyImage", "the image has no pixels")
    try:
        img.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise RequestError(400, "CorruptImage", f"the image could not be decoded (truncated or corrupt): {exc}") from None
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
    """Validate and decode an upload; EXIF orientation applied; any mode mapped to RGB (+alpha)."""
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
    img = Image.fromarray(rgb, "RGB")
    if grayscale:
        img = img.convert("L")
    if alpha is not None and pil_format != "JPEG":  # JPEG has no alpha channel
        img.putalpha(Image.fromarray(alpha, "L"))
    buf = io.BytesIO()
    if pil_format == "PNG":
        img.save(buf, "PNG", compress_level=4)  # level 6+ costs seconds on 16 MP for ~3% smaller files
    else:
        img.save(buf, pil_format, quality=quality)
    return buf.getvalue(), content_type
