"""Fuzzing what a request carries besides pixels, and whole batches, in-process for every endpoint:
the option parsers (handlers/options.py), the multipart field handling (ImageHandler.parse_request),
and ImageHandler.handle over batches mixing valid files with the mutation fuzzer's inputs.

Contract: a value is parsed into the option's domain or refused with ValueError (a 400 for the
client); a request becomes a Request or a 4xx RequestError; every answer in a batch is an image or a
JSON 4xx, and the valid file in each batch gets its image.
"""
from __future__ import annotations

import functools
import json
import math
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archives.build import endpoints
from image_io import RequestError
from options import FALSE, TRUE, Option, options_for
from tests.fuzz.corpus import corpus, expected_size
from tests.fuzz.run import fuzz_handler, sample_cases
from tests.support import handler_for

ENDPOINTS = endpoints()
EXAMPLES = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "400")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PHOTO = corpus()["png-RGB"]  # 21x13, colour
HEIGHT, WIDTH = expected_size("png-RGB")
ALL_OPTIONS = sorted({option.name: option for e in ENDPOINTS for option in options_for(e)}.values(), key=lambda o: o.name)


@functools.cache
def handler(endpoint: str):
    return handler_for(endpoint)


def in_domain(option: Option, value) -> bool:
    """The parsed value is one the option allows."""
    if option.kind == "bool":
        return isinstance(value, bool)
    if option.kind == "int":
        return type(value) is int and option.minimum <= value <= option.maximum
    if option.kind == "float":
        return isinstance(value, float) and math.isfinite(value) and option.minimum <= value <= option.maximum
    if option.kind == "choice":
        return value in option.choices
    if option.kind == "file":
        return isinstance(value, bytes)
    if option.check is not None:
        option.check(value)  # json: raises if the document's shape is wrong
    return True


# ---- option parsers ------------------------------------------------------------------------------

def raw_values() -> st.SearchStrategy[bytes]:
    """Anything a field or header may carry: random bytes, random text, numbers, near-misses of valid values."""
    near = [s.encode() for o in ALL_OPTIONS for s in (*o.choices, *o.aliases)] + [s.encode() for s in TRUE + FALSE]
    return st.one_of(st.binary(max_size=64), st.text(max_size=32).map(str.encode),
                     st.floats(allow_nan=True, allow_infinity=True).map(lambda f: repr(f).encode()),
                     st.integers(-10**30, 10**30).map(lambda i: str(i).encode()),
                     st.sampled_from(near).map(lambda v: b" " + v.upper() + b"\t"),
                     st.recursive(st.none() | st.integers() | st.text(max_size=4),
                                  lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                                  max_leaves=8).map(lambda v: json.dumps(v).encode()))


@EXAMPLES
@given(option=st.sampled_from(ALL_OPTIONS), raw=raw_values())
def test_option_values_parse_into_their_domain_or_are_refused(option, raw):
    try:
        value = option.parse(raw)
    except (ValueError, UnicodeDecodeError):
        return  # ImageHandler.parse_options answers 400 with the option's error type
    assert in_domain(option, value), (option.name, raw, value)


def test_deeply_nested_json_is_refused_as_a_bad_value():
    """json.loads raises RecursionError on deep nesting: it must still be a 400 InvalidOption, not a 500."""
    hints = next(o for o in ALL_OPTIONS if o.kind == "json")
    with pytest.raises(ValueError):
        hints.parse(b"[" * 100_000)


# ---- multipart fields ----------------------------------------------------------------------------

@st.composite
def valid_value(draw, option: Option) -> tuple[bytes, object]:
    """A value the option must accept, as a client might spell it, and what it must parse to."""
    if option.kind == "bool":
        word = draw(st.sampled_from(TRUE + FALSE))
        return draw(st.sampled_from([word, word.upper(), f" {word} "])).encode(), word in TRUE
    if option.kind == "int":
        value = draw(st.integers(int(option.minimum), int(option.maximum)))
        return str(value).encode(), value
    if option.kind == "float":
        value = draw(st.floats(option.minimum, option.maximum))
        return repr(value).encode(), value
    if option.kind == "choice":
        spelling = draw(st.sampled_from([*option.choices, *option.aliases]))
        return draw(st.sampled_from([spelling, spelling.upper(), f"{spelling} "])).encode(), option.aliases.get(spelling, spelling)
    if option.kind == "file":
        return corpus()["jpeg-RGB"], None
    hints = draw(st.lists(st.fixed_dictionaries({"x": st.integers(0, WIDTH - 1), "y": st.integers(0, HEIGHT - 1),
                                                  "rgb": st.lists(st.integers(0, 255), min_size=3, max_size=3)}),
                          max_size=5))
    return json.dumps(hints).encode(), None


@st.composite
def valid_requests(draw):
    """An endpoint, its raw fields (image as body or data, a subset of options as fields or headers), the expected options."""
    endpoint = draw(st.sampled_from(ENDPOINTS))
    fields, headers, expected = {draw(st.sampled_from(["body", "data"])): PHOTO}, {}, {}
    for option in options_for(endpoint):
        if draw(st.booleans()):
            raw, value = draw(valid_value(option))
            if option.header is not None and draw(st.booleans()):
                headers[option.name] = raw
            else:  # TorchServe hands a form field over as bytes, a text field sometimes as str
                fields[option.name] = raw.decode() if option.kind != "file" and draw(st.booleans()) else raw
            expected[option.name] = value
    return endpoint, fields, headers, expected


@EXAMPLES
@given(valid_requests())
def test_valid_fields_and_headers_are_parsed_as_sent(request_parts):
    endpoint, fields, headers, expected = request_parts
    parsed = handler(endpoint).parse_request(fields, headers)
    assert parsed.image.size == (HEIGHT, WIDTH)
    for name, value in expected.items():
        if value is not None:  # files and JSON are turned into model inputs by check_options
            assert parsed.options[name] == value, name


@st.composite
def any_requests(draw):
    endpoint = draw(st.sampled_from(ENDPOINTS))
    names = [o.name for o in options_for(endpoint)] + ["data", "body", "file", "image", "Data", ""]
    key = st.sampled_from(names) | st.text(max_size=12)
    value = st.binary(max_size=64) | st.text(max_size=16) | st.sampled_from(sorted(corpus().values()))
    fields = draw(st.dictionaries(key, value, max_size=5))
    headers = draw(st.dictionaries(st.sampled_from([o.name for o in options_for(endpoint)]), st.binary(max_size=32), max_size=3))
    return endpoint, fields, headers


@EXAMPLES
@given(any_requests())
def test_any_fields_and_headers_become_a_request_or_a_4xx(request_parts):
    endpoint, fields, headers = request_parts
    try:
        handler(endpoint).parse_request(fields, headers)
    except RequestError as err:
        assert 400 <= err.code < 500 and err.message, (err.code, err.kind)


# ---- whole batches through handle() ----------------------------------------------------------------

@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_batches_of_fuzzed_and_valid_files_get_images_or_json_4xx(endpoint):
    tally = fuzz_handler(handler(endpoint), sample_cases(int(os.environ.get("FUZZ_HANDLER_N", "60")), seed=len(endpoint)))
    assert not tally.crashes, tally.report(endpoint)
    assert tally.counts["image"] > 0 and len(tally.counts) > 2
