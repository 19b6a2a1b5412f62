"""What an upload carries besides its pixels, kept for its answer: colour profile, metadata, 16-bit depth.

* **Colour.** The models work in sRGB. An upload tagged with another ICC profile is converted to sRGB
  with LittleCMS (Pillow's ImageCms), relative colorimetric with black-point compensation, and its answer
  is converted back and tagged with the upload's profile (``colorspace=srgb``: answered in sRGB, tagged).
  Why that intent: docs/files.md (measured by benchmarks/colour_intents.py).
* **Metadata.** EXIF, XMP and (JPEG, TIFF) IPTC are read at decode and written into the answer with
  Orientation 1 (decode already turned the pixels), the answer's pixel dimensions, no embedded thumbnail
  (Pillow's EXIF writer drops IFD1) and, for ``metadata=nogps``, no GPS.
* **Depth.** 16-bit PNG and TIFF samples are read in full (Pillow opens 16-bit RGB as 8 bits) and a
  16-bit PNG answer is written with Pillow's chunks around 16-bit image data.

Everything here is per request: a :class:`Source` travels in the decoded image to its encode.
"""
from __future__ import annotations

import io
import struct
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageCms, PngImagePlugin

INTENT = ImageCms.Intent.RELATIVE_COLORIMETRIC
FLAGS = ImageCms.Flags.BLACKPOINTCOMPENSATION
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
SRGB_BYTES = SRGB.tobytes()
# The profile's colour space (ICC header) -> the Pillow mode its 8-bit samples have.
SPACE_MODES = {"RGB ": "RGB", "GRAY": "L", "CMYK": "CMYK"}
# TIFF tags that describe a TIFF's own layout, not the photo: never copied into an answer's EXIF.
STRUCTURAL_TAGS = frozenset({254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281, 284,
                             292, 293, 296, 317, 320, 322, 323, 324, 325, 338, 339, 340, 341, 513, 514, 530, 531,
                             532, 700, 33723, 34377, 34675, 0x0112})
EXIF_IFD, GPS_IFD = 0x8769, 0x8825
PIXEL_X, PIXEL_Y = 0xA002, 0xA003
IPTC_RESOURCE = 0x0404  # Photoshop image resource holding IPTC-IIM
ORIENTATION = 0x0112
XMP_KEY = "XML:com.adobe.xmp"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PNG_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # samples per pixel -> PNG colour type


@dataclass(frozen=True)
class Source:
    """The upload's profile and metadata. ``icc`` is None for sRGB and untagged uploads (no conversion)."""

    icc: bytes | None = None
    icc_mode: str = "RGB"  # what the profile describes: RGB, L or CMYK
    tagged: bytes | None = None  # the upload's own profile bytes (sRGB ones included), re-attached as sent
    exif: Image.Exif | None = None
    xmp: bytes | None = None
    iptc: bytes | None = None
    depth: int = 8
    # A JPEG upload's quantization tables (Pillow's ``quantization``: table id -> 64 values), else None:
    # how coarsely it was compressed, which superres's ``input=auto`` reads (handlers/input_quality.py).
    quantization: dict[int, list[int]] | None = field(default=None, compare=False)
    # int16 [H, W, 3]: the upload's RGB minus its round trip through 8-bit sRGB, i.e. what sRGB's gamut
    # clipped (None when nothing was). Added to the answer back in the upload's space (resized with it), so
    # a wide-gamut photo keeps the colours sRGB cannot hold, and an unchanged photo comes back as sent.
    gamut: np.ndarray | None = field(default=None, compare=False)


@dataclass
class Answer:
    """What :func:`metadata_for` hands an encoder: profile bytes and metadata already in their final form."""

    icc: bytes | None = None
    exif: bytes | None = None
    xmp: bytes | None = None
    iptc: bytes | None = None
    extra: dict = field(default_factory=dict)


# ---- colour -------------------------------------------------------------------------------------------
def read_profile(img: Image.Image) -> tuple[bytes | None, str, bytes | None]:
    """(profile to convert from, its mode, the bytes as sent); a corrupt profile raises ImageCms.PyCMSError."""
    data = img.info.get("icc_profile")
    if not data:
        return None, "RGB", None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(data))
    except OSError as exc:  # LittleCMS could not parse it
        raise ImageCms.PyCMSError(str(exc)) from None
    space = profile.profile.xcolor_space
    if space not in SPACE_MODES:
        raise ImageCms.PyCMSError(f"an ICC profile for colour space {space.strip()!r} (RGB, GRAY or CMYK expected)")
    if is_srgb(profile):
        return None, "RGB", data  # already what the models work in: no conversion, no rounding
    return data, SPACE_MODES[space], data


