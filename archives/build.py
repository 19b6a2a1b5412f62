"""Build model_store/<endpoint>.mar for every archives/<endpoint>/ holding weights and a model-config.yaml,
and for every chain: an archives/<chain>/ with a model-config.yaml but no weights (``restore``).

Usage: python archives/build.py [endpoint ...]   (default: all of them)
The handler is handlers/<endpoint>.py; the shared handler modules and any further ``*.pt`` of the folder
(superres_real.pt) travel as extra files. A chain's
archive carries every model's handler, and its weights and model-config.yaml as ``<model>/``.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED_HANDLER_FILES = ("image_handler.py", "image_io.py", "file_info.py", "model_metadata.py", "options.py",
                        "tiling.py", "self_ensemble.py", "input_quality.py")
VERSION = "1.0"


def endpoints() -> list[str]:
    """Endpoints with committed TorchScript weights, a model config and a handler."""
    return sorted(d.name for d in (ROOT / "archives").iterdir()
                  if (d / f"{d.name}.pt").exists() and (d / "model-config.yaml").exists()
                  and (ROOT / "handlers" / f"{d.name}.py").exists())


def chains() -> list[str]:
    """Endpoints that run the models of the others (no weights of their own): a model config and a handler."""
    return sorted(d.name for d in (ROOT / "archives").iterdir()
                  if d.is_dir() and not (d / f"{d.name}.pt").exists() and (d / "model-config.yaml").exists()
                  and (ROOT / "handlers" / f"{d.name}.py").exists())


def archives() -> list[str]:
    """Everything ``build`` makes by default: the models' endpoints, then the chains."""
    return endpoints() + chains()


def build(endpoint: str, store: Path, config: Path | None = None) -> Path:
    """``store``/<endpoint>.mar; ``config`` replaces archives/<endpoint>/model-config.yaml (benchmark variants)."""
    src = ROOT / "archives" / endpoint
    extra = [ROOT / "handlers" / f for f in SHARED_HANDLER_FILES]
    store.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as staging:
        if (src / f"{endpoint}.pt").exists():
            model = ["--serialized-file", str(src / f"{endpoint}.pt")]
            # Further networks of the endpoint (superres_real.pt) travel beside its own file.
            extra += sorted(p for p in src.glob("*.pt") if p.name != f"{endpoint}.pt")
        else:  # a chain: the archiver copies the folders inside ``staging`` whole, as <model>/ in the archive
            model = []
            for name in endpoints():
                os.symlink(ROOT / "archives" / name, Path(staging) / name)
                extra.append(ROOT / "handlers" / f"{name}.py")
            extra.append(Path(staging))
        subprocess.run(
            # The archiver of this interpreter's environment, whether or not its bin/ is on PATH.
            [sys.executable, "-m", "model_archiver.model_packaging", "--model-name", endpoint, "--version", VERSION,
             *model, "--handler", str(ROOT / "handlers" / f"{endpoint}.py"),
             "--extra-files", ",".join(str(p) for p in extra),
             "--config-file", str(config or src / "model-config.yaml"),
             "--export-path", str(store), "--force"],
            check=True,
        )
    return store / f"{endpoint}.mar"


def main(argv: list[str]) -> None:
    store = ROOT / "model_store"
    for endpoint in argv or archives():
        print(f"built {build(endpoint, store).relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
