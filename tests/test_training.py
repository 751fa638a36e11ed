"""Training loops, the kept-epoch rule, resume, guards against divergence and overwriting, and the train.py CLI.

Tiny CPU-only runs: a dozen synthetic 28x28 faces, a few epochs.
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from denoising import metrics
from denoising.models import checkpoint as ckpt
from denoising.training import (
    TrainConfig,
    Trainer,
    TrainingError,
    TrainingSetupError,
    _to_tensor,
    evaluate,
    select_epoch,
    selection_rule,
    train,
)
from scripts import train as train_cli

REPO = Path(__file__).resolve().parents[1]
CHECKPOINTS = REPO / "checkpoints"


@pytest.fixture
def spec():
    from denoising.noise import PRESETS

    return PRESETS["post"]["gaussian"]


@pytest.fixture
def arrays(tiny_faces):
    from conftest import make_tiny_faces

    return tiny_faces, make_tiny_faces(4, seed=1)


def _config(**kw):
    # the plateau rule (early stopping, MAE selection) is what most of these tests exercise
    base = dict(max_epochs=2, batch_size=4, seed=0, unet={"base": 8, "depth": 2}, patchgan={"base": 8, "n_layers": 2},
                schedule="plateau", select_on="val_mae")
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


def test_pix2pix_step_updates_discriminator_then_generator(tiny_faces, spec):
    trainer = Trainer("pix2pix", spec, _config(), 28, torch.device("cpu"))
    x = y = _to_tensor(tiny_faces, torch.device("cpu"))
    before = {name: [p.detach().clone() for p in m.parameters()] for name, m in trainer.modules.items()}
    losses = trainer.step(x, y)
    assert set(losses) == {"loss", "l1", "adv", "loss_d"}
    assert losses["loss"] == pytest.approx(losses["adv"] + 100 * losses["l1"])
    for name, module in trainer.modules.items():  # both networks moved; the discriminator trains again next step
        assert any(not torch.equal(a, b) for a, b in zip(before[name], module.parameters(), strict=True)), name
    assert all(p.requires_grad for p in trainer.disc.parameters())


# ----------------------------------------------------------------------------- the kept epoch
def test_selection_rule_keeps_only_improvements_beyond_the_threshold():
    maes = [0.1000, 0.0999, 0.0997, 0.09969, 0.0990, 0.0500]
    history = [{"epoch": i + 1, "val_mae": m} for i, m in enumerate(maes)]
    # 0.0999 is 0.1 % better than 0.1 (not enough), 0.0997 is 0.3 % better (kept), 0.09969 is 0.01 % better than
    # 0.0997 (not enough), 0.0990 is 0.7 % better (kept); 0.05 beats everything
    assert select_epoch(history[:4], 0.002) == 3
    assert select_epoch(history[:5], 0.002) == 5
    assert select_epoch(history[:4], 0.0) == 4  # without a threshold: the lowest MAE
    assert select_epoch(history, 0.6) == 1
    assert select_epoch([], 0.002) == 0
    assert "more than 0.2 % (relative: below 0.998 x its MAE)" in selection_rule(0.002)
    assert selection_rule(0.0).startswith("the epoch with the lowest validation MAE")


def test_train_writes_checkpoint_with_history_and_the_rule_it_used(tmp_path, arrays, spec):
    result = train("unet_l1", spec, arrays, _config(max_epochs=3, min_improvement=0.0), device="cpu",
                   out_dir=tmp_path)
    meta = json.loads(result.checkpoint.with_suffix(".json").read_text())
    assert [h["epoch"] for h in meta["history"]] == [1, 2, 3]
    assert {"train_loss", "val_mae", "val_psnr", "seconds"} <= set(meta["history"][0])
    assert meta["data"]["n_train"] == 8 and meta["data"]["n_validation"] == 4 and meta["data"]["image_size"] == [28, 28]
    assert meta["device"] == "cpu" and meta["wall_time_s"] > 0 and meta["noise_kind"] == "gaussian"
    maes = [h["val_mae"] for h in meta["history"]]
    # min_improvement 0: the kept epoch is the lowest validation MAE, and the card says so
    assert meta["best_epoch"] == 1 + int(np.argmin(maes)) and meta["stopped"] == "max_epochs"
    assert meta["best_val_mae"] == min(maes)
    assert meta["selection"] == selection_rule(0.0)
    assert ckpt.has_state(tmp_path / "resume" / "unet_l1-gaussian")


def test_a_small_gain_does_not_replace_the_kept_epoch(tmp_path, arrays, spec):
    # with a 100 % threshold no later epoch can count as better, whatever its MAE
    result = train("unet_l1", spec, arrays, _config(max_epochs=3, min_improvement=0.999999, patience=5), device="cpu",
                   out_dir=tmp_path)
    meta = json.loads(result.checkpoint.with_suffix(".json").read_text())
    assert min(h["val_mae"] for h in meta["history"]) < meta["history"][0]["val_mae"]  # later epochs were better ...
    assert result.best_epoch == meta["best_epoch"] == 1  # ... but not by enough
    assert meta["selection"] == selection_rule(0.999999)
    loaded, _ = ckpt.load(result.checkpoint)
    assert evaluate(loaded, *_val_pair(arrays, spec), torch.device("cpu"))[0] == pytest.approx(
        meta["history"][0]["val_mae"], abs=2e-3)  # float16 storage


def _val_pair(arrays, spec):
    from denoising.training import _noisy, _rng

    val = arrays[1]
    return _noisy(spec, val, _rng(0, 3)), val


SHIPPED_CARDS = sorted(CHECKPOINTS.glob("*.json"))


@pytest.mark.parametrize("card_path", SHIPPED_CARDS, ids=[p.stem for p in SHIPPED_CARDS])
def test_shipped_card_states_the_rule_that_chose_its_epoch(card_path):
    card = json.loads(card_path.read_text())
    config = TrainConfig.from_dict(card["config"])  # cards from before the cosine schedule: the plateau rule
    rule = config.min_improvement
    assert card["selection"] == selection_rule(rule, config.select_on, config.schedule)
    assert card["best_epoch"] == select_epoch(card["history"], rule, config.select_on)
    assert card["best_val_mae"] == card["history"][card["best_epoch"] - 1]["val_mae"]


def test_shipped_cards_include_kept_epochs_that_are_not_the_lowest_mae():
    # why the old text "lowest validation MAE" was false, and still loads after the card edit
    differ = [p.stem for p in SHIPPED_CARDS
              if (c := json.loads(p.read_text()))["best_epoch"] != 1 + int(np.argmin([h["val_mae"] for h in c["history"]]))]
    assert len(differ) >= 5, differ
    for path in SHIPPED_CARDS:
        ckpt.load(path)


# ----------------------------------------------------------------------------- validation scores
def test_validation_scores_agree_with_denoising_metrics(tiny_faces, spec):
    torch.manual_seed(3)
    model = Trainer("unet_l1", spec, _config(), 28, torch.device("cpu")).gen
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    noisy = np.clip(spec.apply(tiny_faces, np.random.default_rng(1)), 0, 1).astype(np.float32)
    mae, psnr = evaluate(model, noisy, tiny_faces, torch.device("cpu"), batch_size=3)
    with torch.inference_mode():
        out = model.eval()(torch.from_numpy(noisy).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    assert not np.allclose(out, noisy)
    assert mae == pytest.approx(float(metrics.mae(tiny_faces, out).mean()), rel=1e-6)
    assert psnr == pytest.approx(float(metrics.psnr(tiny_faces, out).mean()), rel=1e-6)


# ----------------------------------------------------------------------------- resume
def test_resume_continues_exactly(tmp_path, arrays, spec):
    straight = train("pix2pix", spec, arrays, _config(), device="cpu", out_dir=tmp_path / "a")
    train("pix2pix", spec, arrays, _config(max_epochs=1), device="cpu", out_dir=tmp_path / "b")
    resumed = train("pix2pix", spec, arrays, _config(max_epochs=2), device="cpu", out_dir=tmp_path / "b", resume=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    meta = json.loads((tmp_path / "b" / "pix2pix-gaussian.json").read_text())
    assert [h["epoch"] for h in meta["history"]] == [1, 2] and meta["stopped"] == "max_epochs"
    for a, b in zip(straight.history, resumed.history, strict=True):  # same seeds, same optimizer state
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


def test_kill_between_the_renames_of_an_epoch_leaves_a_checkpoint_and_a_resumable_state(tmp_path, arrays, spec,
                                                                                       monkeypatch):
    """SIGKILL stand-in at each rename of epoch 2's writes: load and resume still work, and finish the same."""
    straight = train("unet_l1", spec, arrays, _config(max_epochs=3, min_improvement=0.0), device="cpu",
                     out_dir=tmp_path / "straight")
    # epoch 2's renames: pending card, weights, card, resume state
    for kill_at in (1, 2, 3, 4):
        out = tmp_path / f"kill{kill_at}"
        train("unet_l1", spec, arrays, _config(max_epochs=1, min_improvement=0.0), device="cpu", out_dir=out)
        real, calls = os.replace, []

        def replace(src, dst, kill_at=kill_at, calls=calls, real=real):
            if not str(dst).endswith(".lock.json"):  # the lock's holder note is not part of an epoch's writes
                calls.append(dst)
            if len(calls) == kill_at and calls[-1] == dst:
                raise KeyboardInterrupt  # nothing after the kill runs; the handler only logs and re-raises
            real(src, dst)

        monkeypatch.setattr(ckpt.os, "replace", replace)
        with pytest.raises(KeyboardInterrupt):
            train("unet_l1", spec, arrays, _config(max_epochs=3, min_improvement=0.0), device="cpu", out_dir=out,
                  resume=True)
        monkeypatch.undo()
        _, meta = ckpt.load((out, "unet_l1", "gaussian"))
        assert len(meta["history"]) == (1 if kill_at < 3 else 2)
        resumed = train("unet_l1", spec, arrays, _config(max_epochs=3, min_improvement=0.0), device="cpu",
                        out_dir=out, resume=True)
        assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
        assert [h["val_mae"] for h in resumed.history] == pytest.approx([h["val_mae"] for h in straight.history],
                                                                        rel=1e-5)


