"""Options are declared once (handlers/options.py): the schema and the parsers both come from that declaration."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from archives.build import endpoints
from options import ENDPOINTS, KINDS, Option, options_for, schema
from tests.support import ROOT, handler_for


def test_every_served_endpoint_is_declared():
    assert set(endpoints()) <= set(ENDPOINTS)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_schema_is_json_and_describes_every_option(endpoint):
    described = json.loads(json.dumps(schema(endpoint)))
    assert described["endpoint"] == endpoint and described["image_field"] == "data"
    names = [o["name"] for o in described["options"]]
    assert names[:2] == ["format", "quality"] and len(set(names)) == len(names)
    for entry, option in zip(described["options"], options_for(endpoint)):
        assert entry["kind"] in KINDS and entry["help"]
        if entry["kind"] == "choice":
            assert entry["default"] in entry["choices"]
        if entry["kind"] in ("int", "float"):
            assert entry["minimum"] <= entry["default"] <= entry["maximum"]
        if entry["kind"] not in ("file", "json"):  # the default parses back to itself
            assert option.parse(json.dumps(entry["default"]).strip('"').encode()) == entry["default"]


def test_schema_imports_outside_torchserve_without_handlers_on_the_path():
    code = "import json, sys; from handlers.options import schema; print(json.dumps(schema('retouch')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    [strength] = [o for o in json.loads(out)["options"] if o["name"] == "strength"]
    assert (strength["kind"], strength["default"], strength["minimum"], strength["maximum"]) == ("float", 1.0, 0.0, 1.0)


@pytest.mark.parametrize("kind,declared,raw,expected", [
    ("bool", {}, b" Yes ", True), ("bool", {}, b"off", False),
    ("int", {"minimum": 1, "maximum": 100}, b"100", 100),
    ("float", {"minimum": 0, "maximum": 1}, b"0.25", 0.25),
    ("choice", {"choices": ("png", "jpeg"), "aliases": {"jpg": "jpeg"}}, b"JPG", "jpeg"),
    ("json", {}, b'[{"x": 1}]', [{"x": 1}]),
    ("file", {}, b"\x89PNG", b"\x89PNG"),
])
def test_each_kind_parses(kind, declared, raw, expected):
    assert Option("o", kind, None, "help", **declared).parse(raw) == expected


@pytest.mark.parametrize("kind,declared,raw", [
    ("bool", {}, b"maybe"), ("bool", {}, b""),
    ("int", {"minimum": 1, "maximum": 100}, b"0"), ("int", {"minimum": 1, "maximum": 100}, b"9.5"),
    ("float", {"minimum": 0, "maximum": 1}, b"nan"), ("float", {"minimum": 0, "maximum": 1}, b"1.01"),
    ("choice", {"choices": ("a", "b")}, b"c"), ("json", {}, b"[1,"), ("int", {}, b"\xff"),
])
def test_each_kind_refuses_bad_values(kind, declared, raw):
    with pytest.raises((ValueError, UnicodeDecodeError)):
        Option("o", kind, None, "help", **declared).parse(raw)


def test_declarations_are_checked():
    with pytest.raises(ValueError):
        Option("o", "colour", None, "help")
    with pytest.raises(ValueError):
        Option("o", "choice", "a", "help")  # a choice without choices


def test_the_handler_parses_from_the_declaration():
    """The served handler accepts exactly the declared options, with the declared defaults."""
    handler = handler_for("retouch")
    assert handler.options == options_for("retouch")
    assert handler.parse_options({}) == {o.name: o.default for o in options_for("retouch")}
    assert handler.parse_options({"strength": b"0.5", "format": b"jpg"})["format"] == "jpeg"
