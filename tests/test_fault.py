"""A worker killed with SIGKILL under steady load (a real TorchServe of its own): only the requests
in flight fail, at most one batch; a new worker answers within 10 s; every later request succeeds."""
from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass

import requests
import yaml

from serving.server import start_isolated, stop
from tests.support import ROOT, photo, png_bytes

ENDPOINT = "retouch"  # the fastest model: many requests in flight and queued at once
CLIENTS = 8  # more than a batch: some requests wait in the frontend's queue when the worker dies
RECOVERY_S = 10.0
GOOD = png_bytes(photo(48, 32, seed=4))


@dataclass
class Outcome:
    started: float
    ended: float
    status: int


def steady_load(server, results: list[Outcome], stop_flag: threading.Event) -> None:
    url, headers = f"{server.inference_url}/predictions/{ENDPOINT}", server.headers()
    while not stop_flag.is_set():
        started = time.time()
        try:
            status = requests.post(url, data=GOOD, headers=headers, timeout=120).status_code
        except requests.RequestException:
            status = 0
        results.append(Outcome(started, time.time(), status))


def test_sigkill_of_a_worker_under_load_fails_only_the_requests_in_flight(tmp_path):
    batch_size = yaml.safe_load((ROOT / "archives" / ENDPOINT / "model-config.yaml").read_text())["batchSize"]
    server = start_isolated(tmp_path, [ENDPOINT])
    results: list[Outcome] = []
    stop_flag = threading.Event()
    clients = [threading.Thread(target=steady_load, args=(server, results, stop_flag)) for _ in range(CLIENTS)]
    try:
        for client in clients:
            client.start()
        while sum(r.status == 200 for r in results) < 2 * CLIENTS:  # warm and steady
            time.sleep(0.1)
        (old,) = [w["pid"] for w in server.workers(ENDPOINT)]
        killed_at = time.time()
        os.kill(old, signal.SIGKILL)  # a worker of the server this test started
        deadline = killed_at + RECOVERY_S + 60  # give up (and fail below) well after the target
        while time.time() < deadline and not any(r.status == 200 and r.started > killed_at for r in results):
            time.sleep(0.1)
        time.sleep(3)  # keep the load on after the recovery
        stop_flag.set()
        for client in clients:
            client.join()
        workers = server.workers(ENDPOINT)
    finally:
        stop_flag.set()
        stop(server.state)

    failed = [r for r in results if r.status != 200]
    assert all(r.started <= killed_at <= r.ended for r in failed), "a request sent after the kill failed"
    assert len(failed) <= batch_size, f"{len(failed)} failures"
    answered = [r.ended for r in results if r.status == 200 and r.started > killed_at]
    assert answered, f"no request sent after the kill was answered within {deadline - killed_at:.0f} s"
    recovery = min(answered) - killed_at
    assert recovery <= RECOVERY_S, f"the first request after the kill was answered {recovery:.1f} s later"
    print(f"worker {old} killed under {CLIENTS} clients: {len(failed)} request(s) failed, all in flight; "
          f"a new worker answered {recovery:.1f} s later; {len(results)} requests in all")  # pytest -s: the figure in docs/reliability.md
    assert sum(r.started > killed_at + recovery for r in results) > CLIENTS  # the load went on, all of it answered
    assert len(workers) == 1 and workers[0]["pid"] != old and workers[0]["status"] == "READY"
