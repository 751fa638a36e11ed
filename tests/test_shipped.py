"""What the repository ships: the 12 per-preset checkpoints and the 4 range-trained ones, the result tables, and the README table made from them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
CHECKPOINTS = REPO / "checkpoints"
TABLES = CHECKPOINTS / "tables"
ARCHS = ("autoencoder", "pix2pix", "unet_l1")
KINDS = ("gaussian", "poisson", "salt_pepper", "speckle")


def _tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [REPO / name for name in out.decode().split("\0") if name]


def test_twelve_generators_with_complete_cards():
    for arch in ARCHS:
        for kind in KINDS:
            card = json.loads((CHECKPOINTS / f"{arch}-{kind}.json").read_text())
            assert (CHECKPOINTS / card["weights_file"]).is_file()
            assert card["noise_kind"] == kind and card["arch"] == arch
            assert card["device"] in ("cpu", "cuda") and card["wall_time_s"] > 0
            assert {"torch", "denoising"} <= set(card["versions"])
            assert card["data"]["n_train"] > 10_000 and card["data"]["image_size"] == [28, 28]
            assert card["stopped"] in ("early_stopping", "max_epochs")  # finished, not interrupted
            history = card["history"]
            assert len(history) == card["epochs_run"] >= card["best_epoch"] >= 1
            assert {"train_loss", "val_mae", "val_psnr"} <= set(history[0])
            # the kept weights are the best validation epoch; under heavy noise every model beats the noisy input
            assert card["best_val_mae"] == pytest.approx(history[card["best_epoch"] - 1]["val_mae"])
            # no later epoch beat it by the relative margin that counts as an improvement
            margin = 1 - card["config"]["min_improvement"]
            assert min(h["val_mae"] for h in history) >= card["best_val_mae"] * margin
            if kind in ("gaussian", "speckle"):
                assert card["best_val_mae"] < 0.5 * card["val_noisy_input"]["mae"]


def test_range_networks_ship_for_every_kind_with_the_rule_their_cards_state():
    from denoising.catalogue import SWEEP_STRENGTHS
    from denoising.training import GATE_THRESHOLDS, select_epoch, selection_rule

    for kind in KINDS:
        card = json.loads((CHECKPOINTS / f"unet_range-{kind}.json").read_text())
        config = card["config"]
        assert (card["noise_kind"], card["arch"]) == (kind, "unet_range")
        assert (config["schedule"], config["select_on"]) == ("cosine", "val_psnr")
        # every epoch ran (no early stopping) and the kept one is the best validation PSNR
        assert card["stopped"] == "max_epochs" and card["epochs_run"] == config["max_epochs"] == len(card["history"])
        assert card["selection"] == selection_rule(config["min_improvement"], "val_psnr", "cosine")
        assert card["best_epoch"] == select_epoch(card["history"], config["min_improvement"], "val_psnr")
        assert card["strength_range"]["validation_strengths"] == sorted(SWEEP_STRENGTHS[kind])
        gate = card["gate_threshold"]
        chosen = "soft" if gate["chosen"] is None else f"{gate['chosen']:g}"
        assert gate["chosen"] in GATE_THRESHOLDS and card["model_kwargs"]["gate_threshold"] == gate["chosen"]
        assert gate["validation"][chosen]["val_psnr"] == max(v["val_psnr"] for v in gate["validation"].values())


def test_shipped_generators_denoise_lfw_through_the_registry():
    from denoising.faces import load_lfw_faces
    from denoising.noise import PRESETS, noisy_copies
    from denoising.registry import build_registry

    registry = build_registry(CHECKPOINTS)
    faces = load_lfw_faces(size=28).images[:8]
    for kind in ("gaussian", "speckle"):
        spec = PRESETS["post"][kind]
        noisy, _ = noisy_copies(faces, [str(i) for i in range(8)], spec, base_seed=0)
        for arch in (*ARCHS, "unet_range"):
            out = registry[arch](noisy, spec)
            assert out.shape == faces.shape and out.dtype == np.float32 and 0 <= out.min() <= out.max() <= 1
            # trained on CelebA, still far better than the noisy input on these unseen LFW faces
            assert np.abs(out - faces).mean() < 0.6 * np.abs(noisy - faces).mean(), (arch, kind)


def test_no_pickle_and_repository_under_50_mib():
    files = _tracked_files()
    assert not [f for f in files if f.suffix in (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".npy", ".npz")]
    total = sum(f.stat().st_size for f in files if f.is_file())
    assert total < 50 * 2 ** 20, f"tracked files take {total / 2 ** 20:.1f} MiB"


def test_readme_results_match_shipped_tables():
    printed = subprocess.run([sys.executable, "scripts/evaluate.py", "--markdown-only"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert printed.strip() and printed.strip() in readme, "README results differ from `evaluate.py --markdown-only`"


def test_shipped_tables_cover_every_method_and_both_test_sets():
    from denoising.evaluation import load_tables

    tables = load_tables(TABLES)
    summary = tables.summary
    assert set(summary["test_set"]) == {"celeba_test", "lfw"}
    methods = set(summary["method"])
    assert {"noisy", "median", "bm3d", *ARCHS} <= methods
    assert {"switching_median", "bm3d_sigma", "bm3d_anscombe", "bm3d_speckle"} <= methods
    # every method on every face, BM3D included (no table says n = 100 for CelebA any more)
    assert set(summary.loc[summary["test_set"] == "celeba_test", "n_images"]) == {660}
    assert set(summary.loc[summary["test_set"] == "lfw", "n_images"]) == {100}
    per_image = tables.per_image
    assert len(per_image) == int(summary["n_images"].sum())


def test_re_evaluating_shipped_checkpoints_reproduces_the_shipped_lfw_rows():
    """Today's code on the first LFW faces gives the shipped per-image rows (fast filters and learned models)."""
    import pandas as pd

    from denoising.evaluation import PER_IMAGE_COLUMNS, evaluate, load_tables
    from denoising.faces import load_lfw_faces
    from denoising.noise import PRESETS
    from denoising.registry import build_registry
    from denoising.runs import first_faces

    methods = build_registry(CHECKPOINTS, include_slow=False)
    faces = first_faces(load_lfw_faces(size=28), 10)
    fresh = evaluate(faces, "lfw", methods, PRESETS["post"], base_seed=0)
    shipped = load_tables(TABLES).per_image
    shipped = shipped[(shipped["test_set"] == "lfw") & shipped["image_id"].isin(fresh["image_id"])
                      & shipped["method"].isin(list(methods))]
    keys = ["test_set", "image_id", "noise", "method"]
    merged = fresh.merge(shipped, on=keys, how="outer", suffixes=("", "_shipped"), indicator=True)
    pairs = sum(method.available(kind) for method in methods.values() for kind in PRESETS["post"])
    assert (merged["_merge"] == "both").all() and len(merged) == 10 * pairs
    assert (merged["noise_seed"] == merged["noise_seed_shipped"]).all()
    assert (merged["noise_params"] == merged["noise_params_shipped"]).all()
    # written with 6 significant digits; another CPU's kernels may move the last digit of a learned model's score
    for metric in ("mae", "psnr", "ssim"):
        assert np.allclose(merged[metric], merged[f"{metric}_shipped"], rtol=1e-5, atol=0), metric
    # and the row order is the shipped one
    order = fresh[keys].merge(shipped[keys].reset_index(), on=keys)["index"]
    assert order.is_monotonic_increasing
    assert list(fresh.columns) == PER_IMAGE_COLUMNS and isinstance(fresh, pd.DataFrame)


