"""TorchServe's logs (serving/log4j2.xml): every line once, a quiet console, and a folder whose size is bounded."""
from __future__ import annotations

import gzip
import re
from pathlib import Path

import requests

from serving.server import start_isolated, stop
from tests.support import photo, png_bytes

GOOD = png_bytes(photo(32, 24, seed=9))
SIZE_KB, FILES = 16, 2  # tiny limits, so that a test's traffic rolls the files over several times


def read_log(logs: Path, name: str) -> list[str]:
    """Every line still kept of one log, oldest rolled file first (fileIndex max: the highest index is the newest)."""
    rolled = sorted(logs.glob(f"{name}.*.log.gz"), key=lambda p: int(p.name.split(".")[1]))
    texts = [gzip.decompress(p.read_bytes()).decode() for p in rolled] + [(logs / f"{name}.log").read_text()]
    return "".join(texts).splitlines()


def test_logs_hold_each_line_once_and_roll_over_within_a_bounded_size(tmp_path):
    settings = {"vmargs": f"-Xmx1g -Drestoration.log.size={SIZE_KB}KB -Drestoration.log.files={FILES}"}
    server = start_isolated(tmp_path, ["retouch"], settings)
    url, headers = f"{server.inference_url}/predictions/retouch", server.headers()
    try:
        codes = [requests.post(url, data=body, headers=headers, timeout=60).status_code
                 for body in [GOOD] * 100 + [b"not an image"] * 20]
        codes.append(requests.post(url, data=GOOD, timeout=60).status_code)  # no key
    finally:
        stop(server.state)
    assert codes.count(200) == 100 and codes.count(415) == 20 and codes[-1] == 400
    logs = server.state / "logs"

    access = [line for line in read_log(logs, "access_log") if "POST /predictions/retouch" in line]
    assert len(access) == len(codes)  # once each, refused ones too
    ts_log = read_log(logs, "ts_log")
    doubled = [a for a, b in zip(ts_log, ts_log[1:]) if a == b]
    assert not doubled, doubled[:3]  # TorchServe's own config writes every frontend line twice
    assert not any("ACCESS_LOG" in line for line in ts_log)  # request lines live in access_log only
    console = (server.state / "torchserve.log").read_text()
    assert "/predictions/" not in console and not re.search(r"\[(INFO|DEBUG) ?\]", console)

    for name in ("ts_log", "access_log", "model_log"):
        assert len(list(logs.glob(f"{name}.*.log.gz"))) <= FILES
    assert len(list(logs.glob("ts_log.*.log.gz"))) == FILES  # it did roll over (and dropped the oldest)
    for path in logs.glob("*.log"):
        assert path.stat().st_size <= SIZE_KB * 1024 + 4096, path  # rolled over once past the size (one line of slack)
    assert sum(p.stat().st_size for p in logs.iterdir()) <= 5 * (1 + FILES) * (SIZE_KB * 1024 + 4096)
