"""Structure-aware mutants of a valid image file.

``regions`` splits a file into its containers' parts (PNG chunks, JPEG segments and scan, RIFF chunks,
TIFF header/IFD/strips, BMP headers/palette/pixels); ``fields`` finds the header numbers that decoders
trust (width, height, depth, chunk and segment lengths, offsets). From those:

- ``systematic(data)``: truncation at every region (start, start + 1, middle, end - 1), every field set
  to every boundary value (PNG: with the CRC repaired too, so the edit reaches the decoder), each region
  deleted or doubled, and EXIF garbage in every container that carries EXIF;
- ``random_mutant(data, rng)``: one to three of bit flips, interesting bytes, inserted or deleted spans,
  region splices and random truncation.

Every mutant comes with a label saying what was done, for counts and reproduction.
"""
from __future__ import annotations

import random
import struct
import zlib
from dataclasses import dataclass
from typing import Iterator

from tests.fuzz.corpus import exif_blob  # the valid EXIF that the garbage starts from

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXIF_HEADER = b"Exif\x00\x00"


@dataclass(frozen=True)
class Region:
    name: str
    start: int
    end: int


@dataclass(frozen=True)
class Field:
    """A number in a header: ``size`` bytes at ``offset``; ``crc`` is the PNG chunk whose CRC covers it."""

    name: str
    offset: int
    size: int
    big_endian: bool
    crc: tuple[int, int] | None = None  # (chunk type offset, chunk data end) when a PNG CRC covers the field

    def read(self, data: bytes) -> int:
        return int.from_bytes(data[self.offset:self.offset + self.size], "big" if self.big_endian else "little")

    def write(self, data: bytes, value: int) -> bytes:
        raw = (value % (1 << (8 * self.size))).to_bytes(self.size, "big" if self.big_endian else "little")
        out = data[:self.offset] + raw + data[self.offset + self.size:]
        return _fix_crc(out, *self.crc) if self.crc else out


def _fix_crc(data: bytes, type_at: int, data_end: int) -> bytes:
    crc = struct.pack(">I", zlib.crc32(data[type_at:data_end]))
    return data[:data_end] + crc + data[data_end + 4:]


# ---- container parsers: (regions, fields); each tolerates files it does not fully understand ----------

def _png(data: bytes) -> tuple[list[Region], list[Field]]:
    regions, fields = [Region("signature", 0, 8)], []
    at = 8
    while at + 12 <= len(data):
        length = struct.unpack(">I", data[at:at + 4])[0]
        kind = data[at + 4:at + 8].decode("latin-1")
        end = min(len(data), at + 12 + length)
        regions.append(Region(f"chunk {kind}", at, end))
        fields.append(Field(f"{kind} length", at, 4, True))
        if kind == "IHDR":
            covered = (at + 4, at + 8 + length)
            for name, off, size in (("width", 0, 4), ("height", 4, 4), ("bit depth", 8, 1), ("colour type", 9, 1),
                                    ("compression", 10, 1), ("filter", 11, 1), ("interlace", 12, 1)):
                fields.append(Field(f"IHDR {name}", at + 8 + off, size, True))
                fields.append(Field(f"IHDR {name} (CRC repaired)", at + 8 + off, size, True, covered))
        at = end
    return regions, fields


_JPEG_STANDALONE = {0xD8, 0xD9, 0x01} | set(range(0xD0, 0xD8))
_JPEG_SOF = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg(data: bytes) -> tuple[list[Region], list[Field]]:
    regions, fields = [Region("SOI", 0, 2)], []
    at = 2
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker in _JPEG_STANDALONE:
            regions.append(Region(f"marker {marker:02X}", at, at + 2))
            at += 2
            continue
        length = struct.unpack(">H", data[at + 2:at + 4])[0]
        end = min(len(data), at + 2 + length)
        regions.append(Region(f"segment {marker:02X}", at, end))
        fields.append(Field(f"segment {marker:02X} length", at + 2, 2, True))
        if marker in _JPEG_SOF:
            for name, off, size in (("precision", 4, 1), ("height", 5, 2), ("width", 7, 2), ("components", 9, 1),
                                    ("first sampling", 11, 1), ("first table", 12, 1)):
                fields.append(Field(f"SOF {name}", at + off, size, True))
        if marker in (0xC4, 0xDB, 0xDD):  # DHT, DQT, DRI: the first table's class/id byte
            fields.append(Field(f"segment {marker:02X} table", at + 4, 1, True))
        at = end
        if marker == 0xDA:  # entropy-coded data up to the next marker that is not a stuffed 00 or a restart
            scan_end = at
            while scan_end + 1 < len(data) and not (data[scan_end] == 0xFF and data[scan_end + 1] not in
                                                    {0x00} | set(range(0xD0, 0xD8))):
                scan_end += 1
            regions.append(Region("scan data", at, scan_end))
            at = scan_end
    if at < len(data):
        regions.append(Region("tail", at, len(data)))
    return regions, fields


