"""enhance (FiLM²) on held-out photos: PSNR gain over daylight glare and over night lens flare, how
unchanged clean photos come back (day, night, and real low-light photos), real night flare, the decoder
ablation, and in-process latency per megapixel.

    python -m benchmarks.enhance_quality --data ../shared/data/photos ../shared/data/faces \\
        --dark-data ../shared/data/diverse ../shared/data/scenes --real-flare DIR

Held-out photos are those of ``training.data.split`` (never trained on), loaded as in training (longest
side at most 512), whole images (not crops). Rows, each with fixed seeds:
- ``glare``: each photo degraded ``--repeats`` times by the daylight synthesis (glow, flare streaks and
  ghosts, veiling glare; ``training/degradations/glare.py``), against the photo;
- ``night_flare``: each photo made a night shot with street lights and their flare (starbursts, streaks,
  glow, ghosts, veil; ``training/degradations/flare.py``), against the same shot without flare;
- ``clean`` and ``clean_night``: the photo, and its night shot without flare, sent as they are: the answer
  against the input (a photo without stray light should come back unchanged);
- ``real_dark`` (real photos): the ``--dark-count`` darkest held-out photos of ``--dark-data`` (real
  low-light shots: candles, stages, dusk), sent as they are, against themselves;
- ``real_flare`` (real photos, no ground truth): every image of ``--real-flare`` (smartphone night shots
  with real flare), reported as how much light the answer removed (mean linear luminance, % of the input's)
  and the answer against the input; shown in a grid.
RGB PSNR, the challenge's metric. The ablation runs the one exported TorchScript module: its ``branches``
method gives the main and the light decoder's estimates, ``forward`` their 0.5/0.5 average. Writes
benchmarks/results/enhance.json (``--name``) and grids ``<name>_examples.png`` (glare), ``<name>_night.png``
and ``<name>_real.png`` (real night flare, then real low-light photos).
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from benchmarks.common import RESULTS, ROOT, held_out_photos, seconds_per_call, write_results
from training.data import list_images, load_rgb, to_float
from training.degradations.flare import night_flare
from training.degradations.glare import add_glare, luminance, srgb_to_linear
from training.grid import save_grid
from training.metrics import psnr
from training.tasks.enhance import EnhanceTask

WEIGHTS = ROOT / "archives" / "enhance" / "enhance.pt"
OUTPUTS = ("degraded_input", "main_decoder", "light_decoder", "ensemble")
Case = tuple[str, int, torch.Tensor, torch.Tensor]  # (photo, seed, input, target)


def synthetic_cases(photos: list[tuple[str, torch.Tensor]], repeats: int, seed: int) -> dict[str, list[Case]]:
    """The four paired rows: glare and night flare (``repeats`` seeds a photo), clean day and night (one)."""
    cases: dict[str, list[Case]] = {"glare": [], "night_flare": [], "clean": [], "clean_night": []}
    for i, (name, clean) in enumerate(photos):
        for r in range(repeats):
            s = seed + 1000 * r + i
            cases["glare"].append((name, s, add_glare(clean, torch.Generator().manual_seed(s)), clean))
            flared, night = night_flare(clean, torch.Generator().manual_seed(s))
            cases["night_flare"].append((name, s, flared, night))
            if r == 0:
                cases["clean"].append((name, s, clean, clean))
                cases["clean_night"].append((name, s, night, night))
    return cases


@torch.inference_mode()
def run_case(model: torch.jit.ScriptModule, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(input, main, light, ensemble), clamped as served."""
    main, light = model.branches(x)
    return x, main.clamp(0, 1), light.clamp(0, 1), model(x).clamp(0, 1)


def paired_row(model: torch.jit.ScriptModule, cases: list[Case],
               previews: int = 0) -> tuple[dict, list[dict], list[list[torch.Tensor]]]:
    """Mean PSNR of each output against the target, gains over the input, per-sample rows, preview rows.
    A row whose inputs are their targets (clean photos) has no input figure: only how close the answers stay."""
    unchanged = all(torch.equal(x, target) for _, _, x, target in cases)
    keys = OUTPUTS[1:] if unchanged else OUTPUTS
    rows, grid = [], []
    for name, s, x, target in cases:
        outputs = run_case(model, x)
        rows.append({"image": name, "seed": s,
                     **{k: psnr(v, target) for k, v in zip(OUTPUTS, outputs) if k in keys}})
        if len(grid) < previews:
            grid.append([t[0] for t in (*outputs, target)])
    mean = {k: statistics.mean(r[k] for r in rows) for k in keys}
    summary = {"samples": len(rows), "input_is_target": unchanged, "mean_psnr_db": mean,
               "worst_ensemble_db": min(r["ensemble"] for r in rows),
               "samples_where_ensemble_beats_both": sum(r["ensemble"] > max(r["main_decoder"], r["light_decoder"])
                                                        for r in rows)}
    if not unchanged:
        summary["gain_over_input_db"] = {k: mean[k] - mean["degraded_input"] for k in OUTPUTS[1:]}
    return summary, rows, grid


