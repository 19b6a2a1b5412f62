"""superres through the live server: x4 size, formats, options as fields or headers, EXIF."""
from __future__ import annotations


from tests.support import decode_png, photo, png_bytes


def test_raw_body_png_comes_back_four_times_larger(live):
    reply = live.predict("superres", png_bytes(photo(50, 30)))
    assert reply.status_code == 200 and reply.headers["Content-Type"] == "image/png"
    assert decode_png(reply.content).size == (200, 120)


def test_format_as_header_with_raw_body(live):
    reply = live.predict("superres", png_bytes(photo(20, 20)), headers={"X-Format": "jpeg"})
    assert reply.status_code == 200 and reply.headers["Content-Type"] == "image/jpeg"


def test_exif_rotation_applied(live):
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90 degrees counter-clockwise on display
    reply = live.predict("superres", png_bytes(photo(40, 20), "JPEG", exif=exif))
    assert reply.status_code == 200 and decode_png(reply.content).size == (80, 160)


def test_upload_too_large_for_x4_gets_413_then_service_continues(live):
    big = png_bytes(photo(1700, 1600))  # 2.7 MP in, 43.5 MP out: over the output budget
    reply = live.predict("superres", big)
    assert reply.status_code == 413 and reply.json()["type"] in ("TooManyPixels", "OutputTooLarge")
    assert live.predict("superres", png_bytes(photo(20, 20))).status_code == 200
