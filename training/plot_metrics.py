"""Held-out PSNR curves of one or more training runs, against training hours.

    python -m training.plot_metrics training/campaigns/deblur/main-* training/campaigns/deblur/trials/* \\
        --out training/campaigns/deblur/curve.png

Each run folder's ``metrics.csv`` (written by ``training/loop.py``; ``seconds`` is cumulative over
resumed runs) gives one line of gain over the baseline (dB) per checkpoint; the legend gives each
run's last gain and its rate in dB per training-hour.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


def read_curve(run: Path) -> tuple[list[float], list[float]]:
    """(hours, gain in dB over the baseline) per checkpoint of a run folder."""
    rows = list(csv.DictReader(open(run / "metrics.csv", newline="")))
    hours = [float(r["seconds"]) / 3600 for r in rows]
    gains = [float(r["val_psnr"]) - float(r["baseline_psnr"]) for r in rows]
    return hours, gains


def plot(runs: list[Path], out: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    for run in runs:
        hours, gains = read_curve(run)
        rate = gains[-1] / hours[-1] if hours and hours[-1] > 0 else float("nan")
        ax.plot(hours, gains, marker="o", ms=3, label=f"{run.name}: +{gains[-1]:.2f} dB, {rate:.2f} dB/h")
    ax.set_xlabel("training hours (2 CPU cores)")
    ax.set_ylabel("held-out gain over the input (dB)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders holding metrics.csv")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--title", default="held-out validation during training")
    args = parser.parse_args()
    plot(args.runs, args.out, args.title)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
