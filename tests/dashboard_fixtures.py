"""Small stand-ins for the real tables, checkpoints and CelebA folder, shared by the dashboard tests
and scripts/measure_dashboard.py (same columns and file layout as checkpoints/tables)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

METHODS = ["noisy", "mean", "median", "autoencoder"]
CELEBA_IDS = ["182638.jpg", "182639.jpg", "182640.jpg"]


def make_tables(folder: Path, test_sets: dict[str, list[str]], seed: int = 0, sweep: bool = True) -> Path:
    """Write small per_image/summary/timings/meta files with the contract's columns (and the strength sweep)."""
    from dashboard.tables import simple_summary
    from denoising.catalogue import METRICS
    from denoising.noise import PRESETS, noisy_copies

    rng = np.random.default_rng(seed)
    rows = []
    for test_set, ids in test_sets.items():
        for kind, spec in PRESETS["post"].items():
            _, seeds = noisy_copies(np.zeros((len(ids), 28, 28, 3), np.float32), ids, spec, base_seed=0)
            for image_id, noise_seed in zip(ids, seeds, strict=True):
                for k, method in enumerate(METHODS):
                    mae = float(rng.uniform(0.02, 0.1) * (1.5 if method == "noisy" else 1.0))
                    rows.append(dict(test_set=test_set, image_id=image_id, noise=kind, noise_params=spec.to_json(),
                                     noise_seed=int(noise_seed), method=method, mae=mae, psnr=-10 * np.log10(mae),
                                     ssim=float(rng.uniform(0.3, 0.9)), seconds=0.001 * (k + 1)))
    per_image = pd.DataFrame(rows)
    folder.mkdir(parents=True, exist_ok=True)
    per_image.drop(columns="seconds").to_csv(folder / "per_image.csv", index=False)
    summary = simple_summary(per_image)
    for metric in METRICS:
        summary[f"{metric}_ci_low"] = summary[f"{metric}_mean"] * 0.95
        summary[f"{metric}_ci_high"] = summary[f"{metric}_mean"] * 1.05
    summary.to_csv(folder / "summary.csv", index=False)
    per_image.groupby(["test_set", "noise", "method"], as_index=False)["seconds"].mean().to_csv(
        folder / "timings.csv", index=False)
    (folder / "meta.json").write_text(json.dumps({"command": "fixture", "seed": 0, "size": 28}))
    if sweep:
        make_sweep(folder, list(test_sets), seed=seed)
    return folder


# mean PSNR (dB) along a kind's sweep, t = 0 (mildest) .. 1 (strongest): the noisy input falls fastest,
# the classical filters in between, the networks flat with a bump at their training strength
SWEEP_CURVES = {
    "noisy": ("baseline", lambda t, tt: 36 - 30 * t),
    "mean": ("classical", lambda t, tt: 27 - 10 * t),
    "median": ("classical", lambda t, tt: 28 - 12 * t),
    "wavelet": ("classical", lambda t, tt: 34.5 - 20 * t),
    "bm3d": ("classical", lambda t, tt: 34.8 - 20.5 * t),
    "autoencoder": ("learned", lambda t, tt: 20 + 1.5 * math.exp(-((t - tt) / 0.35) ** 2)),
    "unet_l1": ("learned", lambda t, tt: 21 + 2.5 * math.exp(-((t - tt) / 0.35) ** 2)),
}
SWEEP_FACES = {"celeba_test": 660, "lfw": 100}
BM3D_SUBSET = 100  # BM3D off the post's strength: a fixed subset of faces, as the sweep allows


