"""The shared handler in-process (real ts Context, real TorchScript weights), via the superres handler."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.support import decode_png, handler_for, photo, png_bytes, run_handler


@pytest.fixture(scope="module")
def superres():
    return handler_for("superres")


def error_of(result) -> dict:
    status, ctype, body = result
    assert ctype == "application/json"
    payload = json.loads(body)
    assert payload["code"] == status and payload["message"]
    return payload


def test_upscales_x4_as_png(superres):
    [(status, ctype, body)] = run_handler(superres, [{"body": png_bytes(photo(30, 20))}])
    assert (status, ctype) == (200, "image/png")
    assert decode_png(body).size == (120, 80)


def test_bad_request_in_a_batch_leaves_the_others_alone(superres):
    good = png_bytes(photo(24, 16))
    results = run_handler(superres, [{"body": good}, {"body": b"junk"}, {"data": good}, {"body": good[: len(good) // 2]}])
    assert [r[0] for r in results] == [200, 415, 200, 400]
    assert decode_png(results[0][2]).size == decode_png(results[2][2]).size == (96, 64)
    assert error_of(results[1])["type"] == "UnsupportedImage"
    assert error_of(results[3])["type"] == "CorruptImage"


def test_same_size_batch_equals_single_runs(superres):
    a, b = png_bytes(photo(20, 20, seed=1)), png_bytes(photo(20, 20, seed=2))
    batched = run_handler(superres, [{"body": a}, {"body": b}])
    single = run_handler(superres, [{"body": b}])
    assert np.abs(np.asarray(decode_png(batched[1][2]), int) - np.asarray(decode_png(single[0][2]), int)).max() <= 1


def test_mixed_sizes_in_one_batch(superres):
    results = run_handler(superres, [{"body": png_bytes(photo(10, 12))}, {"body": png_bytes(photo(17, 9))}])
    assert [decode_png(r[2]).size for r in results] == [(40, 48), (68, 36)]


@pytest.mark.parametrize("fields,headers,ctype", [
    ({"format": b"jpeg"}, {}, "image/jpeg"),
    ({"format": b"webp", "quality": b"80"}, {}, "image/webp"),
    ({}, {"X-Format": "webp"}, "image/webp"),
    ({"format": b"png"}, {"x-format": "jpeg"}, "image/png"),  # a form field wins over a header
])
def test_output_format_options(superres, fields, headers, ctype):
    [(status, got, _)] = run_handler(superres, [{"data": png_bytes(photo(8, 8)), **fields}], [headers])
    assert (status, got) == (200, ctype)


@pytest.mark.parametrize("request_fields,kind", [
    ({"data": None, "format": b"gif"}, "InvalidOption"),
    ({"data": None, "quality": b"0"}, "InvalidOption"),
    ({"data": None, "quality": b"high"}, "InvalidOption"),
    ({"file": None}, "UnknownField"),
    ({"data": None, "colour": b"red"}, "UnknownField"),
    ({"format": b"png"}, "MissingImage"),
])
def test_bad_fields_get_400(superres, request_fields, kind):
    image = png_bytes(photo(8, 8))
    fields = {k: (image if v is None else v) for k, v in request_fields.items()}
    [result] = run_handler(superres, [fields])
    assert result[0] == 400 and error_of(result)["type"] == kind


def test_output_over_the_limit_is_refused_before_inference():
    handler = handler_for("superres", max_output_pixels=100 * 100)
    [result] = run_handler(handler, [{"body": png_bytes(photo(30, 30))}])
    assert result[0] == 413 and error_of(result)["type"] == "OutputTooLarge"


def test_response_size_limit_is_respected():
    handler = handler_for("superres", max_response_bytes=200_000)
    [result] = run_handler(handler, [{"body": png_bytes(photo(64, 64))}])  # 256x256 RGBA worst case > 200 kB
    assert result[0] == 413


def test_grayscale_stays_grayscale_and_alpha_is_carried(superres):
    gray = photo(16, 12).convert("L")
    rgba = photo(16, 12).convert("RGBA")
    rgba.putalpha(128)
    [(_, _, g), (_, _, a)] = run_handler(superres, [{"body": png_bytes(gray)}, {"body": png_bytes(rgba)}])
    assert decode_png(g).mode == "L" and decode_png(g).size == (64, 48)
    out = decode_png(a)
    assert out.mode == "RGBA" and out.size == (64, 48)
    assert np.abs(np.asarray(out)[..., 3].astype(int) - 128).max() <= 1


def test_tiled_handler_output_matches_untiled():
    img = png_bytes(photo(150, 110, seed=5))
    [(_, _, tiled)] = run_handler(handler_for("superres", tile=40), [{"body": img}])
    [(_, _, whole)] = run_handler(handler_for("superres", tile=0), [{"body": img}])
    diff = np.abs(np.asarray(decode_png(tiled), int) - np.asarray(decode_png(whole), int))
    assert diff.max() <= 1  # under 1/255 before 8-bit rounding
