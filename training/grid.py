"""Before/after image grids written at the end of training and by the evaluation scripts."""
from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw
from torch.nn import functional as F


def _to_pil(x: torch.Tensor) -> Image.Image:
    arr = (x.detach().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr.squeeze(-1) if arr.shape[-1] == 1 else arr).convert("RGB")


def save_grid(rows: list[list[torch.Tensor]], path: Path, labels: list[str], cell: int = 192) -> None:
    """Each row is a list of [C, H, W] images in [0, 1]; all are resized to ``cell`` px high."""
    header = 18
    grid = Image.new("RGB", (cell * len(labels), header + cell * len(rows)), "white")
    draw = ImageDraw.Draw(grid)
    for col, label in enumerate(labels):
        draw.text((col * cell + 4, 3), label, fill="black")
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            img = F.interpolate(img[None].float(), size=(cell, cell), mode="nearest")[0]
            grid.paste(_to_pil(img), (c * cell, header + r * cell))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)
