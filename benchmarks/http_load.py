"""Closed-loop HTTP load for the serving benchmarks: N clients, each with one keep-alive connection,
each sending its next request as soon as its answer is in.

Locust would do the same with more client CPU per request; on a 2-core
machine the client shares the cores with the server, so this stays as thin as the standard
library allows (http.client, one thread per client).
"""
from __future__ import annotations

import http.client
import statistics
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


class Connection:
    """One keep-alive connection to a server's inference API."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
        self.headers = {**headers, "Content-Type": "application/octet-stream"}

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        self.conn.request("POST", path, body=body, headers=self.headers)
        reply = self.conn.getresponse()
        return reply.status, reply.read()

    def close(self) -> None:
        self.conn.close()


def timed_post(conn: Connection, path: str, body: bytes) -> float:
    """Seconds for one request; raises unless the answer is 200."""
    start = time.perf_counter()
    status, answer = conn.post(path, body)
    seconds = time.perf_counter() - start
    if status != 200:
        raise RuntimeError(f"POST {path}: {status} {answer[:300]!r}")
    return seconds


@dataclass
class LoadResult:
    clients: int
    seconds: float  # measured window
    latencies: list[float] = field(default_factory=list)  # seconds, answered requests in the window
    failures: int = 0

    @property
    def requests_per_second(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        if len(self.latencies) == 1:
            return self.latencies[0] * 1e3
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[round(q) - 1] * 1e3

    def summary(self) -> dict[str, float | int]:
        return {"clients": self.clients, "seconds": round(self.seconds, 2), "requests": len(self.latencies),
                "failures": self.failures, "requests_per_second": round(self.requests_per_second, 2),
                "p50_ms": round(self.percentile_ms(50), 2), "p95_ms": round(self.percentile_ms(95), 2)}


def closed_loop(url: str, headers: dict[str, str], path: str, body: bytes, clients: int, seconds: float) -> LoadResult:
    """``clients`` concurrent clients post ``body`` for ``seconds`` after one warm-up request each;
    requests that start in the window and answer 200 count, the others are failures."""
    result = LoadResult(clients, seconds)
    lock = threading.Lock()
    ready, go = threading.Barrier(clients + 1), threading.Event()
    window = {"end": 0.0}

    def client() -> None:
        conn = Connection(url, headers)
        try:
            conn.post(path, body)  # warm-up: connection, worker caches
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = Connection(url, headers)
        ready.wait()
        go.wait()
        while time.perf_counter() < window["end"]:
            start = time.perf_counter()
            try:
                status, _ = conn.post(path, body)
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = Connection(url, headers)
            with lock:
                if status == 200:
                    result.latencies.append(time.perf_counter() - start)
                else:
                    result.failures += 1
        conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    window["end"] = started + seconds
    go.set()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - started  # the last answers come in after the window closes
    return result
