"""One :class:`Denoiser` type for every method: the noisy baseline, classical filters and learned models.

A denoiser is a small picklable object (so it can be sent to worker processes or a Dask
cluster) with a stable ``name`` and the catalogue's ``display_name``, ``family``, ``slow`` and
``description``. Call it with a noisy batch ``(N, H, W, 3)`` float32 in [0, 1] and the full
:class:`~denoising.noise.NoiseSpec` of that noise, get the cleaned batch back. Blind methods
ignore the spec; noise-aware ones may read its kind and strength. The learned subclass lives in
:mod:`denoising.models.learned` (it loads torch only when first called).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from denoising import catalogue, filters
from denoising.noise import NoiseSpec


class Denoiser:
    """Base type: subclasses set ``name`` and implement :meth:`denoise`.

    Attributes
    ----------
    name : str
        Stable key used in tables and the catalogue, e.g. ``"median"``.
    display_name, family, description, slow
        Read from :data:`denoising.catalogue.METHODS` for ``name``.
    """

    name: str = ""

    @property
    def info(self) -> catalogue.MethodInfo:
        return catalogue.METHODS[self.name]

    @property
    def display_name(self) -> str:
        return self.info.display_name

    @property
    def family(self) -> str:
        return self.info.family

    @property
    def slow(self) -> bool:
        return self.info.slow

    @property
    def description(self) -> str:
        return self.info.description

    def available(self, noise_kind: str) -> bool:
        """Whether this method can denoise ``noise_kind`` (learned ones need a checkpoint for it)."""
        return True

    def denoise(self, batch: np.ndarray, noise: NoiseSpec) -> np.ndarray:
        """Clean a checked float32 batch; subclasses override this."""
        raise NotImplementedError

    def __call__(self, batch: Any, noise: NoiseSpec) -> np.ndarray:
        """Denoise ``batch`` (N, H, W, 3) in [0, 1] that carries ``noise``; float32 of the same shape out.

        Raises
        ------
        TypeError
            ``noise`` is not a :class:`~denoising.noise.NoiseSpec`.
        ValueError
            ``batch`` is not a batch of RGB images.
        """
        if not isinstance(noise, NoiseSpec):
            raise TypeError(f"{self.name}: noise must be a NoiseSpec (kind and strength), got {type(noise).__name__}")
        x = np.asarray(batch, dtype=np.float32)
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"expected a batch of RGB images with shape (N, H, W, 3), got {x.shape}")
        if len(x) == 0:
            return x.copy()
        out = np.asarray(self.denoise(x, noise), dtype=np.float32)
        if out.shape != x.shape:
            raise ValueError(f"method {self.name!r} returned shape {out.shape} for input {x.shape}")
        return out

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and repr(self) == repr(other)

    def __hash__(self) -> int:
        return hash(repr(self))


class NoisyInput(Denoiser):
    """The noisy photo returned unchanged: the baseline every method should beat."""

    name = "noisy"

    def denoise(self, batch: np.ndarray, noise: NoiseSpec) -> np.ndarray:
        return batch.copy()


class MeanFilter(Denoiser):
    """Box average over a ``size`` x ``size`` window (:func:`denoising.filters.mean3`)."""

    name = "mean"

    def __init__(self, size: int = 3):
        self.size = size

    def denoise(self, batch: np.ndarray, noise: NoiseSpec) -> np.ndarray:
        return filters.mean3(batch, size=self.size)


class MedianFilter(Denoiser):
    """Per-channel median over a ``size`` x ``size`` window (:func:`denoising.filters.median3`)."""

    name = "median"

    def __init__(self, size: int = 3):
        self.size = size

    def denoise(self, batch: np.ndarray, noise: NoiseSpec) -> np.ndarray:
        return filters.median3(batch, size=self.size)


class GaussianBlur(Denoiser):
    """Gaussian blur of standard deviation ``sigma`` pixels (:func:`denoising.filters.gaussian`)."""

    name = "gaussian"

    def __init__(self, sigma: float = 1.0):
        self.sigma = sigma

    def denoise(self, batch: np.ndarray, noise: NoiseSpec) -> np.ndarray:
        return filters.gaussian(batch, sigma=self.sigma)


class BilateralFilter(Denoiser):
    """Edge-preserving blur with a blind noise estimate (:func:`denoising.filters.bilateral`)."""

    name = "bilateral"

    def denoise(self, batch: np.ndarray, noise: NoiseSpec) -> np.ndarray:
        return filters.bilateral(batch)


class TotalVariation(Denoiser):
    """Chambolle total-variation denoising with a blind weight (:func:`denoising.filters.tv`)."""

    name = "tv"

    def denoise(self, batch: np.ndarray, noise: NoiseSpec) -> np.ndarray:
        return filters.tv(batch)


class WaveletShrinkage(Denoiser):
    """BayesShrink wavelet denoising (:func:`denoising.filters.wavelet`)."""

    name = "wavelet"

    def denoise(self, batch: np.ndarray, noise: NoiseSpec) -> np.ndarray:
        return filters.wavelet(batch)


class NonLocalMeans(Denoiser):
    """Non-local means with a blind noise estimate (:func:`denoising.filters.nl_means`)."""

    name = "nl_means"

    def denoise(self, batch: np.ndarray, noise: NoiseSpec) -> np.ndarray:
        return filters.nl_means(batch)


class BlockMatching3D(Denoiser):
    """BM3D with a blind per-image noise estimate (:func:`denoising.filters.bm3d`); slow."""

    name = "bm3d"

    def denoise(self, batch: np.ndarray, noise: NoiseSpec) -> np.ndarray:
        return filters.bm3d(batch)


#: The baseline and the classical filters, in display order (fast first, BM3D last).
CLASSICAL_TYPES: tuple[type[Denoiser], ...] = (NoisyInput, MeanFilter, MedianFilter, GaussianBlur, BilateralFilter,
                                               TotalVariation, WaveletShrinkage, NonLocalMeans, BlockMatching3D)

__all__ = ["Denoiser", "NoisyInput", "MeanFilter", "MedianFilter", "GaussianBlur", "BilateralFilter",
           "TotalVariation", "WaveletShrinkage", "NonLocalMeans", "BlockMatching3D", "CLASSICAL_TYPES"]
