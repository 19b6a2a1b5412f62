"""Expiring API keys against a real TorchServe whose keys live seconds (token_expiration_min).

TorchServe refuses an expired key with 400 InvalidKeyException and keeps it in key_file.json until
someone calls its token API: client/auth.py renews it, and the Locust file keeps going across expiries.
"""
from __future__ import annotations

import concurrent.futures
import csv
import json
import os
import subprocess
import sys
import time
from datetime import datetime

import pytest
import requests

from client.auth import REJECTION_TYPE, TokenSource, is_token_rejection
from serving.server import start_isolated, stop
from tests.support import ROOT, photo, png_bytes

EXPIRY_MIN = 0.2  # 12 s: short enough to wait for in a test (the keys may expire while the server starts)
GOOD = png_bytes(photo(32, 24, seed=5))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_isolated(tmp_path_factory.mktemp("tokens"), ["retouch"], {"token_expiration_min": str(EXPIRY_MIN)})
    try:
        yield srv
    finally:
        stop(srv.state)


def predict(server, key: str | None, body: bytes = GOOD) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.post(f"{server.inference_url}/predictions/retouch", data=body, headers=headers, timeout=60)


def fresh_key(server, api: str = "inference") -> str:
    """Have the server make a new key now (the owner's way: the token API with the key file's API key)."""
    tokens = server.tokens(api)
    return tokens.refresh(tokens.key())


def wait_until_expired(server, api: str = "inference") -> str:
    """Sleep past the expiry recorded in the key file; returns the (now expired) key."""
    entry = json.loads(server.key_file.read_text())[api]
    expires = datetime.fromisoformat(entry["expiration time"][:19] + "+00:00")  # Java's Instant, to the second
    time.sleep(max(0.0, expires.timestamp() + 1.0 - time.time()) + 1.0)
    return entry["key"]


def test_expired_key_is_refused_as_the_client_expects_and_renewed(server):
    fresh_key(server)
    tokens = server.tokens()
    key = tokens.key()
    assert predict(server, key).status_code == 200
    expired = wait_until_expired(server)
    assert expired == key
    refused = predict(server, key)
    assert refused.status_code == 400 and refused.json()["type"] == REJECTION_TYPE, refused.text
    assert is_token_rejection(refused.status_code, refused.content)
    # The server keeps the expired key in its file: only the token API replaces it.
    assert json.loads(server.key_file.read_text())["inference"]["key"] == key
    renewed = tokens.refresh(key)
    assert renewed != key and tokens.renewals == 1
    assert json.loads(server.key_file.read_text())["inference"]["key"] == renewed
    reply = predict(server, renewed)
    assert reply.status_code == 200 and reply.headers["Content-Type"] == "image/png"


def test_threads_refusing_the_same_key_renew_it_once(server):
    """Whether they name the refused key or not (client/batch.py and studio/server.py do not)."""
    tokens = server.tokens()
    expired = wait_until_expired(server)
    assert tokens.key() == expired
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda i: tokens.refresh(expired if i % 2 else None), range(8)))
    assert len(keys) == 1 and tokens.renewals == 1
    assert predict(server, keys.pop()).status_code == 200


def test_a_refused_ts_token_falls_back_to_the_key_file(server, monkeypatch):
    fresh_key(server)  # valid for the next seconds
    monkeypatch.setenv("TS_TOKEN", "not-the-key")
    tokens = TokenSource(server.key_file, management_url=server.management_url)
    assert tokens.key() == "not-the-key"
    refused = predict(server, "not-the-key")
    assert is_token_rejection(refused.status_code, refused.content)
    key = tokens.refresh("not-the-key")
    assert predict(server, key).status_code == 200


def test_management_key_is_renewed_too(server):
    tokens = server.tokens("management")
    wait_until_expired(server, "management")
    workers = server.workers("retouch", tokens)  # refused once, renewed, sent again
    assert workers and workers[0]["status"] == "READY" and tokens.renewals == 1


def test_bad_images_and_missing_keys_are_told_apart(server):
    key = fresh_key(server)
    for body in (b"not an image", GOOD[:40]):
        reply = predict(server, key, body)
        assert 400 <= reply.status_code < 500 and reply.json()["type"] != REJECTION_TYPE
        assert not is_token_rejection(reply.status_code, reply.content)
    missing = predict(server, None)
    assert is_token_rejection(missing.status_code, missing.content)


def test_locust_keeps_going_across_key_expiries(server, tmp_path):
    """A miniature of a 2-hour run: the key expires twice, no TS_TOKEN, no failure."""
    fresh_key(server)
    env = {k: v for k, v in os.environ.items() if k != "TS_TOKEN"}
    env.update(TS_KEY_FILE=str(server.key_file), TS_ENDPOINTS="retouch")
    prefix = tmp_path / "locust"
    run = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "tests" / "load" / "locustfile.py"), "--headless",
         "-u", "2", "-r", "2", "-t", f"{int(EXPIRY_MIN * 60 * 2.5)}s", "--host", server.inference_url,
         "--csv", str(prefix), "--only-summary"],
        env=env, capture_output=True, text=True, timeout=180)
    rows = {row["Name"]: row for row in csv.DictReader(open(f"{prefix}_stats.csv"))}
    assert run.returncode == 0, run.stderr[-2000:]
    assert int(rows["Aggregated"]["Failure Count"]) == 0, run.stderr[-2000:]
    assert int(rows["token refresh"]["Request Count"]) >= 2  # the key expired at least twice during the run
    assert int(rows["/predictions/retouch"]["Request Count"]) > 10
