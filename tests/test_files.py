"""Files as labs keep them (issue 25): colour profiles, metadata and 16-bit depth through a real handler.

``retouch`` at ``strength=0`` answers its input (torch.lerp at 0), so what changes between upload and answer
is the file handling alone: decode to sRGB, encode back to the upload's profile, metadata and depth.
"""
from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import tifffile
from PIL import ExifTags, Image

from file_info import SRGB_BYTES, encode_png16, read_16bit, Answer
from tests.icc import SPACES, cmyk_profile, gray_profile, mean_delta_e, rgb_profile, to_lab
from tests.support import handler_for, photo, png_bytes, run_handler

IDENTITY = {"strength": b"0"}


@pytest.fixture(scope="module")
def retouch():
    return handler_for("retouch")


def saturated(width: int = 64, height: int = 48) -> Image.Image:
    """A photo whose colours reach the corners of its gamut (what a wide-gamut file holds and sRGB cannot)."""
    arr = np.asarray(photo(width, height, seed=4)).astype(np.float64)
    arr = np.clip((arr - 128) * 2.2 + 128, 0, 255)
    return Image.fromarray(arr.astype(np.uint8), "RGB")


def answer(handler, body: bytes, **fields) -> Image.Image:
    [(status, _, data)] = run_handler(handler, [{"data": body, **IDENTITY, **{k: v.encode() for k, v in fields.items()}}])
    assert status == 200, data
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


# ---- colour ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("space", list(SPACES))
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_wide_gamut_upload_comes_back_in_its_profile(retouch, space, fmt):
    icc, img = rgb_profile(space), saturated()
    body = png_bytes(img, fmt, icc_profile=icc, quality=95)
    sent = Image.open(io.BytesIO(body)).convert("RGB")  # what the upload's pixels are, after its own JPEG loss
    out = answer(retouch, body, format=fmt.lower(), quality="100")  # JPEG: little second-generation loss
    assert out.info.get("icc_profile") == icc and out.mode == "RGB"
    delta = mean_delta_e(to_lab(sent, icc), to_lab(out, icc))
    # a JPEG answer is a second JPEG generation: Pillow re-encoding the same samples loses this much alone
    again = Image.open(io.BytesIO(png_bytes(sent, fmt, icc_profile=icc, quality=100))).convert("RGB")
    generation = mean_delta_e(to_lab(sent, icc), to_lab(again, icc))
    print(f"{space} {fmt}: mean dE {delta:.2f} (re-encoding alone {generation:.2f})")
    assert delta < 1.0 + generation and (fmt == "JPEG" or delta < 1.0), f"{space} {fmt}: mean dE {delta:.2f}"


def test_without_the_profile_the_colours_shift(retouch):
    """The check above can fail: the same answer read as sRGB (what an untagged answer means) is far off."""
    icc = rgb_profile("Adobe RGB (1998)")
    sent = saturated()
    out = answer(retouch, png_bytes(sent, icc_profile=icc))
    assert mean_delta_e(to_lab(sent, icc), to_lab(out, None)) > 4.0


def test_colorspace_srgb_answers_in_srgb_tagged(retouch):
    icc = rgb_profile("Display P3")
    muted = np.asarray(photo(64, 48, seed=2)) // 2 + 64  # moderate colours: inside sRGB, so converting loses none
    sent = Image.fromarray(muted.astype(np.uint8), "RGB")
    out = answer(retouch, png_bytes(sent, icc_profile=icc), colorspace="srgb")
    assert out.info.get("icc_profile") == SRGB_BYTES
    assert mean_delta_e(to_lab(sent, icc), to_lab(out, None)) < 1.0


def test_untagged_upload_is_srgb_and_answered_untagged_as_before(retouch):
    sent = photo(40, 30)
    out = answer(retouch, png_bytes(sent))
    assert "icc_profile" not in out.info and np.array_equal(np.asarray(out), np.asarray(sent))


def test_gray_profile_upload_stays_gray_in_its_profile(retouch):
    icc = gray_profile(2.2)
    sent = photo(40, 30).convert("L")
    out = answer(retouch, png_bytes(sent, icc_profile=icc))
    assert out.mode == "L" and out.info.get("icc_profile") == icc
    assert np.abs(np.asarray(out, int) - np.asarray(sent, int)).max() <= 1


