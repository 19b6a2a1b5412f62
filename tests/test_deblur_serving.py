"""deblur through the live server (sizes, formats, ensemble option, bad inputs, real deblurring)
and the real handler in-process with the shipped weights (tiling seams)."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from tests.support import decode_png, handler_for, photo, png_bytes, run_handler, shared_data
from training.data import list_images, load_rgb, split, to_float
from training.degradations.motion_blur import degrade
from training.metrics import psnr


def as_float(img) -> torch.Tensor:
    return torch.from_numpy(np.array(img.convert("RGB"))).permute(2, 0, 1).float().div(255)


def test_jpeg_output_and_grayscale_kept(live):
    reply = live.predict("deblur", files={"data": ("x.png", png_bytes(photo(40, 30, mode="L")), "image/png")},
                         data={"format": "jpeg"})
    assert reply.status_code == 200 and reply.headers["Content-Type"] == "image/jpeg"
    out = decode_png(reply.content)
    assert out.size == (40, 30) and out.mode == "L"


def test_ensemble_option_is_close_to_but_not_the_plain_output(live):
    body = png_bytes(photo(70, 50, seed=4))
    plain = live.predict("deblur", files={"data": ("x.png", body, "image/png")}, data={"ensemble": "false"})
    ens = live.predict("deblur", files={"data": ("x.png", body, "image/png")}, data={"ensemble": "true"})
    assert plain.status_code == ens.status_code == 200
    a, b = as_float(decode_png(plain.content)), as_float(decode_png(ens.content))
    assert a.shape == b.shape == (3, 50, 70)
    assert 0 < (a - b).abs().mean().item() < 0.02


def test_server_deblurs_a_held_out_photo(live):
    """The benchmark's first held-out case (same photo, same seed) comes back closer to the sharp original.

    Gains vary with the kernel: this case draws a long one, on which the shipped model gains +0.36 dB in-process
    (+0.62 dB is the benchmark's mean).
    """
    held_out = split(list_images([str(shared_data("photos")), str(shared_data("faces"))]))[1]
    clean = to_float(load_rgb(held_out[0], 512))[None]
    blurry, target = degrade(clean, np.random.default_rng(1234))  # benchmarks/deblur_quality.py's seed + 0
    upload = (blurry[0] * 255).round().byte().permute(1, 2, 0).numpy()
    reply = live.predict("deblur", png_bytes(Image.fromarray(upload)))
    assert reply.status_code == 200
    restored = as_float(decode_png(reply.content))[None]
    assert psnr(restored, target) > psnr(blurry, target) + 0.2


def test_real_handler_tiles_without_seams():
    """The shipped weights through the real handler: small tiles (so many seams) == one whole pass."""
    body = png_bytes(photo(300, 260, seed=5))
    whole = handler_for("deblur", tile=0)
    tiled = handler_for("deblur", tile=64)
    assert tiled.metadata.context >= 60  # read from the TorchScript file (the tile context measured on the weights)
    [(status_a, _, a)], [(status_b, _, b)] = run_handler(whole, [{"body": body}]), run_handler(tiled, [{"body": body}])
    assert status_a == status_b == 200
    diff = np.abs(np.asarray(decode_png(a), dtype=int) - np.asarray(decode_png(b), dtype=int))
    assert diff.max() <= 1  # 8-bit rounding of float-level differences only