# ----------------------------------------------------------------------------- stopping rules
def test_early_stopping(tmp_path, arrays, spec):
    result = train("autoencoder", spec, arrays, _config(max_epochs=5, patience=1, min_improvement=0.999999),
                   device="cpu", out_dir=tmp_path)
    assert result.stopped == "early_stopping" and result.epochs == 2 and result.best_epoch == 1


def test_plateau_halves_learning_rate_before_stopping(tmp_path, arrays, spec):
    # min_improvement ~1: no epoch after the first can count as better, so every later epoch is a plateau epoch
    config = _config(max_epochs=6, patience=5, min_improvement=0.999999, lr_patience=2, lr=1e-3)
    result = train("unet_l1", spec, arrays, config, device="cpu", out_dir=tmp_path)
    lrs = [h["lr"] for h in result.history]
    assert result.epochs == 6 and result.stopped == "early_stopping"
    # the rate each epoch trained with: halved after 2 and after 4 epochs without improvement
    assert lrs == pytest.approx([1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4])


# ----------------------------------------------------------------------------- divergence
class _NaNAfter:
    """Noise that turns to NaN after ``calls`` draws (the validation draw is the first)."""

    kind = "gaussian"

    def __init__(self, calls):
        self.calls, self.seen = calls, 0

    def apply(self, images, rng):
        self.seen += 1
        return images if self.seen <= self.calls else np.full_like(images, np.nan)

    def to_json(self):
        return '{"kind": "nan"}'


