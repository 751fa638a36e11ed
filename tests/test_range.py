"""Networks trained over the whole strength range (issue #10): the model, the noise draws, the schedule, the card."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from denoising import catalogue
from denoising.models import checkpoint as ckpt
from denoising.models.learned import LearnedDenoiser
from denoising.models.unet import UNet
from denoising.noise import PRESETS, NoiseSpec, strength_level
from denoising.training import (
    GATE_THRESHOLDS,
    RANGE_UNET,
    TrainConfig,
    Trainer,
    TrainingError,
    TrainingSetupError,
    check_config,
    cosine_lr,
    draw_range_noise,
    select_epoch,
    selection_rule,
    strength_range,
    train,
    validation_noise,
)

SMALL = {"base": 8, "depth": 2}


def _faces(n: int, size: int = 12, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.2, 0.8, (n, size, size, 3)).astype(np.float32)


# ----------------------------------------------------------------------------- the network
def test_range_unet_starts_as_the_identity_and_needs_the_level():
    torch.manual_seed(0)
    model = UNet(**SMALL, **RANGE_UNET).eval()
    x = torch.rand(2, 3, 20, 17)
    assert torch.equal(model(x, [0.1, 0.3]), x)
    with pytest.raises(ValueError, match="told the noise level"):
        model(x)


def test_a_shut_gate_passes_values_through_exactly():
    torch.manual_seed(0)
    model = UNet(**SMALL, **RANGE_UNET).eval()
    torch.nn.init.normal_(model.head.weight, std=0.1)
    with torch.no_grad():
        model.head.bias[:3] = 0.5  # a large correction everywhere ...
        model.head.bias[3:] = -200.0  # ... behind a shut gate
    x = torch.rand(1, 3, 16, 16)
    out, correction, gate_logit = model.forward_parts(x, 0.1)
    assert (correction - x).abs().max() > 0.1
    assert torch.equal(out, x)
    assert gate_logit.shape == x.shape


def test_a_gate_threshold_makes_the_gate_all_or_nothing():
    torch.manual_seed(0)
    model = UNet(**SMALL, **RANGE_UNET, gate_threshold=0.5).eval()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        model.head.bias[:3] = 0.25
        model.head.bias[3:] = -1.0  # gate 0.27: below the threshold, so nothing of the correction leaks
        assert torch.equal(model.forward_raw(x, 0.1), x)
        model.head.bias[3:] = 1.0  # gate 0.73: the whole correction
        assert torch.equal(model.forward_raw(x, 0.1), x + 0.25)
        assert torch.allclose(model.forward_parts(x, 0.1)[0], x + 0.25 * torch.sigmoid(torch.tensor(1.0)))
    with pytest.raises(ValueError, match="gate_threshold needs gated=True"):
        UNet(gate_threshold=0.5)


def test_extreme_hint_marks_exact_black_and_white():
    model = UNet(**SMALL, **RANGE_UNET)
    x = torch.full((1, 3, 4, 4), 0.5)
    x[0, 1, 2, 3], x[0, 2, 0, 0] = 1.0, 0.0
    inputs = model._encoder_input(x, 0.2)
    assert inputs.shape[1] == 3 + 3 + 1
    assert inputs[0, 3:6].sum() == 2 and inputs[0, 4, 2, 3] == 1 and inputs[0, 5, 0, 0] == 1
    assert torch.all(inputs[0, 6] == 0.2)


def test_plain_unet_config_is_unchanged_so_shipped_cards_rebuild():
    assert set(UNet(**SMALL).config()) == {"channels", "base", "depth", "max_mult", "dropout"}
    config = UNet(**SMALL, **RANGE_UNET).config()
    rebuilt = ckpt.build_model("unet", json.loads(json.dumps(config)))
    assert rebuilt.config() == config
    with pytest.raises(ValueError, match="cond_channels must be 0 or 1"):
        UNet(cond_channels=2)


# ----------------------------------------------------------------------------- strengths and levels
def test_noise_spec_strength_level_and_with_strength():
    spec = PRESETS["post"]["poisson"]
    assert spec.strength == 256.0 and spec.level == pytest.approx(1 / 16)
    assert spec.with_strength(4).params == {"peak": 4.0}
    sp = PRESETS["post"]["salt_pepper"].with_strength(0.1)
    assert sp.params["amount"] == 0.1 and sp.params["per"] == "value" and sp.level == 0.1
    assert PRESETS["post"]["gaussian"].level == pytest.approx(math.sqrt(0.1))
    with pytest.raises(ValueError, match="amount"):
        sp.with_strength(1.5)
    with pytest.raises(ValueError, match="unknown noise kind"):
        strength_level("blur", 0.1)
    from denoising.noise import level_strength

    for kind, value in (("poisson", 4.0), ("poisson", 1024.0), ("gaussian", 0.02), ("salt_pepper", 0.2)):
        assert level_strength(kind, strength_level(kind, value)) == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("kind", catalogue.NOISE_KINDS)
def test_the_training_range_holds_every_sweep_strength(kind):
    mild, strong = strength_range(kind)
    levels = strength_level(kind, np.asarray(catalogue.SWEEP_STRENGTHS[kind]))
    assert strength_level(kind, mild) < levels.min() and levels.max() < strength_level(kind, strong)


def test_range_draws_are_seeded_log_uniform_and_at_the_drawn_strength():
    spec = PRESETS["post"]["gaussian"]
    clean = np.full((4000, 16, 16, 3), 0.5, np.float32)
    noisy, levels = draw_range_noise(spec, clean, np.random.default_rng(1))
    again, levels_again = draw_range_noise(spec, clean, np.random.default_rng(1))
    assert noisy.tobytes() == again.tobytes() and levels.tobytes() == levels_again.tobytes()
    mild, strong = strength_range("gaussian")
    assert mild <= levels.min() and levels.max() <= strong
    # log-uniform: the median level is the geometric mean of the ends
    assert np.median(levels) == pytest.approx(math.sqrt(mild * strong), rel=0.05)
    # each face carries noise of its own drawn sigma (clipping is negligible below sigma 0.2)
    low = levels < 0.2
    measured = (noisy[low] - clean[low]).reshape(low.sum(), -1).std(1)
    assert np.allclose(measured, levels[low], rtol=0.12)


def test_validation_faces_take_the_sweep_strengths_in_turn():
    spec = PRESETS["post"]["salt_pepper"]
    noisy, strengths, levels = validation_noise(spec, _faces(13), np.random.default_rng(0), ranged=True)
    sweep = catalogue.SWEEP_STRENGTHS["salt_pepper"]
    assert list(strengths[:7]) == [*sweep, sweep[0]]
    assert np.allclose(levels, strengths)
    assert noisy.shape == (13, 12, 12, 3)
    plain = validation_noise(spec, _faces(13), np.random.default_rng(0), ranged=False)
    assert plain[1] is None and plain[2] is None


# ----------------------------------------------------------------------------- schedule and selection
def test_cosine_schedule_decays_from_the_start_rate_towards_zero():
    rates = [cosine_lr(1e-3, epoch, 10) for epoch in range(1, 11)]
    assert rates[0] == 1e-3 and all(a > b for a, b in zip(rates, rates[1:], strict=False)) and 0 < rates[-1] < 3e-5


def test_psnr_selection_keeps_the_highest_psnr_epoch():
    history = [{"epoch": 1, "val_mae": 0.10, "val_psnr": 20.0}, {"epoch": 2, "val_mae": 0.09, "val_psnr": 22.0},
               {"epoch": 3, "val_mae": 0.08, "val_psnr": 21.9}, {"epoch": 4, "val_mae": 0.085, "val_psnr": 22.0}]
    assert select_epoch(history, 0.002, "val_psnr") == 2
    assert select_epoch(history, 0.002, "val_mae") == 3
    assert "cosine decay to zero" in selection_rule(0.002, "val_psnr", "cosine")
    assert selection_rule(0.002, "val_psnr", "cosine").startswith("the epoch with the highest validation PSNR")


def test_old_cards_keep_the_rule_they_were_trained_with():
    legacy = TrainConfig.from_dict({"max_epochs": 40, "patience": 6})
    assert (legacy.schedule, legacy.select_on) == ("plateau", "val_mae")
    assert (TrainConfig().schedule, TrainConfig().select_on) == ("cosine", "val_psnr")
    with pytest.raises(TrainingSetupError, match="schedule must be one of"):
        check_config("unet_range", TrainConfig(schedule="step"))


def test_a_range_step_needs_the_level():
    trainer = Trainer("unet_range", PRESETS["post"]["gaussian"], TrainConfig(unet=SMALL), 12, torch.device("cpu"))
    x = torch.rand(2, 3, 12, 12)
    with pytest.raises(TrainingError, match="needs level"):
        trainer.step(x, x)
    losses = trainer.step(x, x.clamp(0.1, 0.9), torch.tensor([0.1, 0.2]))
    assert set(losses) == {"loss", "minus_psnr", "minus_psnr_correction"}  # the default loss: minus each face's PSNR
    mse = Trainer("unet_range", PRESETS["post"]["gaussian"], TrainConfig(unet=SMALL, range_loss="mse"), 12,
                  torch.device("cpu")).step(x, x.clamp(0.1, 0.9), torch.tensor([0.1, 0.2]))
    assert set(mse) == {"loss", "mse", "mse_correction"}


# ----------------------------------------------------------------------------- a whole run
def test_a_range_run_writes_a_card_and_denoises_any_size(tmp_path):
    config = TrainConfig(max_epochs=2, batch_size=8, unet=SMALL)
    faces = (_faces(24, 16), _faces(12, 16, seed=1))
    result = train("unet_range", PRESETS["post"]["speckle"], faces, config, device="cpu", out_dir=tmp_path)
    card = json.loads(result.checkpoint.with_suffix(".json").read_text())
    assert card["strength_range"]["parameter"] == "sigma"
    assert card["strength_range"]["validation_strengths"] == list(catalogue.SWEEP_STRENGTHS["speckle"])
    assert card["selection"] == selection_rule(config.min_improvement, "val_psnr", "cosine")
    assert card["best_epoch"] == select_epoch(card["history"], config.min_improvement, "val_psnr")
    assert len(card["history"]) == 2 and card["stopped"] == "max_epochs"
    gate = card["gate_threshold"]
    assert gate["chosen"] in GATE_THRESHOLDS and set(gate["validation"]) == {"soft", "0.5", "0.6", "0.7", "0.8", "0.9"}
    best = max(gate["validation"].values(), key=lambda scores: scores["val_psnr"])
    chosen = "soft" if gate["chosen"] is None else f"{gate['chosen']:g}"
    assert gate["validation"][chosen] == best and card["model_kwargs"]["gate_threshold"] == gate["chosen"]
    assert set(card["history"][0]["val_psnr_by_strength"]) == {f"{s:g}" for s in catalogue.SWEEP_STRENGTHS["speckle"]}
    denoiser = LearnedDenoiser("unet_range", tmp_path)
    assert denoiser.input_size("speckle") is None  # fully convolutional: any size
    for shape in ((3, 16, 16, 3), (1, 37, 23, 3)):
        out = denoiser(np.random.default_rng(0).uniform(0, 1, shape).astype(np.float32),
                       NoiseSpec("speckle", {"sigma": 0.5}))
        assert out.shape == shape and out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1


# ----------------------------------------------------------------------------- the Training page's view of a range run
def test_history_frame_spreads_per_strength_scores_into_columns_and_charts_them():
    from dashboard.charts import strength_history
    from dashboard.tables import history_frame

    history = [{"epoch": e, "val_psnr": 30.0 + e, "val_psnr_by_strength": {"0.001": 40.0 + e, "0.2": 20.0 + e}}
               for e in (1, 2)]
    frame = history_frame(history)
    assert list(frame["val_psnr_by_strength 0.2"]) == [21.0, 22.0] and list(frame["epoch"]) == [1, 2]
    figure = strength_history(frame, "psnr")
    assert [trace.name for trace in figure.data] == ["0.001", "0.2"]
    assert list(figure.data[0].y) == [41.0, 42.0]
    assert history_frame([]).empty and history_frame("not a history").empty


def test_the_psnr_loss_is_minus_the_mean_face_psnr_with_a_floor():
    from denoising.training import _minus_psnr

    y = torch.zeros(2, 3, 4, 4)
    out = torch.stack([torch.full((3, 4, 4), 0.1), torch.full((3, 4, 4), 0.01)])
    assert _minus_psnr(out, y).item() == pytest.approx(-(20.0 + 40.0) / 2, rel=1e-5)
    assert _minus_psnr(y, y).item() == pytest.approx(-60.0)  # an exact face counts as 60 dB, not infinity
    with pytest.raises(TrainingSetupError, match="range_loss must be one of"):
        check_config("unet_range", TrainConfig(range_loss="l1"))


def test_a_network_too_big_to_save_is_refused_before_training():
    with pytest.raises(TrainingSetupError, match="model_kwargs.base"):
        check_config("unet_l1", TrainConfig(unet={"base": 10_000, "depth": 4}))
    with pytest.raises(TrainingSetupError, match="model_kwargs.depth"):
        check_config("unet_range", TrainConfig(unet={"base": 16, "depth": 99}))


def test_a_downloaded_chart_gets_room_for_its_labels_and_the_page_chart_keeps_its_own():
    import re

    from dashboard.charts import DOWNLOAD_MARGIN, figure_html, strength_history
    from dashboard.tables import history_frame

    figure = strength_history(history_frame([{"epoch": 1, "val_psnr_by_strength": {"0.1": 30.0}}]))
    page_margin = figure.layout.margin.to_plotly_json()
    html = figure_html(figure)
    margin = json.loads(re.search(r'"margin":(\{[^}]*\})', html).group(1))
    assert all(margin[side] >= least for side, least in DOWNLOAD_MARGIN.items())
    assert figure.layout.margin.to_plotly_json() == page_margin and page_margin["l"] < DOWNLOAD_MARGIN["l"]
