"""enhance (FiLM²) on held-out photos: PSNR gain over the glare-degraded input, the decoder ablation,
and in-process latency per megapixel.

    python -m benchmarks.enhance_quality --data ../shared/data/photos ../shared/data/faces

Held-out photos are those of ``training.data.split`` (never trained on), loaded as in training
(longest side at most 512), whole images (not crops), each degraded ``--repeats`` times with fixed
seeds by the training synthesis (glow, flare streaks and ghosts, veiling glare). RGB PSNR, the
challenge's metric. The ablation runs the one exported TorchScript module: its ``branches`` method
gives the main and the light decoder's estimates, ``forward`` their 0.5/0.5 average. Latency: the
TorchScript file on a whole 1 MP image under inference_mode. Writes benchmarks/results/enhance.json
and a preview grid benchmarks/results/enhance_examples.png.
"""
from __future__ import annotations

import argparse
import statistics

import torch

from benchmarks.common import RESULTS, ROOT, held_out_photos, seconds_per_call, write_results
from training.degradations.glare import add_glare
from training.grid import save_grid
from training.metrics import psnr
from training.tasks.enhance import EnhanceTask

WEIGHTS = ROOT / "archives" / "enhance" / "enhance.pt"
OUTPUTS = ("degraded_input", "main_decoder", "light_decoder", "ensemble")


@torch.inference_mode()
def quality(model: torch.jit.ScriptModule, photos: list[tuple[str, torch.Tensor]], repeats: int,
            seed: int) -> tuple[list[dict], list[list[torch.Tensor]]]:
    """PSNR of each output per (photo, degradation), and preview rows [degraded, main, light, ensemble, clean]."""
    rows, previews = [], []
    for i, (name, clean) in enumerate(photos):
        for r in range(repeats):
            degraded = add_glare(clean, torch.Generator().manual_seed(seed + 1000 * r + i))
            main, light = model.branches(degraded)
            outputs = (degraded, main, light, model(degraded))
            rows.append({"image": name, "seed": seed + 1000 * r + i,
                         **{k: psnr(v.clamp(0, 1), clean) for k, v in zip(OUTPUTS, outputs)}})
            if r == 0 and len(previews) < 4:
                previews.append([t[0] for t in (*outputs, clean)])
    return rows, previews


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", required=True, help="the folders the weights were trained from")
    parser.add_argument("--weights", default=str(WEIGHTS))
    parser.add_argument("--max-side", type=int, default=EnhanceTask.default_max_side)
    parser.add_argument("--repeats", type=int, default=2, help="degradations per held-out photo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = torch.jit.load(args.weights).eval()
    rows, previews = quality(model, held_out_photos(args.data, args.max_side), args.repeats, args.seed)
    mean = {k: statistics.mean(r[k] for r in rows) for k in OUTPUTS}
    gain = {k: mean[k] - mean["degraded_input"] for k in OUTPUTS[1:]}
    x = torch.rand(1, 3, 1024, 1024)
    results = {
        "held_out_images": len(rows) // args.repeats, "samples": len(rows), "max_side": args.max_side,
        "mean_psnr_db": mean, "gain_over_input_db": gain,
        "ensemble_best": gain["ensemble"] > max(gain["main_decoder"], gain["light_decoder"]),
        "samples_where_ensemble_beats_both": sum(r["ensemble"] > max(r["main_decoder"], r["light_decoder"]) for r in rows),
        "latency": {"seconds_per_megapixel": seconds_per_call(lambda: model(x)) / (x.shape[-2] * x.shape[-1] / 1e6),
                    "input": "1024x1024, whole image", "threads": torch.get_num_threads()},
        "per_sample": rows,
    }
    path = write_results("enhance", results)
    save_grid(previews, RESULTS / "enhance_examples.png", ["degraded", "main", "light", "ensemble", "clean"])
    print(f"enhance on {len(rows)} degraded held-out photos: input {mean['degraded_input']:.2f} dB; "
          + ", ".join(f"{k} {mean[k]:.2f} dB ({gain[k]:+.2f})" for k in OUTPUTS[1:]))
    print(f"ensemble best: {results['ensemble_best']} (beats both decoders on "
          f"{results['samples_where_ensemble_beats_both']}/{len(rows)} samples); latency "
          f"{results['latency']['seconds_per_megapixel']:.2f} s/MP ({args.threads} threads); wrote {path.relative_to(ROOT)}")
    return results


if __name__ == "__main__":
    main()
