"""Decoding, validation and encoding of request images, with JSON-ready errors.

Decoding is Pillow's, strict: any failure of any decoder becomes a 4xx :class:`RequestError`.
Lossless PNG answers are written by fpng when it is installed and the image is 8-bit RGB or RGBA
(17-21x less CPU than Pillow's fastest PNG, files 10-20% larger: benchmarks/codecs.py);
Pillow writes every other image and format.

Each decoded image carries its :class:`file_info.Source` (ICC profile, EXIF/XMP/IPTC, bit depth) to its
encode: a tagged upload is converted to sRGB here and its answer back to its profile (handlers/file_info.py).
"""
from __future__ import annotations

import dataclasses
import io
import json
import struct
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

from file_info import (ORIENTATION, ORIENTATIONS, SRGB_BYTES, Source, encode_png16, from_srgb, gamut_residual,
                       layout_16bit, is_srgb, metadata_for, with_gamut, read_16bit, read_metadata, read_profile, save_options, to_srgb,
                       transpose_samples, with_metadata)

try:
    import fpng
except ImportError:  # optional: Pillow writes every PNG then
    fpng = None
try:
    import pillow_heif  # HEIC/HEIF (the iPhone's default) as one more Pillow plugin, "HEIF"
    pillow_heif.register_heif_opener()
except ImportError:  # optional: HEIC uploads are then 415 as before
    pillow_heif = None

ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated upload is an error, never half an image
INPUT_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "BMP", "AVIF") + (("HEIF",) if pillow_heif else ())
# Magic bytes of each input format as (offset, bytes) parts; RIFF alone could be a WAV file.
SIGNATURES = (((0, b"\x89PNG\r\n\x1a\n"),), ((0, b"\xff\xd8\xff"),), ((0, b"RIFF"), (8, b"WEBP")),
              ((0, b"II*\x00"),), ((0, b"MM\x00*"),), ((0, b"II+\x00"),), ((0, b"MM\x00+"),), ((0, b"BM"),),
              # ISO base media (HEIF, AVIF): a 4-byte box size, then the ftyp box's brand
              *(((4, b"ftyp" + brand),) for brand in (b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1",
                                                        b"avif", b"avis")))
# What Pillow's decoders raise on truncated or malformed files: its own fuzz tests expect the first five
# (and MemoryError, handled apart); the others come out of plugins on fuzzed headers.
DECODER_ERRORS = (OSError, SyntaxError, ValueError, NotImplementedError, OverflowError, EOFError, struct.error,
                  IndexError, KeyError, TypeError, ZeroDivisionError, RuntimeError)  # RuntimeError: libheif
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
    rgb: np.ndarray  # [H, W, 3] in sRGB: uint8, or uint16 for a 16-bit upload
    alpha: np.ndarray | None  # [H, W] of rgb's dtype, or None when the image is opaque
    grayscale: bool  # the upload had no colour: answer in grayscale too
    source: Source = field(default_factory=Source)  # profile and metadata, for the answer
    placeholder: bool = False  # a stand-in that has only a size (a chain's later step before it runs: restore.py)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)"""
        return self.rgb.shape[0], self.rgb.shape[1]


def claims_input_format(data: bytes) -> bool:
    """True if ``data`` starts like one of the input formats (or is cut inside its magic bytes)."""
    return any(len(data) > parts[0][0]  # the data reaches the signature (HEIF's starts at byte 4)
               and all(data[at:at + len(magic)] == magic[:max(0, len(data) - at)] for at, magic in parts)
               for parts in SIGNATURES)


