"""Decoding and validation of uploads (every odd mode, every kind of bad input) and lossless encoding."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import fpng
from image_io import RequestError, decode, encode, encode_png, encode_png_pillow
from tests.support import decode_png, photo, png_bytes

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


def test_16_bit_grayscale_keeps_its_16_bits():
    ramp = (np.linspace(0, 65535, 64).astype(np.uint16)[None, :]).repeat(4, 0)
    decoded = decode(png_bytes(Image.fromarray(ramp)), LIMIT)  # uint16 -> mode I;16
    assert decoded.grayscale and decoded.rgb.dtype == np.uint16 and decoded.source.depth == 16
    assert np.array_equal(decoded.rgb[..., 0], ramp) and np.array_equal(decoded.rgb[..., 2], ramp)


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


def test_jpeg_cut_inside_its_header_is_a_400():
    """Issue 10: Pillow raised OSError('Truncated File Read') from Image.open, which escaped as a 503."""
    data = png_bytes(photo(64, 64, seed=3), "JPEG", quality=50)
    header = data.index(b"\xff\xda")  # start of scan: everything before it is header
    expect_error(data[: header // 2], 400, "CorruptImage")


def jpeg_segments(data: bytes) -> dict[str, tuple[int, int]]:
    """(start, end) of the first marker segment of each kind up to and including the scan."""
    names = {0xE0: "APP0", 0xDB: "DQT", 0xC0: "SOF0", 0xC4: "DHT", 0xDA: "SOS"}
    found, at = {"SOI": (0, 2)}, 2
    while data[at + 1] != 0xDA:
        length = struct.unpack(">H", data[at + 2:at + 4])[0]
        found.setdefault(names.get(data[at + 1], hex(data[at + 1])), (at, at + 2 + length))
        at += 2 + length
    found["SOS"] = (at, at + 2 + struct.unpack(">H", data[at + 2:at + 4])[0])
    found["scan"] = (found["SOS"][1], len(data) - 2)
    found["EOI"] = (len(data) - 2, len(data))
    return found


@pytest.mark.parametrize("segment", ["SOI", "APP0", "DQT", "SOF0", "DHT", "SOS", "scan", "EOI"])
@pytest.mark.parametrize("where", [0.0, 0.5, 1.0])
def test_jpeg_cut_in_every_segment_is_a_400(segment, where):
    data = png_bytes(photo(64, 64, seed=3), "JPEG")
    start, end = jpeg_segments(data)[segment]
    cut = max(1, min(len(data) - 1, start + 1 + round(where * (end - start - 2))))  # inside the segment
    expect_error(data[:cut], 400, "CorruptImage")


TRUNCATION_CORPUS = [("PNG", {}), ("PNG", {"interlace": 1}), ("JPEG", {}), ("JPEG", {"progressive": True}),
                     ("WEBP", {}), ("WEBP", {"lossless": True}), ("TIFF", {}), ("TIFF", {"compression": "tiff_lzw"}),
                     ("BMP", {})]


@pytest.mark.parametrize("fmt,options", TRUNCATION_CORPUS, ids=lambda v: str(v))
def test_every_truncation_is_a_400_or_every_pixel(fmt, options):
    """Cut after every byte: a 400 CorruptImage, or (a cut in a PNG's trailer) exactly the whole image."""
    data = png_bytes(photo(16, 12, seed=5), fmt, **options)
    whole = decode(data, LIMIT).rgb
    for cut in range(1, len(data)):
        try:
            decoded = decode(data[:cut], LIMIT)
        except RequestError as err:
            assert (err.code, err.kind) == (400, "CorruptImage"), f"cut at {cut}/{len(data)}: {err.message}"
        else:
            assert np.array_equal(decoded.rgb, whole), f"cut at {cut}/{len(data)} decoded to other pixels"


def edited(data: bytes, at: int, fmt: str, *values: int) -> bytes:
    return data[:at] + struct.pack(fmt, *values) + data[at + struct.calcsize(fmt):]


def jpeg_with_size(height: int, width: int) -> bytes:
    data = png_bytes(photo(16, 12), "JPEG")
    return edited(data, data.index(b"\xff\xc0") + 5, ">HH", height, width)


def bmp_with_size(width: int, height: int) -> bytes:
    return edited(png_bytes(photo(16, 12), "BMP"), 18, "<ii", width, height)


@pytest.mark.parametrize("data,code,kind", [
    (edited(png_bytes(photo(16, 12)), 16, ">I", 0x7FFFFFFF), 400, "CorruptImage"),  # IHDR width, CRC now wrong
    (edited(png_bytes(photo(16, 12)), 8, ">I", 0xFFFFFFF0), 400, "CorruptImage"),  # IHDR chunk length
    (jpeg_with_size(0, 16), 400, "CorruptImage"),
    (jpeg_with_size(65535, 65535), 413, "DecompressionBomb"),
    (jpeg_with_size(2000, 2000), 413, "TooManyPixels"),
    (edited(png_bytes(photo(16, 12), "JPEG"), 4, ">H", 0xFFFF), 400, "CorruptImage"),  # APP0 length
    (bmp_with_size(0, 12), 400, "CorruptImage"),
    (bmp_with_size(100_000, 100_000), 413, "DecompressionBomb"),
    (edited(png_bytes(photo(16, 12), "BMP"), 28, "<H", 7), 400, "CorruptImage"),  # 7 bits per pixel
    (edited(png_bytes(photo(16, 12), "BMP"), 10, "<I", 0xFFFFFF00), 400, "CorruptImage"),  # pixel data offset
], ids=["png-width", "png-chunk-length", "jpeg-zero-height", "jpeg-huge", "jpeg-over-limit", "jpeg-app0-length",
        "bmp-zero-width", "bmp-huge", "bmp-depth", "bmp-offset"])
def test_edited_header_fields(data, code, kind):
    expect_error(data, code, kind)


@pytest.mark.parametrize("data,code,kind", [
    (b"\x89PN", 400, "CorruptImage"),  # cut inside PNG's magic bytes
    (b"\xff\xd8", 400, "CorruptImage"),
    (b"RIFF\x24\x00\x00\x00WEBPVP8 ", 400, "CorruptImage"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\0" * 30, 415, "UnsupportedImage"),  # RIFF, but a sound
    (b"x", 415, "UnsupportedImage"),
])
def test_magic_bytes_decide_between_corrupt_and_unsupported(data, code, kind):
    expect_error(data, code, kind)


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


def random_samples(channels: int, dtype=np.uint8, height: int = 37, width: int = 53) -> np.ndarray:
    """Noise: the hardest input for a PNG filter; channels 1 means [H, W]."""
    shape = (height, width) if channels == 1 else (height, width, channels)
    return np.random.default_rng(channels).integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)


@pytest.mark.parametrize("encoder", [encode_png, encode_png_pillow])
@pytest.mark.parametrize("channels,mode", [(1, "L"), (2, "LA"), (3, "RGB"), (4, "RGBA")])
def test_png_is_lossless(encoder, channels, mode):
    samples = random_samples(channels)
    out = decode_png(encoder(samples))
    assert out.mode == mode and np.array_equal(np.asarray(out), samples)


@pytest.mark.parametrize("encoder", [encode_png, encode_png_pillow])
def test_16_bit_grayscale_png_is_lossless(encoder):
    samples = random_samples(1, np.uint16)
    assert np.array_equal(np.asarray(decode_png(encoder(samples))).astype(np.uint16), samples)


def test_larger_photo_png_is_lossless():
    samples = np.asarray(photo(1024, 768, seed=2))
    assert np.array_equal(np.asarray(decode_png(encode_png(samples))), samples)


def test_fpng_writes_rgb_and_rgba_and_pillow_the_rest():
    for channels in (3, 4):
        samples = random_samples(channels)
        assert encode_png(samples) == fpng.from_ndarray(samples)
    for samples in (random_samples(1), random_samples(2), random_samples(1, np.uint16)):
        assert encode_png(samples) == encode_png_pillow(samples)


@pytest.mark.parametrize("with_alpha,grayscale,mode", [(False, False, "RGB"), (True, False, "RGBA"),
                                                       (False, True, "L"), (True, True, "LA")])
def test_png_answer_decodes_to_the_model_output(with_alpha, grayscale, mode):
    """As the handler calls it: a strided view of the batch's output, the input's alpha."""
    batch = np.random.default_rng(1).integers(0, 256, (2, 3, 30, 40), dtype=np.uint8)
    rgb = batch.transpose(0, 2, 3, 1)[1]
    alpha = random_samples(1, height=30, width=40) if with_alpha else None
    out = decode_png(encode(rgb, alpha, grayscale, "png", 95)[0])
    assert out.mode == mode
    color = Image.fromarray(rgb).convert("L") if grayscale else Image.fromarray(rgb)
    assert np.array_equal(np.asarray(out.convert(color.mode)), np.asarray(color))
    if with_alpha:
        assert np.array_equal(np.asarray(out.getchannel("A")), alpha)


# ---- HEIC (pillow-heif) and AVIF (Pillow's own) uploads, issue 25 ------------------------------------------
@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_heic_and_avif_decode_and_every_truncation_is_a_4xx(fmt):
    img = photo(32, 24, seed=5)
    data = png_bytes(img, fmt, quality=90)
    decoded = decode(data, LIMIT)
    assert decoded.rgb.shape == (24, 32, 3)
    assert np.abs(decoded.rgb.astype(int) - np.asarray(img, int)).mean() < 12  # lossy on its noise; unrelated: ~85
    for cut in range(8, len(data)):  # from the ftyp brand on, the data claims its format
        with pytest.raises(RequestError) as info:
            decode(data[:cut], LIMIT)
        assert (info.value.code, info.value.kind) == (400, "CorruptImage"), cut


def test_heic_pixel_limit_and_exif():
    exif = Image.Exif()
    exif[0x010F] = "Apple"
    data = png_bytes(photo(64, 48), "HEIF", exif=exif)
    assert decode(data, LIMIT).source.exif[0x010F] == "Apple"
    expect = pytest.raises(RequestError)
    with expect as info:
        decode(data, 64 * 48 - 1)
    assert (info.value.code, info.value.kind) == (413, "TooManyPixels")
