"""Decoding and validation of uploads: every odd mode, every kind of bad input."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from image_io import RequestError, decode, encode
from tests.support import photo, png_bytes

LIMIT = 1_000_000


def png_header_only(width: int, height: int) -> bytes:
    """A valid-looking PNG that claims a huge size: the shape of a decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def expect_error(data: bytes, code: int, kind: str) -> None:
    with pytest.raises(RequestError) as info:
        decode(data, LIMIT)
    assert (info.value.code, info.value.kind) == (code, kind)
    assert info.value.message


def test_rgb_png_round_trips():
    img = photo(40, 30)
    decoded = decode(png_bytes(img), LIMIT)
    assert decoded.size == (30, 40) and decoded.alpha is None and not decoded.grayscale
    assert np.array_equal(decoded.rgb, np.asarray(img))


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "TIFF", "BMP"])
def test_other_formats_decode(fmt):
    decoded = decode(png_bytes(photo(33, 21), fmt), LIMIT)
    assert decoded.rgb.shape == (21, 33, 3)


@pytest.mark.parametrize("mode,gray,has_alpha", [("L", True, False), ("LA", True, True), ("RGBA", False, True),
                                                 ("P", False, False), ("1", True, False)])
def test_modes_map_to_rgb(mode, gray, has_alpha):
    img = photo(20, 10).convert(mode)
    if has_alpha:
        img.putalpha(Image.linear_gradient("L").resize(img.size))
    decoded = decode(png_bytes(img), LIMIT)
    assert decoded.rgb.shape == (10, 20, 3) and decoded.grayscale is gray
    assert (decoded.alpha is not None) is has_alpha


def test_palette_with_transparency_keeps_alpha():
    img = photo(16, 16).convert("P")
    img.putpixel((0, 0), 0)
    decoded = decode(png_bytes(img, transparency=0), LIMIT)
    assert decoded.alpha is not None and decoded.alpha.min() == 0


def test_cmyk_jpeg_converts():
    decoded = decode(png_bytes(photo(16, 12).convert("CMYK"), "JPEG"), LIMIT)
    assert decoded.rgb.shape == (12, 16, 3) and not decoded.grayscale


def test_16_bit_grayscale_is_scaled_not_clipped():
    ramp = (np.linspace(0, 65535, 64).astype(np.uint16)[None, :]).repeat(4, 0)
    decoded = decode(png_bytes(Image.fromarray(ramp)), LIMIT)  # uint16 -> mode I;16
    assert decoded.grayscale
    assert decoded.rgb[0, 0, 0] == 0 and decoded.rgb[0, -1, 0] == 255
    assert 100 < decoded.rgb[0, 32, 0] < 155  # mid-grey, not saturated


def test_exif_orientation_is_applied():
    img = photo(40, 20)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    decoded = decode(png_bytes(img, "JPEG", exif=exif), LIMIT)
    assert decoded.size == (40, 20)


@pytest.mark.parametrize("data,code,kind", [
    (b"", 400, "EmptyImage"),
    (b"certainly not an image", 415, "UnsupportedImage"),
    (b"GIF89a" + b"\0" * 32, 415, "UnsupportedImage"),
])
def test_bad_bytes(data, code, kind):
    expect_error(data, code, kind)


def test_truncated_png():
    data = png_bytes(photo(64, 64, seed=3))
    expect_error(data[: len(data) // 2], 400, "CorruptImage")


def test_truncated_jpeg():
    data = png_bytes(photo(64, 64, seed=3), "JPEG")
    expect_error(data[: len(data) // 2], 400, "CorruptImage")


def test_decompression_bomb_is_refused_before_decoding():
    expect_error(png_header_only(100_000, 100_000), 413, "DecompressionBomb")


def test_too_many_pixels():
    expect_error(png_header_only(2000, 1000), 413, "TooManyPixels")


@pytest.mark.parametrize("fmt,content_type,magic", [("png", "image/png", b"\x89PNG"), ("jpeg", "image/jpeg", b"\xff\xd8"),
                                                     ("webp", "image/webp", b"RIFF")])
def test_encode_formats(fmt, content_type, magic):
    rgb = np.asarray(photo(24, 16))
    body, ctype = encode(rgb, None, False, fmt, 90)
    assert ctype == content_type and body.startswith(magic)
    assert Image.open(io.BytesIO(body)).size == (24, 16)


def test_encode_keeps_alpha_and_grayscale():
    rgb = np.asarray(photo(8, 8))
    alpha = np.full((8, 8), 7, np.uint8)
    out = Image.open(io.BytesIO(encode(rgb, alpha, True, "png", 95)[0]))
    assert out.mode == "LA" and np.asarray(out)[..., 1].max() == 7
