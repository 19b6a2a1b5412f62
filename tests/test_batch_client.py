"""The batch client (python -m client.batch) against a live TorchServe: a tree of 20 photos with a
corrupt one and subfolders, resume after Ctrl-C, a rotated key, a model without workers (503)."""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests
import yaml

from client.auth import TokenSource
from client.batch import Restorer, bundle_urls, main, plan, run
from serving.server import free_port
from tests.support import ROOT, decode_png, interrupt_after, photo, png_bytes

GOOD_COUNT = 19  # plus one corrupt file: 20 images


def make_tree(root: Path, size: tuple[int, int] = (24, 16)) -> list[Path]:
    """19 good photos (PNG and JPEG, in root, sub/ and sub/deeper/), a truncated JPEG, a text file."""
    root.mkdir(parents=True, exist_ok=True)
    good = []
    for i in range(GOOD_COUNT):
        folder = root / ("sub/deeper" if i % 7 == 6 else "sub" if i % 3 == 2 else "")
        folder.mkdir(parents=True, exist_ok=True)
        fmt, suffix = ("JPEG", ".jpg") if i % 4 == 1 else ("PNG", ".png")
        path = folder / f"photo_{i:02d}{suffix}"
        path.write_bytes(png_bytes(photo(*size, seed=i), fmt))
        good.append(path.relative_to(root))
    whole = png_bytes(photo(*size, seed=99), "JPEG")
    (root / "sub" / "broken.jpg").write_bytes(whole[: len(whole) // 2])
    (root / "notes.txt").write_text("not an image: the client must not send it")
    return good


def args(live, in_dir: Path, out_dir: Path, *extra: str) -> list[str]:
    return [str(in_dir), str(out_dir), "--url", live.server.inference_url, "--key-file", str(live.server.key_file),
            "--no-progress", *extra]


def summary_counts(text: str) -> dict[str, int]:
    match = re.search(r"done (\d+), skipped (\d+), failed (\d+)", text)
    assert match, text
    return dict(zip(("done", "skipped", "failed"), map(int, match.groups())))


def failure_rows(out_dir: Path) -> list[dict]:
    with (out_dir / "failures.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_a_tree_is_restored_with_its_paths_and_the_corrupt_file_is_reported(live, tmp_path, capsys):
    good = make_tree(tmp_path / "in")
    out = tmp_path / "out"
    assert main(args(live, tmp_path / "in", out, "--endpoint", "superres", "--workers", "3")) == 1
    assert summary_counts(capsys.readouterr().out) == {"done": GOOD_COUNT, "skipped": 0, "failed": 1}
    written = sorted(p.relative_to(out) for p in out.rglob("*.png"))
    assert written == sorted(p.with_suffix(".png") for p in good)
    for relative in good:
        assert decode_png((out / relative.with_suffix(".png")).read_bytes()).size == (96, 64)  # x4
    direct = live.predict("superres", (tmp_path / "in" / good[0]).read_bytes())
    assert np.array_equal(np.asarray(decode_png(direct.content)),
                          np.asarray(decode_png((out / good[0].with_suffix(".png")).read_bytes())))
    rows = failure_rows(out)
    assert [(r["path"], r["status"]) for r in rows] == [("sub/broken.jpg", "400")]
    assert "corrupt" in rows[0]["message"]
    assert not list(out.rglob("*.part"))


def test_options_and_format_reach_the_endpoint(live, tmp_path, capsys):
    in_dir = tmp_path / "in"
    in_dir.mkdir()
    (in_dir / "a.png").write_bytes(png_bytes(photo(40, 32, seed=1)))
    out = tmp_path / "out"
    assert main(args(live, in_dir, out, "--endpoint", "deblur", "--opt", "ensemble=true", "--format", "jpeg")) == 0
    assert (out / "a.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    assert not (out / "failures.csv").exists()
    assert main(args(live, in_dir, tmp_path / "bad", "--endpoint", "deblur", "--opt", "ensemble=maybe")) == 1
    assert "ensemble" in failure_rows(tmp_path / "bad")[0]["message"]


def test_a_run_stopped_with_ctrl_c_resumes_where_it_was(live, tmp_path):
    good = make_tree(tmp_path / "in", size=(320, 240))  # about 0.3 s each: the run lasts seconds
    out = tmp_path / "out"
    command = [sys.executable, "-m", "client.batch", *args(live, tmp_path / "in", out, "--endpoint", "superres",
                                                           "--workers", "1")]
    first = interrupt_after(command, ROOT, out)
    stdout, stderr = first.stdout, first.stderr
    assert first.returncode != 0, stdout + stderr
    assert "interrupted" in stderr, (first.returncode, stdout, stderr)
    kept = sorted(p.relative_to(out) for p in out.rglob("*.png"))
    stopped = summary_counts(stdout)
    assert 3 <= len(kept) == stopped["done"] < GOOD_COUNT, (stdout, kept)
    assert "not attempted" in stdout
    assert not list(out.rglob("*.part"))

    second = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert second.returncode == 1  # the corrupt file fails again
    again = summary_counts(second.stdout)
    assert again == {"done": GOOD_COUNT - len(kept), "skipped": len(kept), "failed": 1}
    assert sorted(p.relative_to(out) for p in out.rglob("*.png")) == sorted(p.with_suffix(".png") for p in good)
    for relative in good:
        assert decode_png((out / relative.with_suffix(".png")).read_bytes()).size == (1280, 960)


def rotate_inference_key(live) -> None:
    """TorchServe's token API: a new inference key, written to the key file; the old one stops working."""
    api_key = json.loads(live.server.key_file.read_text())["API"]["key"]
    reply = requests.post(f"{live.server.management_url}/token?type=inference",
                          headers={"Authorization": f"Bearer {api_key}"}, timeout=30)
    assert reply.ok, reply.text


def test_a_replaced_key_is_read_again_from_the_key_file(live, tmp_path):
    make_tree(tmp_path / "in")
    token = TokenSource(live.server.key_file)
    old = token.key()  # cached, as a long run would hold it
    rotate_inference_key(live)
    jobs, _ = plan(tmp_path / "in", tmp_path / "out", ".png")
    summary = run(jobs, Restorer(live.server.inference_url, "superres", {}, token), workers=2, progress=False)
    assert token.key() != old
    assert (summary.done, summary.failed) == (GOOD_COUNT, 1)


def scale(live, endpoint: str, workers: int) -> None:
    """Scale workers and wait for them (a worker start takes minutes on a loaded CPU)."""
    reply = requests.put(f"{live.server.management_url}/models/{endpoint}",
                         params={"min_worker": workers, "max_worker": workers, "synchronous": "true"},
                         headers=live.server.headers("management"), timeout=600)
    assert reply.ok, reply.text


def test_503_while_the_model_has_no_worker_is_retried(live, tmp_path):
    in_dir = tmp_path / "in"
    in_dir.mkdir()
    for i in range(3):
        (in_dir / f"{i}.png").write_bytes(png_bytes(photo(24, 16, seed=i)))
    jobs, _ = plan(in_dir, tmp_path / "out", ".png")
    restorer = Restorer(live.server.inference_url, "superres", {}, TokenSource(live.server.key_file), retries=12)
    config = yaml.safe_load((ROOT / "archives" / "superres" / "model-config.yaml").read_text())
    scale(live, "superres", 0)
    try:
        assert live.predict("superres", (in_dir / "0.png").read_bytes()).status_code == 503
        result = {}
        worker = threading.Thread(target=lambda: result.update(summary=run(jobs, restorer, 3, progress=False)))
        worker.start()
        deadline = time.time() + 60
        while restorer.retried < 3 and time.time() < deadline:  # the client meets 503s meanwhile
            time.sleep(0.1)
        assert restorer.retried >= 3
    finally:
        scale(live, "superres", int(config["minWorkers"]))
    worker.join(timeout=300)
    assert (result["summary"].done, result["summary"].failed) == (3, 0)
    assert result["summary"].retried >= 3


def test_no_server_and_unknown_endpoint_stop_the_run_early(live, tmp_path, capsys):
    make_tree(tmp_path / "in")
    nowhere = f"http://127.0.0.1:{free_port()}"
    assert main([*args(live, tmp_path / "in", tmp_path / "a", "--endpoint", "superres", "--workers", "1"),
                 "--url", nowhere, "--retries", "1"]) == 1
    assert "not attempted 19" in capsys.readouterr().out  # one tried, the others not started
    assert "no connection" in failure_rows(tmp_path / "a")[0]["message"]
    assert main(args(live, tmp_path / "in", tmp_path / "b", "--endpoint", "nosuch", "--workers", "2")) == 1
    rows = failure_rows(tmp_path / "b")
    assert rows and len(rows) <= 2 and all(r["status"] == "404" for r in rows)


def test_make_batch(live, tmp_path):
    good = make_tree(tmp_path / "in")
    shutil.rmtree(tmp_path / "in" / "sub")
    make = shutil.which("make")
    env = {**os.environ, "TS_KEY_FILE": str(live.server.key_file)}
    done = subprocess.run([make, "-s", "batch", f"IN={tmp_path / 'in'}", f"OUT={tmp_path / 'out'}", "ENDPOINT=superres",
                           "FORMAT=webp", "WORKERS=2", f"URL={live.server.inference_url}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    expected = sorted(p.with_suffix(".webp") for p in good if p.parent == Path("."))
    assert sorted(p.relative_to(tmp_path / "out") for p in (tmp_path / "out").rglob("*.webp")) == expected
    assert "images/s" in done.stderr  # the tqdm bar's rate


def test_plan_keeps_stems_skips_clashes_and_its_own_output(tmp_path):
    (tmp_path / "in" / "x").mkdir(parents=True)
    for name in ("a.png", "a.JPG", "b.tif", "x/c.webp", "x/readme.md"):
        (tmp_path / "in" / name).write_bytes(b"")
    (tmp_path / "in" / "out").mkdir()
    (tmp_path / "in" / "out" / "a.jpg").write_bytes(b"")  # an earlier output inside IN_DIR
    jobs, clashes = plan(tmp_path / "in", tmp_path / "in" / "out", ".jpg")
    assert [(j.relative.as_posix(), j.target.relative_to(tmp_path / "in" / "out").as_posix()) for j in jobs] == [
        ("a.JPG", "a.jpg"), ("b.tif", "b.jpg"), ("x/c.webp", "x/c.jpg")]
    assert [c[0].as_posix() for c in clashes] == ["a.png"] and "a.JPG" in clashes[0][1]


def test_the_default_addresses_are_the_bundles(tmp_path):
    config = tmp_path / "config.properties"
    config.write_text("inference_address=http://0.0.0.0:9123\nmanagement_address=http://127.0.0.1:9124\n")
    assert bundle_urls(config) == ("http://127.0.0.1:9123", "http://127.0.0.1:9124")
    assert bundle_urls() == ("http://127.0.0.1:8080", "http://127.0.0.1:8081")  # the repository's config.properties
