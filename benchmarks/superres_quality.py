"""Held-out quality and in-process latency of the shipped ``superres`` (ESPCN x4) networks.

    python -m benchmarks.superres_quality --data ../shared/data/photos ../shared/data/faces

Every held-out photo (``training.data.split``, never trained on), loaded as in training (longest side
at most 512), cropped to a multiple of 4 and downscaled x4 (bicubic, antialiased), then sent two ways:
- **clean**: the downscale itself (today's benchmark, the super-resolution literature's convention);
- **JPEG** (issue 30, how small photos really arrive): the downscale saved as a JPEG file at a quality
  drawn from 35-65 (fixed seed, Pillow's default 4:2:0), decoded as the server decodes it; bicubic is then
  the bicubic enlargement *of that JPEG*.
Each network present (``superres.pt`` for clean inputs, ``superres_real.pt`` for real ones) answers every
input; ``auto`` answers each with the network the server picks (``handlers/input_quality.classify`` on
the server's decoding of the file a user would send: the JPEG, or the clean downscale as a PNG). Y-channel PSNR (BT.601, 8-bit outputs)
with a 4 px border crop. Latency: the TorchScript file under inference_mode, untiled and tiled as the
server runs it. Writes benchmarks/results/superres.json.
"""
from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.common import ROOT, held_out_photos, seconds_per_call, write_results
from training.metrics import psnr_y
from training.tasks.superres import SCALE, SuperResTask, bicubic_down, bicubic_up

sys.path.insert(0, str(ROOT / "handlers"))
from image_io import decode  # noqa: E402  (the server's decoder: auto measures what it decoded)
from input_quality import classify  # noqa: E402  (the server's rule)
from tiling import run_tiled  # noqa: E402  (the server's tiling)

WEIGHTS = ROOT / "archives" / "superres" / "superres.pt"
REAL_WEIGHTS = ROOT / "archives" / "superres" / "superres_real.pt"
JPEG_QUALITIES = (35, 65)  # issue 30: messenger copies, small scans, thumbnails
JPEG_GAIN_TARGET_DB = 0.8


@dataclass
class Case:
    """One low-resolution input as a user would send it, and the photo it came from."""
    image: str
    kind: str  # "clean" or "jpeg"
    hr: torch.Tensor
    lr: torch.Tensor
    upload: bytes  # the file sent: what ``auto`` classifies


