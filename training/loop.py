"""The one training loop every model uses: Adam, cosine decay, tqdm, checkpoints,
a metrics CSV, a before/after grid and a TorchScript export at the end.

Optional: an exponential moving average of the weights (validated, checkpointed and exported
instead of the raw weights), bf16 autocast and channels-last tensors (on a CPU with AVX-512 BF16
the two together made an atrous deblur training step 2.1x faster; see training/campaigns/).
"""
from __future__ import annotations

import csv
import math
import shlex
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from training.export import export_torchscript
from training.grid import save_grid
from training.task import Task
from training.warm_start import load_matching_weights


def _lr_at(step: int, steps: int, base: float, warmup: int = 200) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def _load_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer, ema: AveragedModel | None,
                     task: Task) -> tuple[int, float]:
    """(step, training seconds so far) of the checkpoint, restored into the given objects; (0, 0) without one."""
    if not path.exists():
        return 0, 0.0
    state = torch.load(path, map_location="cpu", weights_only=False)  # our own file: it holds RNG states
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    if ema is not None:  # a checkpoint without EMA starts the average from the current weights
        ema.load_state_dict(state["ema"]) if "ema" in state else ema.update_parameters(model)
    if "rng" in state:  # resume the same patch and degradation sequence
        task.load_rng_state(state["rng"])
        torch.set_rng_state(state["rng"]["torch"])
    return int(state["step"]), float(state.get("seconds", 0.0))


MOMENTS = ("exp_avg", "exp_avg_sq")  # Adam's per-weight state: twice the weights' size in float32


def _compact_optimizer_state(opt: torch.optim.Optimizer) -> dict:
    """The optimiser's state with its moments in bfloat16 (half of a checkpoint's size was these, and a
    campaign's checkpoint must stay small enough to commit). The live moments are rounded the same way,
    so a run that goes on and one resumed from the file take identical steps (``load_state_dict`` casts
    the moments back to the weights' float32)."""
    with torch.no_grad():
        for state in opt.state.values():
            for name in MOMENTS:
                if name in state:
                    state[name].copy_(state[name].bfloat16())
    saved = opt.state_dict()
    return {**saved, "state": {i: {k: v.bfloat16() if k in MOMENTS else v for k, v in s.items()}
                               for i, s in saved["state"].items()}}


def _save_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer, ema: AveragedModel | None,
                     task: Task, step: int, seconds: float) -> None:
    state = {"model": model.state_dict(), "optimizer": _compact_optimizer_state(opt), "step": step, "seconds": seconds,
             "rng": {**task.rng_state(), "torch": torch.get_rng_state()}}
    if ema is not None:
        state["ema"] = ema.state_dict()
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # an interrupted save never leaves a broken checkpoint behind


def _channels_last(batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return tuple(t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t for t in batch)


def _to(batch: tuple[torch.Tensor, ...], device: torch.device) -> tuple[torch.Tensor, ...]:
    return tuple(t.to(device, non_blocking=True) for t in batch)


def train(task: Task, out_dir: Path, steps: int, lr: float, batch: int, eval_every: int,
          export_to: Path | None = None, command: list[str] | None = None, ema_decay: float = 0.0,
          bf16: bool = False, channels_last: bool = False, init_from: Path | None = None,
          device: str = "cpu", max_minutes: float | None = None) -> dict[str, float] | None:
    """Train ``task``'s model, resuming from ``out_dir/checkpoint.pt`` if present; a new run starts
    from ``init_from``'s weights where given (``training/warm_start.py``).

    Batches are made on the CPU (the degradations' random streams stay the same on any device) and
    moved to ``device``. ``max_minutes`` cuts the run into legs: after that much wall time the leg
    validates, checkpoints and returns None (no export), and a later run (on any device) continues it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model = task.build_model()
    ckpt = out_dir / "checkpoint.pt"
    if init_from is not None and not ckpt.exists():  # before the EMA copies the weights
        fresh = load_matching_weights(model, init_from)
        print(f"{task.name}: weights from {init_from}; new: {', '.join(fresh) or 'none'}", file=sys.stderr)
    dev = torch.device(device)
    model = model.to(dev)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(ema_decay)) if ema_decay else None
    start, seconds_before = _load_checkpoint(ckpt, model, opt, ema, task)
    served = (lambda: ema.module) if ema is not None else (lambda: model)  # the weights validated and exported
    metrics_path = out_dir / "metrics.csv"
    new_file = start == 0 or not metrics_path.exists()
    cpu_val, task.val_batch = task.val_batch, _to(task.val_batch, dev)
    leg_began, cut = time.time(), False
    with open(metrics_path, "w" if new_file else "a", newline="") as f:
        writer = csv.writer(f)
        if new_file:
            # seconds: wall time of training so far, summed over every resumed run (for dB per training-hour)
            writer.writerow(["step", "loss", "val_psnr", "baseline_psnr", "seconds"])
        began, running = time.time() - seconds_before, 0.0
        bar = tqdm(range(start, steps), initial=start, total=steps, desc=f"train {task.name}", mininterval=5)
        for step in bar:
            for group in opt.param_groups:
                group["lr"] = _lr_at(step, steps, lr)
            model.train()
            pair = _to(task.make_batch(task.sampler.sample(batch)), dev)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                loss = task.loss(model, _channels_last(pair) if channels_last else pair)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if ema is not None:
                ema.update_parameters(model)
            running = 0.98 * running + 0.02 * loss.item() if step > start else loss.item()
            cut = max_minutes is not None and time.time() - leg_began > 60 * max_minutes
            if (step + 1) % eval_every == 0 or step + 1 == steps or cut:
                served().eval()
                val = task.validate(served())
                writer.writerow([step + 1, f"{running:.5f}", f"{val['val_psnr']:.3f}",
                                 f"{val['baseline_psnr']:.3f}", f"{time.time() - began:.0f}"])
                f.flush()
                bar.set_postfix(loss=f"{running:.4f}", val=f"{val['val_psnr']:.2f}", base=f"{val['baseline_psnr']:.2f}")
                _save_checkpoint(ckpt, model, opt, ema, task, step + 1, time.time() - began)
            if cut:
                break
    task.val_batch = cpu_val
    if cut:
        print(f"{task.name}: leg of {max_minutes} min ended at step {step + 1}; checkpoint in {ckpt}", file=sys.stderr)
        return None
    model = served().eval().to("cpu", memory_format=torch.contiguous_format)
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
