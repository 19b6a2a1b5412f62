"""OpenAPI 3.1 description of the inference API (``POST /predictions/<endpoint>``), generated from options.py.

    python -m handlers.openapi docs/openapi.json      (from the repository root; or: make openapi)

Every endpoint that handlers/options.py declares gets its path: the image as the raw body or as the
multipart field ``data``, each option as a multipart field and (all kinds but ``file``) as an
``X-<Name>`` header, the answer's image types (the ``format`` option's choices), the JSON errors the
handlers and TorchServe's frontend answer, and TorchServe's bearer token. The server address comes
from config.properties. Standard library only, like options.py; the studio serves the same document
at ``/openapi.json``.
"""
from __future__ import annotations

import ast
import json
import sys
from pathlib import Path
from typing import Any

from handlers.options import ENDPOINTS, IMAGE_FIELD, MAX_HINTS, Option, options_for

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config.properties"
# What handlers/image_io.py decodes (INPUT_FORMATS: PNG, JPEG, WebP, TIFF, BMP, AVIF, HEIF) as raw-body types.
# The decoder reads the bytes, not the type: README's "any body with an image/* or application/octet-stream".
INPUT_MEDIA_TYPES = ("image/png", "image/jpeg", "image/webp", "image/tiff", "image/bmp", "image/avif",
                     "image/heic", "image/heif", "application/octet-stream")
BINARY = {"type": "string", "format": "binary"}
JSON_TYPES = {"bool": "boolean", "int": "integer", "float": "number", "choice": "string", "json": "string"}
# The JSON documents that ``json`` options carry (options.check_hints checks the same shape in code).
CONTENT_SCHEMAS: dict[str, dict[str, Any]] = {
    "hints": {"type": "array", "maxItems": MAX_HINTS, "items": {
        "type": "object", "required": ["x", "y", "rgb"], "additionalProperties": False, "properties": {
            "x": {"type": "integer", "minimum": 0, "description": "column, inside the photo"},
            "y": {"type": "integer", "minimum": 0, "description": "row, inside the photo"},
            "rgb": {"type": "array", "minItems": 3, "maxItems": 3,
                    "items": {"type": "integer", "minimum": 0, "maximum": 255}}}}},
}
# Error types by HTTP status, as the handlers raise them (image_handler.py, image_io.py: every endpoint) and
# TorchServe's frontend answers them before a handler runs (same JSON, without request_id).
ERRORS: dict[int, dict[str, str]] = {
    400: {"UnknownField": "a multipart field that is neither `data` nor a declared option",
          "MissingImage": "no raw body and no `data` field",
          "EmptyImage": "the image has no bytes or no pixels",
          "CorruptImage": "a truncated or malformed image",
          "InvalidProfile": "an embedded ICC profile that cannot be used",
          "InvalidOption": "an option's value is not among its choices or in its range, or does not fit the upload",
          "InvalidKeyException": "TorchServe: the `Authorization: Bearer` key is missing, wrong or expired "
                                 "(renew it with the token API, then send the request again)"},
    404: {"ModelNotFoundException": "TorchServe: the endpoint is not registered on this server"},
    413: {"TooManyPixels": "the upload has more pixels than the endpoint's `max_input_pixels`",
          "DecompressionBomb": "decoding would need more memory than allowed",
          "OutputTooLarge": "the answer would exceed `max_output_pixels` or TorchServe's response limit"},
    415: {"UnsupportedImage": "the bytes are not a PNG, JPEG, WebP, TIFF, BMP, HEIC or AVIF image"},
    500: {"InternalError": "the server failed on this request (logged with its request id)"},
    503: {"ServiceUnavailableException": "TorchServe: no worker is ready or the queue is full; try again later"},
}
ENDPOINT_ERRORS: dict[str, dict[int, dict[str, str]]] = {  # what one handler adds (handlers/<endpoint>.py)
    "colorize": {400: {"GrayscaleReference": "the `reference` image has no colour to transfer",
                       "InvalidHints": "`hints` is not the documented JSON, or a hint lies outside the photo"}},
}
STATUS_TEXT = {400: "Bad request", 404: "No such endpoint", 413: "Too large", 415: "Unsupported image",
               500: "Server error", 503: "Unavailable"}
ERROR_SCHEMA = {
    "type": "object", "required": ["code", "type", "message"],
    "properties": {
        "code": {"type": "integer", "description": "the HTTP status again"},
        "type": {"type": "string", "description": "what went wrong, one name per kind of refusal (see each status)"},
        "message": {"type": "string", "description": "for a person: what was wrong and what is expected"},
        "request_id": {"type": ["string", "null"],
                       "description": "TorchServe's request id, as in the worker's log (handler errors only)"}},
}


def read_properties(path: Path) -> dict[str, str]:
    """``key=value`` lines of a Java properties file such as config.properties (comments skipped)."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines()
             if "=" in line and not line.strip().startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def summary(endpoint: str) -> str:
    """The first line of handlers/<endpoint>.py's docstring, without its "TorchServe handler for" prefix."""
    path = ROOT / "handlers" / f"{endpoint}.py"
    doc = ast.get_docstring(ast.parse(path.read_text())) if path.exists() else None
    first = (doc or endpoint).splitlines()[0]
    return first.split(": ", 1)[1] if first.startswith("TorchServe handler for") and ": " in first else first


