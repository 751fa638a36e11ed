"""Small stand-ins for the real tables, checkpoints and CelebA folder, shared by the dashboard tests
and scripts/measure_dashboard.py (same columns and file layout as checkpoints/tables)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

METHODS = ["noisy", "mean", "median", "autoencoder"]
CELEBA_IDS = ["182638.jpg", "182639.jpg", "182640.jpg"]


def make_tables(folder: Path, test_sets: dict[str, list[str]], seed: int = 0) -> Path:
    """Write small per_image/summary/timings/meta files with the contract's columns."""
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
    return folder


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


def make_checkpoint(folder: Path) -> Path:
    """An untrained autoencoder checkpoint for Gaussian noise, with a short fake history."""
    import torch

    from denoising.models.autoencoder import Autoencoder
    from denoising.models.checkpoint import save

    torch.manual_seed(0)
    history = [{"epoch": e, "train_loss": 0.05 / e, "val_mae": 0.06 / e} for e in (1, 2, 3)]
    save(Autoencoder(28), folder, "autoencoder", "gaussian", meta={"history": history, "device": "cpu"})
    return folder


