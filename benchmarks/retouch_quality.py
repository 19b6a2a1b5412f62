"""Held-out quality and in-process latency of the shipped ``retouch`` (CSRNet) weights.

    python -m benchmarks.retouch_quality --data ../shared/data/photos ../shared/data/faces

Quality: every held-out photo (``training.data.split``, never trained on), longest side at most
``--max-side`` (512 by default, four times the training scale, so the thumbnail path is used),
degraded ``--draws`` times by the training distribution of random global edits (the widened one of
issue 14, from a fixed seed; a draw that happens to change almost nothing is drawn again), and once
by each edit alone. PSNR (RGB, 8-bit output) of the input and of the retouched photo against the
original (target: +4 dB). Unedited: each held-out photo as it is, the output against its input
(a good photo must come back unchanged; target: at least 35 dB). Also how far conditioning on the
128 px thumbnail moves the output from conditioning on the whole photo.
Real expert edits (``--fivek ../shared/data/fivek_dev``, issue 27): each camera rendering in
``input/`` retouched, PSNR against expert C's edit in ``expertC/`` beside the rendering's own (target:
+3 dB); these 15 pairs are never trained on.
Latency: the TorchScript file under inference_mode on a 1 MP and a 12 MP photo.
Writes benchmarks/results/<name>.json and <name>_grid.png (default name: retouch): for the first
held-out photos, an edited input, its retouch, the original, and the original's own retouch; with
``--fivek`` also <name>_fivek_grid.png: each camera rendering, its retouch, the expert's edit.
"""
from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import torch
from torch.nn import functional as F

from benchmarks.common import ROOT, held_out_photos, seconds_per_call, write_results
from training.degradations.global_edits import EDITS, random_global_edits
from training.grid import save_grid
from training.data import load_rgb, to_float
from training.metrics import psnr

WEIGHTS = ROOT / "archives" / "retouch" / "retouch.pt"
GAIN_TARGET_DB, UNEDITED_TARGET_DB = 4.0, 35.0  # issue 14
FIVEK_GAIN_TARGET_DB = 3.0  # issue 27
FIVEK_LABELS = ["camera rendering", "retouched", "expert C"]
UNCHANGED_DB = 100.0  # an unedited photo returned bit for bit (PSNR infinite) counts as this
GRID_ROWS = 6
GRID_LABELS = ["edited input", "retouched", "original", "original, retouched"]


def quantise(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x.clamp(0, 1) * 255) / 255


