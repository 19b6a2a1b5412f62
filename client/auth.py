"""The inference token, as every client in this repo finds it and keeps it fresh.

TorchServe writes its keys to ``key_file.json`` in the server's working directory (``.serve/``
for ``make serve``) and replaces them when they expire (``token_expiration_min`` in
config.properties, 60 minutes by default). A long-running client therefore reads the key from
``$TS_TOKEN`` if set, else from the key file, and reads the file again whenever the server
rejects the key, then retries once.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_KEY_FILE = ROOT / ".serve" / "key_file.json"


def is_token_rejection(status: int, body: bytes | str) -> bool:
    """True when an answer means "your key is missing, wrong or expired" (not a bad image)."""
    if status in (401, 403):
        return True
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return status == 400 and "token" in text.lower()


class TokenSource:
    """Thread-safe holder of the inference key: ``header()`` to send it, ``refresh()`` after a rejection."""

    def __init__(self, key_file: Path | None = None, env: str = "TS_TOKEN", api: str = "inference") -> None:
        self.key_file = Path(os.environ.get("TS_KEY_FILE", DEFAULT_KEY_FILE)) if key_file is None else key_file
        self.env, self.api = env, api
        self._lock = threading.Lock()
        self._key: str | None = None

    def _read(self) -> str:
        if os.environ.get(self.env):
            return os.environ[self.env]
        try:
            return json.loads(self.key_file.read_text())[self.api]["key"]
        except FileNotFoundError:
            raise RuntimeError(f"no {self.env} set and no key file at {self.key_file}: is the server running "
                               "(`make serve`)?") from None

    def key(self) -> str:
        with self._lock:
            if self._key is None:
                self._key = self._read()
            return self._key

    def header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key()}"}

    def refresh(self) -> None:
        """Forget the cached key; the next ``key()`` reads the environment / key file again."""
        with self._lock:
            self._key = None
