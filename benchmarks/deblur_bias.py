"""Where a deblurring network could learn to darken: the mean brightness of each training source's
inputs against its targets, in levels of 255 (a network fitted to pairs whose inputs are brighter than
their targets learns to darken what it is given, sharp photos too).

    python -m benchmarks.deblur_bias --data ../shared/data/photos --motion ../shared/data/motion240

Each source (``training/tasks/deblur.py``'s mix) is drawn alone for ``--batches`` batches of 8 crops;
the kernel blur is measured blurred in linear light (as trained) and on the sRGB values, to see what
the linear-light round trip itself contributes. Writes benchmarks/results/deblur_bias.json.
"""
from __future__ import annotations

import argparse
import statistics
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import write_results
from training.degradations import camera_motion
from training.degradations.motion_blur import BlurConfig, degrade
from training.train import parse_args
from training.tasks.deblur import DeblurTask


def shift(pair: tuple[torch.Tensor, torch.Tensor]) -> float:
    """Mean brightness of the input minus the target's, in levels of 255."""
    return float((pair[0].mean() - pair[1].mean()) * 255)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="*", default=["../shared/data/photos"])
    parser.add_argument("--motion", default="../shared/data/motion240")
    parser.add_argument("--batches", type=int, default=40)
    args = parser.parse_args()
    task = DeblurTask(parse_args(["deblur", "--data", *args.data, "--motion", args.motion, "--val-patches", "8"]))
    rng = np.random.default_rng(0)
    sharp_only = replace(task.camera, sharp_prob=1.0)
    sources = {
        "kernel, linear light": lambda c: degrade(c, rng, task.blur),
        "kernel, sRGB values": lambda c: degrade(c, rng, replace(task.blur, linear_light=False)),
        "kernel, linear light, no noise or JPEG": lambda c: degrade(c, rng, replace(task.blur, noise_sigma=(0, 0),
                                                                                     jpeg_prob=0)),
        "camera path": lambda c: camera_motion.degrade(c, rng, task.camera),
        "camera path, sharp exposures": lambda c: camera_motion.degrade(c, rng, sharp_only),
        "real motion240 windows": lambda c: task.real.sample(c.shape[0]),
    }
    result = {}
    for name, make in sources.items():
        shifts = [shift(make(task.sampler.sample(8))) for _ in range(args.batches)]
        result[name] = {"mean_shift_levels": statistics.fmean(shifts), "stdev": statistics.stdev(shifts)}
        print(f"{name}: input - target {result[name]['mean_shift_levels']:+.3f} levels of 255 "
              f"(sd {result[name]['stdev']:.3f} over {args.batches} batches)", flush=True)
    write_results("deblur_bias", result)


if __name__ == "__main__":
    main()