def is_srgb(profile: ImageCms.ImageCmsProfile) -> bool:
    """An sRGB profile (IEC 61966-2.1, under the names cameras and editors give it)."""
    description = (profile.profile.profile_description or "").lower()
    return profile.profile.xcolor_space == "RGB " and "srgb" in description


def to_srgb(img: Image.Image, icc: bytes) -> Image.Image:
    """An 8-bit RGB, L or CMYK image in ``icc``'s space as sRGB "RGB" (alpha, if any, handled by the caller)."""
    source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    return ImageCms.profileToProfile(img, source, SRGB, renderingIntent=INTENT, outputMode="RGB", flags=FLAGS)


def gamut_residual(img: Image.Image, srgb: Image.Image, icc: bytes) -> np.ndarray | None:
    """``img`` (RGB, in ``icc``'s space) minus ``srgb`` (its conversion) converted back: see ``Source.gamut``."""
    lost = np.asarray(img, np.int16) - np.asarray(from_srgb(srgb, icc, "RGB"), np.int16)
    return lost if lost.any() else None


def with_gamut(answer: np.ndarray, gamut: np.ndarray | None) -> np.ndarray:
    """uint8 answer in the upload's RGB space plus the clipped part (bicubically resized to the answer)."""
    if gamut is None:
        return answer
    height, width = answer.shape[:2]
    if gamut.shape[:2] != (height, width):
        gamut = np.dstack([np.asarray(Image.fromarray(gamut[..., c].astype(np.float32), "F")
                                      .resize((width, height), Image.Resampling.BICUBIC)) for c in range(3)])
    return np.clip(np.rint(answer.astype(np.float32) + gamut), 0, 255).astype(np.uint8)


def from_srgb(img: Image.Image, icc: bytes, mode: str) -> Image.Image:
    """An sRGB "RGB" image converted into ``icc``'s space as ``mode`` (RGB, L or CMYK)."""
    target = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    return ImageCms.profileToProfile(img, SRGB, target, renderingIntent=INTENT, outputMode=mode, flags=FLAGS)


# ---- metadata -----------------------------------------------------------------------------------------
def read_metadata(img: Image.Image) -> tuple[Image.Exif | None, bytes | None, bytes | None]:
    """(EXIF without TIFF layout tags, XMP, IPTC) as the upload holds them; EXIF Pillow cannot rewrite is dropped."""
    exif = _descriptive_exif(img)
    xmp = img.info.get("xmp") or None
    if isinstance(xmp, str):
        xmp = xmp.encode()
    iptc = img.info.get("photoshop", {}).get(IPTC_RESOURCE) if img.format == "JPEG" else None
    if img.format == "TIFF":
        iptc = _tiff_iptc(img)
    return exif, xmp, iptc or None


def _descriptive_exif(img: Image.Image) -> Image.Exif | None:
    source = img.getexif()
    exif = Image.Exif()
    for tag, value in source.items():
        if tag not in STRUCTURAL_TAGS and tag not in (EXIF_IFD, GPS_IFD):
            exif[tag] = value
    for ifd in (EXIF_IFD, GPS_IFD):
        if ifd in source:
            exif.get_ifd(ifd).update(source.get_ifd(ifd))  # sub-IFDs are written only when loaded this way
    if not exif.keys() and not any(exif.get_ifd(i) for i in (EXIF_IFD, GPS_IFD)):
        return None
    try:
        exif.tobytes()
    except (ValueError, TypeError, struct.error, OverflowError):  # a tag Pillow reads but cannot write back
        return None
    return exif


def _tiff_iptc(img: Image.Image) -> bytes | None:
    value = getattr(img, "tag_v2", {}).get(33723)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, tuple) and all(isinstance(v, int) for v in value):  # stored as LONGs by some writers
        return struct.pack(f">{len(value)}I", *value)
    return None


def metadata_for(source: Source, size: tuple[int, int], mode: str) -> Answer:
    """The answer's metadata for ``mode`` keep | strip | nogps at ``size`` (width, height)."""
    if mode == "strip":
        return Answer()
    return Answer(exif=_answer_exif(source.exif, size, mode == "nogps"),
                  xmp=_answer_xmp(source.xmp, size, mode == "nogps"), iptc=source.iptc)