def test_nan_loss_stops_and_writes_no_checkpoint(tmp_path, arrays):
    with pytest.raises(TrainingError, match="training loss is not finite at epoch 1, batch 1") as err:
        train("unet_l1", _NaNAfter(1), arrays, _config(), device="cpu", out_dir=tmp_path)
    assert "this run wrote no checkpoint" in str(err.value) and "epoch 0" not in str(err.value)
    assert not list(tmp_path.glob("unet_l1-gaussian.*")) and not list(tmp_path.glob("resume/*/state.safetensors"))


def test_divergence_after_good_epochs_writes_nothing_more(tmp_path, arrays):
    # 8 faces in batches of 4: draws 1 (validation), 2-3 (epoch 1), then epoch 2 diverges at its first batch
    with pytest.raises(TrainingError, match="not finite at epoch 2, batch 1") as err:
        train("unet_l1", _NaNAfter(3), arrays, _config(max_epochs=3), device="cpu", out_dir=tmp_path)
    assert f"{tmp_path / 'unet_l1-gaussian.safetensors'} keeps epoch 1 (marked unfinished)" in str(err.value)
    _, meta = ckpt.load((tmp_path, "unet_l1", "gaussian"))
    assert meta["best_epoch"] == 1 and len(meta["history"]) == 1 and meta["stopped"] is None
    assert ckpt.load_state(tmp_path / "resume" / "unet_l1-gaussian")[0]["epoch"] == 1


