"""colorize through the live server (automatic mode, multipart hints/reference/mode, bad inputs)
and the real handler in-process (batches mixing automatic and guided requests)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.support import decode_png, handler_for, photo, png_bytes, run_handler
from training.colour import rgb_to_lab

GRAY = png_bytes(photo(96, 64, seed=7, mode="L"))
REFERENCE = png_bytes(photo(80, 60, seed=8))
BLUE_POINTS = [(20, 30), (60, 40)]  # (x, y)
BLUE_HINTS = json.dumps([{"x": x, "y": y, "rgb": [20, 60, 230]} for x, y in BLUE_POINTS])


def lab_of(img) -> torch.Tensor:
    return rgb_to_lab(torch.from_numpy(np.array(img.convert("RGB"))).permute(2, 0, 1)[None].double() / 255)


def multipart(data: bytes = GRAY, **fields: str | bytes) -> dict:
    """requests' files= argument: the photo, a reference image or any text field."""
    files = {"data": ("photo.png", data, "image/png")}
    for name, value in fields.items():
        files[name] = ("ref.png", value, "image/png") if isinstance(value, bytes) else (None, value)
    return files


def test_raw_body_is_automatic_mode_in_colour_with_the_same_lightness(live):
    reply = live.predict("colorize", GRAY)
    assert reply.status_code == 200 and reply.headers["Content-Type"] == "image/png"
    out = decode_png(reply.content)
    assert out.size == (96, 64) and out.mode == "RGB"
    lab_out, lab_in = lab_of(out), lab_of(decode_png(GRAY))
    assert (lab_out[:, 0] - lab_in[:, 0]).abs().max() < 1.0  # only 8-bit rounding moves L
    assert lab_out[:, 1:].norm(dim=1).mean() > 2  # it is not gray any more


def test_colour_photo_is_reduced_to_its_lightness(live):
    colour = png_bytes(photo(50, 40, seed=9))
    reply = live.predict("colorize", colour)
    assert reply.status_code == 200
    assert (lab_of(decode_png(reply.content))[:, 0] - lab_of(decode_png(colour))[:, 0]).abs().max() < 1.0


@pytest.mark.parametrize("mode", ["image", "patch", "ensemble"])
def test_all_guidance_and_modes_as_multipart(live, mode):
    reply = live.predict("colorize", files=multipart(reference=REFERENCE, hints=BLUE_HINTS, mode=mode, format="jpeg"))
    assert reply.status_code == 200 and reply.headers["Content-Type"] == "image/jpeg"
    assert decode_png(reply.content).size == (96, 64)


def test_hints_make_their_points_bluer(live):
    auto = lab_of(decode_png(live.predict("colorize", files=multipart()).content))
    hinted = lab_of(decode_png(live.predict("colorize", files=multipart(hints=BLUE_HINTS)).content))
    for x, y in BLUE_POINTS:
        assert hinted[0, 2, y, x] < auto[0, 2, y, x] - 15


@pytest.mark.parametrize("fields,code,kind", [
    ({"hints": "[{\"x\": 1"}, 400, "InvalidHints"),
    ({"hints": "{\"x\": 1, \"y\": 1, \"rgb\": [1, 2, 3]}"}, 400, "InvalidHints"),
    ({"hints": "[{\"x\": 96, \"y\": 0, \"rgb\": [1, 2, 3]}]"}, 400, "InvalidHints"),
    ({"hints": "[{\"x\": 0, \"y\": -1, \"rgb\": [1, 2, 3]}]"}, 400, "InvalidHints"),
    ({"hints": "[{\"x\": 1.5, \"y\": 0, \"rgb\": [1, 2, 3]}]"}, 400, "InvalidHints"),
    ({"hints": "[{\"x\": 0, \"y\": 0, \"rgb\": [1, 2, 256]}]"}, 400, "InvalidHints"),
    ({"hints": "[{\"x\": 0, \"y\": 0, \"rgb\": [1, 2]}]"}, 400, "InvalidHints"),
    ({"hints": "[{\"x\": 0, \"y\": 0, \"rgb\": [1, 2, 3], \"size\": 4}]"}, 400, "InvalidHints"),
    ({"hints": json.dumps([{"x": 0, "y": 0, "rgb": [1, 2, 3]}] * 257)}, 400, "InvalidHints"),
    ({"reference": b"not an image"}, 415, "UnsupportedImage"),
    ({"reference": png_bytes(photo(30, 20, mode="L"))}, 400, "GrayscaleReference"),
    ({"reference": b""}, 400, "EmptyImage"),
    ({"mode": "tiles"}, 400, "InvalidOption"),
    ({"palette": "sepia"}, 400, "UnknownField"),
])
def test_bad_guidance_gets_a_clear_4xx_then_the_service_continues(live, fields, code, kind):
    reply = live.predict("colorize", files=multipart(**fields))
    assert reply.status_code == code and reply.headers["Content-Type"].startswith("application/json")
    payload = reply.json()
    assert (payload["code"], payload["type"]) == (code, kind) and payload["message"]
    if "reference" in fields:
        assert payload["message"].startswith("reference:")
    assert live.predict("colorize", GRAY).status_code == 200


@pytest.fixture(scope="module")
def handler():
    return handler_for("colorize")


def test_batch_mixing_automatic_and_guided_requests(handler):
    requests = [{"body": GRAY}, {"data": GRAY, "hints": BLUE_HINTS.encode()}, {"body": GRAY},
                {"data": GRAY, "reference": REFERENCE}]
    results = run_handler(handler, requests)
    assert [r[0] for r in results] == [200, 200, 200, 200]
    out = [lab_of(decode_png(r[2])) for r in results]
    assert torch.equal(out[0], out[2])  # the automatic pair ran as one batch, identically
    assert not torch.equal(out[0], out[1]) and not torch.equal(out[0], out[3])
