"""The serving benchmarks' own logic: the load client against a real local HTTP server, the sweep's
grid and choice, the docs/serving.md table rewrite. (Their figures are printed by the scripts, not tested.)"""
from __future__ import annotations

import http.server
import threading

import pytest

from benchmarks.batching_sweep import recommend, variants
from benchmarks.common import ROOT
from benchmarks.http_load import closed_loop
from benchmarks.serve_latency import DOC, README_MARKERS, update_readme


class Replies(http.server.BaseHTTPRequestHandler):
    """200 for /ok, 503 for anything else; counts the requests it saw."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the benchmark client expects
    seen = 0
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        self.rfile.read(int(self.headers["Content-Length"]))
        with self.lock:
            type(self).seen += 1
        status = 200 if self.path == "/ok" else 503
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def local_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Replies)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Replies.seen = 0
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_closed_loop_counts_answers_and_failures(local_server):
    good = closed_loop(local_server, {}, "/ok", b"image", clients=3, seconds=0.5)
    assert good.failures == 0 and len(good.latencies) > 3
    assert good.requests_per_second == pytest.approx(len(good.latencies) / good.seconds)
    assert 0 < good.summary()["p50_ms"] <= good.summary()["p95_ms"]
    assert Replies.seen == len(good.latencies) + 3  # plus one warm-up request per client
    bad = closed_loop(local_server, {}, "/busy", b"image", clients=2, seconds=0.3)
    assert bad.failures > 0 and not bad.latencies


def test_batch_size_one_is_swept_at_one_delay_only():
    grid = variants((1, 4), (1, 20), (1, 2))
    assert len(grid) == 2 * (1 + 2)
    assert {(v.batch_size, v.max_batch_delay) for v in grid} == {(1, 1), (4, 1), (4, 20)}


def row(batch: int, delay: int, workers: int, clients: int, rps: float, p50: float) -> dict:
    return {"endpoint": "superres", "batch_size": batch, "max_batch_delay": delay, "workers": workers, "threads": 2,
            "clients": clients, "requests_per_second": rps, "p50_ms": p50}


def test_recommendation_keeps_one_client_latency_and_then_maximises_throughput():
    rows = [row(1, 1, 1, 1, 100, 10.0), row(1, 1, 1, 16, 150, 100),
            row(4, 1, 1, 1, 98, 10.5), row(4, 1, 1, 16, 300, 50),
            row(4, 20, 1, 1, 40, 30.0), row(4, 20, 1, 16, 400, 40)]  # fastest at 16 clients, but 3x slower alone
    best = recommend(rows)["superres"]
    assert (best["batch_size"], best["max_batch_delay"]) == (4, 1)
    assert best["requests_per_second_under_load"] == 300


def test_recommendation_averages_the_loaded_runs_and_prefers_the_smaller_batch_on_a_tie():
    rows = [row(1, 1, 1, 1, 25, 40.0), row(1, 1, 1, 4, 30, 130), row(1, 1, 1, 16, 34, 470),
            row(4, 1, 1, 1, 24, 48.0), row(4, 1, 1, 4, 34, 118), row(4, 1, 1, 16, 30, 530),  # same mean under load
            row(1, 1, 2, 1, 26, 39.0), row(1, 1, 2, 4, 20, 200), row(1, 1, 2, 16, 9, 1600)]  # 2 workers collapse
    best = recommend(rows)["superres"]
    assert (best["batch_size"], best["workers"]) == (1, 1)
    assert best["requests_per_second_under_load"] == 32


def test_readme_table_is_rewritten_between_its_markers(tmp_path):
    begin, end = README_MARKERS
    assert DOC == ROOT / "docs" / "serving.md" and begin in DOC.read_text() and end in DOC.read_text()
    readme = tmp_path / "serving.md"
    readme.write_text(f"intro\n{begin}\nold table\n{end}\noutro\n")
    results = {"superres": {"input": "128x128", "output": "512x512", "http_p50_ms": 12.0, "handler_p50_ms": 10.0,
                            "predict_p50_ms": 9.0, "http_over_predict": 1.33, "tiny_http_p50_ms": 8.0},
               "command": "python -m benchmarks.serve_latency", "machine": {"cpu": "x86_64", "torch": "2"}}
    update_readme(results, readme)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old table" not in text
    assert "| superres | 128x128 → 512x512 | 12.0 ms |" in text and "1.33, **missed**" in text and "8.0 ms, met" in text
    readme.write_text("no markers")
    with pytest.raises(SystemExit):
        update_readme(results, readme)