def _open(data: bytes, max_pixels: int) -> tuple[Image.Image, str | None]:
    """The upload loaded by Pillow, and its 16-bit layout if any (known only before loading)."""
    img = Image.open(io.BytesIO(data), formats=INPUT_FORMATS)
    width, height = img.size
    if width * height > max_pixels:
        raise RequestError(413, "TooManyPixels",
                           f"the image has {width}x{height} = {width * height} pixels; the limit is {max_pixels}")
    if width == 0 or height == 0:
        raise RequestError(400, "EmptyImage", "the image has no pixels")
    sixteen = layout_16bit(img)
    img.load()
    return img, sixteen


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
    except ImageCms.PyCMSError as exc:  # before OSError, its base: the pixels are fine, the profile is not
        raise RequestError(400, "InvalidProfile", f"the embedded ICC profile cannot be used: {exc}") from None
    except UnidentifiedImageError:
        if not claims_input_format(data):
            raise RequestError(415, "UnsupportedImage", "the data is not a PNG, JPEG, WebP, TIFF, BMP, HEIC or AVIF image") from None
        raise RequestError(400, "CorruptImage", "the image could not be decoded: its header is truncated or corrupt") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise RequestError(413, "DecompressionBomb", f"refused as a decompression bomb: {exc}") from None
    except MemoryError:  # a header asking for absurd buffers (the pixel count was within limits)
        raise RequestError(413, "DecompressionBomb", "decoding this image would need more memory than allowed") from None
    except DECODER_ERRORS as exc:
        raise RequestError(400, "CorruptImage",
                           f"the image could not be decoded (truncated or corrupt): {type(exc).__name__}: {exc}") from None


def _decode(data: bytes, max_pixels: int) -> DecodedImage:
    img, sixteen = _open(data, max_pixels)
    icc, icc_mode, tagged = read_profile(img)
    if icc is not None and not _profile_fits(img, icc_mode):
        icc, icc_mode, tagged = None, "RGB", None  # e.g. an RGB profile on a gray JPEG: read as untagged, as before
    exif, xmp, iptc = read_metadata(img)
    tables = getattr(img, "quantization", None) if img.format == "JPEG" else None
    source = Source(icc, icc_mode, tagged, exif, xmp, iptc, 16 if sixteen else 8, quantization=tables or None)
    if sixteen:
        turn = ORIENTATIONS.get(img.getexif().get(ORIENTATION))
        return _decoded_16bit(transpose_samples(read_16bit(data, img, sixteen), turn), source, img.size)
    img = ImageOps.exif_transpose(img)
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    grayscale = img.mode in GRAY_MODES
    alpha = None
    if img.mode in ("LA", "RGBA", "PA", "RGBa", "La"):
        alpha = np.asarray(img.getchannel("A")).copy()
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        img = _to_8bit_gray(img)
    if icc is not None:  # the profile's own mode first (RGBA -> RGB, LA -> L), then LittleCMS to sRGB
        own = img if img.mode == icc_mode else img.convert(icc_mode)
        srgb = to_srgb(own, icc)
        rgb = np.asarray(srgb).copy()
        if icc_mode == "RGB":
            source = dataclasses.replace(source, gamut=gamut_residual(own, srgb, icc))
    else:
        rgb = np.asarray(img.convert("RGB")).copy()  # CMYK, YCbCr, 1, L, LA -> RGB
    if alpha is not None and alpha.min() == 255:
        alpha = None
    return DecodedImage(rgb, alpha, grayscale, source)


def _profile_fits(img: Image.Image, profile_mode: str) -> bool:
    """False for an RGB profile on a grey image (or any such mismatch): it cannot say what the samples mean.
    Such files were decoded before profiles were read, so they still are, as untagged."""
    kind = "L" if img.mode in GRAY_MODES or img.mode in ("LA", "La") else ("CMYK" if img.mode == "CMYK" else "RGB")
    return kind == profile_mode


def _decoded_16bit(samples: np.ndarray, source: Source, size: tuple[int, int]) -> DecodedImage:
    """uint16 samples (grey, grey+alpha, RGB, RGBA) as a DecodedImage. Their profile is not applied:
    Pillow's LittleCMS binding converts 8-bit samples only, so the model sees the upload's own values
    and the answer carries the upload's profile (``source.icc`` None, ``source.tagged`` kept)."""
    channels = 1 if samples.ndim == 2 else samples.shape[2]
    if samples.shape[:2] != (size[1], size[0]) or channels not in (1, 2, 3, 4):
        raise ValueError(f"16-bit samples of shape {samples.shape} for a {size[0]}x{size[1]} image")
    planes = samples[..., None] if channels == 1 else samples
    colour = planes[..., :1].repeat(3, 2) if channels <= 2 else planes[..., :3]
    alpha = planes[..., -1].copy() if channels in (2, 4) else None
    if alpha is not None and alpha.min() == 65535:
        alpha = None
    kept = Source(None, "RGB", source.tagged, source.exif, source.xmp, source.iptc, 16)
    return DecodedImage(np.ascontiguousarray(colour), alpha, channels <= 2, kept)


