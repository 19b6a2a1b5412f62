"""Quality and in-process latency of the colorizer on held-out colour photos, and issue 14's targets.

Every held-out colour photo (the split of training/data.py, never trained on; grey ones are left
out) is reduced to its lightness and colorized by the exported TorchScript module, as the server runs it, in every
inference mode (image, patch, ensemble: the server's default is the ``mode`` option's):
- automatic: PSNR against the true photo (8-bit output), Hasler-Süsstrunk colourfulness against
  the true photo's, mean ab error; the grayscale photo is the baseline;
- 10 hints at random pixels with their true colours (as a user clicking on the photo);
- a reference of the same scene: another crop (50-70% of each side, mirrored) of the photo;
- damaged prints (issue 27): each photo turned into an old print's scan (faded, soft, grainy, scratched,
  toned, JPEG'd: training/degradations/old_print.py, a fixed draw), colorized automatically in the
  served mode: ab error as a share of no colour's, colourfulness as a share of the true photos'.
``--before OLD.pt`` measures other weights (e.g. the ones shipped before a retraining) on the same
photos, hints and references, for the targets that compare with them. ``--temperature`` and
``--mix`` override the class head's readout (annealed-mean temperature, its share next to the
regression head), ``--confidence`` its chroma by class confidence, ``--edge-radius``/``--edge-eps`` the
L-guided upsampling of ab, to choose them on held-out photos without retraining.
Writes benchmarks/results/<name>.json and <name>_grid.png (default name: colorize).

    python -m benchmarks.colorize_quality --before runs/colorize_before_issue14.pt
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from benchmarks.common import RESULTS, ROOT, held_out_photos, seconds_per_call, write_results
from handlers.options import options_for
from training.colour import recombine, rgb_to_lab
from training.grid import save_grid
from training.metrics import psnr
from training.degradations.old_print import old_print_one
from training.models.colorizer import READOUT, UPSAMPLING

MODE_OPTION = next(option for option in options_for("colorize") if option.name == "mode")
MODES, SERVED_MODE = MODE_OPTION.choices, MODE_OPTION.default
GUIDANCE = ("auto", "hints10", "reference")
DATA = [str(ROOT.parent / "shared" / "data" / d) for d in ("photos", "faces", "scenes")]
# Issue 14's targets: automatic colourfulness >= 60% of the true photos', automatic PSNR no lower than
# before, 10 hints >= +3 dB over automatic, reference at least as good as before.
COLOURFULNESS_SHARE, HINTS10_GAIN_DB, REFERENCE_AB_REDUCTION = 0.6, 3.0, 0.2
PRINTS_AB_ERROR_RATIO = 0.8  # issue 27: automatic on damaged prints, ab error at most 0.8x that of no colour


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


def colour_photos(photos: list[tuple[str, torch.Tensor]]) -> tuple[list[tuple[str, torch.Tensor]], list[str]]:
    """The photos that have colour to recover, and the names of the grey ones (R = G = B: any colour a model
    adds is an error there, and the grey baseline's PSNR is infinite)."""
    grey = [name for name, p in photos if float((p.amax(1) - p.amin(1)).max()) < 1 / 255]
    return [(name, p) for name, p in photos if name not in grey], grey


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


def no_guidance(image: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The model's guidance arguments (hint colours, hint mask, reference, has_reference) for automatic mode."""
    return torch.zeros_like(image), torch.zeros_like(image[:, :1]), torch.zeros(1, 3, 1, 1), torch.zeros(1)


def guidance(truth: torch.Tensor, gen: torch.Generator) -> dict[str, tuple[torch.Tensor, ...]]:
    """The model's guidance arguments (hint colours, hint mask, reference, has_reference) per kind."""
    auto = no_guidance(truth)
    none_rgb, none_mask, no_ref, no = auto
    hint_rgb, mask = random_hints(truth, 10, gen)
    reference = same_scene_reference(truth, gen)
    return {"auto": auto, "hints10": (hint_rgb, mask, no_ref, no),
            "reference": (none_rgb, none_mask, reference, torch.ones(1))}


def evaluate(model: torch.jit.ScriptModule, truth: torch.Tensor, guides: dict) -> tuple[dict, list]:
    """Figures for one photo [1, 3, H, W] (``out["<guidance>_<mode>"]``), and a row of pictures for the grid
    in the server's default mode."""
    lab = rgb_to_lab(truth)
    gray = recombine(lab[:, :1], torch.zeros_like(lab[:, 1:]))
    out: dict[str, dict[str, float]] = {"truth": {"colourfulness": colourfulness(truth)}}
    row = {}
    for name, pred in [("grayscale", gray)] + [(f"{g}_{m}", model(gray, *guides[g], m)) for g in GUIDANCE for m in MODES]:
        pred = quantise(pred)
        out[name] = {"psnr": psnr(pred, truth), "colourfulness": colourfulness(pred), "ab_error": ab_error(pred, lab)}
        row[name] = pred[0]
    return out, [row["grayscale"]] + [row[f"{g}_{SERVED_MODE}"] for g in GUIDANCE] + [truth[0]]


def print_figures(model: torch.jit.ScriptModule, photos: list[tuple[str, torch.Tensor]], seed: int) -> dict:
    """Automatic colour, in the served mode, of every photo turned into a damaged old print (the training
    distribution of ``--print-share``, a fixed draw per photo): its ab error against the true photo's, the
    same for no colour (grey) and their ratio, and its colourfulness as a share of the true photo's."""
    rng = np.random.default_rng(seed)
    errors, grey_errors, colour, truth_colour = [], [], [], []
    with torch.inference_mode():
        for _, truth in photos:
            scan = old_print_one(truth, rng)
            pred = quantise(model(scan, *no_guidance(scan), SERVED_MODE))
            lab = rgb_to_lab(truth)
            errors.append(float((rgb_to_lab(pred)[:, 1:] - lab[:, 1:]).norm(dim=1).mean()))
            grey_errors.append(float(lab[:, 1:].norm(dim=1).mean()))
            colour.append(colourfulness(pred))
            truth_colour.append(colourfulness(truth))
    error, grey = statistics.mean(errors), statistics.mean(grey_errors)
    return {"ab_error": round(error, 3), "grey_ab_error": round(grey, 3), "ab_error_ratio": round(error / grey, 3),
            "colourfulness_share": round(statistics.mean(colour) / statistics.mean(truth_colour), 3)}


def latency(model: torch.jit.ScriptModule, photo: torch.Tensor, side: int) -> dict[str, float]:
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


def measure(model: torch.jit.ScriptModule, photos: list[tuple[str, torch.Tensor]], seed: int) -> tuple[dict, list]:
    """Mean figures over the photos, and the grid rows; the same hints and references for every model."""
    gen = torch.Generator().manual_seed(seed)
    per_image, rows = [], []
    with torch.inference_mode():
        for _, truth in photos:
            figures, row = evaluate(model, truth, guidance(truth, gen))
            per_image.append(figures)
            rows.append(row)
    return summarise(per_image), rows


def targets(mean: dict, before: dict | None, mode: str) -> dict[str, dict]:
    """Each of issue 14's targets in ``mode``: the measured value, the target, and whether it is met."""
    auto, hints, ref = (mean[f"{g}_{mode}"] for g in GUIDANCE)
    checks = {
        "auto_colourfulness_share": (auto["colourfulness"] / mean["truth"]["colourfulness"], COLOURFULNESS_SHARE),
        "hints10_gain_db": (hints["psnr"] - auto["psnr"], HINTS10_GAIN_DB),
        "reference_ab_error_reduction": (1 - ref["ab_error"] / auto["ab_error"], REFERENCE_AB_REDUCTION),
    }
    if before is not None:
        old_auto, old_ref = before[f"auto_{mode}"], before[f"reference_{mode}"]
        checks["auto_psnr_vs_before_db"] = (auto["psnr"] - old_auto["psnr"], 0.0)
        checks["reference_psnr_vs_before_db"] = (ref["psnr"] - old_ref["psnr"], 0.0)
        checks["reference_ab_error_drop_vs_before"] = (old_ref["ab_error"] - ref["ab_error"], 0.0)
    return {name: {"value": round(value, 3), "target": goal, "met": value >= goal} for name, (value, goal) in checks.items()}


def load(path: Path, overrides: dict[str, float | None] | None = None) -> torch.jit.ScriptModule:
    """The exported module, with the class head's readout (``READOUT`` names) and the service's upsampling
    (``UPSAMPLING``) overridden where a value is given."""
    model = torch.jit.load(str(path)).eval()
    nets = [getattr(model, name) for name in ("net", "automatic") if hasattr(model, name)]  # automatic: split files
    for name, value in (overrides or {}).items():
        if value is not None and name in UPSAMPLING:
            if not hasattr(model, name):
                raise SystemExit(f"{path} has no {name} to override (exported before edge-aware upsampling)")
            setattr(model, name, type(getattr(model, name))(value))
        elif value is not None:
            if not any(hasattr(net, name) for net in nets):
                raise SystemExit(f"{path} has no {name} to override (a regression-only colorizer)")
            for net in nets:
                if hasattr(net, name):
                    setattr(net, name, value)
    return model


def add_readout_arguments(parser: argparse.ArgumentParser) -> None:
    """Overrides of the exported module's readout (``READOUT``) and upsampling (``UPSAMPLING``) attributes."""
    parser.add_argument("--temperature", type=float, default=None, help="override the annealed-mean temperature")
    parser.add_argument("--mix", type=float, default=None, help="override the annealed mean's share (both heads)")
    parser.add_argument("--guided-mix", type=float, default=None, help="the same with hints or a reference")
    parser.add_argument("--confidence", type=float, default=None,
                        help="override the class confidence below which the annealed mean's chroma shrinks")
    parser.add_argument("--edge-radius", type=int, default=None, help="override the L-guided upsampling's radius")
    parser.add_argument("--edge-eps", type=float, default=None, help="override its regulariser")


def readout_overrides(args: argparse.Namespace) -> dict[str, float | None]:
    return {name: getattr(args, name) for name in READOUT + UPSAMPLING}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="*", default=DATA, help="the folders the weights were trained from")
    parser.add_argument("--weights", type=Path, default=ROOT / "archives/colorize/colorize.pt")
    parser.add_argument("--before", type=Path, default=None, help="weights to compare with on the same photos")
    add_readout_arguments(parser)
    parser.add_argument("--max-side", type=int, default=512, help="held-out photos are evaluated at this size")
    parser.add_argument("--latency-side", type=int, default=1024, help="latency on a photo of this side (0: skip)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="colorize", help="results go to benchmarks/results/<name>.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    overrides = readout_overrides(args)
    model = load(args.weights, overrides)
    photos, grey = colour_photos(held_out_photos(args.data, args.max_side))
    mean, rows = measure(model, photos, args.seed)
    before = measure(load(args.before), photos, args.seed)[0] if args.before else None
    prints = print_figures(model, photos, args.seed)
    per_mode = {mode: targets(mean, before, mode) for mode in MODES}
    per_mode[SERVED_MODE].update({
        "prints_ab_error_ratio": {"value": prints["ab_error_ratio"], "target": PRINTS_AB_ERROR_RATIO,
                                  "met": prints["ab_error_ratio"] <= PRINTS_AB_ERROR_RATIO},
        "prints_colourfulness_share": {"value": prints["colourfulness_share"], "target": COLOURFULNESS_SHARE,
                                       "met": prints["colourfulness_share"] >= COLOURFULNESS_SHARE}})
    psnr_by_mode = {mode: statistics.mean(mean[f"{g}_{mode}"]["psnr"] for g in GUIDANCE) for mode in MODES}
    result = {
        "held_out_images": len(photos), "left_out_grey": grey, "max_side": args.max_side, "weights": os.path.relpath(args.weights, ROOT),
        "readout_overrides": overrides,
        "before": os.path.relpath(args.before, ROOT) if args.before else None,
        "served_mode": SERVED_MODE, "best_mode_by_mean_psnr": max(psnr_by_mode, key=psnr_by_mode.get),
        "targets": per_mode[SERVED_MODE], "targets_per_mode": per_mode,
        "mean": mean, "before_mean": before, "prints_automatic": prints,
    }
    if args.latency_side:
        result["latency_in_process"] = {"threads": args.threads, "load_average_1min": os.getloadavg()[0],
                                        "input": f"a held-out photo resized to {args.latency_side}^2",
                                        **latency(model, photos[0][1], args.latency_side)}
    print(json.dumps({k: result[k] for k in ("served_mode", "best_mode_by_mean_psnr", "targets")}, indent=2))
    for mode in MODES:
        figures = ", ".join(f"{g} {mean[f'{g}_{mode}']['psnr']:.2f} dB / C {mean[f'{g}_{mode}']['colourfulness']:.1f}"
                            for g in GUIDANCE)
        print(f"{mode:>8}: {figures} (truth C {mean['truth']['colourfulness']:.1f})")
    print(f"damaged prints, automatic ({SERVED_MODE}): ab error {prints['ab_error']:.2f} = {prints['ab_error_ratio']:.3f}x "
          f"no colour's, colourfulness {prints['colourfulness_share']:.2f}x the true photos'")
    print(f"wrote {write_results(args.name, result)}")
    save_grid(rows[:6], RESULTS / f"{args.name}_grid.png", ["grayscale", "automatic", "10 hints", "reference", "truth"])
    return result


if __name__ == "__main__":
    main()
