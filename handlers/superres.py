"""TorchServe handler for ``superres``: ESPCN x4 super-resolution (sub-pixel CNN)."""
from __future__ import annotations

from image_handler import ImageHandler


class SuperResHandler(ImageHandler):
    scale = 4
    receptive_field = 6  # 5x5 + four 3x3 convs at low resolution: 2 + 4 * 1 pixels each side