def test_cmyk_jpeg_with_profile(retouch):
    icc = cmyk_profile()
    sent = photo(48, 32, seed=1).convert("CMYK")
    body = png_bytes(sent, "JPEG", icc_profile=icc, quality=95)
    upload = Image.open(io.BytesIO(body))
    as_jpeg = answer(retouch, body, format="jpeg")
    assert as_jpeg.mode == "CMYK" and as_jpeg.info.get("icc_profile") == icc
    assert mean_delta_e(to_lab(upload, icc), to_lab(as_jpeg, icc)) < 3.0
    as_png = answer(retouch, body)  # PNG holds no CMYK: answered in sRGB, tagged so
    assert as_png.mode == "RGB" and as_png.info.get("icc_profile") == SRGB_BYTES
    assert mean_delta_e(to_lab(upload, icc), to_lab(as_png, None)) < 2.0


def test_a_corrupt_profile_is_a_400_for_that_request_alone(retouch):
    good = png_bytes(photo(16, 16))
    bad = png_bytes(photo(16, 16), icc_profile=b"not a profile at all" * 8)
    results = run_handler(retouch, [{"data": good, **IDENTITY}, {"data": bad, **IDENTITY}])
    assert [r[0] for r in results] == [200, 400]
    assert b"InvalidProfile" in results[1][2]


def test_a_profile_for_other_samples_is_ignored_as_before(retouch):
    """An RGB profile on a gray PNG cannot describe it: the upload is read as untagged, as it always was."""
    sent = photo(20, 10).convert("L")
    out = answer(retouch, png_bytes(sent, icc_profile=rgb_profile("Display P3")))
    assert out.mode == "L" and "icc_profile" not in out.info and np.array_equal(np.asarray(out), np.asarray(sent))


# ---- metadata -------------------------------------------------------------------------------------------
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmlns:exif="http://ns.adobe.com/exif/1.0/" '
       b'xmlns:dc="http://purl.org/dc/elements/1.1/" tiff:Orientation="6" exif:GPSLatitude="48,51.0N">'
       b'<dc:creator>Ansel</dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>')
IPTC = b"\x1c\x02\x00\x00\x02\x00\x04\x1c\x02\x74\x00\x09(c) Lab 1"  # record version, copyright notice


def camera_exif() -> Image.Exif:
    exif = Image.Exif()
    exif.update({0x010F: "Nikon", 0x0110: "Z 8", 0x013B: "Ansel", 0x8298: "(c) Lab", 0x0112: 6})
    exif.get_ifd(0x8769).update({0x9003: "2026:12:01 10:00:00", 0xA002: 40, 0xA003: 30})
    exif.get_ifd(0x8825).update({1: "N", 2: (48.0, 51.0, 0.0)})
    return exif


def camera_jpeg() -> bytes:
    body = png_bytes(photo(40, 30), "JPEG", exif=camera_exif(), xmp=XMP)
    app13 = b"Photoshop 3.0\x00" + b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(IPTC)) + IPTC
    return body[:2] + b"\xff\xed" + struct.pack(">H", len(app13) + 2) + app13 + body[2:]


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_metadata_travels_with_orientation_reset_and_the_new_size(retouch, fmt):
    out = answer(retouch, camera_jpeg(), format=fmt)
    assert out.size == (30, 40)  # turned by Orientation 6 at decode
    exif = out.getexif()
    assert [exif.get(t) for t in (0x010F, 0x0110, 0x013B, 0x8298, 0x0112)] == ["Nikon", "Z 8", "Ansel", "(c) Lab", 1]
    sub = exif.get_ifd(0x8769)
    assert sub[0x9003] == "2026:12:01 10:00:00" and (sub[0xA002], sub[0xA003]) == (30, 40)
    assert exif.get_ifd(0x8825)[1] == "N"
    xmp = out.info["xmp"]
    xmp = xmp.encode() if isinstance(xmp, str) else xmp
    assert b"Ansel" in xmp and b'Orientation="1"' in xmp and b"GPSLatitude" in xmp
    if fmt == "jpeg":
        assert out.info["photoshop"][0x0404] == IPTC


def test_nogps_drops_the_position_only(retouch):
    out = answer(retouch, camera_jpeg(), format="jpeg", metadata="nogps")
    exif = out.getexif()
    assert exif[0x010F] == "Nikon" and not exif.get_ifd(0x8825)
    assert b"GPSLatitude" not in out.info["xmp"] and b"Ansel" in out.info["xmp"]


