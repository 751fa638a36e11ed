"""The learned denoisers as :class:`~denoising.denoisers.Denoiser` objects, one per training recipe.

A :class:`LearnedDenoiser` knows a checkpoint folder and a recipe (``arch``); for each noise kind
it rebuilds the model from ``<folder>/<arch>-<kind>.safetensors`` + ``.json`` the first time that
kind is asked for. torch is imported only then, so listing methods stays light. The loaded models
are not pickled: a copy sent to another process reloads them from the same files.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from denoising import catalogue
from denoising.denoisers import Denoiser
from denoising.noise import NoiseSpec

#: Faces per forward pass: bounded memory on any batch size.
INFERENCE_BATCH = 256


class LearnedDenoiser(Denoiser):
    """A trained network per noise kind, read from a checkpoint folder.

    Parameters
    ----------
    arch : str
        Training recipe in :data:`denoising.catalogue.ARCHS` (``"autoencoder"``, ``"pix2pix"``, ``"unet_l1"``,
        ``"unet_range"``; the last is told the noise's strength, the others only its kind).
    checkpoint_dir : str or Path
        Folder with ``<arch>-<noise_kind>.safetensors`` + ``.json`` pairs.
    """

    def __init__(self, arch: str, checkpoint_dir: str | Path):
        if arch not in catalogue.ARCHS:
            raise ValueError(f"unknown arch {arch!r}; choose from {', '.join(catalogue.ARCHS)}")
        self.name = arch
        self.checkpoint_dir = Path(checkpoint_dir)
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        return {"name": self.name, "checkpoint_dir": self.checkpoint_dir}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["name"], state["checkpoint_dir"])

    def __repr__(self) -> str:
        return f"LearnedDenoiser(arch={self.name!r}, checkpoint_dir={str(self.checkpoint_dir)!r})"

    def checkpoint_path(self, noise_kind: str) -> Path:
        """The weights file for ``noise_kind`` (its JSON sits beside it)."""
        return self.checkpoint_dir / f"{self.name}-{noise_kind}.safetensors"

    def available(self, noise_kind: str) -> bool:
        weights = self.checkpoint_path(noise_kind)
        return weights.is_file() and weights.with_suffix(".json").is_file()

    def kinds(self) -> list[str]:
        """Noise kinds that have a checkpoint, in catalogue order."""
        return [kind for kind in catalogue.NOISE_KINDS if self.available(kind)]

    def model(self, noise_kind: str):
        """The network for ``noise_kind``, loaded once (thread-safe: the dashboard calls from several threads)."""
        from denoising.models.checkpoint import CheckpointError, load

        with self._lock:
            if noise_kind not in self._models:
                if not self.available(noise_kind):
                    raise CheckpointError(f"no {self.name} checkpoint for noise kind {noise_kind!r} "
                                          f"in {self.checkpoint_dir}")
                self._models[noise_kind], _ = load((self.checkpoint_dir, self.name, noise_kind), device="cpu")
            return self._models[noise_kind]

    def input_size(self, noise_kind: str) -> int | None:
        """The one face side the ``noise_kind`` network takes (the post's autoencoder: its dense bottleneck),
        or None when it is fully convolutional and takes any size (the U-Nets)."""
        size = getattr(self.model(noise_kind), "image_size", None)
        return int(size) if size else None

    def denoise(self, batch: np.ndarray, noise: NoiseSpec) -> np.ndarray:
        import torch

        model = self.model(noise.kind)
        told = told_level(model, noise)
        outputs = []
        with torch.inference_mode():
            for i in range(0, len(batch), INFERENCE_BATCH):
                x = torch.from_numpy(np.ascontiguousarray(batch[i:i + INFERENCE_BATCH])).permute(0, 3, 1, 2)
                outputs.append(model(x, *told).clamp(0.0, 1.0).permute(0, 2, 3, 1).numpy())
        return np.concatenate(outputs)


def told_level(model: Any, noise: NoiseSpec) -> tuple:
    """The extra forward argument of ``model`` for ``noise``: the noise level for a network trained over a range
    of strengths (FFDNet's noise-level map), nothing for one trained at a single strength."""
    return (noise.level,) if getattr(model, "cond_channels", 0) else ()


def learned_denoisers(checkpoint_dir: str | Path) -> dict[str, LearnedDenoiser]:
    """A denoiser per recipe that has at least one checkpoint in ``checkpoint_dir`` (none for a missing folder)."""
    checkpoint_dir = Path(checkpoint_dir)
    if not checkpoint_dir.is_dir():
        return {}
    found = {arch: LearnedDenoiser(arch, checkpoint_dir) for arch in catalogue.ARCHS}
    return {arch: d for arch, d in found.items() if d.kinds()}


__all__ = ["LearnedDenoiser", "learned_denoisers", "told_level", "INFERENCE_BATCH"]