def _riff(data: bytes) -> tuple[list[Region], list[Field]]:
    regions, fields = [Region("RIFF header", 0, 12)], [Field("RIFF size", 4, 4, False)]
    at = 12
    while at + 8 <= len(data):
        kind = data[at:at + 4].decode("latin-1")
        size = struct.unpack("<I", data[at + 4:at + 8])[0]
        end = min(len(data), at + 8 + size + (size & 1))
        regions.append(Region(f"chunk {kind}", at, end))
        fields.append(Field(f"{kind} size", at + 4, 4, False))
        body = at + 8
        if kind == "VP8 ":
            fields += [Field("VP8 width", body + 6, 2, False), Field("VP8 height", body + 8, 2, False),
                       Field("VP8 frame tag", body, 3, False)]
        elif kind == "VP8L":
            fields += [Field("VP8L size bits", body + 1, 4, False), Field("VP8L signature", body, 1, False)]
        elif kind == "VP8X":
            fields += [Field("VP8X flags", body, 1, False), Field("VP8X canvas width", body + 4, 3, False),
                       Field("VP8X canvas height", body + 7, 3, False)]
        at = end
    return regions, fields


_TIFF_TYPES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}


def _tiff_ifd(data: bytes, at: int, big: bool, prefix: str, base: int = 0) -> tuple[list[Region], list[Field]]:
    """One IFD at ``at`` (offsets relative to ``base``): its region, its entries' fields, the strips it points to."""
    order = ">" if big else "<"
    if at + 2 > len(data):
        return [], []
    count = struct.unpack(order + "H", data[at:at + 2])[0]
    end = min(len(data), at + 2 + 12 * count + 4)
    regions, fields = [Region(f"{prefix}IFD", at, end)], [Field(f"{prefix}IFD entry count", at, 2, big)]
    strips: dict[int, list[int]] = {}
    for i in range(count):
        entry = at + 2 + 12 * i
        if entry + 12 > len(data):
            break
        tag, kind, n = struct.unpack(order + "HHI", data[entry:entry + 8])
        size = _TIFF_TYPES.get(kind, 1)
        fields.append(Field(f"{prefix}tag {tag} count", entry + 4, 4, big))
        fields.append(Field(f"{prefix}tag {tag} value", entry + 8, 4 if n * size > 4 or size == 4 else size, big))
        if tag in (273, 279) and n * size <= 4 and size in (2, 4):
            strips[tag] = [int.from_bytes(data[entry + 8:entry + 8 + size], "big" if big else "little")]
        elif tag in (273, 279) and size in (2, 4):
            ptr = base + struct.unpack(order + "I", data[entry + 8:entry + 12])[0]
            strips[tag] = [int.from_bytes(data[ptr + j * size:ptr + (j + 1) * size], "big" if big else "little")
                           for j in range(min(n, 64)) if ptr + (j + 1) * size <= len(data)]
    for j, (offset, length) in enumerate(zip(strips.get(273, []), strips.get(279, []))):
        if base + offset < len(data):
            regions.append(Region(f"{prefix}strip {j}", base + offset, min(len(data), base + offset + length)))
    return regions, fields


def _tiff(data: bytes, base: int = 0, prefix: str = "") -> tuple[list[Region], list[Field]]:
    big = data[base:base + 2] == b"MM"
    regions, fields = [Region(f"{prefix}TIFF header", base, base + 8)], [Field(f"{prefix}first IFD offset", base + 4, 4, big)]
    ifd_regions, ifd_fields = _tiff_ifd(data, base + struct.unpack((">" if big else "<") + "I", data[base + 4:base + 8])[0],
                                        big, prefix, base)
    return regions + ifd_regions, fields + ifd_fields


