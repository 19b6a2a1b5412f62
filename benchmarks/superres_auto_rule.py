"""How often superres's ``input=auto`` rule (handlers/input_quality.py) sends each kind of upload to the real network.

    python -m benchmarks.superres_auto_rule --data ../shared/data/photos ../shared/data/faces \
        ../shared/data/scenes ../shared/data/diverse [--split train|held-out] [--photos 200]

Per photo (long side at most 512 px, x4 antialiased bicubic downscale, as the clean network's input):

- ``clean PNG``: the downscale saved losslessly: should stay ``clean``;
- ``JPEG file``: saved as a JPEG at q35-65 (fixed seed): decided by its tables;
- ``JPEG re-saved as PNG``: that JPEG decoded and saved losslessly: only the pixels tell;
- ``cropped JPEG as PNG``: the same, cropped by (3, 5) pixels first, so the block grid is off phase 7.

``--split train`` (default: a fixed sample of the training split) is what the thresholds were chosen on;
``held-out`` checks them on photos they were not. Each upload goes through the server's decoder and rule.
Writes benchmarks/results/superres_auto_rule_<split>.json.
"""
from __future__ import annotations

import argparse
import io
import random

import numpy as np
from PIL import Image

from benchmarks.common import write_results
from benchmarks.superres_quality import JPEG_QUALITIES, auto_picks, encoded
from training.data import list_images, load_rgb, split, to_float
from training.tasks.superres import SCALE, bicubic_down

CROP = (3, 5)  # rows, columns cut before re-saving: neither a multiple of 8


def as_file(rgb: np.ndarray, fmt: str, **kwargs) -> bytes:
    return encoded(Image.fromarray(rgb), fmt, **kwargs)


def uploads(rgb: np.ndarray, quality: int) -> dict[str, bytes]:
    """The four uploads of one clean downscale (module docstring)."""
    jpeg = as_file(rgb, "JPEG", quality=quality)
    decoded = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))
    return {"clean PNG": as_file(rgb, "PNG"), "JPEG file": jpeg,
            "JPEG re-saved as PNG": as_file(decoded, "PNG"),
            "cropped JPEG as PNG": as_file(np.ascontiguousarray(decoded[CROP[0]:, CROP[1]:]), "PNG")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", required=True)
    parser.add_argument("--split", choices=("train", "held-out"), default="train")
    parser.add_argument("--photos", type=int, default=200, help="photos sampled from the split (0: all)")
    parser.add_argument("--max-side", type=int, default=512)
    args = parser.parse_args(argv)
    rng = random.Random(0)
    train, held = split(list_images(args.data))
    paths = train if args.split == "train" else held
    if args.photos and len(paths) > args.photos:
        paths = rng.sample(paths, args.photos)
    real: dict[str, int] = {}
    for path in paths:
        hr = to_float(load_rgb(path, args.max_side))[None]
        lr = bicubic_down(hr[..., : hr.shape[-2] // SCALE * SCALE, : hr.shape[-1] // SCALE * SCALE])
        rgb = (lr[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
        for kind, data in uploads(rgb, rng.randint(*JPEG_QUALITIES)).items():
            real[kind] = real.get(kind, 0) + (auto_picks(data) == "real")
    shares = {kind: count / len(paths) for kind, count in real.items()}
    for kind, share in shares.items():
        print(f"{kind:22s} called real: {share:5.1%} of {len(paths)} ({args.split} photos)")
    print(f"wrote {write_results(f'superres_auto_rule_{args.split}', {'photos': len(paths), 'real_share': shares})}")


if __name__ == "__main__":
    main()