def capped_psnr(x: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR, with an exact copy (an edit that cannot change a grey photo, say) at ``UNCHANGED_DB``."""
    return min(psnr(x, target), UNCHANGED_DB)


def degraded_draws(clean: torch.Tensor, draws: int, gen: torch.Generator) -> list[torch.Tensor]:
    """``draws`` random edit combinations of ``clean``, each visibly different from it."""
    out = []
    while len(out) < draws:
        x = random_global_edits(clean, generator=gen)
        if (x - clean).abs().mean() > 1 / 255:
            out.append(x)
    return out


@torch.inference_mode()
def quality(model: torch.jit.ScriptModule, photos: list[tuple[str, torch.Tensor]], draws: int,
            seed: int) -> tuple[list[list[torch.Tensor]], dict]:
    """The grid's rows (the first draw of the first photos) and the figures."""
    gen = torch.Generator().manual_seed(seed)
    rows, per_edit, unedited, grid = [], {name: [] for name in EDITS}, [], []
    for name, clean in photos:
        target = quantise(clean)
        as_shot = model(target)
        unedited.append(capped_psnr(quantise(as_shot), target))
        for draw, x in enumerate(degraded_draws(clean, draws, gen)):
            out = model(x)
            if draw == 0 and len(grid) < GRID_ROWS:
                grid.append([x[0], out[0], target[0], as_shot[0]])
            full = model.net(x, None).clamp(0, 1)  # condition on the whole photo instead of the thumbnail
            rows.append({"image": name, "input_db": psnr(x, target), "retouched_db": psnr(quantise(out), target),
                         "full_condition_db": psnr(quantise(full), target), "thumb_vs_full_db": psnr(out, full)})
        for edit, fn in EDITS.items():
            x = quantise(fn(clean, gen))
            per_edit[edit].append((capped_psnr(x, target), capped_psnr(quantise(model(x)), target)))
    mean = lambda key: statistics.mean(r[key] for r in rows)  # noqa: E731
    gain = mean("retouched_db") - mean("input_db")
    return grid, {
        "degraded_inputs": len(rows), "input_psnr_db": mean("input_db"), "retouched_psnr_db": mean("retouched_db"),
        "gain_db": gain, "gain_target_db": GAIN_TARGET_DB, "gain_target_met": gain >= GAIN_TARGET_DB,
        "unedited_psnr_db": statistics.mean(unedited), "unedited_min_psnr_db": min(unedited),
        "unedited_target_db": UNEDITED_TARGET_DB, "unedited_target_met": statistics.mean(unedited) >= UNEDITED_TARGET_DB,
        "full_image_condition_psnr_db": mean("full_condition_db"),
        "thumbnail_vs_full_condition_psnr_db": mean("thumb_vs_full_db"),
        "per_edit_alone": {edit: {"input_psnr_db": statistics.mean(a for a, _ in v),
                                  "retouched_psnr_db": statistics.mean(b for _, b in v)} for edit, v in per_edit.items()},
        "per_input": rows,
    }


@torch.inference_mode()
def fivek(model: torch.jit.ScriptModule, folder: Path) -> tuple[list[list[torch.Tensor]], dict]:
    """Every input/ + expertC/ pair of ``folder``: the grid's rows and the figures."""
    rows, grid = [], []
    for path in sorted((folder / "input").glob("*.png")):
        x = to_float(load_rgb(path))[None]
        expert = to_float(load_rgb(folder / "expertC" / path.name))[None]
        out = quantise(model(x))
        rows.append({"image": path.name, "input_db": psnr(x, expert), "retouched_db": psnr(out, expert)})
        grid.append([x[0], out[0], expert[0]])
    gain = statistics.mean(r["retouched_db"] - r["input_db"] for r in rows)
    return grid, {"pairs": len(rows), "input_psnr_db": statistics.mean(r["input_db"] for r in rows),
                  "retouched_psnr_db": statistics.mean(r["retouched_db"] for r in rows), "gain_db": gain,
                  "gain_target_db": FIVEK_GAIN_TARGET_DB, "gain_target_met": gain >= FIVEK_GAIN_TARGET_DB,
                  "worse_than_input": sum(r["retouched_db"] < r["input_db"] for r in rows), "per_pair": rows}


def photo_of_size(clean: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """A real photo resized to width x height, degraded and 8-bit, as an upload would be."""
    x = F.interpolate(clean, size=(height, width), mode="bicubic", align_corners=False)
    return random_global_edits(x.clamp(0, 1), generator=torch.Generator().manual_seed(0))


def latency(model: torch.jit.ScriptModule, clean: torch.Tensor) -> dict[str, float]:
    # The machine is shared: the load average says how much of it these timings had.
    results: dict[str, float] = {"threads": torch.get_num_threads(), "load_average_1min": os.getloadavg()[0]}
    for label, (w, h) in {"1mp": (1000, 1000), "12mp": (4000, 3000)}.items():
        x = photo_of_size(clean, w, h)
        seconds = seconds_per_call(lambda: model(x))
        results[f"seconds_{label}"] = seconds
        results[f"seconds_per_megapixel_{label}"] = seconds / (w * h / 1e6)
    # The plain per-pixel path (no colour table) on the 1 MP photo, for comparison.
    x = photo_of_size(clean, 1000, 1000)
    table_min_pixels = model.table_min_pixels
    model.table_min_pixels = 1 << 40
    results["seconds_per_megapixel_1mp_per_pixel_path"] = seconds_per_call(lambda: model(x))
    model.table_min_pixels = table_min_pixels
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", required=True, help="the folders the weights were trained from")
    parser.add_argument("--weights", type=Path, default=WEIGHTS)
    parser.add_argument("--max-side", type=int, default=512)
    parser.add_argument("--draws", type=int, default=3, help="random edit combinations per held-out photo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--latency", action=argparse.BooleanOptionalAction, default=True, help="time 1 MP and 12 MP")
    parser.add_argument("--name", default="retouch", help="results go to benchmarks/results/<name>.json")
    parser.add_argument("--fivek", type=Path, help="a folder of input/ + expertC/ pairs: real expert edits")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = torch.jit.load(str(args.weights)).eval()
    photos = held_out_photos(args.data, args.max_side)
    grid, figures = quality(model, photos, args.draws, args.seed)
    results = {"parameters": sum(p.numel() for p in model.net.parameters()), "held_out_images": len(photos), **figures}
    fivek_grid = None
    if args.fivek:
        fivek_grid, results["fivek"] = fivek(model, args.fivek)
    if args.latency:
        largest = max((clean for _, clean in photos), key=lambda t: t.shape[-1] * t.shape[-2])
        results["latency"] = latency(model, largest)
    path = write_results(args.name, results)
    save_grid(grid, path.with_name(f"{args.name}_grid.png"), GRID_LABELS)
    if fivek_grid:
        save_grid(fivek_grid, path.with_name(f"{args.name}_fivek_grid.png"), FIVEK_LABELS)
    print(f"retouch on {len(photos)} held-out photos x {args.draws} random edit combinations: "
          f"input {results['input_psnr_db']:.2f} dB -> CSRNet {results['retouched_psnr_db']:.2f} dB "
          f"({results['gain_db']:+.2f} dB, target +{GAIN_TARGET_DB:.0f}); "
          f"condition on the whole photo: {results['full_image_condition_psnr_db']:.2f} dB")
    print(f"  unedited photos: output vs input {results['unedited_psnr_db']:.2f} dB "
          f"(lowest {results['unedited_min_psnr_db']:.2f}; target {UNEDITED_TARGET_DB:.0f})")
    if args.fivek:
        fk = results["fivek"]
        print(f"  real expert edits ({fk['pairs']} fivek_dev pairs): camera rendering {fk['input_psnr_db']:.2f} dB -> "
              f"CSRNet {fk['retouched_psnr_db']:.2f} dB ({fk['gain_db']:+.2f} dB, target +{FIVEK_GAIN_TARGET_DB:.0f}; "
              f"worse than the rendering on {fk['worse_than_input']})")
    for edit, v in results["per_edit_alone"].items():
        print(f"  {edit:>13} alone: {v['input_psnr_db']:.2f} -> {v['retouched_psnr_db']:.2f} dB")
    if args.latency:
        lat = results["latency"]
        print(f"latency ({lat['threads']} threads, load average {lat['load_average_1min']:.1f}): 12 MP in {lat['seconds_12mp']:.2f} s, "
              f"1 MP in {lat['seconds_1mp']:.2f} s ({lat['seconds_per_megapixel_1mp_per_pixel_path']:.2f} s without the colour table)")
    print(f"{results['parameters']:,} parameters; wrote {path.relative_to(ROOT)}")
    return results


if __name__ == "__main__":
    main()
