"""Held-out quality and in-process latency of the shipped ``deblur`` model.

    python -m benchmarks.deblur_quality --data ../shared/data/photos ../shared/data/faces

Quality: every held-out photo (``training.data.split``: never trained on), downscaled to the
training ``--max-side``, degraded ONCE from a fixed seed with the training blur distribution
(camera-shake/defocus kernels applied in linear light, noise, 8-bit, sometimes JPEG) but kernels of
5-31 px (``--kernel-max``; training goes to 35), then restored. PSNR (RGB, outputs rounded to 8 bits as served) of the blurry input and of the model,
with and without the x8 self-ensemble (timed on the same images: its cost per megapixel).
Latency on a 1-megapixel photo (1024x1024, the first held-out photo blurred): the TorchScript file
frozen as the handler loads it, inference_mode, tiled as the server tiles; and, with --http, the
same photo as PNG through a fresh TorchServe serving archives/deblur (p50 of 3, one client: upload to
answer). The machine's load average is recorded with it.
Real motion (``--motion``, the dev-real set): the validation sequences of ``motion240`` (never trained
on), each the mean of its 9 frames in linear light against its middle frame, whole 960x544 frames.
No harm (``--sharp-images``): held-out photos sent as they are (sharp, 8-bit), the answer's PSNR against
the upload and its mean brightness shift in levels of 255. Writes benchmarks/results/deblur.json.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import yaml
from PIL import Image

from benchmarks.common import ROOT, held_out_photos, seconds_per_call, write_results
from benchmarks.http_load import Connection, timed_post
from serving.server import start_isolated, stop
from training.degradations.motion_blur import BlurConfig, degrade
from training.metrics import psnr
from training.real_motion import VALIDATION_SEQUENCES, load_sequences, window_pair
from training.tasks.deblur import DeblurTask

sys.path.insert(0, str(ROOT / "handlers"))  # the serving code: tiling and the ensemble transforms
from model_metadata import ModelMetadata, load  # noqa: E402
from self_ensemble import self_ensemble  # noqa: E402
from tiling import run  # noqa: E402

Model = Callable[[torch.Tensor], torch.Tensor]


def ensembled(model: Model) -> Model:
    """The handler's ensemble=true: the mean over the 8 flips/rotations."""
    return lambda x: self_ensemble(model, x)


def served(model: Model, x: torch.Tensor, metadata: ModelMetadata, tile: int) -> torch.Tensor:
    """As the handler runs it (tiling decided by the weights' metadata, in the server's one place; channels-last,
    the layout its batch has on the CPU, being decoded pixels permuted; 1 MP: 2.1 s instead of 3.0 contiguous), 8-bit output."""
    out = run(model, x.contiguous(memory_format=torch.channels_last), metadata, tile)
    return (out.clamp(0, 1) * 255).round() / 255


def timed(fn: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, float]:
    began = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - began


def quality(model: Model, metadata: ModelMetadata, photos: list[tuple[str, torch.Tensor]], seed: int,
            ensemble_count: int, tile: int, cfg: BlurConfig) -> dict:
    rows = []
    for i, (name, clean) in enumerate(photos):
        blurry, target = degrade(clean, np.random.default_rng(seed + i), cfg)
        restored, seconds = timed(lambda: served(model, blurry, metadata, tile))
        row = {"image": name, "megapixels": blurry[0, 0].numel() / 1e6, "blurry": psnr(blurry, target),
               "model": psnr(restored, target), "model_seconds": seconds}
        if i < ensemble_count:
            restored, seconds = timed(lambda: served(ensembled(model), blurry, metadata, tile))
            row.update(ensemble=psnr(restored, target), ensemble_seconds=seconds)
        rows.append(row)
        print(f"{name}: blurry {row['blurry']:.2f}  model {row['model']:.2f}"
              + (f"  ensemble {row['ensemble']:.2f}" if "ensemble" in row else ""), flush=True)
    mean = lambda key, rs: statistics.fmean(r[key] for r in rs)  # noqa: E731
    per_mp = lambda key, rs: sum(r[key] for r in rs) / sum(r["megapixels"] for r in rs)  # noqa: E731
    ens = [r for r in rows if "ensemble" in r]
    return {
        "images": len(rows),
        "psnr_blurry": mean("blurry", rows),
        "psnr_model": mean("model", rows),
        "gain_db": mean("model", rows) - mean("blurry", rows),
        "ensemble_images": len(ens),
        "ensemble_subset": {"psnr_blurry": mean("blurry", ens), "psnr_model": mean("model", ens),
                            "psnr_ensemble": mean("ensemble", ens),
                            "ensemble_extra_gain_db": mean("ensemble", ens) - mean("model", ens),
                            "seconds_per_mp_model": per_mp("model_seconds", ens),
                            "seconds_per_mp_ensemble": per_mp("ensemble_seconds", ens)} if ens else None,
        "per_image": rows,
    }


def dev_real(model: Model, metadata: ModelMetadata, motion: Path, tile: int) -> dict:
    """The dev-real rows: each held-out real sequence's 9-frame average, restored whole, against its middle frame."""
    rows = []
    for name, frames in zip(VALIDATION_SEQUENCES, load_sequences(motion, VALIDATION_SEQUENCES)):
        blurry, sharp = window_pair(frames, frames.shape[0])
        blurry = (blurry * 255).round()[None] / 255  # an 8-bit upload, as a user's file is
        restored = served(model, blurry, metadata, tile)
        rows.append({"sequence": name, "blurry": psnr(blurry, sharp[None]), "model": psnr(restored, sharp[None])})
        print(f"{name}: blurry {rows[-1]['blurry']:.2f}  model {rows[-1]['model']:.2f}", flush=True)
    blurry, model_db = statistics.fmean(r["blurry"] for r in rows), statistics.fmean(r["model"] for r in rows)
    return {"sequences": len(rows), "psnr_blurry": blurry, "psnr_model": model_db, "gain_db": model_db - blurry,
            "per_sequence": rows}


