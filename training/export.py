"""TorchScript export with a check that the scripted module matches eager mode."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def export_torchscript(module: nn.Module, example: tuple[torch.Tensor, ...], path: Path,
                       atol: float = 1e-5) -> torch.jit.ScriptModule:
    """Script ``module`` (eval mode), verify it against eager on ``example``, save it."""
    module = module.eval()
    scripted = torch.jit.script(module)
    with torch.inference_mode():
        eager_out, script_out = module(*example), scripted(*example)
    diff = (eager_out - script_out).abs().max().item()
    if diff > atol:
        raise RuntimeError(f"scripted output differs from eager by {diff:.2e} (> {atol:.0e})")
    path.parent.mkdir(parents=True, exist_ok=True)
    scripted.save(str(path))
    return scripted