def option_schema(option: Option) -> dict[str, Any]:
    """The JSON schema of one option's value, with its default, choices or range and help."""
    if option.kind == "file":
        return {**BINARY, "description": option.help}
    out: dict[str, Any] = {"type": JSON_TYPES[option.kind]}
    if option.choices:
        out["enum"] = list(option.choices)
    if option.minimum is not None:
        out["minimum"], out["maximum"] = option.minimum, option.maximum
    if option.default is not None:
        out["default"] = option.default
    if option.kind == "json":
        out["contentMediaType"] = "application/json"
        if option.name in CONTENT_SCHEMAS:
            out["contentSchema"] = CONTENT_SCHEMAS[option.name]
    return {**out, "description": describe(option)}


def describe(option: Option) -> str:
    """The option's help, and what else the parser accepts."""
    notes = [option.help]
    if option.kind == "choice":
        aliases = ", ".join(f"{alias} (= {value})" for alias, value in option.aliases.items())
        notes.append("Case-insensitive" + (f"; also accepted: {aliases}." if aliases else "."))
    if option.kind == "bool":
        notes.append("Also accepted: 1/0, yes/no, on/off.")
    return " ".join(notes)


def header_parameters(endpoint: str) -> list[dict[str, Any]]:
    """Each option that may travel as a header, as an optional header parameter (a multipart field wins)."""
    return [{"name": option.header, "in": "header", "required": False, "schema": option_schema(option),
             "description": f"`{option.name}` as a header, e.g. with a raw body (a multipart field of its name wins)"}
            for option in options_for(endpoint) if option.header]


def request_body(endpoint: str) -> dict[str, Any]:
    """The image as the raw body (options as headers), or multipart with ``data`` and options as fields."""
    options = options_for(endpoint)
    fields = {IMAGE_FIELD: {**BINARY, "description": "the photo"}, **{o.name: option_schema(o) for o in options}}
    images = ", ".join(INPUT_MEDIA_TYPES[:-1])
    files = {name: {"contentType": images} for name in [IMAGE_FIELD, *(o.name for o in options if o.kind == "file")]}
    raw = {kind: {"schema": BINARY} for kind in INPUT_MEDIA_TYPES}
    return {"required": True,
            "description": "The photo: the raw body (options then go as `X-...` headers) or the multipart field "
                           f"`{IMAGE_FIELD}` with options as further fields. Not `application/x-www-form-urlencoded`: "
                           "TorchServe's frontend would parse the image as a form and answer 500.",
            "content": {**raw, "multipart/form-data": {
                "schema": {"type": "object", "required": [IMAGE_FIELD], "properties": fields,
                           "additionalProperties": False},
                "encoding": files}}}


def error_types(endpoint: str) -> dict[int, dict[str, str]]:
    """Every error type the endpoint can answer, by status: the shared ones, its options' and its handler's."""
    table = {code: dict(kinds) for code, kinds in ERRORS.items()}
    for option in options_for(endpoint):
        table[400].setdefault(option.error, f"a bad `{option.name}` value")
    for code, kinds in ENDPOINT_ERRORS.get(endpoint, {}).items():
        table.setdefault(code, {}).update(kinds)
    return table


def responses(endpoint: str) -> dict[str, Any]:
    """200 with the image in any ``format`` the endpoint offers; the JSON error for each status it uses."""
    formats = next(o.choices for o in options_for(endpoint) if o.name == "format")
    out: dict[str, Any] = {"200": {
        "description": "The restored image, in the asked `format`.",
        "headers": {"x-request-id": {"schema": {"type": "string"},
                                     "description": "TorchServe's request id, as in the worker's log"}},
        "content": {f"image/{fmt}": {"schema": BINARY} for fmt in formats}}}
    for code, kinds in sorted(error_types(endpoint).items()):
        listed = "; ".join(f"`{kind}`: {why}" for kind, why in kinds.items())
        out[str(code)] = {"description": f"{STATUS_TEXT.get(code, 'Error')}. `type` is one of: {listed}.",
                          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return out


def operation(endpoint: str) -> dict[str, Any]:
    """``POST /predictions/<endpoint>``."""
    return {"operationId": f"predict_{endpoint}", "summary": summary(endpoint), "tags": ["predictions"],
            "parameters": header_parameters(endpoint), "requestBody": request_body(endpoint),
            "responses": responses(endpoint)}


def document(config: Path = CONFIG) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document, for the TorchServe that ``config`` (config.properties) describes."""
    props = read_properties(config)
    server = props.get("inference_address", "http://127.0.0.1:8080").replace("://0.0.0.0", "://127.0.0.1")
    limit = props.get("max_request_size")
    return {
        "openapi": "3.1.0",
        "info": {"title": "restoration-serve inference API", "version": "1",
                 "description": "Image restoration behind TorchServe: one POST per photo, the answer is the image. "
                                "Generated from handlers/options.py (`make openapi`)."
                                + (f" Requests over {limit} bytes (max_request_size) are refused by TorchServe."
                                   if limit else "")},
        "servers": [{"url": server, "description": "TorchServe inference API (config.properties)"}],
        "security": [{"bearerAuth": []}],
        "tags": [{"name": "predictions"}],
        "paths": {f"/predictions/{endpoint}": {"post": operation(endpoint)} for endpoint in ENDPOINTS},
        "components": {
            "schemas": {"Error": ERROR_SCHEMA},
            "securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer",
                "description": "TorchServe token authorization: the `inference` key of key_file.json in the "
                               "server's working directory (.serve/), sent as `Authorization: Bearer <key>`."}}},
    }


def render(config: Path = CONFIG) -> str:
    """The document as docs/openapi.json holds it: indented, keys in order, one newline at the end."""
    return json.dumps(document(config), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m handlers.openapi OUT.json")
    Path(args[0]).write_text(render())


if __name__ == "__main__":
    main()
