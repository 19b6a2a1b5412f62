"""Before/after grid of the deblur model on real blurry frames (no ground truth: look at it).

    python -m benchmarks.deblur_real_frames --frames ../shared/data/gopro_blur_only \\
        --weights archives/deblur/deblur.pt --compare old_deblur.pt

Each row is a 320 px crop at 100% (from the frame's centre, where GoPro shake is sharpest to judge)
of: the blurry frame, the ``--compare`` weights (e.g. the previously shipped model) if given, and
``--weights``, each run on the whole frame as the server tiles it. Writes
benchmarks/results/deblur_real_frames.png.

``--motion ../shared/data/motion240`` shows the dev-real set instead (each held-out sequence's 9 frames
averaged in linear light, real camera-and-object motion), with its sharp middle frame as the last column:

    python -m benchmarks.deblur_real_frames --motion ../shared/data/motion240 --compare old_deblur.pt \
        --out benchmarks/results/deblur_dev_real.png
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from benchmarks.common import RESULTS, ROOT
from benchmarks.deblur_quality import load, served
from training.data import list_images, load_rgb, to_float
from training.grid import save_grid
from training.real_motion import VALIDATION_SEQUENCES, load_sequences, window_pair


def restore(weights: Path, frame: torch.Tensor, tile: int) -> torch.Tensor:
    model, metadata = load(weights)
    return served(model, frame, metadata, tile)


def centre_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top:top + size, left:left + size]


def real_frames(folders: list[str], motion: Path | None) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """(blurry [1, 3, H, W], its sharp frame or None): the dev-real 9-frame averages, or frames without truth."""
    if motion is not None:
        pairs = [window_pair(seq, seq.shape[0]) for seq in load_sequences(motion, VALIDATION_SEQUENCES)]
        return [((b * 255).round()[None] / 255, s[None]) for b, s in pairs]
    if not folders:
        raise SystemExit("give --frames or --motion")
    return [(to_float(load_rgb(path))[None], None) for path in list_images(folders)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", nargs="+", default=[], help="folders of real blurry frames")
    parser.add_argument("--motion", type=Path, default=None, help="the motion240 folder: its dev-real sequences")
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
        for frame, sharp in real_frames(args.frames, args.motion):
            outputs = [frame] + [restore(w, frame, args.tile) for w in ([args.compare] if args.compare else [])]
            outputs.append(restore(args.weights, frame, args.tile))
            rows.append([centre_crop(o[0], args.crop) for o in outputs + ([sharp] if sharp is not None else [])])
    save_grid(rows, args.out, columns + (["sharp middle frame"] if args.motion else []), cell=args.crop)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