def no_harm(model: Model, metadata: ModelMetadata, photos: list[tuple[str, torch.Tensor]], tile: int) -> dict:
    """Sharp photos sent as they are: how far the answer moves from the upload (PSNR, brightness in levels)."""
    rows = []
    for name, photo in photos:
        upload = (photo * 255).round() / 255
        restored = served(model, upload, metadata, tile)
        rows.append({"image": name, "psnr": psnr(restored, upload),
                     "brightness_shift": float((restored.mean() - upload.mean()) * 255)})
    psnrs, shifts = [r["psnr"] for r in rows], [r["brightness_shift"] for r in rows]
    print(f"sharp photos: mean {statistics.fmean(psnrs):.2f} dB, worst {min(psnrs):.2f} dB, "
          f"brightness shift {statistics.fmean(shifts):+.2f} levels", flush=True)
    return {"images": len(rows), "psnr_mean": statistics.fmean(psnrs), "psnr_worst": min(psnrs),
            "brightness_shift_mean": statistics.fmean(shifts), "per_image": rows}


def one_megapixel(photo: torch.Tensor, seed: int, cfg: BlurConfig) -> torch.Tensor:
    """``photo`` resized to 1024x1024 and blurred (a 1 MP upload)."""
    square = torch.nn.functional.interpolate(photo, size=(1024 + cfg.kernel_sizes[1] - 1,) * 2, mode="bilinear",
                                             antialias=True, align_corners=False).clamp(0, 1)
    return degrade(square, np.random.default_rng(seed), cfg)[0]


def http_seconds(x: torch.Tensor, repeats: int = 3) -> float:
    """p50 seconds of ``x`` as PNG through a fresh TorchServe (archives/deblur as shipped), after one warm-up."""
    png = io.BytesIO()
    Image.fromarray((x[0].permute(1, 2, 0) * 255).round().byte().numpy()).save(png, "PNG")
    with tempfile.TemporaryDirectory() as work:
        server = start_isolated(Path(work), ["deblur"])
        try:
            conn = Connection(server.inference_url, server.headers())
            return seconds_per_call(lambda: timed_post(conn, "/predictions/deblur", png.getvalue()), repeats)
        finally:
            stop(server.state)


def served_tile() -> int:
    """The tile side the server uses for deblur (its model-config.yaml)."""
    return int(yaml.safe_load((ROOT / "archives" / "deblur" / "model-config.yaml").read_text())["handler"]["tile"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="*", help="the photo folders training used (the held-out split is taken)")
    parser.add_argument("--weights", type=Path, default=ROOT / "archives" / "deblur" / "deblur.pt")
    parser.add_argument("--max-side", type=int, default=DeblurTask.default_max_side)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--kernel-max", type=int, default=31, help="largest blur kernel (odd) of the held-out blur")
    parser.add_argument("--ensemble-images", type=int, default=6, help="held-out images also run with ensemble=true")
    parser.add_argument("--tile", type=int, default=served_tile(), help="default: archives/deblur/model-config.yaml's")
    parser.add_argument("--threads", type=int, default=2, help="as the server's handler threads")
    parser.add_argument("--results-name", default="deblur", help="writes benchmarks/results/<name>.json")
    parser.add_argument("--http", action="store_true", help="also time the 1 MP photo through TorchServe")
    parser.add_argument("--motion", type=Path, default=ROOT.parent / "shared" / "data" / "motion240",
                        help="real 240 fps sequences (motion240 layout) for the dev-real rows")
    parser.add_argument("--sharp-images", type=int, default=16, help="held-out photos sent sharp (the no-harm rows)")
    parser.add_argument("--real-only", action="store_true", help="only the dev-real and no-harm rows (no synthetic set, no timing)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model, metadata = load(args.weights)
    model = torch.jit.freeze(model.eval())  # as the handler serves it (its setting ``freeze``)
    cfg = BlurConfig(kernel_sizes=(BlurConfig.kernel_sizes[0], args.kernel_max))
    photos = held_out_photos(args.data, args.max_side)
    with torch.inference_mode():
        result = {"sharp": no_harm(model, metadata, photos[:args.sharp_images], args.tile)}
        if args.motion.is_dir():  # a fresh clone has no ../shared: the other rows still run
            result["dev_real"] = dev_real(model, metadata, args.motion, args.tile)
        else:
            print(f"no dev-real rows: {args.motion} is not there", flush=True)
        if args.real_only:
            print(f"wrote {write_results(args.results_name, result).relative_to(ROOT)}")
            return
        result.update(quality(model, metadata, photos, args.seed, args.ensemble_images, args.tile, cfg))
    x, megapixels = one_megapixel(photos[0][1], args.seed, cfg), 1024 * 1024 / 1e6
    result["latency"] = {"threads": args.threads, "load_average_1min": os.getloadavg()[0],
                         "seconds_per_mp_1mp": seconds_per_call(lambda: served(model, x, metadata, args.tile), 2) / megapixels}
    if args.http:
        result["latency"]["seconds_per_mp_http"] = http_seconds(x) / megapixels
    result = {"blur": {k: getattr(cfg, k) for k in BlurConfig.__dataclass_fields__}, "max_side": args.max_side,
              "seed": args.seed, "receptive_field_px": metadata.receptive_field, **result}
    path = write_results(args.results_name, result)
    print(json.dumps({k: ({kk: vv for kk, vv in v.items() if not kk.startswith("per_")} if isinstance(v, dict) else v)
                      for k, v in result.items() if k != "per_image"}, indent=2))
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
