"""Training recipes, one module per served endpoint. ``TASKS`` maps endpoint -> module."""
from __future__ import annotations

import importlib

from training.task import Task

TASKS = {
    "superres": "training.tasks.superres",
    "deblur": "training.tasks.deblur",
    "enhance": "training.tasks.enhance",
    "retouch": "training.tasks.retouch",
    "colorize": "training.tasks.colorize",
}


def available() -> list[str]:
    """Endpoints whose training module exists in this checkout."""
    return [name for name, mod in TASKS.items() if importlib.util.find_spec(mod) is not None]


def task_class(name: str) -> type[Task]:
    """Each task module defines exactly one ``TASK`` class attribute."""
    return importlib.import_module(TASKS[name]).TASK
