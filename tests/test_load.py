"""A short headless Locust run against the live server: any failed request fails the suite."""
from __future__ import annotations

import csv
import os
import subprocess
import sys

from archives.build import endpoints
from tests.support import ROOT


def test_locust_run_has_no_failures(live, tmp_path):
    """As docs/serving.md runs it against `make serve`: no TS_TOKEN, the key comes from the server's key file."""
    env = {k: v for k, v in os.environ.items() if k != "TS_TOKEN"}
    env.update(TS_KEY_FILE=str(live.server.key_file), TS_ENDPOINTS=",".join(endpoints()))
    prefix = tmp_path / "locust"
    run = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "tests" / "load" / "locustfile.py"), "--headless",
         "-u", "3", "-r", "3", "-t", "15s", "--host", live.server.inference_url, "--csv", str(prefix),
         "--exit-code-on-error", "1", "--only-summary"],
        env=env, capture_output=True, text=True, timeout=120)
    rows = {row["Name"]: row for row in csv.DictReader(open(f"{prefix}_stats.csv"))}
    total = rows["Aggregated"]
    assert run.returncode == 0, run.stderr[-2000:]
    assert int(total["Request Count"]) > 0
    assert int(total["Failure Count"]) == 0
