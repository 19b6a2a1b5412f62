"""ICC profiles built from their published numbers, for tests and benchmarks (no profile files in the repository).

ImageCms.createProfile makes only sRGB, LAB and XYZ, so the wide-gamut RGB spaces are written here as
ICC v2 matrix/TRC profiles: primaries and white from the standards (Adobe RGB (1998), Display P3 = DCI-P3
primaries with D65 and the sRGB curve, ProPhoto RGB = ROMM), colorants Bradford-adapted to the D50 PCS,
as LittleCMS's own cmsCreateRGBProfile does. A gray profile (gamma 2.2) and a CMYK printer profile (naive
CMYK <-> sRGB ink model sampled into lut16 tables through LittleCMS) complete the set.
"""
from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image, ImageCms

D50 = np.array([0.9642, 1.0, 0.8249])
D65_XY = (0.3127, 0.3290)
BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
SPACES = {  # name: (primaries xy r, g, b; white xy; transfer curve)
    "Adobe RGB (1998)": (((0.64, 0.33), (0.21, 0.71), (0.15, 0.06)), D65_XY, 563 / 256),
    "Display P3": (((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)), D65_XY, "srgb"),
    "ProPhoto RGB": (((0.7347, 0.2653), (0.1596, 0.8404), (0.0366, 0.0001)), (0.3457, 0.3585), 1.8),
}


def _xyz(xy: tuple[float, float]) -> np.ndarray:
    x, y = xy
    return np.array([x / y, 1.0, (1 - x - y) / y])


def colorants(primaries, white_xy) -> np.ndarray:
    """3x3 RGB -> XYZ (columns r, g, b) for the white, then Bradford-adapted to D50."""
    p = np.stack([_xyz(xy) for xy in primaries], 1)
    white = _xyz(white_xy)
    m = p * np.linalg.solve(p, white)
    cone = BRADFORD @ D50 / (BRADFORD @ white)
    adapt = np.linalg.inv(BRADFORD) @ np.diag(cone) @ BRADFORD
    return adapt @ m


def _s15(values) -> bytes:
    return b"".join(struct.pack(">i", round(v * 65536)) for v in values)


def _xyz_tag(xyz) -> bytes:
    return b"XYZ \0\0\0\0" + _s15(xyz)


def _curve(curve) -> bytes:
    if curve == "srgb":
        v = np.linspace(0, 1, 1024)
        table = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
        return b"curv\0\0\0\0" + struct.pack(">I", 1024) + np.round(table * 65535).astype(">u2").tobytes()
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(curve * 256))  # u8Fixed8 gamma


def _desc(text: str) -> bytes:
    ascii_ = text.encode() + b"\0"
    return b"desc\0\0\0\0" + struct.pack(">I", len(ascii_)) + ascii_ + b"\0" * 12 + b"\0" * 67


def _text(text: str) -> bytes:
    return b"text\0\0\0\0" + text.encode() + b"\0"


