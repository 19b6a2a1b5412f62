"""Measure how much tile context a tiled model really needs, and stamp it into its TorchScript file.

    python -m benchmarks.tile_context archives/deblur/deblur.pt --data ../shared/data/photos \\
        ../shared/data/faces ../shared/data/scenes --blur --write

A tile must carry half the receptive field of context on each side for tiled output to equal
untiled output exactly, but a network's influence fades long before that: the atrous deblur
network (267 px receptive field) gives output within 1/255 of untiled with about half of it. Each
window costs (tile + 2 * context)^2, so the context sets the price of every large photo.

On the held-out photos at least ``--min-side`` px a side (``--blur``: blurred first, as the deblur
benchmark does, since the model's influence depends on its input), candidate contexts on the
model's stride grid (by bisection) run the photos in small tiles (many seams), compared with one
untiled pass; the smallest context whose largest difference over all pixels is below
``--tolerance`` (default 0.5/255: 8-bit answers differ by at most one level, with a margin for
other photos) is reported and, with --write, stored as the file's ``tile_context``
(handlers/model_metadata.py), which the server's tiling then uses. Writes benchmarks/results/tile_context_<file stem>.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import ROOT, held_out_photos, write_results
from training.degradations.motion_blur import BlurConfig, degrade
from training.export import add_metadata

sys.path.insert(0, str(ROOT / "handlers"))  # the serving code, as the handler runs it
from model_metadata import ModelMetadata, load  # noqa: E402
from tiling import round_up, run, run_padded  # noqa: E402


def largest_difference(model, photos: list[torch.Tensor], wholes: list[torch.Tensor], metadata: ModelMetadata,
                       context: int, tile: int) -> float:
    """Largest |tiled - untiled| over every pixel of ``photos`` (outputs clamped to [0, 1] as served), tiled
    by the server's own rule (tiling.run) with ``context`` as the file's tile context."""
    with_context = replace(metadata, tile_context=context)
    return max(float((run(model, x, with_context, tile).clamp(0, 1) - whole).abs().max())
               for x, whole in zip(photos, wholes))


@torch.inference_mode()
def smallest_context(model, photos: list[torch.Tensor], metadata: ModelMetadata, tile: int,
                     tolerance: float) -> tuple[int, dict[int, float]]:
    """(the smallest context on the stride grid within ``tolerance``, the largest difference per context tried).

    A bisection: the difference falls as the context grows (more of the fading influence is inside the
    tile), so about five tries find the smallest of twenty-odd candidates."""
    wholes = [run_padded(model, x, metadata.stride, metadata.scale).clamp(0, 1) for x in photos]
    exact = round_up((metadata.receptive_field + 1) // 2, metadata.stride)
    candidates = list(range(metadata.stride, exact + 1, metadata.stride))
    tried: dict[int, float] = {}
    low, high = 0, len(candidates) - 1  # the answer is candidates[high] once low == high
    while low < high:
        mid = (low + high) // 2
        context = candidates[mid]
        tried[context] = largest_difference(model, photos, wholes, metadata, context, tile)
        print(f"context {context:4d} px: largest difference {tried[context] * 255:.3f}/255", flush=True)
        if tried[context] < tolerance:
            high = mid
        else:
            low = mid + 1
    return candidates[high], tried


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", type=Path, help="an exported TorchScript file of a tiled model")
    parser.add_argument("--data", nargs="+", required=True, help="photo folders (their held-out split is used)")
    parser.add_argument("--photos", type=int, default=4, help="how many held-out photos")
    parser.add_argument("--min-side", type=int, default=700, help="photos with a shorter side are skipped")
    parser.add_argument("--max-side", type=int, default=1024)
    parser.add_argument("--blur", action="store_true", help="blur the photos first (kernels 5-31 px, as deblur_quality)")
    parser.add_argument("--tile", type=int, default=256, help="tile side of the comparison (small: many seams)")
    parser.add_argument("--tolerance", type=float, default=0.5 / 255, help="half a level: a margin for other photos")
    parser.add_argument("--write", action="store_true", help="store the result in the file's metadata")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    module, metadata = load(args.weights)
    if metadata.large_image != "tiles":
        raise SystemExit(f"{args.weights} is not run in tiles ({metadata.large_image})")
    model = torch.jit.freeze(module.eval())  # as the handler serves it
    photos = [x for _, x in held_out_photos(args.data, args.max_side) if min(x.shape[-2:]) >= args.min_side]
    if not photos:
        raise SystemExit(f"no held-out photo of at least {args.min_side} px a side in {args.data}")
    photos = photos[:args.photos]
    if args.blur:
        cfg = BlurConfig(kernel_sizes=(BlurConfig.kernel_sizes[0], 31))
        photos = [degrade(x, np.random.default_rng(i), cfg)[0] for i, x in enumerate(photos)]
    context, tried = smallest_context(model, photos, replace(metadata, tile_context=0), args.tile, args.tolerance)
    result = {"weights": str(args.weights), "receptive_field": metadata.receptive_field,
              "exact_context": (metadata.receptive_field + 1) // 2, "tile_context": context,
              "tolerance_255ths": args.tolerance * 255, "photos": [list(x.shape[-2:]) for x in photos],
              "blurred": args.blur, "tile": args.tile,
              "largest_difference_255ths": {str(c): round(d * 255, 4) for c, d in tried.items()}}
    print(json.dumps({k: v for k, v in result.items() if k != "largest_difference_255ths"}))
    write_results(f"tile_context_{args.weights.stem}", result)
    if args.write:
        print(f"{args.weights}: {add_metadata(args.weights, {'tile_context': str(context)}).to_json()}")
    return result


if __name__ == "__main__":
    main()
