"""Keep freed memory in the process while training.

A training step allocates and frees the same large activations every step. With glibc's defaults
the freed top of the heap is handed back to the kernel and faulted in again on the next step:
measured on the retouch step (batch 32 x 4,096 pixels x 64 channels), 0.43 s a step with more
system than user time, against 0.15 s when the heap keeps a pad (``M_TOP_PAD``) of 1 GiB.
(The serving workers make the opposite choice, handlers/image_handler.py: they must give memory back.)
"""
from __future__ import annotations

import ctypes

M_TOP_PAD = -2  # glibc's mallopt parameter number


def keep_freed_memory(pad_bytes: int = 1 << 30) -> bool:
    """Ask glibc to keep ``pad_bytes`` of heap when it grows or trims; False without glibc."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_TOP_PAD, pad_bytes))
