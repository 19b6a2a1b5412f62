"""The GPU check's CPU dry run (benchmarks/gpu_check.py --dry-run): the one command a GPU machine will
run, with the GPU parts skipped, through its own TorchServe of one endpoint and small photos (cheap)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from benchmarks import gpu_check
from serving.server import java_missing


def test_psnr_and_verdicts_on_known_images():
    a = np.zeros((8, 8, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 255  # one pixel off by 255: mse = 255^2 / 192 -> 10*log10(192) = 22.8 dB
    assert gpu_check.psnr(a, a) == math.inf
    assert gpu_check.psnr(a, b) == pytest.approx(10 * math.log10(192))
    ok, bad = gpu_check.Answer("x", "64", "cpu", 200, [0.1], a), gpu_check.Answer("x", "64", "gpu", 200, [0.1], b)
    assert gpu_check.compare(ok, ok)["pass"]
    verdict = gpu_check.compare(bad, ok)
    assert not verdict["pass"] and "22.8 dB" in verdict["reason"]
    missing = gpu_check.compare(gpu_check.Answer("x", "64", "gpu", 500, error="boom"), ok)
    assert not missing["pass"] and "boom" in missing["reason"]


@pytest.mark.skipif(java_missing(), reason="TorchServe needs Java")
def test_dry_run_writes_the_report_for_one_endpoint(tmp_path, capsys):
    status = gpu_check.main([str(tmp_path), "--dry-run", "--endpoints", "superres", "--repeats", "1"])
    report = json.loads((tmp_path / "report.json").read_text())
    (row,) = report["rows"]
    assert status == 0 and report["dry_run"] and report["passed"] and report["gpu_memory"] is None
    assert (row["endpoint"], row["size"], row["cpu_status"], row["identical"]) == ("superres", "64", 200, True)
    assert row["cpu_p50_ms"] > 0 and row["gpu_p50_ms"] is None
    assert "superres" in (tmp_path / "report.txt").read_text() and "superres" in capsys.readouterr().out
    assert (tmp_path / "cpu-server" / "state" / "torchserve.log").exists()  # the server's logs stay in OUT
    assert not (tmp_path / "gpu-server").exists()
