"""Shared fixtures: a real TorchServe started from archives built by torch-model-archiver."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from archives.build import build, endpoints
from serving.server import Server, read_properties, start, stop, wait_ready

from tests.support import ROOT, free_port

PORT_KEYS = ("inference_address", "management_address", "metrics_address")


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
    work = tmp_path_factory.mktemp("torchserve")
    store = work / "model_store"
    names = endpoints()
    for name in names:
        build(name, store)
    props = read_properties(ROOT / "config.properties")
    for key in PORT_KEYS:
        props[key] = f"http://127.0.0.1:{free_port()}"
    props["grpc_inference_port"], props["grpc_management_port"] = str(free_port()), str(free_port())
    props["model_store"] = str(store)
    config = work / "config.properties"
    config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    server = start(config, work / "state", store)
    try:
        wait_ready(server, names)
        yield Live(server)
    finally:
        stop(server.state)
