"""Studio: a web page to restore photos by hand, and the small server behind it.

    python -m studio.server [--port 8000] [--host 127.0.0.1]      (or: make studio [PORT=8000])

The page (studio/static/) talks only to this server, never to TorchServe. The server holds the
inference token (client.auth.TokenSource) and forwards ``POST /api/predict/<endpoint>`` to
TorchServe's ``/predictions/<endpoint>`` for the endpoints this bundle builds, and nothing else:
no other path, method, header or host is passed on. It binds to loopback, answers only requests
addressed to its own host names (against DNS rebinding), refuses posts from other sites, caps an
upload at TorchServe's ``max_request_size`` and its pixels at the endpoint's ``max_input_pixels``
(read from its header before anything is forwarded), and sets a strict Content-Security-Policy.
``GET /openapi.json`` answers the inference API's OpenAPI 3.1 description (handlers/openapi.py).
"""
from __future__ import annotations

import argparse
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import requests
import yaml
from flask import Flask, Response, jsonify, request, send_from_directory
from werkzeug.exceptions import HTTPException
from PIL import Image
from werkzeug.serving import make_server

from archives.build import endpoints as built_endpoints
from client.auth import TokenSource, is_token_rejection, request_with_key
from serving.server import ROOT, _url, read_properties, running_pid
from handlers.options import ENDPOINTS as DECLARED_ENDPOINTS
from handlers.options import schema
from handlers.openapi import document as openapi_document
from serving.server import main as serve_main

STATIC = Path(__file__).resolve().parent / "static"
TORCHSERVE_DEFAULT_MAX_REQUEST = 6_553_500  # TorchServe's max_request_size when config.properties sets none
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
       "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


@dataclass(frozen=True)
class Upstream:
    """Where and how the studio reaches TorchServe."""

    inference_url: str
    tokens: TokenSource
    endpoints: tuple[str, ...]
    max_request_bytes: int
    max_input_pixels: dict[str, int] = field(default_factory=dict)  # per endpoint, where known
    timeout_s: float = 1800.0  # TorchServe's own responseTimeout ends a stuck request first


def upstream_from_config(config: Path, state: Path) -> Upstream:
    """The TorchServe that ``make serve`` starts from ``config`` with its state in ``state``."""
    props = read_properties(config)
    return Upstream(inference_url=_url(props["inference_address"]),
                    tokens=TokenSource(state.resolve() / "key_file.json",
                                       management_url=_url(props["management_address"])),  # renews expired keys
                    endpoints=studio_endpoints(),
                    max_request_bytes=int(props.get("max_request_size", TORCHSERVE_DEFAULT_MAX_REQUEST)),
                    max_input_pixels=input_pixel_limits(studio_endpoints()))


def input_pixel_limits(endpoints: tuple[str, ...]) -> dict[str, int]:
    """Each endpoint's ``max_input_pixels`` from archives/<endpoint>/model-config.yaml, where its handler reads it."""
    limits = {}
    for name in endpoints:
        config = yaml.safe_load((ROOT / "archives" / name / "model-config.yaml").read_text())
        limit = (config.get("handler") or {}).get("max_input_pixels")
        if limit:
            limits[name] = int(limit)
    return limits


def image_size(upload: IO[bytes]) -> tuple[int, int] | None:
    """(width, height) from the image's header alone, or None when Pillow cannot tell (the handler will say why)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(upload) as img:
                return img.size
    except Exception:  # noqa: BLE001 - any unreadable upload is the handler's to judge
        return None
    finally:
        upload.seek(0)


def studio_endpoints() -> tuple[str, ...]:
    """The endpoints this bundle builds whose options the handlers declare: all the studio forwards to."""
    return tuple(name for name in built_endpoints() if name in DECLARED_ENDPOINTS)


def error(code: int, kind: str, message: str) -> tuple[Response, int]:
    """The same JSON shape as the handlers' errors, so the page shows every refusal one way."""
    return jsonify(code=code, type=kind, message=message), code