def darkest_held_out(folders: list[str], count: int, max_side: int) -> list[tuple[str, torch.Tensor]]:
    photos = held_out_photos(folders, max_side) if folders else []
    return sorted(photos, key=lambda p: float(luminance(srgb_to_linear(p[1])).mean()))[:count]


@torch.inference_mode()
def unpaired_row(model: torch.jit.ScriptModule, photos: list[tuple[str, torch.Tensor]]) -> tuple[dict, list]:
    """Real photos without ground truth: the answer against the input, and the light it took away."""
    rows, grid = [], []
    for name, x in photos:
        y = model(x).clamp(0, 1)
        lin_in, lin_out = luminance(srgb_to_linear(x)).mean(), luminance(srgb_to_linear(y)).mean()
        rows.append({"image": name, "answer_vs_input_db": psnr(y, x),
                     "light_removed_percent": float(100 * (lin_in - lin_out) / lin_in.clamp(min=1e-6))})
        grid.append([x[0], y[0]])
    summary = {"images": len(rows)}
    if rows:
        summary |= {"mean_answer_vs_input_db": statistics.mean(r["answer_vs_input_db"] for r in rows),
                    "worst_answer_vs_input_db": min(r["answer_vs_input_db"] for r in rows),
                    "mean_light_removed_percent": statistics.mean(r["light_removed_percent"] for r in rows)}
    return {**summary, "per_image": rows}, grid


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", required=True, help="folders whose held-out photos are degraded")
    parser.add_argument("--dark-data", nargs="*", default=[], help="folders whose darkest held-out photos form "
                                                                    "the real low-light row")
    parser.add_argument("--dark-count", type=int, default=12)
    parser.add_argument("--real-flare", type=Path, default=None, help="folder of real night photos with flare")
    parser.add_argument("--weights", default=str(WEIGHTS))
    parser.add_argument("--name", default="enhance", help="results file and grid names (benchmarks/results/)")
    parser.add_argument("--max-side", type=int, default=EnhanceTask.default_max_side)
    parser.add_argument("--repeats", type=int, default=2, help="degradations per held-out photo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = torch.jit.load(args.weights).eval()
    results: dict = {"weights": str(args.weights), "max_side": args.max_side, "repeats": args.repeats}
    grids: dict[str, list] = {}
    per_sample = {}
    for row, cases in synthetic_cases(held_out_photos(args.data, args.max_side), args.repeats, args.seed).items():
        results[row], per_sample[row], grids[row] = paired_row(model, cases, previews=4)
    real_flare = [(p.name, to_float(load_rgb(p, args.max_side))[None]) for p in list_images([str(args.real_flare)])] \
        if args.real_flare else []
    results["real_flare"], flare_grid = unpaired_row(model, real_flare)
    results["real_dark"], dark_grid = unpaired_row(model, darkest_held_out(args.dark_data, args.dark_count,
                                                                           args.max_side))
    x = torch.rand(1, 3, 1024, 1024)
    results["latency"] = {"seconds_per_megapixel": seconds_per_call(lambda: model(x)) / (x.shape[-2] * x.shape[-1] / 1e6),
                          "input": "1024x1024, whole image", "threads": torch.get_num_threads()}
    path = write_results(args.name, {**results, "per_sample": per_sample})
    save_grid(grids["glare"], RESULTS / f"{args.name}_examples.png", ["degraded", "main", "light", "ensemble", "clean"])
    save_grid([[r[0], r[3], r[4]] for r in grids["night_flare"]], RESULTS / f"{args.name}_night.png",
              ["night shot with flare", "enhance", "without flare (target)"], cell=256)
    save_grid(flare_grid + dark_grid[:3], RESULTS / f"{args.name}_real.png", ["real photo", "enhance"], cell=256)
    for row in ("glare", "night_flare", "clean", "clean_night"):
        r = results[row]
        if r["input_is_target"]:
            print(f"{row}: {r['samples']} photos sent as they are, answer vs input: "
                  + ", ".join(f"{k} {r['mean_psnr_db'][k]:.2f} dB" for k in OUTPUTS[1:])
                  + f"; worst ensemble {r['worst_ensemble_db']:.2f} dB")
        else:
            print(f"{row}: {r['samples']} samples, input {r['mean_psnr_db']['degraded_input']:.2f} dB; "
                  + ", ".join(f"{k} {r['mean_psnr_db'][k]:.2f} ({r['gain_over_input_db'][k]:+.2f})"
                              for k in OUTPUTS[1:]) + f"; worst ensemble {r['worst_ensemble_db']:.2f} dB")
    for row in ("real_flare", "real_dark"):
        r = results[row]
        if r["images"]:
            print(f"{row}: {r['images']} real photos, answer vs input {r['mean_answer_vs_input_db']:.2f} dB mean, "
                  f"{r['worst_answer_vs_input_db']:.2f} worst; light removed {r['mean_light_removed_percent']:.1f}%")
    print(f"latency {results['latency']['seconds_per_megapixel']:.2f} s/MP ({args.threads} threads); "
          f"wrote {path}")
    return results


if __name__ == "__main__":
    main()
