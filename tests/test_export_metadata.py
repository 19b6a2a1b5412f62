"""Serving metadata travels inside the TorchScript file: written at export, stamped into old files, read back."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from archives.build import endpoints
from tests.support import ROOT
from handlers.model_metadata import ModelMetadata, load
from training.export import add_metadata, describe, export_torchscript, main
from training.models.atrous_deblur import atrous_deblur
from training.models.espcn import espcn


def test_export_writes_the_models_own_facts(tmp_path):
    model = atrous_deblur("cpu_quarter")  # the preset the deblur campaign exports
    path = tmp_path / "deblur.pt"
    scripted = export_torchscript(model, (torch.rand(1, 3, 40, 44),), path)
    module, metadata = load(path)
    assert metadata == ModelMetadata(scale=1, stride=4, receptive_field=model.receptive_field, large_image="tiles")
    assert metadata.receptive_field == 267
    x = torch.rand(1, 3, 36, 52)
    assert torch.equal(module(x), scripted(x))


def test_a_file_from_the_old_exporter_is_refused_then_stamped(tmp_path):
    model = espcn("portrait").eval()
    path = tmp_path / "superres.pt"
    torch.jit.script(model).save(str(path))  # what export_torchscript wrote before the metadata existed
    with pytest.raises(ValueError, match="--add-metadata"):
        load(path)
    main(["--add-metadata", str(path)])
    module, metadata = load(path)
    assert metadata == ModelMetadata(scale=4, stride=1, receptive_field=13, large_image="tiles")
    x = torch.rand(1, 3, 12, 9)
    with torch.inference_mode():
        assert torch.equal(module(x), model(x))


def test_declared_facts_win_and_bad_values_are_refused(tmp_path):
    path = tmp_path / "m.pt"
    torch.jit.script(torch.nn.Conv2d(3, 3, 3, stride=2)).save(str(path))
    with pytest.raises(ValueError, match="receptive_field"):
        add_metadata(path)  # strided and silent about its receptive field: nobody can guess the overlap
    assert add_metadata(path, {"receptive_field": "5", "stride": "2"}).context == 3
    with pytest.raises(ValueError, match="large_image"):
        ModelMetadata(large_image="sometimes")


@pytest.mark.parametrize("preset", ["portrait", "deblock"])  # deblock: dilated layers
def test_conv_stack_receptive_field_matches_the_measured_dependency(preset):
    """ESPCN's derived receptive field is exactly the span of input pixels that move one output pixel."""
    torch.manual_seed(0)
    model = espcn(preset).eval()
    for p in model.parameters():  # random weights everywhere, so no zero-initialised layer hides a dependency
        torch.nn.init.normal_(p, std=0.2)
    x = torch.rand(1, 3, 31, 31, requires_grad=True)
    model(x)[0, :, 15 * 4 + 1, 15 * 4 + 2].sum().backward()
    cols = (x.grad.abs().sum((0, 1, 2)) > 0).nonzero().flatten()
    assert cols.max() - cols.min() + 1 == describe(model).receptive_field


@pytest.mark.parametrize("endpoint", endpoints())
def test_every_shipped_archive_carries_metadata_that_fits_the_model(endpoint):
    module, metadata = load(ROOT / "archives" / endpoint / f"{endpoint}.pt")
    # what the file says is what its module declares, but the tile context measured on the weights
    assert replace(metadata, tile_context=0) == describe(module)
    assert metadata.tile_context <= (metadata.receptive_field + 1) // 2
    if endpoint == "colorize":
        assert metadata.large_image == "model"
        return
    x = torch.rand(1, 3, 2 * metadata.stride + 3, 3 * metadata.stride + 1)
    with torch.inference_mode():
        out = module(x)
    assert out.shape[-2:] == (x.shape[-2] * metadata.scale, x.shape[-1] * metadata.scale)
