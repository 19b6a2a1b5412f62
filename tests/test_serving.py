"""Every served endpoint through a live TorchServe: security defaults, bad inputs, metrics."""
from __future__ import annotations

import concurrent.futures
import functools
import socket
from pathlib import Path

import pytest
import requests

from archives.build import archives, endpoints
from handlers.model_metadata import load
from serving.metrics import counter, scrape
from serving.server import free_port, port_range
from tests.support import ROOT, decode_png, photo, png_bytes
from tests.test_image_io import png_header_only

ENDPOINTS = endpoints()
GOOD = png_bytes(photo(48, 40, seed=7))
# Each model's own option, with values that must be refused.
BAD_MODEL_OPTIONS = {"deblur": ("ensemble", ["maybe", "2", ""]), "enhance": ("decoder", ["both", "", "1"]),
                     "retouch": ("strength", ["2", "-0.1", "strong", ""]), "colorize": ("mode", ["fast", ""])}


@functools.cache
def scale_of(endpoint: str) -> int:
    """Output size / input size, as the weights' metadata says."""
    return load(ROOT / "archives" / endpoint / f"{endpoint}.pt")[1].scale


def assert_good(live, endpoint: str) -> None:
    reply = live.predict(endpoint, GOOD)
    assert reply.status_code == 200, reply.text[:300]
    assert reply.headers["Content-Type"] == "image/png"
    assert decode_png(reply.content).size[0] >= 48


def test_every_archive_is_ready(live):
    reply = live.management("GET", "/models")
    assert reply.ok
    assert sorted(m["modelName"] for m in reply.json()["models"]) == sorted(archives())  # the models and restore


def test_inference_without_or_with_a_wrong_token_is_refused(live):
    assert live.predict("superres", GOOD, token=False).status_code in (400, 401, 403)
    reply = live.predict("superres", GOOD, token=False, headers={"Authorization": "Bearer not-the-key"})
    assert reply.status_code in (400, 401, 403) and "Token" in reply.text


def test_management_needs_its_own_token(live):
    url = f"{live.server.management_url}/models"
    assert requests.get(url, headers=live.server.headers("inference"), timeout=10).status_code in (400, 401, 403)


def test_model_registration_api_is_off(live):
    """enable_model_api=false: registering or deleting models answers 405, even with the right token."""
    assert live.management("POST", "/models?url=superres.mar&model_name=again").status_code == 405
    assert live.management("DELETE", "/models/superres").status_code == 405
    assert len(live.management("GET", "/models").json()["models"]) == len(archives())


def test_apis_listen_on_loopback_only(live):
    for url in (live.server.inference_url, live.server.management_url, live.server.metrics_url):
        assert url.startswith("http://127.0.0.1:")


BAD_INPUTS = {
    "empty body": (b"", 400),
    "not an image": (b"%PDF-1.4 not an image", 415),
    "truncated": (GOOD[: len(GOOD) // 2], 400),
    "decompression bomb": (png_header_only(100_000, 100_000), 413),
    "too many pixels": (png_header_only(9000, 5000), 413),
}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gets_json_4xx_and_the_next_request_succeeds(live, endpoint, case):
    body, code = BAD_INPUTS[case]
    reply = live.predict(endpoint, body)
    assert reply.status_code == code, reply.text[:300]
    assert reply.headers["Content-Type"].startswith("application/json")
    assert set(reply.json()) >= {"code", "type", "message"}
    assert_good(live, endpoint)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_wrong_form_field_and_bad_option(live, endpoint):
    reply = live.predict(endpoint, files={"file": ("a.png", GOOD, "image/png")})
    assert reply.status_code == 400 and reply.json()["type"] == "UnknownField"
    reply = live.predict(endpoint, files={"data": ("a.png", GOOD, "image/png")}, data={"format": "gif"})
    assert reply.status_code == 400 and reply.json()["type"] == "InvalidOption"
    assert_good(live, endpoint)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16"])
def test_odd_modes_are_served(live, endpoint, mode):
    img = photo(40, 32, seed=3)
    img = img.convert("I;16") if mode == "I;16" else img.convert(mode)
    body = png_bytes(img, "JPEG" if mode == "CMYK" else "PNG")
    reply = live.predict(endpoint, body)
    assert reply.status_code == 200, reply.text[:300]
    out = decode_png(reply.content)
    assert out.size[0] % 40 == 0 and out.size[1] % 32 == 0


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("size", [(1, 1), (17, 9), (101, 77)])
def test_any_size_comes_back_at_the_model_scale(live, endpoint, size):
    reply = live.predict(endpoint, png_bytes(photo(*size, seed=2)))
    assert reply.status_code == 200 and reply.headers["Content-Type"] == "image/png"
    scale = scale_of(endpoint)
    assert decode_png(reply.content).size == (size[0] * scale, size[1] * scale)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("fmt,ctype", [("jpeg", "image/jpeg"), ("webp", "image/webp"), ("png", "image/png")])
def test_output_format_as_multipart_field(live, endpoint, fmt, ctype):
    reply = live.predict(endpoint, files={"data": ("x.png", png_bytes(photo(20, 16)), "image/png")},
                         data={"format": fmt, "quality": "85"})
    assert reply.status_code == 200 and reply.headers["Content-Type"] == ctype
    scale = scale_of(endpoint)
    assert decode_png(reply.content).size == (20 * scale, 16 * scale)


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e != "colorize"])  # colorize answers in colour
def test_grayscale_upload_is_answered_in_grayscale(live, endpoint):
    reply = live.predict(endpoint, png_bytes(photo(33, 21, mode="L")))
    assert reply.status_code == 200 and decode_png(reply.content).mode == "L"


