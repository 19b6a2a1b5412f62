"""Before/after grid of the deblur model on real blurry frames (no ground truth: look at it).

    python -m benchmarks.deblur_real_frames --frames ../shared/data/gopro_blur_only \\
        --weights archives/deblur/deblur.pt --compare old_deblur.pt

Each row is a 320 px crop at 100% (from the frame's centre, where GoPro shake is sharpest to judge)
of: the blurry frame, the ``--compare`` weights (e.g. the previously shipped model) if given, and
``--weights``, each run on the whole frame as the server tiles it. Writes
benchmarks/results/deblur_real_frames.png.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from benchmarks.common import RESULTS, ROOT
from benchmarks.deblur_quality import load, served
from training.data import list_images, load_rgb, to_float
from training.grid import save_grid


def restore(weights: Path, frame: torch.Tensor, tile: int) -> torch.Tensor:
    model, metadata = load(weights)
    return served(model, frame, metadata, tile)


def centre_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top:top + size, left:left + size]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", nargs="+", required=True, help="folders of real blurry frames")
    parser.add_argument("--weights", type=Path, default=ROOT / "archives" / "deblur" / "deblur.pt")
    parser.add_argument("--compare", type=Path, default=None, help="other weights shown in a middle column")
    parser.add_argument("--crop", type=int, default=320)
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--out", type=Path, default=RESULTS / "deblur_real_frames.png")
    args = parser.parse_args()
    torch.set_num_threads(2)
    columns = ["blurry"] + ([f"{args.compare.stem}"] if args.compare else []) + [args.weights.stem]
    rows = []
    with torch.inference_mode():
        for path in list_images(args.frames):
            frame = to_float(load_rgb(path))[None]
            outputs = [frame] + [restore(w, frame, args.tile) for w in ([args.compare] if args.compare else [])]
            outputs.append(restore(args.weights, frame, args.tile))
            rows.append([centre_crop(o[0], args.crop) for o in outputs])
            print(path.name, flush=True)
    save_grid(rows, args.out, columns, cell=args.crop)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