def test_shipped_summary_names_each_methods_family():
    from denoising import catalogue
    from denoising.evaluation import load_tables

    summary = load_tables(TABLES).summary  # a summary.csv written before the column gets it from the catalogue
    assert list(summary.columns[:5]) == ["test_set", "noise", "method", "family", "n_images"]
    for method, family in zip(summary["method"], summary["family"], strict=True):
        assert family == catalogue.METHODS[method].family, method


def test_shipped_sweep_covers_every_strength_and_equals_the_summary_at_the_preset():
    from denoising import catalogue
    from denoising.evaluation import load_tables
    from denoising.noise import PRESETS
    from denoising.stats import SWEEP_SUMMARY_COLUMNS
    from denoising.sweep import SWEEP_FILES, load_sweep_tables

    if not (TABLES / SWEEP_FILES["summary"]).is_file():
        pytest.skip("no sweep tables shipped yet (python scripts/sweep.py ... --out checkpoints/tables --force)")
    sweep = load_sweep_tables(TABLES)
    summary = sweep.summary
    header = (TABLES / SWEEP_FILES["summary"]).read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",") == SWEEP_SUMMARY_COLUMNS
    assert set(summary["test_set"]) == {"celeba_test", "lfw"}
    for kind, strengths in catalogue.SWEEP_STRENGTHS.items():
        part = summary[summary["noise"] == kind]
        assert set(strengths) <= set(part["strength"]) and part["strength"].nunique() >= 6, kind
    assert len(sweep.per_image) == int(summary["n_images"].sum())
    # at the preset strength: the rows of summary.csv, every method with the same faces and the same numbers
    preset = load_tables(TABLES).summary.set_index(["test_set", "noise", "method"])
    parameter = {kind: catalogue.STRENGTHS[kind].parameter for kind in catalogue.NOISE_KINDS}
    at_preset = summary[[s == PRESETS["post"][k].params[parameter[k]] for k, s in
                         zip(summary["noise"], summary["strength"], strict=True)]]
    at_preset = at_preset.set_index(["test_set", "noise", "method"])
    assert set(at_preset.index) == set(preset.index)
    numbers = [c for c in SWEEP_SUMMARY_COLUMNS if c.endswith(("_mean", "_ci_low", "_ci_high"))]
    joined = at_preset.merge(preset, left_index=True, right_index=True, suffixes=("", "_preset"))
    assert (joined["n_images"] == joined["n_images_preset"]).all()
    for column in numbers:  # both written with 6 significant digits
        assert np.allclose(joined[column], joined[f"{column}_preset"], rtol=2e-6, atol=0), column