def test_strip_drops_all_metadata_but_keeps_the_colour(retouch):
    icc = rgb_profile("Adobe RGB (1998)")
    body = png_bytes(photo(40, 30), "JPEG", exif=camera_exif(), xmp=XMP, icc_profile=icc)
    out = answer(retouch, body, format="jpeg", metadata="strip")
    assert not out.getexif() and "xmp" not in out.info and out.info["icc_profile"] == icc


def exif_with_thumbnail() -> bytes:
    """EXIF (little-endian TIFF) whose IFD1 holds a JPEG thumbnail, as cameras write it (Pillow writes none)."""
    thumb = png_bytes(photo(8, 6), "JPEG")
    ifd0 = struct.pack("<H", 1) + struct.pack("<HHII", 0x010F, 2, 4, int.from_bytes(b"Cam\0", "little"))
    ifd1_at = 8 + len(ifd0) + 4
    ifd1 = struct.pack("<H", 2) + struct.pack("<HHII", 0x0201, 4, 1, ifd1_at + 2 + 24 + 4)
    ifd1 += struct.pack("<HHII", 0x0202, 4, 1, len(thumb)) + b"\0\0\0\0"
    return b"Exif\0\0" + b"II*\0" + struct.pack("<I", 8) + ifd0 + struct.pack("<I", ifd1_at) + ifd1 + thumb


def test_embedded_thumbnail_is_dropped(retouch):
    body = png_bytes(photo(40, 30), "JPEG", exif=exif_with_thumbnail())
    assert Image.open(io.BytesIO(body)).getexif().get_ifd(ExifTags.IFD.IFD1)  # the upload does carry IFD1
    out = answer(retouch, body, format="jpeg")
    assert out.getexif()[0x010F] == "Cam" and not out.getexif().get_ifd(ExifTags.IFD.IFD1)
    assert b"\xff\xd8" not in out.info["exif"]


def test_tiff_upload_metadata_reaches_a_png_answer_without_tiff_layout_tags(retouch):
    body = png_bytes(photo(40, 30), "TIFF", exif=camera_exif())
    exif = answer(retouch, body).getexif()
    assert exif[0x010F] == "Nikon" and 273 not in exif and 256 not in exif  # no StripOffsets, no ImageWidth


# ---- depth ----------------------------------------------------------------------------------------------
def ramp16(channels: int, height: int = 24, width: int = 40) -> np.ndarray:
    rng = np.random.default_rng(channels)
    shape = (height, width) if channels == 1 else (height, width, channels)
    return rng.integers(0, 65536, shape, dtype=np.uint16)


def png_bit_depth(body: bytes) -> int:
    return body[24]  # IHDR: width, height, then bit depth


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("container", ["PNG", "TIFF"])
def test_16_bit_uploads_are_answered_in_16_bits(retouch, channels, container):
    samples = ramp16(channels)
    if container == "PNG":
        body = encode_png16(samples, Answer())
    else:
        buf = io.BytesIO()
        tifffile.imwrite(buf, samples, photometric="minisblack" if channels == 1 else "rgb")
        body = buf.getvalue()
    [(status, ctype, data)] = run_handler(retouch, [{"data": body, **IDENTITY}])
    assert (status, ctype) == (200, "image/png") and png_bit_depth(data) == 16
    opened = Image.open(io.BytesIO(data))
    got = read_16bit(data, opened, str(opened.tile[0].args))
    assert got.shape == samples.shape and np.abs(got.astype(int) - samples).max() <= 1


def test_depth_8_and_8_bit_uploads_answer_8_bits(retouch):
    [(_, _, data)] = run_handler(retouch, [{"data": encode_png16(ramp16(3), Answer()), **IDENTITY, "depth": b"8"}])
    assert png_bit_depth(data) == 8
    [(_, _, data)] = run_handler(retouch, [{"data": png_bytes(photo(20, 10)), **IDENTITY}])
    assert png_bit_depth(data) == 8
    [(_, _, data)] = run_handler(retouch, [{"data": png_bytes(photo(20, 10)), **IDENTITY, "depth": b"16"}])
    assert png_bit_depth(data) == 16


