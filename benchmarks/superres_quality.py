"""Held-out quality and in-process latency of the shipped ``superres`` (ESPCN x4) weights.

    python -m benchmarks.superres_quality --data ../shared/data/photos ../shared/data/faces

Quality: every held-out photo (``training.data.split``, never trained on), loaded as in training
(longest side at most 512), cropped to a multiple of 4, bicubic-downscaled x4 (antialiased), then
upscaled by the model and by bicubic. Y-channel PSNR (BT.601, 8-bit outputs) with a 4-pixel border
crop, the convention of the super-resolution literature. Latency: the TorchScript file under
inference_mode, untiled and tiled as the server runs it. Writes benchmarks/results/superres.json.
"""
from __future__ import annotations

import argparse
import statistics
import sys

import torch

from benchmarks.common import ROOT, held_out_photos, seconds_per_call, write_results
from training.metrics import psnr_y
from training.tasks.superres import SCALE, SuperResTask, bicubic_down, bicubic_up

sys.path.insert(0, str(ROOT / "handlers"))
from tiling import run_tiled  # noqa: E402  (the server's tiling)

WEIGHTS = ROOT / "archives" / "superres" / "superres.pt"


def quality(model: torch.jit.ScriptModule, photos: list[tuple[str, torch.Tensor]]) -> list[dict]:
    rows = []
    for name, hr in photos:
        h, w = hr.shape[-2] // SCALE * SCALE, hr.shape[-1] // SCALE * SCALE
        hr = hr[..., :h, :w]
        lr = bicubic_down(hr)
        with torch.inference_mode():
            sr = model(lr).clamp(0, 1)
        rows.append({"image": name, "bicubic_db": psnr_y(bicubic_up(lr), hr, SCALE), "espcn_db": psnr_y(sr, hr, SCALE)})
    return rows


def latency(model: torch.jit.ScriptModule) -> dict[str, float]:
    lr = torch.rand(1, 3, 256, 256)  # 1.05 MP out
    out_mp = lr.shape[-2] * lr.shape[-1] * SCALE * SCALE / 1e6
    whole = seconds_per_call(lambda: model(lr))
    tiled = seconds_per_call(lambda: run_tiled(model, lr, 256, 12, 1, SCALE))
    return {"seconds_per_output_megapixel": whole / out_mp, "tiled_seconds_per_output_megapixel": tiled / out_mp,
            "threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", required=True, help="the folders the weights were trained from")
    parser.add_argument("--max-side", type=int, default=SuperResTask.default_max_side)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = torch.jit.load(str(WEIGHTS)).eval()
    rows = quality(model, held_out_photos(args.data, args.max_side))
    bicubic = statistics.mean(r["bicubic_db"] for r in rows)
    espcn = statistics.mean(r["espcn_db"] for r in rows)
    results = {"held_out_images": len(rows), "bicubic_psnr_y_db": bicubic, "espcn_psnr_y_db": espcn,
               "gain_db": espcn - bicubic, "per_image": rows, "latency": latency(model)}
    path = write_results("superres", results)
    print(f"superres x4 on {len(rows)} held-out photos: ESPCN {espcn:.2f} dB, bicubic {bicubic:.2f} dB, "
          f"gain {espcn - bicubic:+.2f} dB (Y PSNR, 4 px border)")
    lat = results["latency"]
    print(f"latency: {lat['seconds_per_output_megapixel']:.2f} s per output MP untiled, "
          f"{lat['tiled_seconds_per_output_megapixel']:.2f} s tiled ({args.threads} threads); wrote {path.relative_to(ROOT)}")
    return results


if __name__ == "__main__":
    main()