@pytest.mark.parametrize("arch, what", [("autoencoder", "validation MAE .* worse than 1.5 x the worse of the noisy "
                                                         "input"),
                                        ("pix2pix", "training loss term 'loss_d' exploded"),
                                        ("unet_l1", "training loss exploded")])
def test_huge_learning_rate_stops_every_recipe_without_a_checkpoint(tmp_path, arrays, spec, arch, what):
    with pytest.raises(TrainingError, match=what) as err:
        train(arch, spec, arrays, _config(lr=1e6), device="cpu", out_dir=tmp_path)
    assert "this run wrote no checkpoint" in str(err.value) and "Best weights (epoch 0)" not in str(err.value)
    assert not list(tmp_path.glob(f"{arch}-gaussian.*"))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_unusable_learning_rates_are_refused_before_training(tmp_path, arrays, spec, bad):
    with pytest.raises(TrainingSetupError, match="lr must be a positive finite number"):
        train("unet_l1", spec, arrays, _config(lr=bad), device="cpu", out_dir=tmp_path)
    assert not tmp_path.joinpath("unet_l1-gaussian.json").exists()


# ----------------------------------------------------------------------------- overwriting and locking
def test_fresh_run_does_not_replace_an_existing_checkpoint(tmp_path, arrays, spec):
    first = train("unet_l1", spec, arrays, _config(max_epochs=1), device="cpu", out_dir=tmp_path)
    before = first.checkpoint.read_bytes()
    with pytest.raises(TrainingSetupError, match=r"unet_l1-gaussian.safetensors \(finished \(max_epochs\), kept "
                                                 r"epoch 1\) already exists; replace it with --force"):
        train("unet_l1", spec, arrays, _config(max_epochs=1, seed=5), device="cpu", out_dir=tmp_path)
    assert first.checkpoint.read_bytes() == before
    train("unet_l1", spec, arrays, _config(max_epochs=2), device="cpu", out_dir=tmp_path, resume=True)  # its own
    train("unet_l1", spec, arrays, _config(max_epochs=1, seed=5), device="cpu", out_dir=tmp_path, overwrite=True)
    assert first.checkpoint.read_bytes() != before


