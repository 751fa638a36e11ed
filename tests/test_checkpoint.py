"""Checkpoint files: round trips, clear errors, no pickle, atomic writes."""

import json

import pytest
import torch

from denoising.models.autoencoder import Autoencoder
from denoising.models.checkpoint import (CheckpointError, load, load_state, restore_optimizer, save, save_state,
                                         module_tensors)
from denoising.models.unet import UNet


def _trained_like(model):
    """Perturb weights and BatchNorm statistics so a round trip has something to lose."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.train()(torch.rand(8, 3, 28, 28))  # updates running mean/var
    return model.eval()


@pytest.mark.parametrize("make, arch", [(lambda: Autoencoder(28), "autoencoder"), (lambda: UNet(), "pix2pix")])
def test_round_trip_float32_exact_and_float16_close(tmp_path, make, arch):
    model = _trained_like(make())
    x = torch.rand(4, 3, 28, 28)
    with torch.inference_mode():
        expected = model(x)
    path = save(model, tmp_path / "f32", arch, "gaussian", {"history": [{"epoch": 1}]}, weights_dtype="float32")
    assert path.name == f"{arch}-gaussian.safetensors"
    loaded, meta = load(path)
    assert not loaded.training and meta["history"] == [{"epoch": 1}]
    with torch.inference_mode():
        assert torch.equal(loaded(x), expected)
    save(model, tmp_path / "f16", arch, "gaussian", weights_dtype="float16")
    loaded16, meta16 = load((tmp_path / "f16", arch, "gaussian"))
    assert meta16["weights_dtype"] == "float16"
    assert (tmp_path / "f16" / path.name).stat().st_size < 0.6 * path.stat().st_size
    with torch.inference_mode():
        torch.testing.assert_close(loaded16(x), expected, atol=5e-3, rtol=0)
    assert not list((tmp_path / "f32").glob("*.tmp"))  # atomic writes leave no temporaries


def test_json_records_what_rebuilds_the_model(tmp_path):
    save(UNet(base=8, depth=3), tmp_path, "unet_l1", "poisson")
    meta = json.loads((tmp_path / "unet_l1-poisson.json").read_text())
    assert meta["model_class"] == "unet" and meta["model_kwargs"]["base"] == 8 and meta["model_kwargs"]["depth"] == 3
    assert {"torch", "denoising", "python"} <= set(meta["versions"])
    assert meta["arch"] == "unet_l1" and meta["noise_kind"] == "poisson"


@pytest.fixture
def saved(tmp_path):
    save(UNet(base=8, depth=2), tmp_path, "unet_l1", "gaussian")
    return tmp_path / "unet_l1-gaussian"


def test_missing_files(saved):
    with pytest.raises(CheckpointError, match="missing"):
        load(saved.parent / "pix2pix-gaussian.safetensors")
    saved.with_suffix(".json").unlink()
    with pytest.raises(CheckpointError, match=r"missing checkpoint file .*unet_l1-gaussian\.json"):
        load(saved)


def test_truncated_weights(saved):
    weights = saved.with_suffix(".safetensors")
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load(weights)


def test_misnamed_noise_kind(saved):
    for suffix in (".json", ".safetensors"):  # a Gaussian model copied under the Poisson name
        saved.with_name("unet_l1-poisson" + suffix).write_bytes(saved.with_suffix(suffix).read_bytes())
    with pytest.raises(CheckpointError, match="trained for 'gaussian' noise, not 'poisson': the file is misnamed"):
        load((saved.parent, "unet_l1", "poisson"))
    load((saved.parent, "unet_l1", "gaussian"))  # the real one still loads


def test_json_missing_keys_and_wrong_arch(saved):
    with pytest.raises(CheckpointError, match="is a 'unet_l1' checkpoint, expected 'pix2pix'"):
        load(saved, arch="pix2pix")
    meta = json.loads(saved.with_suffix(".json").read_text())
    del meta["model_kwargs"]
    saved.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="lacks required keys.*model_kwargs"):
        load(saved)
    saved.with_suffix(".json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load(saved)


def test_weights_not_matching_architecture(saved):
    meta = json.loads(saved.with_suffix(".json").read_text())
    meta["model_kwargs"]["base"] = 16
    saved.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="do not match the architecture: shape mismatch downs.0.0.weight"):
        load(saved)
    meta["model_kwargs"]["base"], meta["model_kwargs"]["depth"] = 8, 3
    saved.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="missing"):
        load(saved)


def test_weights_and_json_from_different_saves(saved, tmp_path):
    save(UNet(base=8, depth=2, dropout=0.0), tmp_path / "other", "unet_l1", "gaussian", weights_dtype="float32")
    saved.with_suffix(".safetensors").write_bytes((tmp_path / "other" / "unet_l1-gaussian.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="SHA-256 differs"):
        load(saved)


def test_resume_state_round_trip_without_pickle(tmp_path):
    model = UNet(base=8, depth=2)
    opt = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.5, 0.999))
    model(torch.rand(4, 3, 28, 28)).mean().backward()
    opt.step()
    save_state(tmp_path, {"generator": model}, {"generator": opt}, {"epoch": 3})
    info, tensors = load_state(tmp_path)
    assert info["epoch"] == 3
    twin = UNet(base=8, depth=2)
    twin.load_state_dict(module_tensors(tensors, "generator"))
    opt2 = torch.optim.Adam(twin.parameters(), lr=1.0)
    restore_optimizer(opt2, tensors, info["optimizers"]["generator"], "opt_generator")
    a, b = opt.state_dict(), opt2.state_dict()
    assert b["param_groups"][0]["lr"] == 2e-4 and tuple(b["param_groups"][0]["betas"]) == (0.5, 0.999)
    for idx in a["state"]:
        for key in a["state"][idx]:
            assert torch.equal(a["state"][idx][key], b["state"][idx][key])
    assert not list(tmp_path.glob("*.pt")) and not list(tmp_path.glob("*.pkl"))
