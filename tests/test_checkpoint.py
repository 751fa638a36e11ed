"""Checkpoint files: round trips, clear errors, no pickle, atomic writes, kills between writes, one writer."""

import json
import os
import subprocess
import sys

import pytest
import torch

from denoising.models import checkpoint as ckpt
from denoising.models.autoencoder import Autoencoder
from denoising.models.checkpoint import (
    CheckpointError,
    CheckpointLocked,
    load,
    load_state,
    module_tensors,
    restore_optimizer,
    save,
    save_state,
    writer_lock,
)
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


def test_save_refuses_a_model_of_another_recipe(tmp_path):
    with pytest.raises(CheckpointError, match="a pix2pix checkpoint holds a 'unet' model, not 'autoencoder'"):
        save(Autoencoder(28), tmp_path, "pix2pix", "gaussian")
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- a kill between the writes of a checkpoint
class _Killed(BaseException):
    """Stands in for SIGKILL: nothing after it runs (no except Exception catches it)."""


def _kill_at_replace(monkeypatch, which: int):
    """Make the ``which``-th os.replace in the checkpoint module (1-based) die instead of renaming."""
    calls = []
    real = os.replace

    def replace(src, dst):
        calls.append(str(dst))
        if len(calls) == which:
            raise _Killed(f"killed before renaming onto {dst}")
        real(src, dst)

    monkeypatch.setattr(ckpt.os, "replace", replace)
    return calls


def _distinct_models():
    torch.manual_seed(0)
    old, new = UNet(base=8, depth=2), UNet(base=8, depth=2)
    with torch.no_grad():
        for p_old, p_new in zip(old.parameters(), new.parameters(), strict=True):
            p_old.add_(0.1 * torch.randn_like(p_old))
            p_new.add_(0.1 * torch.randn_like(p_new))
    return old.eval(), new.eval()


def _same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


@pytest.mark.parametrize("which, survivor", [(1, "old"), (2, "old"), (3, "new")])
def test_checkpoint_survives_a_kill_at_any_rename(tmp_path, monkeypatch, which, survivor):
    # save() renames: 1 the pending card into place, 2 the new weights, 3 the pending card onto the card
    old, new = _distinct_models()
    save(old, tmp_path, "unet_l1", "gaussian", {"history": [{"epoch": 1}]}, weights_dtype="float32")
    calls = _kill_at_replace(monkeypatch, which)
    with pytest.raises(_Killed):
        save(new, tmp_path, "unet_l1", "gaussian", {"history": [{"epoch": 1}, {"epoch": 2}]}, weights_dtype="float32")
    monkeypatch.undo()
    assert calls[-1].endswith(("unet_l1-gaussian.json.pending", "unet_l1-gaussian.safetensors",
                               "unet_l1-gaussian.json")[which - 1])
    loaded, meta = load((tmp_path, "unet_l1", "gaussian"))
    assert _same_weights(loaded, old if survivor == "old" else new)
    assert len(meta["history"]) == (1 if survivor == "old" else 2)
    save(new, tmp_path, "unet_l1", "gaussian", weights_dtype="float32")  # the next save tidies up
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unet_l1-gaussian.json", "unet_l1-gaussian.safetensors"]


def test_kill_between_weights_and_card_of_a_first_save_still_loads(tmp_path, monkeypatch):
    _, new = _distinct_models()
    _kill_at_replace(monkeypatch, 3)
    with pytest.raises(_Killed):
        save(new, tmp_path, "unet_l1", "gaussian", weights_dtype="float32")
    monkeypatch.undo()
    assert not (tmp_path / "unet_l1-gaussian.json").exists()
    loaded, _ = load(tmp_path / "unet_l1-gaussian.safetensors")
    assert _same_weights(loaded, new)