def create_app(upstream: Upstream, hosts: tuple[str, ...] = LOOPBACK_NAMES) -> Flask:
    """The studio's Flask app; ``hosts`` are the host names a request may be addressed to."""
    app = Flask(__name__, static_folder=str(STATIC), static_url_path="/static")
    app.config.update(MAX_CONTENT_LENGTH=upstream.max_request_bytes, TRUSTED_HOSTS=list(hosts))

    @app.after_request
    def secure(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code == 413:
            return error(413, "RequestTooLarge",
                         f"the upload is larger than the server's limit of {upstream.max_request_bytes} bytes")
        return error(exc.code or 500, type(exc).__name__, exc.description or "")

    @app.get("/")
    def index():
        return send_from_directory(STATIC, "index.html")

    @app.get("/api/endpoints")
    def endpoints():
        """What the page builds its form from: each endpoint's options as its handler declares them."""
        return jsonify(endpoints={name: schema(name) for name in upstream.endpoints},
                       max_request_bytes=upstream.max_request_bytes)

    @app.get("/openapi.json")
    def openapi():
        """TorchServe's inference API as OpenAPI 3.1 (handlers/openapi.py), generated now: never stale."""
        return jsonify(openapi_document())

    @app.post("/api/predict/<endpoint>")
    def predict(endpoint: str):
        if endpoint not in upstream.endpoints:
            return error(404, "UnknownEndpoint", f"no endpoint '{endpoint}'; the studio serves: "
                                                 f"{', '.join(upstream.endpoints)}")
        origin = request.headers.get("Origin")
        if origin is not None and origin != request.host_url.rstrip("/"):
            return error(403, "CrossOrigin", "requests from other sites are refused")
        image_field = schema(endpoint)["image_field"]
        if image_field not in request.files:
            return error(400, "MissingImage", f"no photo: send it as the multipart field '{image_field}'")
        size, limit = image_size(request.files[image_field].stream), upstream.max_input_pixels.get(endpoint)
        if size and limit and size[0] * size[1] > limit:
            return error(413, "TooManyPixels", f"the image has {size[0]}x{size[1]} = {size[0] * size[1]} pixels; "
                                               f"{endpoint} takes at most {limit}")
        return forward(upstream, endpoint)

    return app


def forward(upstream: Upstream, endpoint: str) -> tuple[Response, int]:
    """POST the page's form fields and files to TorchServe with the studio's token; answer what it answers."""
    files = [(name, (f.filename or name, f.read(), f.mimetype or "application/octet-stream"))
             for name, f in request.files.items(multi=True)]
    fields = list(request.form.items(multi=True))
    url = f"{upstream.inference_url}/predictions/{endpoint}"
    try:  # a refused key (they expire) is read again from the key file, or renewed, and the post sent once more
        reply = request_with_key(upstream.tokens, "POST", url, files=files, data=fields,
                                 timeout=(10, upstream.timeout_s))
    except requests.ConnectionError:
        return error(502, "TorchServeUnreachable",
                     f"TorchServe does not answer at {upstream.inference_url}: start it with `make serve`")
    except RuntimeError as exc:  # no key file, or the key could not be renewed: the studio's problem, not the photo's
        return error(502, "NoToken", str(exc))
    if is_token_rejection(reply.status_code, reply.content):
        return error(502, "TokenRejected", f"TorchServe refused the studio's inference key (from "
                                           f"{upstream.tokens.key_file}): is that the server it talks to?")
    kind = reply.headers.get("Content-Type", "").split(";")[0].strip()
    if kind.startswith("image/") or kind == "application/json":
        return Response(reply.content, status=reply.status_code, content_type=kind), reply.status_code
    return error(reply.status_code if reply.status_code >= 400 else 502, "UpstreamError",
                 reply.text[:500] or f"TorchServe answered {reply.status_code} with no image")


def ensure_torchserve(config: Path, state: Path, model_store: Path) -> None:
    """Start TorchServe as ``make serve`` does unless the server recorded in ``state`` is running."""
    if running_pid(state):
        return
    print(f"TorchServe from {state} is not running: starting it (as `make serve` does).")
    serve_main(["start", "--config", str(config), "--state", str(state), "--model-store", str(model_store)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--config", type=Path, default=ROOT / "config.properties")
    parser.add_argument("--state", type=Path, default=ROOT / ".serve")
    parser.add_argument("--model-store", type=Path, default=ROOT / "model_store")
    args = parser.parse_args(argv)
    ensure_torchserve(args.config, args.state, args.model_store)
    hosts = LOOPBACK_NAMES if args.host in LOOPBACK_NAMES else (*LOOPBACK_NAMES, args.host)
    server = make_server(args.host, args.port, create_app(upstream_from_config(args.config, args.state), hosts),
                         threaded=True)
    print(f"Studio: open http://{'127.0.0.1' if args.host == '127.0.0.1' else args.host}:{server.port} "
          "(Ctrl-C stops the page; `make stop` stops TorchServe)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
