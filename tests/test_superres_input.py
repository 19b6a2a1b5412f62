"""superres's ``input`` option in-process: which of its two networks answers (handlers/superres.py).

The archive's second network is stood in for by a freshly initialised ``real`` ESPCN, so the tests hold
whatever weights are shipped: they check the choice, not the quality (tests/test_superres_quality.py).
"""
from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from tests.support import ROOT, handler_for, run_handler
from tests.test_real_lowres import small_photo, to_bytes
from training.export import export_torchscript
from training.models.espcn import espcn


def _folder(tmp_path, with_real: bool):
    folder = tmp_path / ("two" if with_real else "one")
    folder.mkdir()
    for name in ("superres.pt", "model-config.yaml"):
        shutil.copy(ROOT / "archives" / "superres" / name, folder / name)
    if with_real:
        torch.manual_seed(0)
        export_torchscript(espcn("real"), (torch.rand(1, 3, 16, 16),), folder / "superres_real.pt")
    return folder


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    return handler_for("superres", _folder(tmp_path_factory.mktemp("superres"), with_real=True))


@pytest.fixture(scope="module")
def one(tmp_path_factory):
    return handler_for("superres", _folder(tmp_path_factory.mktemp("superres"), with_real=False))


def _pixels(result) -> np.ndarray:
    status, ctype, body = result
    assert status == 200 and ctype == "image/png", body[:200]
    return np.asarray(Image.open(io.BytesIO(body)))


JPEG = to_bytes(small_photo("chelsea"), "JPEG", quality=50)
PNG = to_bytes(small_photo("chelsea"), "PNG")


def test_auto_answers_a_jpeg_with_the_real_network(two):
    auto, real, clean = map(_pixels, run_handler(two, [{"body": JPEG}, {"body": JPEG, "input": b"real"},
                                                      {"body": JPEG, "input": b"clean"}]))
    assert np.array_equal(auto, real) and not np.array_equal(auto, clean)


def test_auto_answers_a_clean_png_with_the_clean_network(two):
    auto, clean, real = map(_pixels, run_handler(two, [{"body": PNG}, {"body": PNG, "input": b"clean"},
                                                      {"body": PNG, "input": b"real"}]))
    assert np.array_equal(auto, clean) and not np.array_equal(auto, real)


def test_input_as_a_header(two):
    [by_header] = run_handler(two, [{"body": PNG}], headers=[{"X-Input": "real"}])
    [by_field] = run_handler(two, [{"body": PNG, "input": b"real"}])
    assert np.array_equal(_pixels(by_header), _pixels(by_field))


def test_without_the_second_network_auto_is_clean_and_real_is_refused(one, two):
    auto, refused, fine = run_handler(one, [{"body": JPEG}, {"body": JPEG, "input": b"real"}, {"body": PNG}])
    [clean] = run_handler(two, [{"body": JPEG, "input": b"clean"}])
    assert np.array_equal(_pixels(auto), _pixels(clean))
    assert refused[0] == 400 and json.loads(refused[2])["type"] == "InvalidOption"
    assert "superres_real.pt" in json.loads(refused[2])["message"]
    _pixels(fine)  # the batch's other requests are answered


def test_unknown_input_value_gets_400(two):
    [(status, _, body)] = run_handler(two, [{"body": PNG, "input": b"best"}])
    assert status == 400 and "auto, clean, real" in json.loads(body)["message"]
