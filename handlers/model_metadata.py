"""What the server needs to know about a model's geometry, stored inside its TorchScript file.

``training/export.py`` writes it at export (from attributes the model declares) as the extra file
``restoration.json``; the handler reads it back with the weights (:func:`load`). It imports no other
handler module, so both the training code (``handlers.model_metadata``) and a served handler
(``model_metadata``) use it.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

METADATA_FILE = "restoration.json"
STRATEGIES = ("tiles", "whole", "model")


@dataclass(frozen=True)
class ModelMetadata:
    """``scale``: output side / input side. ``stride``: the input is padded to a multiple of this, and
    tiles start on this grid. ``receptive_field``: diameter, in input pixels, of the region one output
    pixel depends on (0 when that is the whole image). ``large_image``: how a large photo runs:
    ``tiles`` (overlapping tiles whose overlap covers the receptive field), ``whole`` (always the whole
    image: a global condition would differ per tile) or ``model`` (the module does its own
    working-size or patch inference). ``tile_context``: input pixels of context on each side with which
    tiled output stays within 1/255 of untiled on photos, measured on the weights
    (benchmarks/tile_context.py); 0 = not measured: half the receptive field, exact but costly (a
    network's influence fades long before its receptive field ends)."""

    scale: int = 1
    stride: int = 1
    receptive_field: int = 0
    large_image: str = "tiles"
    tile_context: int = 0

    def __post_init__(self) -> None:
        if self.large_image not in STRATEGIES:
            raise ValueError(f"large_image must be one of {', '.join(STRATEGIES)}, not {self.large_image!r}")
        if self.scale < 1 or self.stride < 1 or self.receptive_field < 0 or self.tile_context < 0:
            raise ValueError(f"scale and stride must be >= 1, receptive_field and tile_context >= 0: {self}")
        if self.large_image == "tiles" and self.receptive_field < 1:
            raise ValueError("a tiled model needs its receptive field, to size the tile overlap")

    @property
    def context(self) -> int:
        """Input pixels of context an output pixel needs on each side: the measured ``tile_context``, else
        half the receptive field, rounded up."""
        return self.tile_context or (self.receptive_field + 1) // 2

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> "ModelMetadata":
        return cls(**json.loads(text))


def load(path: str | Path, map_location: str | torch.device | None = "cpu") -> tuple[torch.jit.ScriptModule, ModelMetadata]:
    """The scripted module and its metadata; a file without metadata raises with the command that adds it."""
    extra = {METADATA_FILE: ""}
    module = torch.jit.load(str(path), map_location=map_location, _extra_files=extra)
    if not extra[METADATA_FILE]:
        raise ValueError(f"{path} carries no {METADATA_FILE}; add it with: python -m training.export --add-metadata {path}")
    return module, ModelMetadata.from_json(extra[METADATA_FILE])
