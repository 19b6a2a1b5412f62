"""Shared fixtures: a real TorchServe started from archives built by torch-model-archiver."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import requests

from archives.build import endpoints
from serving.server import Server, start_isolated, stop


@dataclass
class Live:
    """A running server plus request helpers that carry the token."""

    server: Server

    def predict(self, endpoint: str, body: bytes | None = None, files: dict | None = None,
                data: dict | None = None, headers: dict | None = None, token: bool = True) -> requests.Response:
        all_headers = {**(self.server.headers() if token else {}), **(headers or {})}
        return requests.post(f"{self.server.inference_url}/predictions/{endpoint}", data=body if body is not None else data,
                             files=files, headers=all_headers, timeout=300)

    def management(self, method: str, path: str) -> requests.Response:
        return requests.request(method, f"{self.server.management_url}{path}",
                                headers=self.server.headers("management"), timeout=30)


@pytest.fixture(scope="session")
def live(tmp_path_factory) -> Live:
    """TorchServe with every archive, on free loopback ports, stopped by PID at the end."""
    server = start_isolated(tmp_path_factory.mktemp("torchserve"), endpoints())
    try:
        yield Live(server)
    finally:
        stop(server.state)
