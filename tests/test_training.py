"""Training loops, resume, guards and the train.py CLI (tiny, CPU-only runs)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from denoising.training import TrainConfig, TrainingError, TrainingSetupError, Trainer, _to_tensor, train

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "train.py"


@pytest.fixture
def spec():
    from denoising.noise import PRESETS

    return PRESETS["post"]["gaussian"]


@pytest.fixture
def arrays(tiny_faces):
    from conftest import make_tiny_faces

    return tiny_faces, make_tiny_faces(4, seed=1)


def _config(**kw):
    base = dict(max_epochs=2, batch_size=4, seed=0, unet={"base": 8, "depth": 2}, patchgan={"base": 8, "n_layers": 2})
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("arch", ["autoencoder", "unet_l1", "pix2pix"])
def test_a_few_steps_lower_the_loss(arch, tiny_faces, spec):
    trainer = Trainer(arch, spec, _config(lr=2e-3), 28, torch.device("cpu"))
    noisy = np.clip(spec.apply(tiny_faces, np.random.default_rng(0)), 0, 1).astype(np.float32)
    x, y = _to_tensor(noisy, torch.device("cpu")), _to_tensor(tiny_faces, torch.device("cpu"))
    key = "l1" if arch == "pix2pix" else "loss"
    losses = [trainer.step(x, y)[key] for _ in range(15)]
    assert losses[-1] < 0.9 * losses[0], losses


def test_train_writes_checkpoint_with_history(tmp_path, arrays, spec):
    result = train("unet_l1", spec, arrays, _config(), device="cpu", out_dir=tmp_path)
    meta = json.loads(result.checkpoint.with_suffix(".json").read_text())
    assert [h["epoch"] for h in meta["history"]] == [1, 2]
    assert {"train_loss", "val_mae", "val_psnr", "seconds"} <= set(meta["history"][0])
    assert meta["data"]["n_train"] == 8 and meta["data"]["n_validation"] == 4 and meta["data"]["image_size"] == [28, 28]
    assert meta["device"] == "cpu" and meta["wall_time_s"] > 0 and meta["noise_kind"] == "gaussian"
    assert meta["best_epoch"] in (1, 2) and meta["stopped"] == "max_epochs"
    assert meta["best_val_mae"] == meta["history"][meta["best_epoch"] - 1]["val_mae"]
    assert (tmp_path / "resume" / "unet_l1-gaussian" / "state.safetensors").is_file()


def test_resume_continues_exactly(tmp_path, arrays, spec):
    straight = train("pix2pix", spec, arrays, _config(), device="cpu", out_dir=tmp_path / "a")
    train("pix2pix", spec, arrays, _config(max_epochs=1), device="cpu", out_dir=tmp_path / "b")
    resumed = train("pix2pix", spec, arrays, _config(max_epochs=2), device="cpu", out_dir=tmp_path / "b", resume=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    meta = json.loads((tmp_path / "b" / "pix2pix-gaussian.json").read_text())
    assert [h["epoch"] for h in meta["history"]] == [1, 2]
    for a, b in zip(straight.history, resumed.history):  # same seeds, same optimizer state: same numbers
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_mae"] == pytest.approx(b["val_mae"], rel=1e-5)


def test_resume_refuses_another_run(tmp_path, arrays, spec):
    from denoising.noise import PRESETS

    with pytest.raises(TrainingSetupError, match="nothing to resume"):
        train("unet_l1", spec, arrays, _config(), out_dir=tmp_path, resume=True)
    train("unet_l1", spec, arrays, _config(max_epochs=1), device="cpu", out_dir=tmp_path)
    state = tmp_path / "resume" / "unet_l1-gaussian"
    (tmp_path / "resume" / "unet_l1-poisson").mkdir()
    for f in state.iterdir():
        (tmp_path / "resume" / "unet_l1-poisson" / f.name).write_bytes(f.read_bytes())
    with pytest.raises(TrainingSetupError, match="not unet_l1 for"):
        train("unet_l1", PRESETS["post"]["poisson"], arrays, _config(), out_dir=tmp_path, resume=True)


def test_early_stopping(tmp_path, arrays, spec):
    result = train("autoencoder", spec, arrays, _config(max_epochs=5, patience=1, min_improvement=1.0), device="cpu",
                   out_dir=tmp_path)
    assert result.stopped == "early_stopping" and result.epochs == 2 and result.best_epoch == 1


class _NaNSpec:
    kind = "gaussian"

    def apply(self, images, rng):
        return np.full_like(images, np.nan)

    def to_json(self):
        return '{"kind": "nan"}'


def test_nan_loss_stops_with_clear_message(tmp_path, arrays):
    with pytest.raises(TrainingError, match="training loss is not finite at epoch 1, batch 1"):
        train("unet_l1", _NaNSpec(), arrays, _config(), device="cpu", out_dir=tmp_path)


def _cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_cli_help_documents_every_flag():
    proc = _cli("--help")
    assert proc.returncode == 0
    for flag in ("--arch", "--noise", "--preset", "--data", "--epochs", "--patience", "--batch-size", "--lr",
                 "--seed", "--out", "--resume", "--device", "--limit", "--weights-dtype"):
        assert flag in proc.stdout
    parser = __import__("importlib").import_module("runpy").run_path(str(SCRIPT), run_name="train_cli")["build_parser"]()
    assert all(a.help for a in parser._actions)


def test_cli_bad_data_dir_is_one_clear_line(tmp_path):
    proc = _cli("--data", str(tmp_path / "nope"), "--arch", "unet_l1", "--noise", "gaussian")
    assert proc.returncode == 2
    assert "no such folder" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_smoke_run_and_resume(tmp_path):
    args = ["--data", "lfw", "--arch", "unet_l1", "--noise", "gaussian", "--limit", "16", "--val-limit", "4",
            "--batch-size", "8", "--out", str(tmp_path)]
    first = _cli(*args, "--epochs", "1")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("device: cpu") and "done: 1 model(s)" in first.stdout
    second = _cli(*args, "--epochs", "2", "--resume")
    assert second.returncode == 0, second.stderr
    meta = json.loads((tmp_path / "unet_l1-gaussian.json").read_text())
    assert [h["epoch"] for h in meta["history"]] == [1, 2]


def test_plateau_halves_learning_rate_before_stopping(tmp_path, arrays, spec):
    # min_improvement=1.0: no epoch after the first can count as better, so every later epoch is a plateau epoch
    config = _config(max_epochs=6, patience=5, min_improvement=1.0, lr_patience=2, lr=1e-3)
    result = train("unet_l1", spec, arrays, config, device="cpu", out_dir=tmp_path)
    lrs = [h["lr"] for h in result.history]
    assert result.epochs == 6 and result.stopped == "early_stopping"
    # the rate each epoch trained with: halved after 2 and after 4 epochs without improvement
    assert lrs == pytest.approx([1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4])
