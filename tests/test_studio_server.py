"""The studio's page server: what it forwards to a real TorchServe, and everything it refuses."""
from __future__ import annotations

import io
import json
import re

import pytest
import yaml
from PIL import Image

from archives.build import endpoints
from client.auth import TokenSource
from handlers.options import schema
from serving.server import ROOT, free_port
from studio.server import (STATIC, Upstream, create_app, ensure_torchserve, input_pixel_limits, studio_endpoints,
                           upstream_from_config)
from tests.support import decode_png, photo, png_bytes

ORIGIN = "http://localhost"  # the Flask test client's own origin


def client_for(upstream: Upstream):
    return create_app(upstream).test_client()


def post(client, endpoint: str, fields: dict | None = None, files: dict | None = None, headers: dict | None = None):
    form = dict(fields or {})
    for name, (data, filename) in (files or {}).items():
        form[name] = (io.BytesIO(data), filename)
    return client.post(f"/api/predict/{endpoint}", data=form, content_type="multipart/form-data",
                       headers={"Origin": ORIGIN, **(headers or {})})


def photo_file(width: int = 40, height: int = 30) -> dict:
    return {"data": (png_bytes(photo(width, height)), "photo.png")}


@pytest.fixture
def offline(tmp_path) -> Upstream:
    """An upstream where nothing listens: for everything the studio decides before forwarding."""
    key_file = tmp_path / "key_file.json"
    key_file.write_text(json.dumps({"inference": {"key": "offline-key"}}))
    return Upstream(f"http://127.0.0.1:{free_port()}", TokenSource(key_file), studio_endpoints(), 4096)


@pytest.fixture(scope="module")
def studio(live):
    """The studio in front of the session's real TorchServe."""
    return client_for(upstream_from_config(live.server.state.parent / "config.properties", live.server.state))


# ---- forwarding to a real TorchServe -----------------------------------------------------------------
def test_superres_is_forwarded_and_answers_the_x4_image(studio):
    reply = post(studio, "superres", {"format": "png"}, photo_file(40, 30))
    assert reply.status_code == 200, reply.data[:300]
    assert reply.content_type == "image/png"
    assert decode_png(reply.data).size == (160, 120)


def test_colorize_gets_hints_reference_and_mode_as_sent(studio):
    gray = png_bytes(photo(48, 32, seed=1).convert("L"))
    hints = [{"x": 5, "y": 5, "rgb": [20, 60, 220]}, {"x": 40, "y": 20, "rgb": [230, 120, 20]}]
    reference = png_bytes(photo(24, 24, seed=2))
    reply = post(studio, "colorize", {"mode": "image", "hints": json.dumps(hints)},
                 {"data": (gray, "old.png"), "reference": (reference, "ref.png")})
    assert reply.status_code == 200, reply.data[:300]
    assert decode_png(reply.data).mode == "RGB"
    bad = post(studio, "colorize", {"hints": json.dumps([{"x": 99, "y": 0, "rgb": [0, 0, 0]}])},
               {"data": (gray, "old.png")})
    assert bad.status_code == 400 and bad.get_json()["type"] == "InvalidHints"  # the handler's verdict, as is


def test_the_handlers_json_errors_pass_through_plainly(studio):
    reply = post(studio, "deblur", files={"data": (b"not an image at all", "notes.png")})
    assert reply.status_code == 415
    assert reply.get_json()["type"] == "UnsupportedImage"
    bad_option = post(studio, "retouch", {"strength": "2"}, photo_file())
    assert bad_option.status_code == 400 and bad_option.get_json()["type"] == "InvalidOption"
    assert "strength" in bad_option.get_json()["message"]


def test_the_browsers_authorization_header_is_not_forwarded(studio):
    """The studio sends its own key: a browser's header neither helps nor harms."""
    reply = post(studio, "superres", files=photo_file(), headers={"Authorization": "Bearer wrong"})
    assert reply.status_code == 200


def test_a_refused_key_is_replaced_and_the_photo_sent_again(live, monkeypatch):
    monkeypatch.setenv("STUDIO_TEST_TOKEN", "stale-key")  # what a studio holds once its key expired
    tokens = TokenSource(live.server.key_file, env="STUDIO_TEST_TOKEN")
    client = client_for(Upstream(live.server.inference_url, tokens, studio_endpoints(), 67_108_864))
    assert post(client, "superres", files=photo_file()).status_code == 200
    assert tokens.key() == live.server.keys()["inference"]


def test_a_key_that_cannot_be_renewed_is_said_plainly(live, tmp_path):
    key_file = tmp_path / "key_file.json"  # no server.json beside it: the token API cannot be found
    key_file.write_text(json.dumps({**json.loads(live.server.key_file.read_text()), "inference": {"key": "stale-key"}}))
    client = client_for(Upstream(live.server.inference_url, TokenSource(key_file), studio_endpoints(), 67_108_864))
    refused = post(client, "superres", files=photo_file())
    assert refused.status_code == 502  # said as the studio's problem, not passed on as the photo's
    assert "stale-key" not in refused.get_data(as_text=True)


