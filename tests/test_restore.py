"""``/predictions/restore`` through a live TorchServe: a chain's geometry, its equality with the same
steps as separate calls (PNG between), and every way a chain can be refused."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from skimage import data as photos

from tests.support import decode_png, photo, png_bytes


def astronaut(width: int, height: int) -> Image.Image:
    """A real photo (skimage's astronaut), resized: textures, edges and skin that a synthetic image lacks."""
    return Image.fromarray(photos.astronaut()).resize((width, height), Image.Resampling.LANCZOS)


def restore(live, upload: bytes, steps: str, **fields: str):
    files = {"data": ("photo.png", upload, "image/png")}
    return live.predict("restore", files=files, data={"steps": steps, **fields})


def separately(live, upload: bytes, steps: str, **prefixed: str) -> bytes:
    """The same steps one call each, every answer a PNG that is the next call's upload."""
    answer = upload
    for step in steps.split(","):
        own = {name.split(".", 1)[1]: value for name, value in prefixed.items() if name.startswith(f"{step}.")}
        reply = live.predict(step, files={"data": ("photo.png", answer, "image/png")}, data=own)
        assert reply.status_code == 200, reply.text[:300]
        answer = reply.content
    return answer


def levels(body: bytes) -> np.ndarray:
    return np.asarray(decode_png(body).convert("RGB"), dtype=np.int16)


def test_a_chain_answers_one_image_with_the_chains_geometry(live):
    upload = png_bytes(photo(48, 40, seed=3))
    reply = restore(live, upload, "deblur,superres")
    assert reply.status_code == 200, reply.text[:300]
    assert reply.headers["Content-Type"] == "image/png"
    assert decode_png(reply.content).size == (192, 160)
    by_header = live.predict("restore", upload, headers={"X-Steps": "superres,retouch,superres", "X-Format": "webp",
                                                         "X-Retouch.Strength": "0.5"})
    assert by_header.status_code == 200, by_header.text[:300]
    assert by_header.headers["Content-Type"] == "image/webp"
    assert Image.open(io.BytesIO(by_header.content)).size == (768, 640)


CHAINS = {  # steps (and what the case is about) -> upload size and mode, prefixed step options
    "deblur,enhance,retouch,superres": ((96, 80), "RGB", {"deblur.ensemble": "true", "retouch.strength": "0.6"}),
    "deblur,superres (superres in tiles)": ((300, 260), "RGB", {}),
    "colorize,superres": ((80, 64), "RGB", {"colorize.hints": '[{"x": 10, "y": 12, "rgb": [200, 40, 30]}]'}),
    "enhance,deblur,deblur": ((72, 72), "RGB", {"enhance.decoder": "main"}),
    "deblur,retouch,superres (grayscale)": ((64, 48), "L", {}),
    "deblur,colorize,superres (grayscale, then colour)": ((64, 48), "L", {}),
}


@pytest.mark.parametrize("case", sorted(CHAINS))
def test_a_chain_equals_the_same_steps_as_separate_calls_within_one_level(live, case):
    steps = case.split(" ")[0]
    size, mode, prefixed = CHAINS[case]
    upload = png_bytes(astronaut(*size).convert(mode))
    chained = restore(live, upload, steps, **prefixed)
    assert chained.status_code == 200, chained.text[:300]
    apart = separately(live, upload, steps, **prefixed)
    assert decode_png(chained.content).size == decode_png(apart).size
    assert decode_png(chained.content).mode == decode_png(apart).mode
    assert np.abs(levels(chained.content) - levels(apart)).max() <= 1


def test_the_step_options_reach_their_step(live):
    upload = png_bytes(astronaut(64, 48))
    full, half = (levels(restore(live, upload, "retouch", **extra).content)
                  for extra in ({}, {"retouch.strength": "0.5"}))
    assert np.abs(full - half).max() > 2


def test_grayscale_stays_grayscale_unless_a_step_colours_it(live):
    upload = png_bytes(astronaut(64, 48).convert("L"))
    assert decode_png(restore(live, upload, "deblur,superres").content).mode == "L"
    assert decode_png(restore(live, upload, "colorize,superres").content).mode == "RGB"


REFUSED = {  # what is sent -> (status, error type)
    "unknown step": ({"steps": "deblur,sharpen"}, 400, "InvalidSteps"),
    "empty chain": ({"steps": ""}, 400, "InvalidSteps"),
    "commas only": ({"steps": "deblur,,superres"}, 400, "InvalidSteps"),
    "no steps": ({}, 400, "InvalidSteps"),
    "option of a step not in the chain": ({"steps": "deblur", "retouch.strength": "0.5"}, 400, "UnknownField"),
    "unknown step option": ({"steps": "deblur", "deblur.sharpness": "2"}, 400, "UnknownField"),
    "bad step option": ({"steps": "deblur", "deblur.ensemble": "maybe"}, 400, "InvalidOption"),
    "hint outside the image at its step": ({"steps": "superres,colorize",
                                             "colorize.hints": '[{"x": 300, "y": 5, "rgb": [1, 2, 3]}]'},
                                            400, "InvalidHints"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_bad_chain_gets_a_json_400_and_the_next_request_succeeds(live, case):
    fields, status, kind = REFUSED[case]
    reply = live.predict("restore", files={"data": ("a.png", png_bytes(photo(48, 40)), "image/png")}, data=fields)
    assert reply.status_code == status, reply.text[:300]
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.json()["type"] == kind and reply.json()["message"]
    assert restore(live, png_bytes(photo(24, 16)), "superres").status_code == 200


def test_superres_repeated_past_its_limits_is_refused_before_anything_runs(live):
    """superres takes at most 2.5 MP: 400x400 -> 1600x1600 (2.56 MP) cannot be its input again."""
    reply = restore(live, png_bytes(photo(400, 400)), "superres,superres")
    assert reply.status_code == 400, reply.text[:300]
    assert reply.json()["type"] == "ChainTooLarge" and "step 2 (superres)" in reply.json()["message"]
    twice = restore(live, png_bytes(photo(40, 30)), "superres,superres")  # 640x480: fine
    assert twice.status_code == 200 and decode_png(twice.content).size == (640, 480)
