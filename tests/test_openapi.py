"""The OpenAPI 3.1 document (handlers/openapi.py): valid, complete against options.py and the handlers' errors,
committed up to date as docs/openapi.json, written by `make openapi` and served by the studio."""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import jsonschema
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from client.auth import TokenSource
from handlers.openapi import ERROR_SCHEMA, INPUT_MEDIA_TYPES, document, read_properties, render
from image_io import INPUT_FORMATS, OUTPUT_FORMATS, RequestError
from options import ENDPOINTS, check_hints, options_for
from serving.server import free_port
from studio.server import Upstream, create_app, studio_endpoints
from tests.support import ROOT

DOC = document()
TYPES = {"bool": "boolean", "int": "integer", "float": "number", "choice": "string", "json": "string", "file": "string"}
MEDIA = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "TIFF": "image/tiff", "BMP": "image/bmp",
         "AVIF": "image/avif", "HEIF": "image/heic"}


def post(endpoint: str) -> dict:
    return DOC["paths"][f"/predictions/{endpoint}"]["post"]


def fields(endpoint: str) -> dict:
    return post(endpoint)["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]


def test_the_document_is_valid_openapi_3_1():
    assert DOC["openapi"].startswith("3.1.")
    validate(DOC, cls=OpenAPIV31SpecValidator)  # raises on any violation
    broken = json.loads(json.dumps(DOC))
    broken["paths"]["/predictions/deblur"]["post"]["responses"]["200"].pop("description")
    with pytest.raises(Exception):  # the validator does look: a response without its description fails
        validate(broken, cls=OpenAPIV31SpecValidator)


def test_every_endpoint_has_a_post_path():
    assert set(DOC["paths"]) == {f"/predictions/{name}" for name in ENDPOINTS}
    ids = [post(name)["operationId"] for name in ENDPOINTS]
    assert len(set(ids)) == len(ENDPOINTS)
    assert all(set(DOC["paths"][f"/predictions/{name}"]) == {"post"} for name in ENDPOINTS)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_every_option_is_a_field_and_a_header_with_its_default_choices_and_range(endpoint):
    form = fields(endpoint)
    headers = {p["name"]: p for p in post(endpoint)["parameters"] if p["in"] == "header"}
    assert set(form) == {"data"} | {option.name for option in options_for(endpoint)}
    for option in options_for(endpoint):
        declared = form[option.name]
        assert declared["type"] == TYPES[option.kind], option.name
        assert declared.get("enum") == (list(option.choices) if option.choices else None), option.name
        assert declared.get("minimum") == option.minimum and declared.get("maximum") == option.maximum, option.name
        assert declared.get("default") == option.default, option.name
        assert option.help in declared["description"], option.name
        if option.kind == "file":
            assert declared["format"] == "binary" and option.header is None
        else:
            assert headers.pop(option.header)["schema"] == declared, option.header
    assert headers == {}  # no header the handler would not read


def test_the_image_goes_as_the_raw_body_in_any_decoded_format_or_as_the_data_field():
    content = post("superres")["requestBody"]["content"]
    for fmt in INPUT_FORMATS:
        assert MEDIA[fmt] in content, fmt
    assert set(content) == {*INPUT_MEDIA_TYPES, "multipart/form-data"}
    assert "application/x-www-form-urlencoded" not in content  # TorchServe parses such a body as a form
    assert content["multipart/form-data"]["schema"]["required"] == ["data"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_the_answer_is_an_image_in_each_format_the_format_option_offers(endpoint):
    formats = next(o.choices for o in options_for(endpoint) if o.name == "format")
    answers = set(post(endpoint)["responses"]["200"]["content"])
    assert answers == {OUTPUT_FORMATS[fmt][1] for fmt in formats}


def raised_errors() -> list[tuple[str, int, str]]:
    """(file stem, status, type) of every ``RequestError(<status>, "<Type>"`` in the endpoints' handlers."""
    found = []
    for path in sorted((ROOT / "handlers").glob("*.py")):
        if path.stem in ("restore", "openapi"):  # restore is no endpoint of options.py's (yet)
            continue
        for code, kind in re.findall(r'RequestError\(\s*(\d{3}),\s*"(\w+)"', path.read_text()):
            found.append((path.stem, int(code), kind))
    return found


def test_every_error_the_handlers_raise_is_listed_under_its_status():
    found = raised_errors()
    assert len({kind for _, _, kind in found}) >= 10  # the scan finds them (image_handler.py, image_io.py, ...)
    for stem, code, kind in found:
        for endpoint in ([stem] if stem in ENDPOINTS else ENDPOINTS):
            answer = post(endpoint)["responses"].get(str(code))
            assert answer is not None and f"`{kind}`" in answer["description"], (endpoint, code, kind)
    for endpoint in ENDPOINTS:  # and each option's own error type
        for option in options_for(endpoint):
            assert f"`{option.error}`" in post(endpoint)["responses"]["400"]["description"], (endpoint, option.name)


def test_the_error_schema_is_what_handlers_and_torchserve_answer():
    handler_error = {**json.loads(RequestError(400, "InvalidOption", "invalid value").to_json()), "request_id": "a1"}
    jsonschema.validate(handler_error, ERROR_SCHEMA)
    jsonschema.validate({**handler_error, "request_id": None}, ERROR_SCHEMA)  # no TorchServe context: no id
    jsonschema.validate({"code": 404, "type": "ModelNotFoundException", "message": "Model not found"}, ERROR_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"code": 400, "message": "no type"}, ERROR_SCHEMA)
    for endpoint in ENDPOINTS:
        for code, answer in post(endpoint)["responses"].items():
            if code != "200":
                assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert DOC["components"]["schemas"]["Error"] == ERROR_SCHEMA


@pytest.mark.parametrize("hints, accepted", [
    ([{"x": 3, "y": 4, "rgb": [0, 128, 255]}], True),
    ([], True),
    ([{"x": 3, "y": 4, "rgb": [0, 128, 256]}], False),
    ([{"x": 3, "y": 4, "rgb": [0, 128]}], False),
    ([{"x": 3, "y": 4}], False),
    ([{"x": 3, "y": 4, "rgb": [0, 0, 0], "z": 1}], False),
    ([{"x": "3", "y": 4, "rgb": [0, 0, 0]}], False),
    ({"x": 3, "y": 4, "rgb": [0, 0, 0]}, False),
    ([{"x": 0, "y": 0, "rgb": [1, 2, 3]}] * 257, False),
])
def test_the_hints_schema_agrees_with_the_option_check(hints, accepted):
    schema = fields("colorize")["hints"]["contentSchema"]
    assert jsonschema.Draft202012Validator(schema).is_valid(hints) is accepted
    try:
        check_hints(hints)
        checked = True
    except ValueError:
        checked = False
    assert checked is accepted


def test_bearer_token_and_the_server_from_config_properties():
    assert DOC["components"]["securitySchemes"]["bearerAuth"] == {**DOC["components"]["securitySchemes"]["bearerAuth"],
                                                                  "type": "http", "scheme": "bearer"}
    assert DOC["security"] == [{"bearerAuth": []}]
    address = read_properties(ROOT / "config.properties")["inference_address"]
    assert [server["url"] for server in DOC["servers"]] == [address] == ["http://127.0.0.1:8080"]


def test_docs_openapi_json_is_what_the_generator_writes_now():
    committed = ROOT / "docs" / "openapi.json"
    assert committed.exists(), "docs/openapi.json is missing: run `make openapi`"
    assert json.loads(committed.read_text()) == json.loads(render()), \
        "docs/openapi.json is stale (options.py or handlers/openapi.py changed): run `make openapi` and commit it"


def test_make_openapi_writes_the_document(tmp_path):
    out = tmp_path / "openapi.json"
    run = subprocess.run([shutil.which("make"), "-s", "openapi", f"OPENAPI={out}"], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert out.read_text() == render()


def test_the_studio_serves_the_document(tmp_path):
    key_file = tmp_path / "key_file.json"
    key_file.write_text(json.dumps({"inference": {"key": "offline-key"}}))
    upstream = Upstream(f"http://127.0.0.1:{free_port()}", TokenSource(key_file), studio_endpoints(), 4096)
    reply = create_app(upstream).test_client().get("/openapi.json")
    assert reply.status_code == 200 and reply.content_type == "application/json"
    assert reply.get_json() == json.loads(render())
    assert "offline-key" not in reply.get_data(as_text=True)
