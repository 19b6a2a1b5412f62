"""The ab-bin prior of the colorizer's training photos (Zhang, Isola and Efros 2016, class rebalancing).

    python -m training.campaigns.colour.ab_prior --data DIR ... --out training/campaigns/colour/ab_prior.json

Counts, over every pixel of the photos the colorize task trains on (the split of training/data.py:
held-out photos excluded; loaded at the task's --max-side, as training loads them), how many fall
into each in-gamut ab bin (training.colour.ab_bins), and stores the counts and the distribution
smoothed by a Gaussian of sigma 5 (training.colour.smoothed_prior). Training reads it with
``--ab-prior`` and keeps it in the model (the ``class_prior`` buffer), so checkpoints and exports
carry the prior they were trained with.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import torch

from training.colour import AB_GRID, AB_SIGMA, ab_bins, ab_histogram, rgb_to_lab, smoothed_prior
from training.data import list_images, load_rgb, split, to_float
from training.tasks.colorize import ColorizeTask


def count_bins(paths: list[Path], max_side: int | None, centres: torch.Tensor) -> torch.Tensor:
    """[Q] pixel counts per ab bin over the photos, one photo at a time (bounded memory)."""
    counts = torch.zeros(len(centres), dtype=torch.float64)
    for path in paths:
        counts += ab_histogram(rgb_to_lab(to_float(load_rgb(path, max_side))[None])[:, 1:], centres)
    return counts


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="*", help="the folders colorize trains on (default: the bundled photos)")
    parser.add_argument("--max-side", type=int, default=ColorizeTask.default_max_side)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    train_paths, _ = split(list_images(args.data))
    centres = ab_bins()
    counts = count_bins(train_paths, args.max_side, centres)
    prior = smoothed_prior(counts, centres)
    record = {
        "command": "python -m training.campaigns.colour.ab_prior " + " ".join(
            shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)),
        "photos": len(train_paths), "max_side": args.max_side, "pixels": int(counts.sum()),
        "grid": AB_GRID, "sigma": AB_SIGMA,
        "centres": centres.tolist(), "counts": [int(c) for c in counts], "prior": prior.tolist(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record) + "\n")
    empty = int((counts == 0).sum())
    print(f"ab prior of {len(train_paths)} photos ({record['pixels']:,} pixels): {len(centres)} bins, "
          f"{empty} never seen; wrote {args.out}")
    return record


if __name__ == "__main__":
    main()
