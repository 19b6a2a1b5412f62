"""The one training loop every model uses: Adam, cosine decay, tqdm, checkpoints,
a metrics CSV, a before/after grid and a TorchScript export at the end."""
from __future__ import annotations

import csv
import math
import shlex
import sys
import time
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from training.export import export_torchscript
from training.grid import save_grid
from training.task import Task


def _lr_at(step: int, steps: int, base: float, warmup: int = 200) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def _load_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer, task: Task) -> int:
    if not path.exists():
        return 0
    state = torch.load(path, map_location="cpu")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    if "rng" in state:  # resume the same patch and degradation sequence
        task.sampler.gen.set_state(state["rng"]["sampler"])
        torch.set_rng_state(state["rng"]["torch"])
    return int(state["step"])


def _save_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer, task: Task, step: int) -> None:
    rng = {"sampler": task.sampler.gen.get_state(), "torch": torch.get_rng_state()}
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "rng": rng}, path)


def train(task: Task, out_dir: Path, steps: int, lr: float, batch: int, eval_every: int,
          export_to: Path | None = None, command: list[str] | None = None) -> dict[str, float]:
    """Train ``task``'s model, resuming from ``out_dir/checkpoint.pt`` if present."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model = task.build_model()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    ckpt = out_dir / "checkpoint.pt"
    start = _load_checkpoint(ckpt, model, opt, task)
    metrics_path = out_dir / "metrics.csv"
    new_file = start == 0 or not metrics_path.exists()
    with open(metrics_path, "w" if new_file else "a", newline="") as f:
        writer = csv.writer(f)
        if new_file:
            writer.writerow(["step", "loss", "val_psnr", "baseline_psnr", "seconds"])
        began, running = time.time(), 0.0
        bar = tqdm(range(start, steps), initial=start, total=steps, desc=f"train {task.name}", mininterval=5)
        for step in bar:
            for group in opt.param_groups:
                group["lr"] = _lr_at(step, steps, lr)
            model.train()
            loss = task.loss(model, task.make_batch(task.sampler.sample(batch)))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running = 0.98 * running + 0.02 * loss.item() if step > start else loss.item()
            if (step + 1) % eval_every == 0 or step + 1 == steps:
                model.eval()
                val = task.validate(model)
                writer.writerow([step + 1, f"{running:.5f}", f"{val['val_psnr']:.3f}",
                                 f"{val['baseline_psnr']:.3f}", f"{time.time() - began:.0f}"])
                f.flush()
                bar.set_postfix(loss=f"{running:.4f}", val=f"{val['val_psnr']:.2f}", base=f"{val['baseline_psnr']:.2f}")
                _save_checkpoint(ckpt, model, opt, task, step + 1)
    model.eval()
    final = task.validate(model)
    save_grid(task.preview_rows(model), out_dir / "before_after.png", ["baseline", "model", "target"])
    scripted_path = out_dir / f"{task.name}.pt"
    export_torchscript(task.export_module(model), task.example_inputs(), scripted_path)
    if export_to is not None:
        export_to.parent.mkdir(parents=True, exist_ok=True)
        export_to.write_bytes(scripted_path.read_bytes())
        (export_to.parent / "TRAINED_WITH.txt").write_text(
            "Produced by (from the repository root):\n  python -m " + " ".join(
                ["training.train"] + [shlex.quote(a) for a in (sys.argv[1:] if command is None else command)]) + "\n"
            + f"Held-out validation at the end: model {final['val_psnr']:.2f} dB, "
              f"baseline {final['baseline_psnr']:.2f} dB (PSNR on {task.args.patch}px crops).\n")
    return final