def in_srgb(source: Source) -> bool:
    """Whether decoded samples are sRGB: False for a 16-bit upload tagged with another profile."""
    return source.depth == 8 or source.tagged is None or is_srgb(ImageCms.ImageCmsProfile(io.BytesIO(source.tagged)))


def encode(rgb: np.ndarray, alpha: np.ndarray | None, grayscale: bool, fmt: str, quality: int,
           source: Source | None = None, colorspace: str = "source", metadata: str = "keep") -> tuple[bytes, str]:
    """Encode sRGB [H, W, 3] (+ alpha), uint8 or (png only) uint16, as png/jpeg/webp; returns (bytes, content type).

    ``source`` is the upload's: with ``colorspace`` "source" the answer goes back to its profile and is
    tagged with it; "srgb" answers in sRGB, tagged. ``metadata`` keep | strip | nogps (file_info.metadata_for)."""
    source = source or Source()
    pil_format, content_type = OUTPUT_FORMATS[fmt]
    answer = metadata_for(source, (rgb.shape[1], rgb.shape[0]), metadata)
    img, samples, answer.icc = _answer_pixels(rgb, grayscale, source, colorspace, pil_format)
    if alpha is not None and pil_format != "JPEG":
        alpha = _same_depth(alpha, samples.dtype)
    else:
        alpha = None  # JPEG: no alpha
    if pil_format == "PNG":
        stacked = samples if alpha is None else np.dstack((samples, alpha))
        if stacked.dtype == np.uint16:
            return encode_png16(stacked, answer), content_type
        return with_metadata(encode_png(stacked), answer), content_type
    if img is None or alpha is not None:
        img = Image.fromarray(samples if alpha is None else np.dstack((samples, alpha)))
    buf = io.BytesIO()
    img.save(buf, pil_format, quality=quality, **save_options(pil_format, answer))
    return buf.getvalue(), content_type


def _answer_pixels(rgb: np.ndarray, grayscale: bool, source: Source, colorspace: str,
                   pil_format: str) -> tuple[Image.Image | None, np.ndarray, bytes | None]:
    """(a Pillow image when the samples are CMYK, the samples, the profile to tag them with) in the answer's
    colour space: the upload's profile, or sRGB. A grey-profiled upload answered in colour (colorize) and a
    CMYK one answered as PNG or WebP are answered in sRGB: those profiles cannot describe such samples."""
    srgb_tag = SRGB_BYTES if colorspace == "srgb" else source.tagged
    if rgb.dtype == np.uint16 or source.icc is None or colorspace == "srgb":
        return None, answer_samples(rgb, None, grayscale), srgb_tag
    if source.icc_mode == "L" and grayscale:
        return None, np.asarray(from_srgb(Image.fromarray(rgb, "RGB"), source.icc, "L")), source.icc
    if source.icc_mode == "RGB":
        back = np.asarray(from_srgb(Image.fromarray(rgb, "RGB"), source.icc, "RGB"))
        return None, answer_samples(with_gamut(back, source.gamut), None, grayscale), source.icc
    if source.icc_mode == "CMYK" and pil_format == "JPEG":
        cmyk = from_srgb(Image.fromarray(rgb, "RGB"), source.icc, "CMYK")
        return cmyk, np.asarray(cmyk), source.icc
    return None, answer_samples(rgb, None, grayscale), SRGB_BYTES


def _same_depth(alpha: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if alpha.dtype == dtype:
        return alpha
    if dtype == np.uint16:
        return alpha.astype(np.uint16) * 257
    return ((alpha.astype(np.uint32) + 128) // 257).astype(np.uint8)


def answer_samples(rgb: np.ndarray, alpha: np.ndarray | None, grayscale: bool) -> np.ndarray:
    """[H, W, C] of the answer: luma (ITU-R 601-2, Pillow's "L"; computed alike for 16 bits) when grayscale,
    then alpha if any."""
    if not grayscale:
        samples = rgb
    elif rgb.dtype == np.uint8:
        samples = np.asarray(Image.fromarray(rgb, "RGB").convert("L"))
    else:
        luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        samples = np.clip(luma + 0.5, 0, 65535).astype(np.uint16)
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