def _bmp(data: bytes) -> tuple[list[Region], list[Field]]:
    header_size = struct.unpack("<I", data[14:18])[0] if len(data) >= 18 else 40
    pixels = struct.unpack("<I", data[10:14])[0] if len(data) >= 14 else len(data)
    regions = [Region("file header", 0, 14), Region("info header", 14, 14 + header_size)]
    if pixels > 14 + header_size:
        regions.append(Region("palette", 14 + header_size, pixels))
    regions.append(Region("pixels", pixels, len(data)))
    fields = [Field(name, off, size, False) for name, off, size in (
        ("file size", 2, 4), ("pixel offset", 10, 4), ("header size", 14, 4), ("width", 18, 4), ("height", 22, 4),
        ("planes", 26, 2), ("bits per pixel", 28, 2), ("compression", 30, 4), ("image size", 34, 4),
        ("colours used", 46, 4))]
    return regions, fields


def _gif(data: bytes) -> tuple[list[Region], list[Field]]:
    return ([Region("header", 0, 6), Region("screen descriptor", 6, 13), Region("rest", 13, len(data))],
            [Field("width", 6, 2, False), Field("height", 8, 2, False), Field("flags", 10, 1, False)])


PARSERS = ((PNG_SIGNATURE, _png), (b"\xff\xd8", _jpeg), (b"RIFF", _riff), (b"II*\x00", _tiff), (b"MM\x00*", _tiff),
           (b"BM", _bmp), (b"GIF", _gif))


def structure(data: bytes) -> tuple[list[Region], list[Field]]:
    """Regions and fields of a file of any corpus format (by its magic bytes); one region for the rest,
    or for a file already mutated past what its parser can follow."""
    for magic, parse in PARSERS:
        if data.startswith(magic):
            try:
                return parse(data)
            except (struct.error, ValueError, IndexError):
                break
    return [Region("data", 0, len(data))], []


def regions(data: bytes) -> list[Region]:
    return [r for r in structure(data)[0] if r.start < r.end <= len(data)] or [Region("data", 0, len(data))]


def fields(data: bytes) -> list[Field]:
    return [f for f in structure(data)[1] if f.offset + f.size <= len(data)]


# ---- EXIF ------------------------------------------------------------------------------------------