def test_a_stale_pending_card_is_ignored(saved):
    # a kill after the pending card was written but before the weights moved: the pending card is for other weights
    pending = saved.with_name(saved.name + ".json.pending")
    meta = json.loads(saved.with_suffix(".json").read_text())
    pending.write_text(json.dumps(dict(meta, weights_sha256="0" * 64, history=["stale"])))
    _, loaded_meta = load(saved)
    assert "history" not in loaded_meta


# ---------------------------------------------------------------- the resume state is one file
def _state(tmp_path, epoch):
    model = UNet(base=8, depth=2)
    torch.manual_seed(epoch)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    opt = torch.optim.Adam(model.parameters())
    save_state(tmp_path, {"generator": model}, {"generator": opt}, {"epoch": epoch})
    return model


def test_resume_state_is_one_file_replaced_at_once(tmp_path, monkeypatch):
    first = _state(tmp_path, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.safetensors"]
    _kill_at_replace(monkeypatch, 1)
    with pytest.raises(_Killed):
        _state(tmp_path, 2)
    monkeypatch.undo()
    info, tensors = load_state(tmp_path)  # the kill left the whole old state
    assert info["epoch"] == 1
    assert torch.equal(module_tensors(tensors, "generator")["head.weight"], first.state_dict()["head.weight"])
    second = _state(tmp_path, 2)
    info, tensors = load_state(tmp_path)
    assert info["epoch"] == 2
    assert torch.equal(module_tensors(tensors, "generator")["head.weight"], second.state_dict()["head.weight"])


def test_leftovers_of_a_kill_do_not_break_the_state(tmp_path):
    _state(tmp_path, 1)
    (tmp_path / ".state.safetensors.abc123.tmp").write_bytes(b"half a file")  # what a kill mid-write leaves
    assert load_state(tmp_path)[0]["epoch"] == 1


def test_state_in_the_old_two_file_format_still_resumes(tmp_path):
    model = UNet(base=8, depth=2)
    ckpt.write_tensors(tmp_path / "state.safetensors", {f"generator.{k}": v for k, v in model.state_dict().items()})
    info = {"epoch": 4, "modules": {}, "optimizers": {}, "state_sha256": ckpt._sha256(tmp_path / "state.safetensors")}
    ckpt.write_json(tmp_path / "state.json", info)
    assert load_state(tmp_path)[0]["epoch"] == 4
    ckpt.write_json(tmp_path / "state.json", dict(info, state_sha256="0" * 64))  # the kill the old format allowed
    with pytest.raises(CheckpointError, match="does not match state.json"):
        load_state(tmp_path)


def test_truncated_state_is_a_clear_error(tmp_path):
    _state(tmp_path, 1)
    path = tmp_path / "state.safetensors"
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_state(tmp_path)


# ---------------------------------------------------------------- one writer per checkpoint name
def test_second_writer_is_refused_and_told_who_holds_the_name(tmp_path):
    with writer_lock(tmp_path, "unet_l1", "gaussian"):
        who = rf"unet_l1-gaussian is being written by pid {os.getpid()} on .+, since \d{{4}}-\d\d-\d\dT"
        with pytest.raises(CheckpointLocked, match=who), writer_lock(tmp_path, "unet_l1", "gaussian"):
            pass
        with writer_lock(tmp_path, "unet_l1", "poisson"):  # another name is free
            pass
    with writer_lock(tmp_path, "unet_l1", "gaussian"):  # released: free again
        pass


def test_lock_held_by_another_process(tmp_path):
    code = ("import sys, time; from denoising.models.checkpoint import writer_lock\n"
            f"with writer_lock({str(tmp_path)!r}, 'pix2pix', 'speckle'):\n"
            "    print('held', flush=True); sys.stdin.readline()")
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(CheckpointLocked, match=f"being written by pid {holder.pid} "), \
                writer_lock(tmp_path, "pix2pix", "speckle"):
            pass
    finally:
        holder.communicate("\n", timeout=30)
    with writer_lock(tmp_path, "pix2pix", "speckle"):  # the holder exited: free
        pass
