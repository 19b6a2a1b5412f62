"""Automatic colorization of real historical photographs (``../shared/data/oldprints/``): figures and a grid.

There is no true colour for these, so the figures say how the colour behaves, each beside the same figure
of the held-out true colour photos (what real colour looks like by that measure):
- chroma: mean C*ab of the answer (0 = grey);
- blotchiness: how much of the colour does not follow the photo's lightness. At 256 px, a guided filter
  (He et al. 2013, radius 8, i.e. 17 px windows) fits ab as an affine function of L in every window; the RMS
  of what that fit leaves, in ab units. Real colour changes at edges the lightness shows; a blotch of
  blue or red across a flat wall or uniform does not, and leaves a large residual.
The grid shows ``--count`` prints spread through the folder: the scan, then each set of weights' answer
(``--before`` first, if given). Writes benchmarks/results/<name>.json and <name>_grid.png.

    python -m benchmarks.colorize_oldprints --prints ../shared/data/oldprints --before OLD.pt
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
from torch.nn import functional as F

from benchmarks.colorize_quality import (DATA, SERVED_MODE, add_readout_arguments, colour_photos, load, no_guidance,
                                        quantise, readout_overrides)
from benchmarks.common import RESULTS, ROOT, held_out_photos, write_results
from training.colour import rgb_to_lab
from training.data import list_images, load_rgb, to_float
from training.grid import save_grid
from training.models.colorizer import _box  # the same box mean the service's guided upsampling uses

MEASURE_SIDE, FIT_RADIUS, FIT_EPS = 256, 8, 1e-3


def colour_figures(rgb: torch.Tensor) -> dict[str, float]:
    """Chroma and blotchiness (see the module's docstring) of one answer [1, 3, H, W]."""
    scale = MEASURE_SIDE / max(rgb.shape[-2:])
    small = F.interpolate(rgb, scale_factor=scale, mode="area") if scale < 1 else rgb
    lab = rgb_to_lab(small)
    g, ab = lab[:, :1] / 100.0, lab[:, 1:]
    mean_g, mean_ab = _box(g, FIT_RADIUS), _box(ab, FIT_RADIUS)
    slope = (_box(g * ab, FIT_RADIUS) - mean_g * mean_ab) / (_box(g * g, FIT_RADIUS) - mean_g ** 2 + FIT_EPS)
    fit = _box(slope, FIT_RADIUS) * g + _box(mean_ab - slope * mean_g, FIT_RADIUS)
    return {"chroma": float(ab.norm(dim=1).mean()), "blotchiness": float((ab - fit).square().sum(1).mean().sqrt())}


def mean_figures(figures: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.mean(f[k] for f in figures), 3) for k in figures[0]}


def colorize(model: torch.jit.ScriptModule, scan: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return quantise(model(scan, *no_guidance(scan), SERVED_MODE))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prints", type=Path, required=True, help="the oldprints folder")
    parser.add_argument("--weights", type=Path, default=ROOT / "archives/colorize/colorize.pt")
    parser.add_argument("--before", type=Path, default=None, help="weights to show and measure beside them")
    parser.add_argument("--data", nargs="*", default=DATA, help="folders whose held-out colour photos give the reference figures")
    parser.add_argument("--max-side", type=int, default=768)
    parser.add_argument("--count", type=int, default=6, help="prints in the grid")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--name", default="colorize_oldprints")
    add_readout_arguments(parser)  # applied to --weights, not to --before
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    models = {"before": load(args.before)} if args.before else {}
    models["weights"] = load(args.weights, readout_overrides(args))
    scans = [(p.name, to_float(load_rgb(p, args.max_side))[None]) for p in list_images([str(args.prints)])]
    answers = {label: [colorize(m, scan) for _, scan in scans] for label, m in models.items()}
    truth, _ = colour_photos(held_out_photos(args.data, args.max_side))
    result = {
        "prints": len(scans), "served_mode": SERVED_MODE, "measure_side": MEASURE_SIDE, "fit_radius": FIT_RADIUS,
        "weights": str(args.weights), "before": str(args.before) if args.before else None,
        "readout_overrides": readout_overrides(args),
        "true_colour_photos": mean_figures([colour_figures(p) for _, p in truth]),
        **{label: mean_figures([colour_figures(a) for a in out]) for label, out in answers.items()},
    }
    print(json.dumps({k: v for k, v in result.items() if isinstance(v, dict)}, indent=2))
    print(f"wrote {write_results(args.name, result)}")
    picks = range(0, len(scans), max(1, len(scans) // args.count))[:args.count]
    rows = [[scans[i][1][0]] + [answers[label][i][0] for label in answers] for i in picks]
    save_grid(rows, RESULTS / f"{args.name}_grid.png", ["real print"] + [f"automatic ({label})" for label in answers],
              cell=256)
    return result


if __name__ == "__main__":
    main()
