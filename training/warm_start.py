"""Start a new run from weights trained before (``python -m training.train ... --init-from FILE``).

FILE is a run's ``checkpoint.pt`` (its EMA weights if it kept them, else its raw weights) or an
exported TorchScript file (``archives/<endpoint>/<endpoint>.pt``; a service wrapper's ``net.``
prefix is dropped: a colorize file with an automatic-mode network gives its guided one). Every tensor whose name and shape match is copied; parts the file lacks (a
new head, say) keep their fresh initialisation and are listed, so a warm start is never silent.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def _saved_weights(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.jit.load(str(path), map_location="cpu").state_dict()
    except RuntimeError:  # not TorchScript: a training checkpoint
        saved = torch.load(path, map_location="cpu", weights_only=False)  # our own file: it holds RNG states
        if "ema" in saved:  # AveragedModel's state: "module.<name>" plus its step counter
            return {k.removeprefix("module."): v for k, v in saved["ema"].items() if k.startswith("module.")}
        return saved["model"]
    return {k.removeprefix("net."): v for k, v in state.items()}


def load_matching_weights(model: nn.Module, path: Path) -> list[str]:
    """Copy ``path``'s weights into ``model`` by name; the names of ``model``'s state left as they were.
    A tensor of the same name but another shape is an error (another preset), not a skip."""
    saved = _saved_weights(path)
    own = model.state_dict()
    wrong = [f"{k}: {tuple(v.shape)} in the file, {tuple(own[k].shape)} here"
             for k, v in saved.items() if k in own and v.shape != own[k].shape]
    if wrong:
        raise ValueError(f"{path} does not fit this model: " + "; ".join(wrong))
    model.load_state_dict({k: v for k, v in saved.items() if k in own}, strict=False)
    return sorted(k for k in own if k not in saved)
