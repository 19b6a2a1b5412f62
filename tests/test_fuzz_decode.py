"""Fuzzing the decoder (handlers/image_io.decode): Hypothesis properties and the mutation fuzzer's
bounded run over the corpus of tests/fuzz/. Every input must become a picture or a 4xx RequestError.

FUZZ_N (random mutants besides every systematic one, default 5000), FUZZ_SEED (default 0) and FUZZ_EXAMPLES (Hypothesis examples
per property, default 400) scale the run; `make fuzz N=...` is the long run.
"""
from __future__ import annotations

import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from image_io import RequestError, decode
from tests.fuzz.corpus import accepted, corpus, expected_size
from tests.fuzz.outcomes import decode_outcome, is_crash
from tests.fuzz.run import cases, fuzz_decode
from tests.support import png_bytes

FUZZ_N = int(os.environ.get("FUZZ_N", "5000"))
FUZZ_SEED = int(os.environ.get("FUZZ_SEED", "0"))
EXAMPLES = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "400")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LIMIT = 1_000_000
NAMES = sorted(corpus())


def test_the_corpus_decodes_as_made():
    for name, data in corpus().items():
        if accepted(name):
            assert decode(data, LIMIT).size == expected_size(name), name
        else:
            assert decode_outcome(data, LIMIT) == "415 UnsupportedImage", name


def test_systematic_and_random_mutants_are_pictures_or_4xx():
    tally = fuzz_decode(cases(FUZZ_N, FUZZ_SEED), LIMIT)
    assert not tally.crashes, tally.report("decoder")
    assert tally.counts["image"] > 0 and len(tally.counts) > 3  # the mutants reach both sides of the decoder


@EXAMPLES
@given(st.binary(max_size=4096))
def test_any_bytes(data):
    assert not is_crash(outcome := decode_outcome(data, LIMIT)), outcome


@EXAMPLES
@given(name=st.sampled_from(NAMES), edits=st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), max_size=6),
       cut=st.none() | st.integers(1, 4096))
def test_corpus_files_with_bytes_changed_and_cut(name, edits, cut):
    data = bytearray(corpus()[name])
    for at, value in edits:
        data[at % len(data)] = value
    outcome = decode_outcome(bytes(data[:cut]), LIMIT)
    assert not is_crash(outcome), outcome


# Modes each format writes (Pillow), for pictures generated from random pixels.
WRITABLE = {"PNG": ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"], "JPEG": ["L", "RGB", "CMYK"],
            "WEBP": ["RGB", "RGBA"], "TIFF": ["1", "L", "LA", "P", "RGB", "RGBA", "I;16", "CMYK"],
            "BMP": ["1", "L", "P", "RGB"]}
LOSSLESS = {"PNG", "TIFF", "BMP"}


@st.composite
def pictures(draw):
    fmt = draw(st.sampled_from(sorted(WRITABLE)))
    mode = draw(st.sampled_from(WRITABLE[fmt]))
    width, height = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    seed = draw(st.integers(0, 2**32 - 1))
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 4), dtype=np.uint8)
    img = Image.fromarray(pixels, "RGBA")
    img = Image.fromarray(np.asarray(img.convert("L")).astype(np.uint16) * 257) if mode == "I;16" else img.convert(mode)
    return fmt, img


@EXAMPLES
@given(pictures())
def test_every_writable_picture_decodes_to_its_size_in_rgb(picture):
    fmt, img = picture
    decoded = decode(png_bytes(img, fmt), LIMIT)
    assert decoded.size == (img.height, img.width)
    sixteen = img.mode == "I;16" and fmt in ("PNG", "TIFF")  # kept in 16 bits (docs/files.md)
    assert decoded.rgb.dtype == (np.uint16 if sixteen else np.uint8)
    assert decoded.rgb.shape == (img.height, img.width, 3)
    if img.mode in ("1", "L", "LA", "I;16"):
        assert decoded.grayscale
    elif img.mode in ("RGB", "RGBA", "CMYK"):
        assert not decoded.grayscale
    if img.mode in ("LA", "RGBA") and fmt != "JPEG":
        alpha = np.asarray(img.getchannel("A"))
        assert (decoded.alpha is not None) == bool(alpha.min() < 255)
    if img.mode == "RGB" and fmt in LOSSLESS:
        assert np.array_equal(decoded.rgb, np.asarray(img))


@EXAMPLES
@given(width=st.integers(0, 2**31 - 1), height=st.integers(0, 2**31 - 1))
def test_claimed_sizes_past_the_limit_are_refused_before_decoding(width, height):
    from tests.test_image_io import png_header_only  # a PNG whose header claims any size

    try:
        decoded = decode(png_header_only(width, height), LIMIT)
    except RequestError as err:
        assert 400 <= err.code < 500
        if width * height > LIMIT:
            assert err.code == 413
    else:
        assert decoded.size == (height, width) and width * height <= LIMIT