def to_pil(x: torch.Tensor) -> Image.Image:
    return Image.fromarray((x[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8))


def from_pil(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)[None]


def encoded(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def jpeg_lowres(hr: torch.Tensor, quality: int) -> tuple[torch.Tensor, bytes]:
    """The x4 downscale of ``hr`` as a JPEG file of ``quality``, and that file decoded."""
    data = encoded(to_pil(bicubic_down(hr)), "JPEG", quality=quality)
    return from_pil(Image.open(io.BytesIO(data))), data


def cases(photos: list[tuple[str, torch.Tensor]], seed: int = 0) -> list[Case]:
    """A clean and a JPEG input for every photo; the JPEG qualities from a fixed seed."""
    rng = random.Random(seed)
    out = []
    for name, hr in photos:
        hr = hr[..., : hr.shape[-2] // SCALE * SCALE, : hr.shape[-1] // SCALE * SCALE]
        lr = bicubic_down(hr)
        out.append(Case(name, "clean", hr, lr, encoded(to_pil(lr), "PNG")))
        jpeg, data = jpeg_lowres(hr, rng.randint(*JPEG_QUALITIES))
        out.append(Case(name, "jpeg", hr, jpeg, data))
    return out


def image_set(name: str) -> str:
    return name.split("_")[0]  # cbsd68, mcmaster, celebahq, ...


def auto_picks(upload: bytes) -> str:
    """The network the server's ``input=auto`` answers this upload with."""
    image = decode(upload, max_pixels=40_000_000)
    return classify(image.rgb, image.source.quantization)


def quality(models: dict[str, torch.jit.ScriptModule], inputs: list[Case]) -> list[dict]:
    """Per input: bicubic's and each network's PSNR-Y, and the network ``auto`` picks."""
    rows = []
    for case in inputs:
        row = {"image": case.image, "kind": case.kind, "set": image_set(case.image),
               "bicubic_db": psnr_y(bicubic_up(case.lr), case.hr, SCALE), "auto_picks": auto_picks(case.upload)}
        with torch.inference_mode():
            for network, model in models.items():
                row[f"{network}_db"] = psnr_y(model(case.lr).clamp(0, 1), case.hr, SCALE)
        row["auto_db"] = row.get(f"{row['auto_picks']}_db", row["clean_db"])
        rows.append(row)
    return rows


def summary(rows: list[dict], networks: list[str]) -> dict:
    """Mean gain over bicubic of each network and of ``auto``, per input kind and per image set."""
    out = {}
    for kind in ("clean", "jpeg"):
        sel = [r for r in rows if r["kind"] == kind]
        bicubic = statistics.mean(r["bicubic_db"] for r in sel)
        entry = {"images": len(sel), "bicubic_psnr_y_db": bicubic,
                 "auto_picks_real": sum(r["auto_picks"] == "real" for r in sel) / len(sel)}
        for network in [*networks, "auto"]:
            entry[f"{network}_gain_db"] = statistics.mean(r[f"{network}_db"] for r in sel) - bicubic
            entry[f"{network}_gain_db_by_set"] = {
                s: statistics.mean(r[f"{network}_db"] - r["bicubic_db"] for r in sel if r["set"] == s)
                for s in sorted({r["set"] for r in sel})}
        out[kind] = entry
    return out


def latency(model: torch.jit.ScriptModule) -> dict[str, float]:
    lr = torch.rand(1, 3, 256, 256)  # 1.05 MP out
    out_mp = lr.shape[-2] * lr.shape[-1] * SCALE * SCALE / 1e6
    whole = seconds_per_call(lambda: model(lr))
    tiled = seconds_per_call(lambda: run_tiled(model, lr, 256, 12, 1, SCALE))
    return {"seconds_per_output_megapixel": whole / out_mp, "tiled_seconds_per_output_megapixel": tiled / out_mp,
            "threads": torch.get_num_threads()}


def load_networks(real_weights: Path) -> dict[str, torch.jit.ScriptModule]:
    models = {"clean": torch.jit.load(str(WEIGHTS)).eval()}
    if real_weights.exists():
        models["real"] = torch.jit.load(str(real_weights)).eval()
    else:
        print(f"no {real_weights}: the real-input network is not measured")
    return models


def report(results: dict) -> None:
    for kind, label in (("clean", "clean bicubic inputs"), ("jpeg", f"JPEG q{JPEG_QUALITIES[0]}-{JPEG_QUALITIES[1]} inputs")):
        s = results[kind]
        gains = ", ".join(f"{n} {s[f'{n}_gain_db']:+.2f}" for n in results["networks"] + ["auto"])
        print(f"superres x4, {label} ({s['images']} held-out photos): bicubic {s['bicubic_psnr_y_db']:.2f} dB; "
              f"gain over bicubic: {gains} dB (Y PSNR, 4 px border); auto picked real on {s['auto_picks_real']:.0%}")
    for network, lat in results["latency"].items():
        print(f"latency {network}: {lat['seconds_per_output_megapixel']:.2f} s per output MP untiled, "
              f"{lat['tiled_seconds_per_output_megapixel']:.2f} s tiled ({lat['threads']} threads)")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", required=True, help="photo folders (their held-out split is used)")
    parser.add_argument("--max-side", type=int, default=SuperResTask.default_max_side)
    parser.add_argument("--real-weights", type=Path, default=REAL_WEIGHTS,
                        help="the real-input network to measure (e.g. a run's export before it is installed)")
    parser.add_argument("--name", default="superres", help="results file name under benchmarks/results/")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    models = load_networks(args.real_weights)
    rows = quality(models, cases(held_out_photos(args.data, args.max_side)))
    results = {"networks": list(models), **summary(rows, list(models)), "per_image": rows,
               "latency": {n: latency(m) for n, m in models.items()}}
    path = write_results(args.name, results)
    report(results)
    print(f"wrote {path.relative_to(ROOT)}")
    return results


if __name__ == "__main__":
    main()
