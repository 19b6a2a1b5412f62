"""enhance through the live server (the decoder option, real glare removal on a held-out photo) and
the real handler in-process (a large photo in tiles under one shared condition)."""
from __future__ import annotations

import numpy as np
import torch

from tests.support import decode_png, handler_for, photo, png_bytes, run_handler, shared_data
from training.data import list_images, load_rgb, split, to_float
from training.degradations.glare import add_glare
from training.metrics import psnr


def as_float(img) -> torch.Tensor:
    return torch.from_numpy(np.array(img.convert("RGB"))).permute(2, 0, 1).float().div(255)


def as_png(x: torch.Tensor) -> bytes:
    from PIL import Image

    return png_bytes(Image.fromarray((x.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()))


def post(live, body: bytes, **fields: str):
    return live.predict("enhance", files={"data": ("x.png", body, "image/png")}, data=fields)


def test_decoder_option_gives_the_ablation_outputs(live):
    """ensemble = 0.5 main + 0.5 light (up to 8-bit rounding and clamping); light only ever removes light."""
    body = png_bytes(photo(72, 56, seed=5))
    replies = {d: post(live, body, decoder=d) for d in ("ensemble", "main", "light")}
    assert all(r.status_code == 200 for r in replies.values())
    out = {d: as_float(decode_png(r.content)) for d, r in replies.items()}
    assert not torch.equal(out["main"], out["light"])
    # Each answer is clamped to [0, 1]; where neither decoder was clamped the average must hold.
    inside = ((out["main"] > 0) & (out["main"] < 1) & (out["light"] > 0) & (out["light"] < 1))
    assert inside.float().mean() > 0.5
    assert (out["ensemble"] - 0.5 * (out["main"] + out["light"]))[inside].abs().max() <= 1.5 / 255
    assert (out["light"] <= as_float(decode_png(body)) + 0.5 / 255).all()


def test_decoder_option_as_header(live):
    body = png_bytes(photo(40, 30, seed=6))
    by_header = live.predict("enhance", body, headers={"X-Decoder": "light"})
    by_field = post(live, body, decoder="light")
    assert by_header.status_code == by_field.status_code == 200
    assert by_header.content == by_field.content


def test_server_removes_glare_from_a_held_out_photo(live):
    photos = shared_data("photos")
    held_out = split(list_images([str(photos)]))[1]
    clean = to_float(load_rgb(held_out[0], 384))
    degraded = add_glare(clean[None], torch.Generator().manual_seed(0))[0]
    reply = live.predict("enhance", as_png(degraded))
    assert reply.status_code == 200
    restored = as_float(decode_png(reply.content))
    assert restored.shape == clean.shape
    assert psnr(restored, clean) > psnr(degraded, clean) + 1.0


def glaring_photo(width: int, height: int) -> bytes:
    """A photo-like image with a bright light source and its glow in one corner: the condition matters."""
    from PIL import Image

    base = torch.from_numpy(np.asarray(photo(width, height, seed=3), dtype=np.float32) / 255).permute(2, 0, 1)
    yy, xx = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    glow = torch.exp(-(((xx - 0.8 * width) ** 2 + (yy - 0.2 * height) ** 2) / (0.1 * width) ** 2))
    lit = (base * 0.7 + 0.6 * glow).clamp(0, 1)
    return png_bytes(Image.fromarray((lit * 255).round().byte().permute(1, 2, 0).numpy()))


def test_large_photo_tiled_matches_untiled():
    """A 2000x1500 photo in tiles shares one condition: within 1/255 of the untiled answer."""
    body = glaring_photo(2000, 1500)
    [(status_a, _, whole)] = run_handler(handler_for("enhance", tile=0), [{"body": body}])
    [(status_b, _, tiled)] = run_handler(handler_for("enhance", tile=512), [{"body": body}])
    assert status_a == status_b == 200
    diff = np.abs(np.asarray(decode_png(whole), dtype=int) - np.asarray(decode_png(tiled), dtype=int))
    assert diff.max() <= 1


def test_tiles_with_their_own_conditions_would_differ():
    """The test above could not pass by accident: tiles conditioned on themselves (the old way) disagree."""
    from image_io import decode
    from tiling import run

    handler = handler_for("enhance", tile=256)
    x = handler.to_batch([decode(glaring_photo(900, 600), 10**7)])
    with torch.inference_mode():
        shared = handler.predict(x, {"decoder": "ensemble"})
        own = run(handler.model, x, handler.metadata, 256).clamp(0, 1)
    assert (shared - own).abs().max() > 2 / 255