def exif_garbage(exif: bytes, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    """Broken variants of an EXIF block (``Exif\\0\\0`` + TIFF structure): random bytes, cuts, and its
    IFD numbers (orientation, counts, offsets, sub-IFD pointers) set to boundary values."""
    tiff = exif[len(EXIF_HEADER):] if exif.startswith(EXIF_HEADER) else exif
    yield "random bytes", EXIF_HEADER + rng.randbytes(max(8, len(tiff)))
    yield "empty", EXIF_HEADER
    yield "header only", EXIF_HEADER + tiff[:8]
    for cut in (4, 10, len(tiff) // 2, len(tiff) - 1):
        yield f"cut at {cut}", EXIF_HEADER + tiff[:cut]
    yield "byte order garbage", EXIF_HEADER + b"XX" + tiff[2:]
    for f in _tiff(tiff)[1]:
        for value in boundary_values(f, tiff):
            yield f"{f.name} = {value}", EXIF_HEADER + f.write(tiff, value)


def boundary_values(f: Field, data: bytes) -> list[int]:
    top = (1 << (8 * f.size)) - 1
    original = f.read(data)
    values = [0, 1, 2, top, top >> 1, (top >> 1) + 1, original + 1, original - 1, original * 2, original * 16 + 15,
              len(data), len(data) + 1, 0x7FFF, 0x8000, 0xFFFF, 0x10000]
    return sorted({v for v in values if 0 <= v <= top and v != original})


def _with_exif(data: bytes, exif: bytes) -> bytes | None:
    """``data`` with its EXIF replaced by (or given) ``exif``; None where the container has no place for it."""
    if data.startswith(PNG_SIGNATURE):
        body = exif[len(EXIF_HEADER):] if exif.startswith(EXIF_HEADER) else exif
        chunk = struct.pack(">I", len(body)) + b"eXIf" + body + struct.pack(">I", zlib.crc32(b"eXIf" + body))
        kept = b"".join(data[r.start:r.end] for r in regions(data) if r.name not in ("chunk eXIf", "signature"))
        ihdr_end = 8 + 25
        return PNG_SIGNATURE + kept[:25] + chunk + kept[25:] if len(data) >= ihdr_end else None
    if data.startswith(b"\xff\xd8"):
        segment = b"\xff\xe1" + struct.pack(">H", min(0xFFFF, len(exif) + 2)) + exif[:0xFFFD]
        kept = b"".join(data[r.start:r.end] for r in regions(data)[1:] if r.name != "segment E1")
        return b"\xff\xd8" + segment + kept
    if data.startswith(b"RIFF") and any(r.name == "chunk EXIF" for r in regions(data)):
        chunks = [data[r.start:r.end] if r.name != "chunk EXIF" else
                  b"EXIF" + struct.pack("<I", len(exif)) + exif + b"\0" * (len(exif) & 1)
                  for r in regions(data)[1:]]
        body = b"WEBP" + b"".join(chunks)
        return b"RIFF" + struct.pack("<I", len(body)) + body
    return None


# ---- mutants ---------------------------------------------------------------------------------------

def truncations(data: bytes) -> Iterator[tuple[str, bytes]]:
    seen = set()
    for r in regions(data):
        for label, at in (("start", r.start), ("start+1", r.start + 1), ("middle", (r.start + r.end) // 2),
                          ("end-1", r.end - 1)):
            if 0 < at < len(data) and at not in seen:
                seen.add(at)
                yield f"cut in {r.name} at its {label} ({at} of {len(data)} bytes)", data[:at]


def field_edits(data: bytes) -> Iterator[tuple[str, bytes]]:
    for f in fields(data):
        for value in boundary_values(f, data):
            yield f"{f.name} = {value}", f.write(data, value)


def region_edits(data: bytes) -> Iterator[tuple[str, bytes]]:
    for r in regions(data):
        yield f"{r.name} deleted", data[:r.start] + data[r.end:]
        yield f"{r.name} doubled", data[:r.end] + data[r.start:r.end] + data[r.end:]


def exif_edits(data: bytes, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    if _with_exif(data, exif_blob()) is None:
        return
    for orientation in (0, 1, 5, 8, 9, 255, 65535):
        yield f"EXIF orientation {orientation}", _with_exif(data, exif_blob(orientation % 65536))
    for label, exif in exif_garbage(exif_blob(), rng):
        yield f"EXIF {label}", _with_exif(data, exif)


def systematic(data: bytes, seed: int = 0, sample: float = 1.0) -> Iterator[tuple[str, bytes]]:
    """Every deterministic mutant of ``data`` (a few hundred for a corpus file): every truncation and
    region edit, and a ``sample`` fraction of the (many more) field and EXIF edits."""
    rng = random.Random(seed)
    yield from truncations(data)
    yield from region_edits(data)
    for label, mutant in [*field_edits(data), *exif_edits(data, rng)]:
        if sample >= 1.0 or rng.random() < sample:
            yield label, mutant


INTERESTING = (0x00, 0x01, 0x7F, 0x80, 0xFF)


def _flip_bits(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    out = bytearray(data)
    n = rng.randint(1, 8)
    for _ in range(n):
        at = rng.randrange(len(out))
        out[at] ^= 1 << rng.randrange(8)
    return f"{n} bit(s) flipped", bytes(out)


def _interesting_bytes(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    out = bytearray(data)
    n = rng.randint(1, 4)
    for _ in range(n):
        out[rng.randrange(len(out))] = rng.choice(INTERESTING)
    return f"{n} byte(s) set to boundary values", bytes(out)


def _insert(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    at, n = rng.randrange(len(data) + 1), rng.randint(1, 64)
    return f"{n} random bytes inserted at {at}", data[:at] + rng.randbytes(n) + data[at:]


def _delete(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    at = rng.randrange(len(data))
    n = rng.randint(1, min(64, len(data) - at))
    return f"{n} bytes deleted at {at}", data[:at] + data[at + n:]


def _splice(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    parts = regions(data)
    a, b = rng.choice(parts), rng.choice(parts)
    return f"{a.name} replaced by {b.name}", data[:a.start] + data[b.start:b.end] + data[a.end:]


def _field(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    found = fields(data)
    if not found:
        return _flip_bits(data, rng)
    f = rng.choice(found)
    value = rng.randrange(1 << (8 * f.size))
    return f"{f.name} = {value}", f.write(data, value)


def _truncate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    at = rng.randrange(1, len(data))
    return f"cut at {at}", data[:at]


MUTATORS = (_flip_bits, _interesting_bytes, _insert, _delete, _splice, _field, _truncate)


def random_mutant(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One to three random mutations stacked."""
    labels = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        if len(data) < 2:
            break
        label, data = rng.choice(MUTATORS)(data, rng)
        labels.append(label)
    return " + ".join(labels), data
