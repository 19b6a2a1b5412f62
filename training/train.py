"""Train one model: ``python -m training.train <endpoint> [--data DIR ...] [--steps N]``.

Writes ``runs/<endpoint>/`` (checkpoint.pt, metrics.csv, before_after.png, <endpoint>.pt);
``--export-to archives/<endpoint>/<endpoint>.pt`` also installs the TorchScript weights the
archives are built from, with the exact command recorded next to them.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from training.allocator import keep_freed_memory
from training.loop import train
from training.tasks import available, task_class


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="endpoint", required=True)
    for name in available():
        cls = task_class(name)
        p = sub.add_parser(name, help=f"train the {name} model")
        p.add_argument("--data", nargs="*", help="folders of clean photos (default: photos bundled with scikit-image)")
        p.add_argument("--steps", type=int, default=cls.default_steps)
        p.add_argument("--batch", type=int, default=cls.default_batch)
        p.add_argument("--patch", type=int, default=cls.default_patch)
        p.add_argument("--lr", type=float, default=cls.default_lr)
        p.add_argument("--max-side", type=int, default=cls.default_max_side,
                       help="downscale photos larger than this on load")
        p.add_argument("--val-patches", type=int, default=16)
        p.add_argument("--eval-every", type=int, default=1000)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--threads", type=int, default=torch.get_num_threads())
        p.add_argument("--out", type=Path, default=None, help="run folder (default runs/<endpoint>)")
        p.add_argument("--export-to", type=Path, default=None)
        p.add_argument("--init-from", type=Path, default=None, metavar="FILE",
                       help="start a new run from these weights (a checkpoint.pt or an exported .pt; matching names)")
        p.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                       help="keep an exponential moving average of the weights (e.g. 0.999) and export it")
        p.add_argument("--bf16", action="store_true", help="bf16 autocast (CPUs with AVX-512 BF16/AMX)")
        p.add_argument("--channels-last", action="store_true", help="channels-last tensors (faster convs on CPU)")
        p.add_argument("--device", default="cpu", help="where the model trains (cpu, cuda); batches are made on the CPU")
        p.add_argument("--max-minutes", type=float, default=None,
                       help="train one leg of at most this long, checkpoint and stop (a later run continues it)")
        cls.add_arguments(p)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    keep_freed_memory()
    task = task_class(args.endpoint)(args)
    out = args.out or Path("runs") / args.endpoint
    final = train(task, out, args.steps, args.lr, args.batch, args.eval_every, args.export_to, argv,
                  ema_decay=args.ema, bf16=args.bf16, channels_last=args.channels_last, init_from=args.init_from,
                  device=args.device, max_minutes=args.max_minutes)
    if final is None:
        return
    print(f"{args.endpoint}: held-out {final['val_psnr']:.2f} dB vs baseline {final['baseline_psnr']:.2f} dB; run in {out}")


if __name__ == "__main__":
    main()