def test_second_run_on_the_same_name_fails_at_once_saying_who_holds_it(tmp_path, arrays, spec):
    with ckpt.writer_lock(tmp_path, "unet_l1", "gaussian"):
        with pytest.raises(TrainingSetupError, match=f"unet_l1-gaussian is being written by pid {os.getpid()} on "):
            train("unet_l1", spec, arrays, _config(), device="cpu", out_dir=tmp_path)
        train("unet_l1", spec, arrays, _config(max_epochs=1), device="cpu", out_dir=tmp_path / "elsewhere")
    assert not (tmp_path / "unet_l1-gaussian.json").exists()


# ----------------------------------------------------------------------------- the CLI
def _cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "scripts.train", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_cli_help_documents_every_flag():
    proc = _cli("--help")
    assert proc.returncode == 0
    for flag in ("--arch", "--noise", "--preset", "--data", "--epochs", "--patience", "--batch-size", "--lr",
                 "--seed", "--out", "--force", "--resume", "--device", "--limit", "--weights-dtype"):
        assert flag in proc.stdout
    assert all(a.help for a in train_cli.build_parser()._actions)


def test_cli_bad_data_dir_is_one_clear_line(tmp_path, capsys):
    assert train_cli.main(["--data", str(tmp_path / "nope"), "--arch", "unet_l1", "--noise", "gaussian",
                           "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --data") and "no such folder" in err and err.count("\n") == 1


@pytest.mark.parametrize("value", ["nan", "-1", "0", "inf", "abc"])
def test_cli_refuses_unusable_learning_rates(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_cli.main(["--data", "lfw", "--lr", value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("usage: ") is False and "argument --lr: expected a" in err[-1]


def _hashes(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


SMOKE = ["--data", "lfw", "--arch", "unet_l1", "--noise", "gaussian", "--limit", "16", "--val-limit", "4",
         "--batch-size", "8"]


def test_cli_without_out_writes_a_run_folder_and_leaves_checkpoints_alone(tmp_path, monkeypatch, capsys):
    shipped = _hashes(CHECKPOINTS)
    monkeypatch.chdir(tmp_path)
    assert train_cli.main([*SMOKE, "--epochs", "1"]) == 0
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("unet_l1-gaussian-2")
    assert (runs[0] / "unet_l1-gaussian.safetensors").is_file()
    out = capsys.readouterr().out
    assert out.startswith("device: cpu") and f"into {Path('runs') / runs[0].name}" in out
    assert train_cli.main([*SMOKE, "--epochs", "2", "--resume"]) == 0  # continues in the newest run folder
    assert list((tmp_path / "runs").iterdir()) == runs
    meta = json.loads((runs[0] / "unet_l1-gaussian.json").read_text())
    assert [h["epoch"] for h in meta["history"]] == [1, 2]
    assert _hashes(CHECKPOINTS) == shipped


def test_cli_refuses_to_replace_a_finished_model_before_training(tmp_path, capsys):
    assert train_cli.main([*SMOKE, "--epochs", "1", "--out", str(tmp_path)]) == 0
    before = _hashes(tmp_path)
    capsys.readouterr()
    assert train_cli.main([*SMOKE, "--epochs", "1", "--seed", "3", "--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "already exists: replace with --force" in captured.err
    assert "device:" not in captured.out  # refused before anything trained
    assert _hashes(tmp_path) == before
    assert train_cli.main([*SMOKE, "--epochs", "1", "--seed", "3", "--out", str(tmp_path), "--force"]) == 0
    assert _hashes(tmp_path)["unet_l1-gaussian.safetensors"] != before["unet_l1-gaussian.safetensors"]


def test_cli_diverging_run_exits_1_and_says_nothing_was_written(tmp_path):
    proc = _cli(*SMOKE, "--epochs", "1", "--lr", "1e6", "--out", str(tmp_path))
    assert proc.returncode == 1
    assert "training loss exploded" in proc.stderr and "this run wrote no checkpoint" in proc.stderr
    assert "Traceback" not in proc.stderr and "done: 0 model(s)" in proc.stdout
    assert not list(tmp_path.glob("*.safetensors"))