def build(device_class: bytes, space: bytes, pcs: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    """An ICC v2.1 profile of ``tags`` (signature, element bytes); elements 4-byte aligned."""
    table_size = 4 + 12 * len(tags)
    offset, entries, body = 128 + table_size, [], b""
    for sig, element in tags:
        element += b"\0" * (-len(element) % 4)
        entries.append(struct.pack(">4sII", sig, offset + len(body), len(element)))
        body += element
    size = 128 + table_size + len(body)
    header = struct.pack(">I4sI4s4s4s12s4s4sI4s4sQI", size, b"lcms", 0x02100000, device_class, space, pcs,
                         b"\0" * 12, b"acsp", b"APPL", 0, b"\0\0\0\0", b"\0\0\0\0", 0, 0)
    header += _s15(D50) + b"test" + b"\0" * 44
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + b"".join(entries) + body


def rgb_profile(name: str) -> bytes:
    """ICC bytes of one of :data:`SPACES`."""
    primaries, white, curve = SPACES[name]
    m = colorants(primaries, white)
    trc = _curve(curve)
    return build(b"mntr", b"RGB ", b"XYZ ", [
        (b"desc", _desc(name + " (test)")), (b"cprt", _text("no copyright, built in tests/icc.py")),
        (b"wtpt", _xyz_tag(D50)), (b"rXYZ", _xyz_tag(m[:, 0])), (b"gXYZ", _xyz_tag(m[:, 1])),
        (b"bXYZ", _xyz_tag(m[:, 2])), (b"rTRC", trc), (b"gTRC", trc), (b"bTRC", trc)])


def gray_profile(gamma: float = 2.2) -> bytes:
    return build(b"mntr", b"GRAY", b"XYZ ", [
        (b"desc", _desc(f"Gray gamma {gamma} (test)")), (b"cprt", _text("no copyright")),
        (b"wtpt", _xyz_tag(D50)), (b"kTRC", _curve(gamma))])


# ---- CMYK: lut16 tables sampled through LittleCMS (sRGB <-> Lab) and a naive ink model ----------------------
def _lut16(inputs: int, outputs: int, grid: int, clut: np.ndarray) -> bytes:
    """lut16Type: identity matrix and 2-entry (identity) curves around a CLUT of uint16 [grid^inputs, outputs]."""
    head = b"mft2\0\0\0\0" + struct.pack(">BBBB", inputs, outputs, grid, 0)
    head += _s15([1, 0, 0, 0, 1, 0, 0, 0, 1]) + struct.pack(">HH", 2, 2)
    identity = struct.pack(">HH", 0, 65535)
    return head + identity * inputs + clut.astype(">u2").tobytes() + identity * outputs


def _srgb_to_lab16(rgb: np.ndarray) -> np.ndarray:
    """[N, 3] sRGB in [0, 1] -> ICC v2 lut16 Lab encoding, through ImageCms (8-bit, enough for a test printer)."""
    img = Image.fromarray(np.round(rgb * 255).astype(np.uint8).reshape(1, -1, 3), "RGB")
    lab = np.asarray(ImageCms.profileToProfile(img, ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"),
                                               outputMode="LAB")).reshape(-1, 3)
    ab = lab[:, 1:].view(np.int8).astype(np.float64)  # Pillow's LAB holds a and b as signed bytes
    return np.stack([lab[:, 0] / 255 * 65280, (ab[:, 0] + 128) * 256, (ab[:, 1] + 128) * 256], 1)


def _lab16_to_srgb(lab16: np.ndarray) -> np.ndarray:
    light = np.clip(np.round(lab16[:, 0] / 65280 * 255), 0, 255).astype(np.uint8)
    ab = np.clip(np.round(lab16[:, 1:] / 256 - 128), -128, 127).astype(np.int8).view(np.uint8)
    img = Image.fromarray(np.column_stack([light, ab]).reshape(1, -1, 3), "LAB")
    rgb = ImageCms.profileToProfile(img, ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"),
                                    outputMode="RGB")
    return np.asarray(rgb).reshape(-1, 3) / 255.0


def cmyk_profile(grid: int = 9) -> bytes:
    """A printer profile for the ink model R = (1 - C)(1 - K) (and so on) in sRGB."""
    axis = np.linspace(0, 1, grid)
    c, m, y, k = (a.ravel() for a in np.meshgrid(axis, axis, axis, axis, indexing="ij"))
    rgb = np.stack([(1 - c) * (1 - k), (1 - m) * (1 - k), (1 - y) * (1 - k)], 1)
    a2b = _srgb_to_lab16(rgb)
    lab = np.stack([g.ravel() for g in np.meshgrid(axis * 65535, axis * 65535, axis * 65535, indexing="ij")], 1)
    back = _lab16_to_srgb(np.minimum(lab, [65280, 65535, 65535]))
    key = 1 - back.max(1)
    ink = np.where(key[:, None] < 1, (1 - back - key[:, None]) / np.maximum(1 - key[:, None], 1e-9), 0)
    b2a = np.concatenate([ink, key[:, None]], 1) * 65535
    tables = [(b"A2B0", _lut16(4, 3, grid, np.round(a2b))), (b"B2A0", _lut16(3, 4, grid, np.round(b2a)))]
    tables += [(b"A2B1", tables[0][1]), (b"B2A1", tables[1][1])]
    return build(b"prtr", b"CMYK", b"Lab ", [(b"desc", _desc("Naive CMYK (test)")), (b"cprt", _text("no copyright")),
                                              (b"wtpt", _xyz_tag(D50)), *tables])


def profile(icc: bytes) -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(io.BytesIO(icc))


def to_lab(img: Image.Image, icc: bytes | None) -> np.ndarray:
    """CIELAB (float [H, W, 3], L 0..100) of an 8-bit image shown through ``icc`` (None: sRGB), by LittleCMS."""
    source = profile(icc) if icc else ImageCms.createProfile("sRGB")
    lab = ImageCms.profileToProfile(img, source, ImageCms.createProfile("LAB"), outputMode="LAB",
                                    renderingIntent=ImageCms.Intent.ABSOLUTE_COLORIMETRIC)
    arr = np.asarray(lab)
    ab = arr[..., 1:].view(np.int8).astype(np.float64)  # signed bytes in Pillow's LAB
    return np.dstack([arr[..., 0] / 255 * 100, ab])


def mean_delta_e(a: np.ndarray, b: np.ndarray) -> float:
    """Mean CIE76 dE between two Lab images."""
    return float(np.sqrt(((a - b) ** 2).sum(-1)).mean())