def test_depth_16_with_jpeg_answers_an_8_bit_jpeg(retouch):
    [(status, ctype, data)] = run_handler(retouch, [{"data": encode_png16(ramp16(3), Answer()), "depth": b"16",
                                                     "format": b"jpeg"}])
    assert (status, ctype) == (200, "image/jpeg") and Image.open(io.BytesIO(data)).mode == "RGB"


def test_16_and_8_bit_uploads_of_one_size_in_one_batch(retouch):
    eight, sixteen = photo(40, 24), ramp16(3)
    results = run_handler(retouch, [{"data": png_bytes(eight), **IDENTITY},
                                    {"data": encode_png16(sixteen, Answer()), **IDENTITY}])
    assert [png_bit_depth(r[2]) for r in results] == [8, 16]
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(results[0][2]))), np.asarray(eight))


# ---- through the real TorchServe ------------------------------------------------------------------------
def test_restore_chain_keeps_profile_metadata_and_depth(live):
    """The chain's archive carries file_info.py; its answer keeps what a single endpoint's does."""
    icc = rgb_profile("Display P3")
    body = png_bytes(saturated(40, 30), "PNG", icc_profile=icc, exif=camera_exif())
    reply = live.predict("restore", files={"data": ("p3.png", body, "image/png")},
                         data={"steps": "retouch,retouch", "retouch.strength": "0"})
    assert reply.status_code == 200, reply.text
    out = Image.open(io.BytesIO(reply.content))
    assert out.info["icc_profile"] == icc and out.getexif()[0x0110] == "Z 8" and out.size == (30, 40)
    assert mean_delta_e(to_lab(saturated(40, 30).transpose(Image.Transpose.ROTATE_270), icc), to_lab(out, icc)) < 0.5
    sixteen = ramp16(3)
    reply = live.predict("restore", files={"data": ("scan.png", encode_png16(sixteen, Answer()), "image/png")},
                         data={"steps": "retouch,retouch", "retouch.strength": "0"})
    assert reply.status_code == 200 and png_bit_depth(reply.content) == 16
    opened = Image.open(io.BytesIO(reply.content))
    assert np.abs(read_16bit(reply.content, opened, str(opened.tile[0].args)).astype(int) - sixteen).max() <= 1


def test_colorize_answers_a_gray_profiled_photo_in_srgb_and_takes_a_16_bit_reference():
    """colorize answers colour, which a gray profile cannot describe: sRGB, tagged so."""
    colorize = handler_for("colorize")
    gray = png_bytes(photo(40, 30).convert("L"), icc_profile=gray_profile())
    reference = encode_png16(np.asarray(photo(40, 30, seed=5)).astype(np.uint16) * 257, Answer())
    [(status, _, data)] = run_handler(colorize, [{"data": gray, "reference": reference}])
    assert status == 200, data
    out = Image.open(io.BytesIO(data))
    assert out.mode == "RGB" and out.info["icc_profile"] == SRGB_BYTES


def test_superres_answer_carries_its_own_size_and_the_profile():
    """x4: EXIF pixel dimensions are the answer's, and the gamut residual is resized with the pixels."""
    superres = handler_for("superres")
    icc = rgb_profile("Adobe RGB (1998)")
    body = png_bytes(saturated(20, 16), "JPEG", icc_profile=icc, exif=camera_exif(), quality=95)
    # The clean network: this noisy pattern sends auto to the real one, whose denoising moves the shrunk-back
    # colours by itself; what is tested here is the colour management around either network.
    [(status, _, data)] = run_handler(superres, [{"data": body, "input": b"clean"}])
    assert status == 200, data
    out = Image.open(io.BytesIO(data))
    sub = out.getexif().get_ifd(0x8769)
    assert out.size == (64, 80) and (sub[0xA002], sub[0xA003]) == (64, 80) and out.info["icc_profile"] == icc
    # the answer, shrunk back, shows the upload's colours (superres keeps them), not sRGB-clipped ones
    small = out.resize((16, 20), Image.Resampling.BOX)
    sent = Image.open(io.BytesIO(body)).convert("RGB").transpose(Image.Transpose.ROTATE_270)
    delta = mean_delta_e(to_lab(sent, icc), to_lab(small, icc))
    print(f"superres x4 shrunk back: mean dE {delta:.2f}")
    assert delta < 3.0  # sRGB clipping alone would be 11.4
