"""Quality and in-process latency of the shipped colorizer on held-out colour photos.

Every held-out photo (the split of training/data.py, never trained on) is reduced to its
lightness and colorized by the exported TorchScript module, as the server runs it:
- automatic mode, in each inference mode: PSNR against the true photo (8-bit output),
  Hasler-Süsstrunk colourfulness, mean ab error; the grayscale photo is the baseline;
- 10 hints at random pixels with their true colours (as a user clicking on the photo);
- a reference of the same scene: another crop (50-70% of each side, mirrored) of the photo.
Writes benchmarks/results/<name>.json and <name>_grid.png (default name: colorize).

    python -m benchmarks.colorize_quality --data ../shared/data/photos ../shared/data/faces
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

import torch
from torch.nn import functional as F

from benchmarks.common import RESULTS, ROOT, held_out_photos, seconds_per_call, write_results
from training.colour import recombine, rgb_to_lab
from training.grid import save_grid
from training.metrics import psnr

MODES = ("image", "patch", "ensemble")


def colourfulness(rgb: torch.Tensor) -> float:
    """Hasler & Süsstrunk (2003), on 0-255 values: std and mean of the rg / yb opponent channels."""
    r, g, b = (rgb[0] * 255).unbind(0)
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(torch.sqrt(rg.var(unbiased=False) + yb.var(unbiased=False))
                 + 0.3 * torch.sqrt(rg.mean() ** 2 + yb.mean() ** 2))


def ab_error(pred: torch.Tensor, truth_lab: torch.Tensor) -> float:
    """Mean Euclidean distance in the ab plane (Lab units)."""
    return float((rgb_to_lab(pred)[:, 1:] - truth_lab[:, 1:]).norm(dim=1).mean())


def quantise(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x.clamp(0, 1) * 255) / 255  # what the server sends back


def random_hints(truth: torch.Tensor, count: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """True colours at ``count`` random pixels (one pixel each, as the handler lays them out)."""
    _, _, h, w = truth.shape
    mask = torch.zeros(1, 1, h, w)
    ys, xs = torch.randint(0, h, (count,), generator=gen), torch.randint(0, w, (count,), generator=gen)
    mask[0, 0, ys, xs] = 1.0
    return truth.clone(), mask


def same_scene_reference(truth: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Another crop of the photo: 50-70% of each side at a random place, mirrored."""
    _, _, h, w = truth.shape
    frac = 0.5 + 0.2 * float(torch.rand((), generator=gen))
    ch, cw = int(h * frac), int(w * frac)
    y, x = int(torch.randint(0, h - ch + 1, (), generator=gen)), int(torch.randint(0, w - cw + 1, (), generator=gen))
    return truth[..., y:y + ch, x:x + cw].flip(-1).contiguous()


def evaluate(model: torch.jit.ScriptModule, truth: torch.Tensor, gen: torch.Generator) -> tuple[dict, list]:
    """All figures for one photo [1, 3, H, W], and a row of pictures for the grid."""
    lab = rgb_to_lab(truth)
    gray = recombine(lab[:, :1], torch.zeros_like(lab[:, 1:]))
    none_rgb, none_mask = torch.zeros_like(truth), torch.zeros_like(truth[:, :1])
    no_ref, no = torch.zeros(1, 3, 1, 1), torch.zeros(1)
    out: dict[str, dict[str, float]] = {}

    def record(name: str, pred: torch.Tensor) -> torch.Tensor:
        pred = quantise(pred)
        out[name] = {"psnr": psnr(pred, truth), "colourfulness": colourfulness(pred), "ab_error": ab_error(pred, lab)}
        return pred

    out["truth"] = {"colourfulness": colourfulness(truth)}
    row = [record("grayscale", gray)]
    for mode in MODES:
        pred = record(f"auto_{mode}", model(gray, none_rgb, none_mask, no_ref, no, mode))
    row.append(pred)
    hint_rgb, mask = random_hints(truth, 10, gen)
    row.append(record("hints10", model(gray, hint_rgb, mask, no_ref, no, "ensemble")))
    reference = same_scene_reference(truth, gen)
    row.append(record("reference", model(gray, none_rgb, none_mask, reference, torch.ones(1), "ensemble")))
    return out, [img[0] for img in row + [truth]]


def latency(model: torch.jit.ScriptModule, photo: torch.Tensor, side: int = 1024) -> dict[str, float]:
    """Seconds per megapixel on a photo resized to side x side, per mode, automatic and fully guided."""
    gen = torch.Generator().manual_seed(0)
    image = F.interpolate(photo, size=(side, side), mode="bicubic", align_corners=False).clamp(0, 1)
    hint_rgb, mask = random_hints(image, 10, gen)
    mp = side * side / 1e6
    results = {}
    for mode in MODES:
        for guided in (False, True):
            args = (image, hint_rgb, mask, image[..., :400, :600], torch.ones(1)) if guided else \
                (image, torch.zeros_like(image), torch.zeros_like(mask), torch.zeros(1, 3, 1, 1), torch.zeros(1))
            seconds = seconds_per_call(lambda: model(*args, mode))  # noqa: B023 - called right here
            results[f"{mode}{'_guided' if guided else ''}_s_per_mp"] = round(seconds / mp, 3)
    return results


def summarise(per_image: list[dict]) -> dict[str, dict[str, float]]:
    """Mean of every figure over the photos."""
    return {name: {metric: round(statistics.mean(img[name][metric] for img in per_image), 3)
                   for metric in per_image[0][name]} for name in per_image[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="*", default=[str(ROOT.parent / "shared" / "data" / d)
                                                      for d in ("photos", "faces")])
    parser.add_argument("--weights", type=Path, default=ROOT / "archives/colorize/colorize.pt")
    parser.add_argument("--max-side", type=int, default=512, help="held-out photos are evaluated at this size")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="colorize", help="results go to benchmarks/results/<name>.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = torch.jit.load(str(args.weights)).eval()
    photos = held_out_photos(args.data, args.max_side)
    gen = torch.Generator().manual_seed(args.seed)
    per_image, rows = [], []
    with torch.inference_mode():
        for _, truth in photos:
            figures, row = evaluate(model, truth, gen)
            per_image.append(figures)
            rows.append(row)
    speed = latency(model, photos[0][1])
    summary = summarise(per_image)
    auto, hints, ref = summary["auto_ensemble"], summary["hints10"], summary["reference"]
    result = {
        "held_out_images": len(photos), "max_side": args.max_side, "weights": os.path.relpath(args.weights, ROOT),
        "mean": summary,
        "targets": {
            "hints10_psnr_gain_db": round(hints["psnr"] - auto["psnr"], 3), "hints10_target_db": 3.0,
            "reference_ab_error_reduction": round(1 - ref["ab_error"] / auto["ab_error"], 3), "reference_target": 0.2,
        },
        "latency_in_process": {"threads": args.threads, "input": "a held-out photo resized to 1024x1024", **speed},
    }
    print(json.dumps(result, indent=2))
    print(f"wrote {write_results(args.name, result)}")
    save_grid(rows[:6], RESULTS / f"{args.name}_grid.png", ["grayscale", "automatic", "10 hints", "reference", "truth"])


if __name__ == "__main__":
    main()
