"""A small corpus of valid images, made by code: every accepted format in every mode the API promises
(L, LA, P, RGBA, CMYK, 16-bit, EXIF), plus GIF, which the API refuses (415), and one photo per file.

Each file is 21x13 pixels so that thousands of mutants decode in seconds.
"""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np
from PIL import Image

from tests.support import photo, png_bytes

WIDTH, HEIGHT = 21, 13
ROTATED = "exif"  # files whose name contains this carry orientation 6: they decode as HEIGHT x WIDTH, turned


def exif_blob(orientation: int = 6) -> bytes:
    """EXIF with an orientation, text tags, and an Exif and a GPS sub-IFD (offsets for the fuzzer to break)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "restoration-serve"  # Make
    exif[0x0132] = "2024:01:02 03:04:05"  # DateTime
    exif.get_ifd(0x8769)[0x9003] = "2024:01:02 03:04:05"  # Exif IFD: DateTimeOriginal
    exif.get_ifd(0x8825)[0x0001] = "N"  # GPS IFD: latitude ref
    return exif.tobytes()


def _with_alpha(img: Image.Image) -> Image.Image:
    img = img.copy()
    ramp = np.tile(np.linspace(0, 255, img.width).astype(np.uint8), (img.height, 1))
    img.putalpha(Image.fromarray(ramp, "L"))
    return img


def _sixteen_bit(img: Image.Image) -> Image.Image:
    gray = np.asarray(img.convert("L")).astype(np.uint16) * 257
    return Image.fromarray(gray)  # mode I;16


def _base() -> Image.Image:
    return photo(WIDTH, HEIGHT, seed=11)


def _palette_with_transparency(fmt: str) -> bytes:
    img = _base().convert("P")
    img.putpixel((0, 0), 0)
    return png_bytes(img, fmt, transparency=0)


def _files() -> dict[str, Callable[[], bytes]]:
    rgb = _base
    return {
        "png-L": lambda: png_bytes(rgb().convert("L")),
        "png-LA": lambda: png_bytes(_with_alpha(rgb().convert("L"))),
        "png-P": lambda: png_bytes(rgb().convert("P")),
        "png-P-transparency": lambda: _palette_with_transparency("PNG"),
        "png-1": lambda: png_bytes(rgb().convert("1")),
        "png-RGB": lambda: png_bytes(rgb()),
        "png-RGBA": lambda: png_bytes(_with_alpha(rgb())),
        "png-I16": lambda: png_bytes(_sixteen_bit(rgb())),
        "png-RGB-exif": lambda: png_bytes(rgb(), exif=exif_blob()),
        "jpeg-L": lambda: png_bytes(rgb().convert("L"), "JPEG", quality=90),
        "jpeg-RGB": lambda: png_bytes(rgb(), "JPEG", quality=90),
        "jpeg-RGB-444": lambda: png_bytes(rgb(), "JPEG", quality=90, subsampling=0),
        "jpeg-RGB-progressive": lambda: png_bytes(rgb(), "JPEG", quality=90, progressive=True),
        "jpeg-CMYK": lambda: png_bytes(rgb().convert("CMYK"), "JPEG", quality=90),
        "jpeg-RGB-exif": lambda: png_bytes(rgb(), "JPEG", quality=90, exif=exif_blob()),
        "webp-RGB-lossy": lambda: png_bytes(rgb(), "WEBP", quality=80),
        "webp-RGBA-lossless": lambda: png_bytes(_with_alpha(rgb()), "WEBP", lossless=True),
        "webp-RGB-exif": lambda: png_bytes(rgb(), "WEBP", quality=80, exif=exif_blob()),
        "tiff-RGB": lambda: png_bytes(rgb(), "TIFF"),
        "tiff-L-lzw": lambda: png_bytes(rgb().convert("L"), "TIFF", compression="tiff_lzw"),
        "tiff-RGBA-deflate": lambda: png_bytes(_with_alpha(rgb()), "TIFF", compression="tiff_adobe_deflate"),
        "tiff-RGB-packbits": lambda: png_bytes(rgb(), "TIFF", compression="packbits"),
        "tiff-RGB-jpeg": lambda: png_bytes(rgb(), "TIFF", compression="jpeg"),
        "tiff-I16": lambda: png_bytes(_sixteen_bit(rgb()), "TIFF"),
        "tiff-CMYK": lambda: png_bytes(rgb().convert("CMYK"), "TIFF"),
        "tiff-RGB-exif": lambda: png_bytes(rgb(), "TIFF", exif=exif_blob()),
        "bmp-RGB": lambda: png_bytes(rgb(), "BMP"),
        "bmp-L": lambda: png_bytes(rgb().convert("L"), "BMP"),
        "bmp-P": lambda: png_bytes(rgb().convert("P"), "BMP"),
        "bmp-1": lambda: png_bytes(rgb().convert("1"), "BMP"),
        "bmp-RGBA": lambda: png_bytes(_with_alpha(rgb()), "BMP"),
        "gif-P": lambda: png_bytes(rgb().convert("P"), "GIF"),
        "gif-P-transparency": lambda: _palette_with_transparency("GIF"),
    }


@functools.cache
def corpus() -> dict[str, bytes]:
    """name -> bytes of a valid file; the name starts with the format."""
    return {name: make() for name, make in _files().items()}


def accepted(name: str) -> bool:
    """The API takes this file's format (GIF is refused with 415)."""
    return not name.startswith("gif")


def expected_size(name: str) -> tuple[int, int]:
    """(height, width) of the decoded, EXIF-oriented picture."""
    return (WIDTH, HEIGHT) if ROTATED in name else (HEIGHT, WIDTH)
