"""A grid of real small portraits enlarged x4: the JPEG as sent, bicubic, each network, the original.

    python -m benchmarks.superres_real_grid --data ../shared/data/faces --prints ../shared/data/oldprints

Rows: held-out CelebA-HQ faces (never trained on) downscaled x4 and saved as JPEG at qualities drawn
from 35-65 (fixed seed), then portraits among the real historical prints of ``oldprints/`` (never
trained on) downscaled x4 and saved as a messenger would (JPEG q50). Each cell is a 1:1 crop of the x4
output around the face, so 8x8 block edges show as a user would see them. Writes
benchmarks/results/superres_real_grid.png.
"""
from __future__ import annotations

import argparse
import random
from pathlib import Path

import torch
from torch.nn import functional as F

from benchmarks.common import ROOT, held_out_photos
from benchmarks.superres_quality import JPEG_QUALITIES, REAL_WEIGHTS, WEIGHTS, jpeg_lowres
from training.data import load_rgb, to_float
from training.grid import save_grid
from training.tasks.superres import SCALE, bicubic_up

# each print's face centre (fraction of height, of width) in its centred square
PRINT_PORTRAITS = {"20sWoman.jpg": (0.3, 0.5), "Evelyn_Nesbit.jpg": (0.3, 0.5),
                   "Rutherford_Hayes.jpg": (0.35, 0.5), "wh-auden.jpg": (0.3, 0.78)}
PRINT_QUALITY = 50
CROP = 256  # output pixels shown per cell, 1:1
FACES = 4


def square(hr: torch.Tensor) -> torch.Tensor:
    """The centred square of ``hr``, its side a multiple of the scale."""
    h, w = hr.shape[-2:]
    side = min(h, w) // SCALE * SCALE
    top, left = (h - side) // 2, (w - side) // 2
    return hr[..., top: top + side, left: left + side]


def face_crop(x: torch.Tensor, centre: tuple[float, float]) -> torch.Tensor:
    """A CROP x CROP window around ``centre`` (fractions of height and width), kept inside the image."""
    h, w = x.shape[-2:]
    top = min(max(int(centre[0] * h) - CROP // 2, 0), h - CROP)
    left = min(max(int(centre[1] * w) - CROP // 2, 0), w - CROP)
    return x[0, :, top: top + CROP, left: left + CROP]


@torch.inference_mode()
def row(hr: torch.Tensor, quality: int, models: dict[str, torch.jit.ScriptModule],
        centre: tuple[float, float]) -> list[torch.Tensor]:
    lr, _ = jpeg_lowres(hr, quality)
    outputs = [F.interpolate(lr, scale_factor=SCALE, mode="nearest"), bicubic_up(lr)]
    outputs += [m(lr).clamp(0, 1) for m in models.values()]
    return [face_crop(x, centre) for x in (*outputs, hr)]


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", required=True, help="face folders (their held-out split is used)")
    parser.add_argument("--prints", type=Path, required=True, help="the oldprints folder")
    parser.add_argument("--real-weights", type=Path, default=REAL_WEIGHTS)
    args = parser.parse_args(argv)
    models = {"clean network": torch.jit.load(str(WEIGHTS)).eval()}
    if args.real_weights.exists():
        models["real network"] = torch.jit.load(str(args.real_weights)).eval()
    rng = random.Random(0)
    rows = [row(square(hr), rng.randint(*JPEG_QUALITIES), models, (0.5, 0.5))
            for _, hr in held_out_photos(args.data, 512)[:FACES]]
    rows += [row(square(to_float(load_rgb(args.prints / name, 512))[None]), PRINT_QUALITY, models, centre)
             for name, centre in PRINT_PORTRAITS.items()]
    labels = ["JPEG as sent (x4 nearest)", "bicubic", *models, "original"]
    path = ROOT / "benchmarks" / "results" / "superres_real_grid.png"
    save_grid(rows, path, labels, cell=CROP)
    print(f"wrote {path.relative_to(ROOT)} ({len(rows)} rows)")
    return path


if __name__ == "__main__":
    main()