def test_a_running_torchserve_is_not_started_again(live):
    ensure_torchserve(ROOT / "config.properties", live.server.state, ROOT / "model_store")  # returns at once


# ---- the token stays on the server -------------------------------------------------------------------
def test_no_page_or_api_answer_carries_the_key(live, studio):
    key = live.server.keys()["inference"]
    answers = [studio.get("/"), studio.get("/api/endpoints"),
               *(studio.get(f"/static/{p.relative_to(STATIC)}") for p in STATIC.rglob("*") if p.is_file()),
               post(studio, "superres", files=photo_file())]
    for answer in answers:
        assert answer.status_code == 200
        assert key.encode() not in answer.data
        assert key not in json.dumps(dict(answer.headers))


# ---- refusals (decided before anything reaches TorchServe) -------------------------------------------
@pytest.mark.parametrize("path", [
    "/api/predict/management", "/api/predict/..%2Fmodels", "/api/predict/superres/extra",
    "/predictions/superres", "/api/predict/http:%2F%2Fexample.com", "/api/predict/",
])
def test_anything_but_the_endpoints_is_refused(offline, path):
    reply = client_for(offline).post(path, data={"data": (io.BytesIO(b"x"), "x.png")},
                                     headers={"Origin": ORIGIN})
    assert reply.status_code in (404, 405)
    assert reply.get_json()["code"] == reply.status_code


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_only_post_is_forwarded(offline, method):
    assert client_for(offline).open("/api/predict/superres", method=method).status_code == 405


def test_posts_from_other_sites_are_refused(offline):
    reply = post(client_for(offline), "superres", files=photo_file(), headers={"Origin": "http://evil.example"})
    assert reply.status_code == 403 and reply.get_json()["type"] == "CrossOrigin"


def test_other_host_names_are_refused(offline):
    """DNS rebinding: a page on evil.example resolved to 127.0.0.1 must not reach the studio's token."""
    reply = client_for(offline).get("/api/endpoints", headers={"Host": "evil.example:8000"})
    assert reply.status_code == 400


def test_uploads_over_the_limit_are_refused_with_json(offline):
    reply = post(client_for(offline), "superres", files={"data": (b"\0" * 5000, "big.png")})  # limit 4096
    assert reply.status_code == 413
    assert reply.get_json()["type"] == "RequestTooLarge"


def test_photos_over_the_endpoints_pixel_limit_are_refused_before_forwarding(offline):
    upstream = Upstream(offline.inference_url, offline.tokens, offline.endpoints, 67_108_864,
                        input_pixel_limits(offline.endpoints))
    big = {"data": (png_bytes(Image.new("RGB", (1700, 1500))), "big.png")}  # 2.55 MP: over superres's 2.5 MP
    reply = post(client_for(upstream), "superres", files=big)
    assert reply.status_code == 413 and reply.get_json()["type"] == "TooManyPixels"  # not 502: never forwarded
    assert post(client_for(upstream), "deblur", files=big).status_code == 502  # deblur takes 16 MP: forwarded


def test_the_pixel_limits_are_the_handlers():
    limits = input_pixel_limits(studio_endpoints())
    for name in studio_endpoints():
        config = yaml.safe_load((ROOT / "archives" / name / "model-config.yaml").read_text())
        assert limits[name] == config["handler"]["max_input_pixels"]


def test_the_limit_is_torchserves_max_request_size():
    max_request = re.search(r"^max_request_size=(\d+)", (ROOT / "config.properties").read_text(), re.M)
    assert upstream_from_config(ROOT / "config.properties", ROOT / ".serve").max_request_bytes == int(max_request[1])


def test_a_post_without_a_photo_is_refused(offline):
    reply = post(client_for(offline), "superres", {"format": "png"})
    assert reply.status_code == 400 and reply.get_json()["type"] == "MissingImage"


def test_torchserve_down_is_said_plainly(offline):
    reply = post(client_for(offline), "superres", files=photo_file())
    assert reply.status_code == 502
    assert "make serve" in reply.get_json()["message"]


# ---- the page ----------------------------------------------------------------------------------------
def test_every_answer_has_a_strict_content_security_policy(offline):
    client = client_for(offline)
    for answer in (client.get("/"), client.get("/static/js/main.js"), client.get("/api/endpoints"),
                   client.get("/nowhere")):
        policy = answer.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_the_page_loads_nothing_from_elsewhere():
    for path in STATIC.rglob("*"):
        if path.suffix in (".html", ".js", ".css"):
            text = path.read_text()
            assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), path
            assert "style=" not in text and "onclick" not in text.lower(), path  # the CSP would block them


def test_endpoints_are_described_by_the_handlers_schema(offline):
    described = client_for(offline).get("/api/endpoints").get_json()
    assert list(described["endpoints"]) == list(studio_endpoints()) == endpoints()
    for name, declared in described["endpoints"].items():
        assert declared == json.loads(json.dumps(schema(name)))
    assert described["max_request_bytes"] == 4096
