"""Issue 14's grids of results on photos as users bring them, with their figures.

- colorize: grey archive-style prints made from held-out colour photos (the luma only, faded blacks and
  dimmed whites, film grain, a soft vignette), colorized in automatic mode by the exported weights as
  the server runs them (its default mode); the colour photo beside them. Figures: colourfulness
  (Hasler-Süsstrunk) of the answers against the true photos'.
- retouch: held-out photos made dull as a cheap camera leaves them (under-exposed, flat, lifted blacks,
  washed-out colour, a slight warm cast: one fixed recipe, not the training's random edits), then
  retouched. Figures: PSNR of the dull and of the retouched photo against the original.

Writes benchmarks/results/colorize_archive_grid.png, retouch_dull_grid.png and colour_examples.json.

    python -m benchmarks.colour_examples [--colorize FILE] [--before OLD.pt] [--retouch FILE]
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
from torch.nn import functional as F

from benchmarks.colorize_quality import DATA, SERVED_MODE, colour_photos, colourfulness, no_guidance, quantise
from benchmarks.common import RESULTS, ROOT, held_out_photos, write_results
from training.degradations.global_edits import exposure, fade, luma, saturation, tone_curve, white_balance
from training.grid import save_grid
from training.metrics import psnr

ROWS = 6


def archive_print(photo: torch.Tensor, seed: int) -> torch.Tensor:
    """A grey print of ``photo`` [1, 3, H, W] as an archive scan shows it (RGB, equal channels)."""
    gen = torch.Generator().manual_seed(seed)
    _, _, h, w = photo.shape
    grey = fade(luma(photo), torch.tensor(0.08), torch.tensor(0.10))
    grain = F.avg_pool2d(torch.randn(1, 1, h, w, generator=gen), 3, 1, 1) * 0.04  # film grain: a few px wide
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    vignette = 1 - 0.2 * (yy ** 2 + xx ** 2) / 2
    return quantise((grey + grain) * vignette).expand(1, 3, h, w).contiguous()


def dull(photo: torch.Tensor) -> torch.Tensor:
    """``photo`` as a dull camera JPEG: -0.7 stops, shadows held down, lifted blacks, 65% saturation, warm."""
    x = exposure(photo, torch.tensor(-0.7))
    x = tone_curve(x, torch.tensor(-0.3), torch.tensor(0.0))
    x = fade(x, torch.tensor(0.06), torch.tensor(0.04))
    x = saturation(x, torch.tensor(0.65))
    return quantise(white_balance(x, torch.full((1, 1, 1, 1), 0.25), torch.zeros(1, 1, 1, 1)))


def automatic(model: torch.jit.ScriptModule, grey: torch.Tensor) -> torch.Tensor:
    """The colorizer's automatic answer (no hints, no reference), 8-bit as served."""
    return quantise(model(grey, *no_guidance(grey), SERVED_MODE))


@torch.inference_mode()
def colorize_examples(photos: list, weights: Path, before: Path | None) -> dict:
    paths = {"before": before, "automatic": weights} if before is not None else {"automatic": weights}
    models = {name: torch.jit.load(str(path)).eval() for name, path in paths.items()}
    rows, figures = [], {name: [] for name in ["truth", *models]}
    for i, (_, photo) in enumerate(photos):
        grey = archive_print(photo, i)
        answers = {name: automatic(model, grey) for name, model in models.items()}
        figures["truth"].append(colourfulness(photo))
        for name, answer in answers.items():
            figures[name].append(colourfulness(answer))
        if len(rows) < ROWS:
            rows.append([grey[0], *(a[0] for a in answers.values()), photo[0]])
    labels = ["archive print", *(f"{name} ({path.name})" for name, path in paths.items()), "colour original"]
    save_grid(rows, RESULTS / "colorize_archive_grid.png", labels)
    truth = statistics.mean(figures["truth"])
    return {"photos": len(photos), "mode": SERVED_MODE, "truth_colourfulness": round(truth, 2),
            **{f"{name}_colourfulness": round(statistics.mean(v), 2) for name, v in figures.items() if name != "truth"},
            **{f"{name}_colourfulness_share": round(statistics.mean(v) / truth, 3)
               for name, v in figures.items() if name != "truth"}}


@torch.inference_mode()
def retouch_examples(photos: list, weights: Path) -> dict:
    model = torch.jit.load(str(weights)).eval()
    rows, dull_db, retouched_db = [], [], []
    for _, photo in photos:
        target = quantise(photo)
        x = dull(photo)
        out = quantise(model(x))
        dull_db.append(psnr(x, target))
        retouched_db.append(psnr(out, target))
        if len(rows) < ROWS:
            rows.append([x[0], out[0], target[0]])
    save_grid(rows, RESULTS / "retouch_dull_grid.png", ["dull camera photo", "retouched", "original"])
    return {"photos": len(photos), "dull_psnr_db": round(statistics.mean(dull_db), 2),
            "retouched_psnr_db": round(statistics.mean(retouched_db), 2),
            "gain_db": round(statistics.mean(retouched_db) - statistics.mean(dull_db), 2)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="*", default=DATA, help="the folders the weights were trained from")
    parser.add_argument("--colorize", type=Path, default=ROOT / "archives/colorize/colorize.pt")
    parser.add_argument("--before", type=Path, default=None, help="other colorize weights for a column beside")
    parser.add_argument("--retouch", type=Path, default=ROOT / "archives/retouch/retouch.pt")
    parser.add_argument("--max-side", type=int, default=512)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    photos = held_out_photos(args.data, args.max_side)
    result = {"colorize": colorize_examples(colour_photos(photos)[0], args.colorize, args.before),
              "retouch": retouch_examples(photos, args.retouch)}
    print(json.dumps(result, indent=2))
    print(f"wrote {write_results('colour_examples', result)}")
    return result


if __name__ == "__main__":
    main()