def _answer_exif(exif: Image.Exif | None, size: tuple[int, int], drop_gps: bool) -> bytes | None:
    if exif is None:
        return None
    out = Image.Exif()
    out.update(exif)
    out[ORIENTATION] = 1  # the pixels were turned at decode
    sub = out.get_ifd(EXIF_IFD)
    sub.update(exif.get_ifd(EXIF_IFD))
    if sub or PIXEL_X in sub:
        sub[PIXEL_X], sub[PIXEL_Y] = size
    if not drop_gps and exif.get_ifd(GPS_IFD):
        out.get_ifd(GPS_IFD).update(exif.get_ifd(GPS_IFD))
    return out.tobytes()


def _answer_xmp(xmp: bytes | None, size: tuple[int, int], drop_gps: bool) -> bytes | None:
    """XMP with orientation and pixel dimensions updated (and GPS removed); unparseable XMP is left out,
    since its orientation would turn the answer a second time."""
    if xmp is None:
        return None
    try:
        root = ET.fromstring(xmp.strip(b"\x00 \t\r\n"))
    except ET.ParseError:
        return None
    values = {"Orientation": "1", "PixelXDimension": str(size[0]), "PixelYDimension": str(size[1]),
              "ImageWidth": str(size[0]), "ImageLength": str(size[1])}
    for element in root.iter():
        for key in list(element.attrib):
            local = key.rsplit("}", 1)[-1]
            if drop_gps and local.startswith("GPS"):
                del element.attrib[key]
            elif local in values:
                element.attrib[key] = values[local]
        for child in list(element):
            local = child.tag.rsplit("}", 1)[-1] if isinstance(child.tag, str) else ""
            if drop_gps and local.startswith("GPS"):
                element.remove(child)
            elif local in values and not len(child):
                child.text = values[local]
    return ET.tostring(root, encoding="utf-8")


def jpeg_iptc_segment(iptc: bytes) -> bytes:
    """An APP13 segment holding IPTC-IIM as Photoshop's 8BIM resource 0x0404 (Pillow reads, but never writes, it)."""
    body = b"8BIM" + struct.pack(">H", IPTC_RESOURCE) + b"\x00\x00" + struct.pack(">I", len(iptc)) + iptc
    body += b"\x00" * (len(iptc) & 1)  # resources are padded to even length
    payload = b"Photoshop 3.0\x00" + body
    return b"\xff\xed" + struct.pack(">H", len(payload) + 2) + payload if len(payload) + 2 <= 65535 else b""


def save_options(fmt: str, answer: Answer) -> dict:
    """Pillow save keywords for ``fmt`` (JPEG, WEBP, PNG) carrying the answer's profile and metadata."""
    kwargs = {}
    if answer.icc:
        kwargs["icc_profile"] = answer.icc
    if answer.exif:
        kwargs["exif"] = answer.exif
    if answer.xmp and fmt in ("JPEG", "WEBP"):
        kwargs["xmp"] = answer.xmp
    if fmt == "JPEG" and answer.iptc:
        kwargs["extra"] = jpeg_iptc_segment(answer.iptc)
    if fmt == "PNG" and answer.xmp:
        info = PngImagePlugin.PngInfo()
        info.add_itxt(XMP_KEY, answer.xmp.decode("utf-8", "replace"))
        kwargs["pnginfo"] = info
    return kwargs


# ---- PNG chunks: the fast writers' image data with Pillow's metadata chunks ---------------------------------
def png_chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """(type, whole chunk bytes) of a PNG written here (trusted: no CRC check)."""
    chunks, at = [], len(PNG_MAGIC)
    while at < len(png):
        length = struct.unpack(">I", png[at:at + 4])[0]
        chunks.append((png[at + 4:at + 8], png[at:at + 12 + length]))
        at += 12 + length
    return chunks