@pytest.mark.parametrize("endpoint,option,value", [(e, o, v) for e, (o, values) in BAD_MODEL_OPTIONS.items()
                                                   if e in ENDPOINTS for v in values])
def test_bad_model_option_gets_json_400_then_a_good_request_succeeds(live, endpoint, option, value):
    reply = live.predict(endpoint, files={"data": ("x.png", GOOD, "image/png")}, data={option: value})
    assert reply.status_code == 400 and reply.headers["Content-Type"].startswith("application/json")
    assert reply.json()["type"] == "InvalidOption" and option in reply.json()["message"]
    assert_good(live, endpoint)


def test_concurrent_good_and_bad_requests(live):
    bodies = [GOOD, b"junk", GOOD, b"", GOOD, GOOD[: len(GOOD) // 2]] * 2
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(lambda b: live.predict("superres", b).status_code, bodies))
    assert codes == [200, 415, 200, 400, 200, 400] * 2


BATCHING = "colorize"  # batchSize 4 in its model-config.yaml (superres too; the others measured best at 1)


def test_one_batch_mixing_good_and_broken_uploads(live):
    """Concurrent uploads to an endpoint that batches: whatever breaks one request, every good one gets its image."""
    jpeg = png_bytes(photo(64, 64, seed=1), "JPEG")
    broken = [jpeg[:200], b"junk", GOOD[: len(GOOD) // 2], b"", png_header_only(9000, 5000)]  # 200: inside the header
    goods = [png_bytes(photo(48, 40, seed=s)) for s in range(len(broken) + 3)]
    bodies = [b for pair in zip(goods, broken) for b in pair] + goods[len(broken):]
    for _ in range(2):
        with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
            replies = list(pool.map(lambda b: live.predict(BATCHING, b), bodies))
        for body, reply in zip(bodies, replies):
            if body in goods:
                assert reply.status_code == 200, reply.text[:300]
                assert decode_png(reply.content).size == (48, 40)
            else:
                assert 400 <= reply.status_code < 600 and reply.headers["Content-Type"].startswith("application/json")
                assert reply.json()["request_id"] == reply.headers["x-request-id"]  # the id in the worker's log
    assert_good(live, BATCHING)


def test_prometheus_metrics_count_requests_and_megapixels(live):
    before = scrape(live.server.metrics_url)
    for _ in range(3):
        assert live.predict("superres", GOOD).status_code == 200
    after = scrape(live.server.metrics_url)
    assert counter(after, "ts_inference_requests_total", "superres") - counter(before, "ts_inference_requests_total", "superres") == 3
    gained = counter(after, "MegapixelsProcessed", "superres") - counter(before, "MegapixelsProcessed", "superres")
    assert gained == pytest.approx(3 * 48 * 40 / 1e6, rel=0.05)
    for stage in ("Decode", "Batch", "Predict", "Encode"):  # each stage's milliseconds, per model
        assert counter(after, f"{stage}Ms", "superres") > counter(before, f"{stage}Ms", "superres")


def _page_faults(pid: int) -> int:
    """Minor page faults of a process so far, all its threads (``/proc/<pid>/stat``, field 10)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[7])


def test_a_worker_reuses_its_buffers_instead_of_faulting_them_in_again(live):
    """A worker answering one 512 px photo after another keeps its buffers: glibc's start-up settings had
    the retouch worker hand them back and page-fault them in again, some 16,000 pages per thread and
    request (about 30% of its CPU time in the kernel)."""
    (worker,) = live.server.workers("retouch")
    body = png_bytes(photo(512, 512, seed=4))
    for _ in range(2):
        assert live.predict("retouch", body).status_code == 200
    before = _page_faults(worker["pid"])
    for _ in range(3):
        assert live.predict("retouch", body).status_code == 200
    assert (_page_faults(worker["pid"]) - before) / 3 < 1000


def test_free_ports_are_distinct_bindable_and_outside_the_ephemeral_range():
    """Test servers' ports: an outgoing connection's source port (the ephemeral range) can never take one."""
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(p in port_range() for p in ports)
    settings = Path("/proc/sys/net/ipv4/ip_local_port_range")
    if settings.exists():  # Linux: the kernel's own setting, read here apart from the code under test
        ephemeral_low = int(settings.read_text().split()[0])
        assert ephemeral_low <= 21000 or max(ports) < ephemeral_low
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports[-1]))
