"""Learned denoisers (PyTorch): the post's autoencoder, a pix2pix U-Net and its L1-only ablation.

torch is imported only inside this subpackage, so ``import denoising`` stays light.
:func:`learned_methods` turns the checkpoints in a folder into registry entries.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

LEARNED = {
    "autoencoder": ("Autoencoder (post)",
                    "The blog post's small neural network that squeezes each face through 100 numbers and rebuilds it."),
    "pix2pix": ("pix2pix GAN",
                "A U-Net trained together with a second network that judges realism (pix2pix), as in the post's bonus."),
    "unet_l1": ("U-Net, L1 only (no GAN)",
                "The same U-Net as pix2pix trained only to match the clean face, to show what the GAN part adds."),
}
INFERENCE_BATCH = 256


def _available_kinds(checkpoint_dir: Path, arch: str) -> set[str]:
    return {p.stem[len(arch) + 1:] for p in checkpoint_dir.glob(f"{arch}-*.safetensors")
            if (p.with_suffix(".json")).is_file()}


def _make_method(checkpoint_dir: Path, arch: str):
    from denoising.registry import Method

    cache: dict[str, object] = {}
    lock = threading.Lock()

    def get_model(kind: str):
        with lock:  # the dashboard may call from several threads; load each checkpoint once
            if kind not in cache:
                from .checkpoint import load

                cache[kind], _ = load((checkpoint_dir, arch, kind), device="cpu")
            return cache[kind]

    def available(kind: str) -> bool:
        return (checkpoint_dir / f"{arch}-{kind}.safetensors").is_file() and \
            (checkpoint_dir / f"{arch}-{kind}.json").is_file()

    def denoise(images: np.ndarray, noise_kind: str) -> np.ndarray:
        import torch

        from .checkpoint import CheckpointError

        if not available(noise_kind):
            raise CheckpointError(f"no {arch} checkpoint for noise kind {noise_kind!r} in {checkpoint_dir}")
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected images of shape (N, H, W, 3), got {images.shape}")
        model = get_model(noise_kind)
        outputs = []
        with torch.inference_mode():
            for i in range(0, len(images), INFERENCE_BATCH):
                x = torch.from_numpy(np.ascontiguousarray(images[i:i + INFERENCE_BATCH])).permute(0, 3, 1, 2)
                outputs.append(model(x).clamp(0.0, 1.0).permute(0, 2, 3, 1).numpy())
        if not outputs:
            return images.copy()
        return np.concatenate(outputs).astype(np.float32, copy=False)

    display, description = LEARNED[arch]
    return Method(name=arch, display_name=display, family="learned", slow=False, description=description,
                  denoise=denoise, available=available)


def learned_methods(checkpoint_dir: str | Path) -> dict[str, "Method"]:  # noqa: F821
    """Registry entries for the learned denoisers that have checkpoints in ``checkpoint_dir``.

    Parameters
    ----------
    checkpoint_dir : str or Path
        Folder with ``<arch>-<noise_kind>.safetensors`` + ``.json`` pairs.

    Returns
    -------
    dict[str, denoising.registry.Method]
        ``"autoencoder"``, ``"pix2pix"``, ``"unet_l1"`` — each only if at least one checkpoint of
        that arch exists. ``available(kind)`` says whether that noise kind has one; models are
        loaded lazily on first use and cached; inference runs on the CPU in batches,
        float32 (N, H, W, 3) in and out.
    """
    checkpoint_dir = Path(checkpoint_dir)
    if not checkpoint_dir.is_dir():
        return {}
    return {arch: _make_method(checkpoint_dir, arch) for arch in LEARNED if _available_kinds(checkpoint_dir, arch)}


__all__ = ["learned_methods", "LEARNED"]
