"""The shared handler in-process (real ts Context, real TorchScript weights), via the superres handler."""
from __future__ import annotations

import json

import re
from pathlib import Path

import numpy as np
import pytest
import torch

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


# ---- no exception leaves handle() (issue 10) ------------------------------------------------------------
def _faulty(base, fail_when):
    """The real superres handler, with a fault injected where ``fail_when(stage, value)`` says."""
    class Faulty(type(base)):
        def parse_request(self, raw, headers=None):
            if fail_when("decode", raw):
                raise KeyError("a bug while reading this request")
            return super().parse_request(raw, headers)

        def forward(self, x, options):
            if fail_when("predict", x):
                raise RuntimeError("a bug in the model on this size")
            return super().forward(x, options)

    handler = Faulty.__new__(Faulty)
    handler.__dict__.update(base.__dict__)
    return handler


def test_any_exception_answers_that_request_alone_with_json_500(superres, caplog):
    good, odd = png_bytes(photo(24, 16)), png_bytes(photo(13, 11))
    handler = _faulty(superres, lambda stage, v: (stage == "decode" and v.get("data") == b"poison")
                      or (stage == "predict" and v.shape[-1] == 13))
    with caplog.at_level("INFO"):
        results = run_handler(handler, [{"body": good}, {"data": b"poison"}, {"body": odd}, {"body": b"junk"},
                                        {"body": good}])
    assert [r[0] for r in results] == [200, 500, 500, 415, 200]
    assert decode_png(results[0][2]).size == decode_png(results[4][2]).size == (96, 64)
    for result in (results[1], results[2]):
        assert error_of(result)["type"] == "InternalError"
    assert "while decoding" in error_of(results[1])["message"] and "while inference" in error_of(results[2])["message"]
    assert "a bug while reading this request" in caplog.text and "a bug in the model" in caplog.text  # tracebacks logged
    assert run_handler(superres, [{"body": good}])[0][0] == 200


def test_error_replies_carry_the_request_id(superres):
    context = superres.context
    context.request_ids = {0: "req-good", 1: "req-bad"}
    try:
        results = run_handler(superres, [{"body": png_bytes(photo(8, 8))}, {"body": b"junk"}])
    finally:
        context.request_ids = None
    assert results[0][0] == 200
    assert error_of(results[1])["request_id"] == "req-bad"


# ---- stages and their metrics (issue 9) ---------------------------------------------------------------------
def test_every_stage_is_timed_into_a_per_model_counter(caplog):
    """Through the real metrics cache TorchServe gives a worker: the [METRICS] lines its frontend reads."""
    from ts.metrics.metric_cache_yaml_impl import MetricsCacheYamlImpl

    import ts

    handler = handler_for("superres")
    metrics = MetricsCacheYamlImpl(str(Path(ts.__file__).parent / "configs" / "metrics.yaml"))
    metrics.initialize_cache()
    metrics.model_name = "superres"
    metrics.set_request_ids({0: "a", 1: "b"})
    handler.context.metrics = metrics
    with caplog.at_level("INFO"):
        run_handler(handler, [{"body": png_bytes(photo(64, 48))}, {"body": png_bytes(photo(64, 48, seed=1))}])
    emitted = dict(re.findall(r"\[METRICS\](\w+)\.\w+:([0-9.e+-]+)\|#ModelName:superres,Level:Model\|#type:COUNTER",
                              caplog.text))
    assert all(float(emitted[f"{stage}Ms"]) > 0 for stage in ("Decode", "Batch", "Predict", "Encode"))
    assert float(emitted["MegapixelsProcessed"]) == pytest.approx(2 * 64 * 48 / 1e6)


def test_predict_stage_runs_alone_on_a_tensor(superres):
    """What a chaining handler uses: parse options, check them against the image, batch, predict."""
    from image_io import decode

    image = decode(png_bytes(photo(20, 12)), 10**6)
    options = superres.check_options(superres.parse_options({"format": b"jpeg"}), image)
    out = superres.predict(superres.to_batch([image]), options)
    assert out.shape == (1, 3, 48, 80) and out.dtype == torch.float32 and 0 <= out.min() and out.max() <= 1


def test_a_small_group_runs_on_one_thread_and_the_configured_threads_come_back(superres):
    """An idle worker's second thread costs more to wake than a small request costs to compute."""
    seen = []

    class Counting(type(superres)):
        def forward(self, x, options):
            seen.append((x.shape[-1], torch.get_num_threads()))
            return super().forward(x, options)

    handler = Counting.__new__(Counting)
    handler.__dict__.update(superres.__dict__)
    threads, small = int(handler.config["threads"]), int(handler.config["one_thread_pixels"])
    assert threads == 2 and small == 32 * 32
    torch.set_num_threads(threads)
    for width, height in [(16, 16), (32, 32), (33, 32), (16, 16)]:
        [(status, _, _)] = run_handler(handler, [{"body": png_bytes(photo(width, height))}])
        assert status == 200 and torch.get_num_threads() == threads
    assert seen == [(16, 1), (32, 1), (33, 2), (16, 1)]
    # two 32x32 requests batched together are one group of 2,048 pixels: two threads
    seen.clear()
    run_handler(handler, [{"body": png_bytes(photo(32, 32))}] * 2)
    assert seen == [(32, 2)]


@pytest.mark.parametrize("setting,expected", [(None, [False, True]), (0, [False, False]), (64 * 64, [True, True])])
def test_large_outputs_map_their_buffers_apart_from_the_models_setting(superres, setting, expected):
    """``mapped_output_pixels``: from that many output pixels on (default 4 MP; 0: never) a group runs in the
    allocator's mapped mode. Superres x4: a 16x16 upload answers 4,096 pixels, 512x512 one 4,194,304."""
    modes = []
    handler = type(superres).__new__(type(superres))
    handler.__dict__.update(superres.__dict__)
    if setting is not None:
        handler.config = {**superres.config, "mapped_output_pixels": setting}
    handler.allocator = type(superres.allocator)()
    handler.allocator.set = lambda threshold: modes.append(threshold == handler.allocator.MAPPED)
    for side in (16, 512):
        modes.clear()
        [(status, _, _)] = run_handler(handler, [{"body": png_bytes(photo(side, side))}])
        assert status == 200
        expected_side = expected[side == 512]
        assert modes == ([True, False] if expected_side else []), (side, modes)


@pytest.mark.parametrize("endpoint,tile", [("superres", 512), ("deblur", 512), ("deblur", 64), ("enhance", 512),
                                           ("enhance", 64), ("retouch", 512), ("colorize", 512)])
def test_the_frozen_model_answers_as_the_unfrozen_one(endpoint, tile):
    """Freezing at load (weights as constants, scales folded into convs) changes no answer; tile 64
    makes deblur and enhance run tiled (enhance then calls the module's other methods)."""
    frozen, plain = (handler_for(endpoint, freeze=f, tile=tile) for f in (True, False))
    assert not list(frozen.model.parameters()) and list(plain.model.parameters())
    body = png_bytes(photo(150, 110, seed=3))
    [(status_f, _, frozen_png)], [(status_p, _, plain_png)] = (run_handler(h, [{"body": body}]) for h in (frozen, plain))
    assert status_f == status_p == 200
    a, b = (np.asarray(decode_png(png), dtype=int) for png in (frozen_png, plain_png))
    assert a.shape == b.shape and np.abs(a - b).max() <= 1
