"""TorchServe handler for ``superres``: ESPCN x4 super-resolution (sub-pixel CNN).

Scale and receptive field come from the TorchScript file; large inputs run in overlapping tiles.
"""
from __future__ import annotations

from image_handler import ImageHandler
from options import options_for


class SuperResHandler(ImageHandler):
    options = options_for("superres")
