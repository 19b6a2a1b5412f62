"""Shared fixtures: a real TorchServe started from archives built by torch-model-archiver."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import requests

from archives.build import archives
from client.auth import TokenSource, request_with_key
from serving.server import Server, start_isolated, stop


@dataclass
class Live:
    """A running server plus request helpers that carry the token (renewed when it expires mid-session)."""

    server: Server
    tokens: dict[str, TokenSource] = field(default_factory=dict)

    def _tokens(self, api: str) -> TokenSource:
        return self.tokens.setdefault(api, self.server.tokens(api))

    def predict(self, endpoint: str, body: bytes | None = None, files: dict | None = None,
                data: dict | None = None, headers: dict | None = None, token: bool = True) -> requests.Response:
        url = f"{self.server.inference_url}/predictions/{endpoint}"
        sent = dict(data=body if body is not None else data, files=files, headers=headers, timeout=300)
        if token and "Authorization" not in (headers or {}):
            return request_with_key(self._tokens("inference"), "POST", url, **sent)
        return requests.post(url, **sent)

    def management(self, method: str, path: str) -> requests.Response:
        return request_with_key(self._tokens("management"), method, f"{self.server.management_url}{path}", timeout=30)


@pytest.fixture(scope="session")
def live(tmp_path_factory) -> Live:
    """TorchServe with every archive, on free loopback ports, stopped by PID at the end."""
    server = start_isolated(tmp_path_factory.mktemp("torchserve"), archives())
    try:
        yield Live(server)
    finally:
        stop(server.state)