def sweep_rows(test_set: str, rng: np.random.Generator) -> list[dict]:
    """One sweep row per noise kind x strength x method for one test set (realistic means and intervals)."""
    from denoising.catalogue import DEFAULT_PRESET, PRESET_PARAMS, STRENGTHS, SWEEP_STRENGTHS

    rows = []
    for kind, strengths in SWEEP_STRENGTHS.items():
        preset = PRESET_PARAMS[DEFAULT_PRESET][kind][STRENGTHS[kind].parameter]
        trained_t = strengths.index(preset) / (len(strengths) - 1)
        for i, strength in enumerate(strengths):
            t = i / (len(strengths) - 1)
            for method, (family, curve) in SWEEP_CURVES.items():
                n = SWEEP_FACES[test_set]
                if method == "bm3d" and strength != preset:
                    n = min(n, BM3D_SUBSET)
                psnr = curve(t, trained_t) + rng.normal(0, 0.2) - (1.0 if test_set == "lfw" else 0.0)
                half = 1.96 * 1.5 / math.sqrt(n)
                mae = 0.8 * 10 ** (-psnr / 20)
                ssim = float(np.clip(1 - 4 * mae, 0, 1))
                rows.append(dict(test_set=test_set, noise=kind, strength=float(strength), method=method, family=family,
                                 n_images=n, mae_mean=mae, mae_ci_low=mae * 10 ** (-half / 20),
                                 mae_ci_high=mae * 10 ** (half / 20), psnr_mean=psnr, psnr_ci_low=psnr - half,
                                 psnr_ci_high=psnr + half, ssim_mean=ssim, ssim_ci_low=ssim - 0.3 * half / 20,
                                 ssim_ci_high=min(1.0, ssim + 0.3 * half / 20)))
    return rows


def make_sweep(folder: Path, test_sets: list[str], seed: int = 0) -> Path:
    """Write ``sweep_summary.csv`` with the sweep's exact columns; returns its path."""
    from dashboard.tables import SWEEP_COLUMNS

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame([row for test_set in test_sets for row in sweep_rows(test_set, rng)])
    path = Path(folder) / "sweep_summary.csv"
    frame[list(SWEEP_COLUMNS)].to_csv(path, index=False)
    return path


def make_celeba(folder: Path) -> Path:
    """A fake CelebA folder: a few 178x218 JPEGs and a partition file marking them as test faces."""
    images = folder / "img_align_celeba"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = []
    for i, name in enumerate(["000001.jpg"] + CELEBA_IDS):
        pixels = (rng.uniform(0, 255, (218, 178, 3)) * np.linspace(0.3, 1, 178)[None, :, None]).astype(np.uint8)
        Image.fromarray(pixels).save(images / name, quality=90)
        lines.append(f"{name} {0 if i == 0 else 2}")
    (folder / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return folder


def evaluate_unet_l1(folder: Path, checkpoints: Path) -> int:
    """scripts/evaluate.py with the U-Net (L1) of ``checkpoints`` on two blank 28 px "CelebA" test faces under
    Gaussian noise, writing to ``folder``/tables; its exit status."""
    from scripts import evaluate

    cache = folder / "cache"
    cache.mkdir()
    np.save(cache / "images.npy", np.zeros((2, 28, 28, 3), np.uint8))
    pd.DataFrame({"image_id": ["000001.jpg", "000002.jpg"], "split": "test", "identity": "",
                  "source": "celeba"}).to_csv(cache / "faces.csv", index=False)
    (cache / "meta.json").write_text(json.dumps({"size": 28}))
    return evaluate.main(["--data", str(cache), "--no-lfw", "--methods", "unet_l1", "--noise", "gaussian",
                          "--workers", "1", "--quiet", "--checkpoints", str(checkpoints), "--out",
                          str(folder / "tables")])


def make_checkpoint(folder: Path, sigma: float = math.sqrt(0.1)) -> Path:
    """An untrained autoencoder checkpoint for Gaussian noise of ``sigma`` (the post's), with a short fake history."""
    import torch

    from denoising.models.autoencoder import Autoencoder
    from denoising.models.checkpoint import save

    torch.manual_seed(0)
    history = [{"epoch": e, "train_loss": 0.05 / e, "val_mae": 0.06 / e} for e in (1, 2, 3)]
    noise = {"kind": "gaussian", "params": {"sigma": sigma}}
    save(Autoencoder(28), folder, "autoencoder", "gaussian", meta={"history": history, "device": "cpu", "noise": noise})
    return folder


