"""TorchScript export with a check that the scripted module matches eager mode, and the model's
serving metadata stored inside the file.

The metadata (``restoration.json`` among the TorchScript file's extra files, as timm keeps a
config beside each set of weights; fields in handlers/model_metadata.py) says what the server needs
to know about the geometry: scale, the stride the input is padded to, the receptive field and the
large-image strategy (overlapping tiles, the whole image, or the model's own).

Each fact is read from the module it describes (attributes of the same names), so a module
declares it where it is born. Run as a program, this module stamps the metadata into a file
exported before the metadata existed::

    python -m training.export --add-metadata archives/deblur/deblur.pt [more.pt ...]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

from handlers.model_metadata import METADATA_FILE, ModelMetadata

# Serving wrappers whose classes do not declare ``large_image`` themselves (yet): both look at the
# whole photo at once, so tiling them would give each tile its own condition.
STRATEGY_BY_CLASS = {"ThumbnailCSRNet": "whole", "ColorizeService": "model"}


def _class_name(module: nn.Module) -> str:
    """The Python class name, for an eager module or a scripted one (which keeps it as ``original_name``)."""
    return module.original_name if isinstance(module, torch.jit.ScriptModule) else type(module).__name__


def _conv_chain_receptive_field(module: nn.Module) -> int:
    """Receptive field of a module that is a plain stack of stride-1 convolutions (as ESPCN is)."""
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d) or getattr(m, "original_name", "") == "Conv2d"]
    if not convs or any(tuple(c.stride) != (1, 1) for c in convs):
        raise ValueError(f"{_class_name(module)} must declare its receptive_field: it is not a plain stride-1 conv stack")
    return 1 + sum(c.dilation[0] * (c.kernel_size[0] - 1) for c in convs)


def describe(module: nn.Module, declared: dict[str, str] | None = None) -> ModelMetadata:
    """The serving metadata of ``module`` (eager or scripted), from the attributes it declares.

    ``declared`` (field name -> value) wins over the module's attributes."""
    def fact(name: str, default):
        value = (declared or {}).get(name, getattr(module, name, default))
        return type(getattr(ModelMetadata, name))(value)

    large_image = fact("large_image", STRATEGY_BY_CLASS.get(_class_name(module), "tiles"))
    needs_field = large_image == "tiles" and not hasattr(module, "receptive_field") and "receptive_field" not in (declared or {})
    receptive_field = fact("receptive_field", _conv_chain_receptive_field(module) if needs_field else 0)
    return ModelMetadata(scale=fact("scale", 1), stride=fact("stride", 1), receptive_field=receptive_field,
                         large_image=large_image, tile_context=fact("tile_context", 0))


def save(scripted: torch.jit.ScriptModule, path: Path, metadata: ModelMetadata) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.jit.save(scripted, str(tmp), _extra_files={METADATA_FILE: metadata.to_json()})
    tmp.replace(path)  # a reader never sees half a file


def export_torchscript(module: nn.Module, example: tuple[torch.Tensor, ...], path: Path,
                       atol: float = 1e-5) -> torch.jit.ScriptModule:
    """Script ``module`` (eval mode), verify it against eager on ``example``, save it with its metadata."""
    module = module.eval()
    metadata = describe(module)
    scripted = torch.jit.script(module)
    with torch.inference_mode():
        eager_out, script_out = module(*example), scripted(*example)
    diff = (eager_out - script_out).abs().max().item()
    if diff > atol:
        raise RuntimeError(f"scripted output differs from eager by {diff:.2e} (> {atol:.0e})")
    save(scripted, path, metadata)
    return scripted


def add_metadata(path: Path, declared: dict[str, str] | None = None) -> ModelMetadata:
    """Stamp the metadata of an already exported file into it, read from the scripted module itself.

    ``declared`` (name -> value) stands in for facts a file exported by older code does not carry."""
    scripted = torch.jit.load(str(path), map_location="cpu")
    metadata = describe(scripted, declared)
    save(scripted, path, metadata)
    return metadata


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--add-metadata", nargs="+", type=Path, required=True, metavar="PT",
                        help="exported TorchScript files to stamp (rewritten in place; the weights are unchanged)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a fact the file's module does not declare (e.g. receptive_field=192); repeatable")
    args = parser.parse_args(argv)
    declared = dict(item.split("=", 1) for item in args.set)
    for path in args.add_metadata:
        print(f"{path}: {add_metadata(path, declared).to_json()}")


if __name__ == "__main__":
    main(sys.argv[1:])