def with_metadata(png: bytes, answer: Answer) -> bytes:
    """``png`` with the ancillary chunks Pillow writes for ``answer`` (iCCP, eXIf, iTXt) after its IHDR."""
    kwargs = save_options("PNG", answer)
    if not kwargs:
        return png
    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, "PNG", **kwargs)
    extra = b"".join(data for kind, data in png_chunks(buf.getvalue()) if kind not in (b"IHDR", b"IDAT", b"IEND"))
    chunks = png_chunks(png)
    return PNG_MAGIC + chunks[0][1] + extra + b"".join(data for _, data in chunks[1:])


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png16(samples: np.ndarray, answer: Answer, level: int = 1) -> bytes:
    """A 16-bit PNG of uint16 [H, W] or [H, W, C] samples. Pillow has no 16-bit RGB mode to write from,
    so the image data is written here (each row with the Sub filter, vectorised) and the metadata
    chunks are Pillow's (:func:`with_metadata`)."""
    height, width = samples.shape[:2]
    channels = 1 if samples.ndim == 2 else samples.shape[2]
    rows = np.ascontiguousarray(samples, ">u2").view(np.uint8).reshape(height, width * channels * 2)
    step = 2 * channels  # bytes per pixel: Sub subtracts the same byte of the pixel to the left
    filtered = rows.copy()
    filtered[:, step:] -= rows[:, :-step]
    raw = np.hstack([np.ones((height, 1), np.uint8), filtered]).tobytes()
    header = struct.pack(">IIBBBBB", width, height, 16, PNG_COLOUR_TYPES[channels], 0, 0, 0)
    png = PNG_MAGIC + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, level)) + _chunk(b"IEND", b"")
    return with_metadata(png, answer)


# ---- 16-bit input -------------------------------------------------------------------------------------
def layout_16bit(img: Image.Image) -> str | None:
    """For an opened, not yet loaded 16-bit PNG or TIFF (grey, grey+alpha, RGB, RGBA): its PNG rawmode, or
    "TIFF"; None for anything else. (Loading clears the tile that tells.)"""
    if img.format == "PNG" and img.tile and "16" in str(img.tile[0].args):
        return str(img.tile[0].args)
    if img.format == "TIFF":
        bits = img.tag_v2.get(258, (8,))
        bits = bits if isinstance(bits, tuple) else (bits,)
        if all(b == 16 for b in bits) and img.tag_v2.get(339, 1) in (1, (1,)):  # unsigned integers
            return "TIFF"
    return None


def read_16bit(data: bytes, img: Image.Image, layout: str) -> np.ndarray:
    """uint16 [H, W] or [H, W, C] samples of the 16-bit upload that ``img`` (already decoded by Pillow,
    so its checks passed) came from. Pillow decodes 16-bit grey in full; RGB(A) PNG rows are decoded by
    Pillow's own PNG decoder twice, keeping high then low bytes; grey+alpha PNG as 8-bit RGBA of the same
    row size; 16-bit colour TIFF by tifffile (a dependency of scikit-image)."""
    if img.mode.startswith("I;16") or img.mode == "I":
        return np.asarray(img).astype(np.uint16)
    if img.format == "TIFF":
        import tifffile

        samples = tifffile.imread(io.BytesIO(data), key=0)
        return np.asarray(samples, np.uint16)
    rawmode = layout
    if rawmode == "LA;16B":
        both = _png_with_rawmode(data, "RGBA").astype(np.uint16)  # bytes L-high, L-low, A-high, A-low
        return np.dstack((both[..., 0] << 8 | both[..., 1], both[..., 2] << 8 | both[..., 3]))
    high = _png_with_rawmode(data, rawmode).astype(np.uint16)
    low = _png_with_rawmode(data, rawmode.replace(";16B", ";16L"))  # the "little-endian" high byte: the low one
    return high << 8 | low


def _png_with_rawmode(data: bytes, rawmode: str) -> np.ndarray:
    img = Image.open(io.BytesIO(data), formats=("PNG",))  # 16-bit grey+alpha opens as RGBA: 32 bits a pixel
    img.tile = [img.tile[0]._replace(args=rawmode)]
    img.load()
    return np.asarray(img)


def transpose_samples(samples: np.ndarray, method: Image.Transpose | None) -> np.ndarray:
    """16-bit samples turned as ImageOps.exif_transpose turned the 8-bit image (channel by channel)."""
    if method is None:
        return samples
    planes = samples[..., None] if samples.ndim == 2 else samples
    turned = [np.asarray(Image.fromarray(np.ascontiguousarray(planes[..., c])).transpose(method))
              for c in range(planes.shape[2])]
    return turned[0] if samples.ndim == 2 else np.dstack(turned)


ORIENTATIONS = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270,
                7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}  # as ImageOps.exif_transpose
