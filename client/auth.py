"""The API keys, as every client in this repo finds them and keeps them fresh.

TorchServe 0.12 writes its keys to ``key_file.json`` in the server's working directory (``.serve/``
for ``make serve``). The inference and management keys expire (``token_expiration_min`` in
config.properties, 60 minutes by default); the server then answers
``400 {"type": "InvalidKeyException", ...}`` and does **not** replace them by itself: a new key
is made only when someone calls the token API, ``GET <management>/token?type=inference`` with the
key file's ``API`` key, which also rewrites the key file.

So a long-running client reads the key from ``$TS_TOKEN`` if set, else from the key file, and after
a rejection reads the file again; if the file still holds the rejected key, it asks the token API
for a new one, then retries once. The management address comes from ``state/server.json``
(written by ``serving.server.start`` beside the key file), or ``$TS_MANAGEMENT_URL``.
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_KEY_FILE = ROOT / ".serve" / "key_file.json"
REJECTION_TYPE = "InvalidKeyException"  # TorchServe's answer to a missing, wrong or expired key
FRESH_S = 5.0  # a key this source got this recently is not replaced by a refresh() that names no key


def is_token_rejection(status: int, body: bytes | str) -> bool:
    """True when an answer means "your key is missing, wrong or expired" (not a bad image).

    TorchServe answers 400 with a JSON body of type InvalidKeyException (checked against a real
    server in tests/test_tokens.py); 401/403 are what a proxy in front of it would say."""
    if status in (401, 403):
        return True
    if status != 400:
        return False
    try:
        answer = json.loads(body)
    except (ValueError, TypeError):
        return False
    return isinstance(answer, dict) and answer.get("type") == REJECTION_TYPE


class TokenSource:
    """Thread-safe holder of one API key: ``header()`` to send it, ``refresh(key)`` after the server rejected ``key``."""

    def __init__(self, key_file: Path | None = None, env: str | None = None, api: str = "inference",
                 management_url: str | None = None) -> None:
        """``env`` names the variable that may hold the key: TS_TOKEN for inference, TS_MANAGEMENT_TOKEN for management."""
        self.key_file = Path(os.environ.get("TS_KEY_FILE", DEFAULT_KEY_FILE)) if key_file is None else Path(key_file)
        self.env = env or ("TS_TOKEN" if api == "inference" else f"TS_{api.upper()}_TOKEN")
        self.api = api
        self.management_url = management_url or os.environ.get("TS_MANAGEMENT_URL")
        self._lock = threading.Lock()
        self._key: str | None = None
        self._env_rejected = False
        self._changed_at = float("-inf")  # when refresh() last gave a different key
        self.renewals = 0  # keys this source had the server make (token API calls)

    def _from_env(self) -> str | None:
        return None if self._env_rejected else os.environ.get(self.env) or None

    def _from_file(self) -> dict:
        try:
            return json.loads(self.key_file.read_text())
        except FileNotFoundError:
            raise RuntimeError(f"no {self.env} set and no key file at {self.key_file}: is the server running "
                               "(`make serve`)?") from None

    def _management_url(self) -> str:
        if self.management_url:
            return self.management_url
        try:
            return json.loads((self.key_file.parent / "server.json").read_text())["management_url"]
        except (FileNotFoundError, KeyError, ValueError):
            raise RuntimeError(f"the key in {self.key_file} was refused and the management address is unknown "
                               "(no server.json beside it): set TS_MANAGEMENT_URL") from None

    def _renew(self, api_key: str) -> None:
        """Have the server make a new key; it rewrites the key file."""
        reply = requests.get(f"{self._management_url()}/token", params={"type": self.api},
                             headers={"Authorization": f"Bearer {api_key}"}, timeout=30)
        if not reply.ok:
            raise RuntimeError(f"the token API refused to renew the {self.api} key: {reply.status_code} {reply.text[:200]}")
        self.renewals += 1

    def key(self) -> str:
        with self._lock:
            if self._key is None:
                self._key = self._from_env() or self._from_file()[self.api]["key"]
            return self._key

    def header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key()}"}

    def refresh(self, rejected: str | None = None) -> str:
        """The key to use after the server refused ``rejected`` (default: the current key).

        Threads that share this source should pass the key they sent: when another thread already
        replaced it, nothing more happens. Without it, a key changed in the last FRESH_S seconds is
        kept (the other threads refused with the old key must not renew it again). A rejected
        ``$TS_TOKEN`` is dropped for the key file."""
        with self._lock:
            if rejected is None and time.monotonic() - self._changed_at < FRESH_S:
                return self._key
            rejected = self._key if rejected is None else rejected
            if self._key is not None and self._key != rejected:
                return self._key
            if rejected is not None and rejected == os.environ.get(self.env):
                self._env_rejected = True
            keys = self._from_file()
            if keys[self.api]["key"] == rejected:  # expired (or revoked) and nobody renewed it yet
                self._renew(keys["API"]["key"])
                keys = self._from_file()
            if keys[self.api]["key"] != self._key:
                self._key, self._changed_at = keys[self.api]["key"], time.monotonic()
            return self._key


def request_with_key(tokens: TokenSource, method: str, url: str, **kwargs) -> requests.Response:
    """``requests.request`` carrying ``tokens``' key; sent once more with a renewed key if the server refuses it."""
    headers = kwargs.pop("headers", None) or {}
    reply = None
    for _ in range(2):
        key = tokens.key()
        reply = requests.request(method, url, headers={**headers, "Authorization": f"Bearer {key}"}, **kwargs)
        if not is_token_rejection(reply.status_code, reply.content):
            break
        tokens.refresh(key)
    return reply
