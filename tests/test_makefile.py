"""The user's entry points: `make serve` without Java says how to install it, in one sentence."""
from __future__ import annotations

import shutil
import subprocess

from tests.support import ROOT


def test_make_serve_without_java_explains_how_to_install_it(tmp_path):
    make = shutil.which("make")
    run = subprocess.run([make, "-s", "serve"], cwd=ROOT, env={"PATH": str(tmp_path)}, capture_output=True, text=True)
    assert run.returncode != 0
    assert "Java was not found" in run.stdout + run.stderr
    assert "openjdk-17" in run.stdout + run.stderr
