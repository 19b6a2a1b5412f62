"""superres through the live server: x4 size, formats, options as fields or headers, EXIF, which network answers."""
from __future__ import annotations

import numpy as np

from tests.support import decode_png, photo, png_bytes
from tests.test_real_lowres import small_photo, to_bytes


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


def _answer(reply) -> np.ndarray:
    assert reply.status_code == 200, reply.text[:300]
    return np.asarray(decode_png(reply.content))


def test_input_auto_answers_a_jpeg_as_real_and_a_clean_png_as_clean(live):
    """Both networks travel in the archive (archives/superres/superres_real.pt); auto picks by the upload."""
    jpeg, png = to_bytes(small_photo("coffee"), "JPEG", quality=45), to_bytes(small_photo("coffee"), "PNG")
    auto, real, clean = (_answer(live.predict("superres", jpeg, headers=h))
                         for h in ({}, {"X-Input": "real"}, {"X-Input": "clean"}))
    assert np.array_equal(auto, real) and not np.array_equal(auto, clean)
    assert np.array_equal(_answer(live.predict("superres", png)), _answer(live.predict("superres", png, headers={"X-Input": "clean"})))


def test_a_chains_superres_step_takes_the_input_option(live):
    """restore: ``superres.input`` reaches the step; under auto the step measures its own input when it runs
    (tests/test_restore.py: a chain equals its separate calls, where each call measures the PNG it is sent)."""
    jpeg = to_bytes(small_photo("coffee"), "JPEG", quality=45)
    files = {"data": ("photo.jpg", jpeg)}
    answers = {mode: _answer(live.predict("restore", files=files, data={"steps": "retouch,superres", "superres.input": mode}))
               for mode in ("auto", "real", "clean")}
    assert not np.array_equal(answers["real"], answers["clean"])
    assert any(np.array_equal(answers["auto"], answers[mode]) for mode in ("real", "clean"))
