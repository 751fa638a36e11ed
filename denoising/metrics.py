"""Per-image scores of a batch against its clean originals: MAE, PSNR and SSIM.

All three take two batches ``(N, H, W, 3)`` of values in [0, 1] and return one float64 per image.
They compute in float64, so they match ``skimage.metrics`` given float64 inputs to about 1e-12
(scikit-image itself computes float32 inputs in float32, which differs by about 1e-6).

MAE
    Mean of ``|clean - other|`` over every pixel and channel (the post's metric, on [0, 1] values).
PSNR
    ``10 log10(1 / MSE)`` with ``data_range = 1``; ``inf`` for identical images.
SSIM
    Mean structural similarity as ``skimage.metrics.structural_similarity(channel_axis=-1,
    data_range=1, win_size=7)``: uniform 7x7 windows, sample covariance, the border of 3 pixels
    left out, channels averaged. A fixed window of 7 is scikit-image's default and the largest
    standard size that leaves a meaningful interior on the post's 28x28 faces (22x22 window
    centres); scores at 28x28 and 64x64 are comparable only with the same window.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from scipy import ndimage

log = logging.getLogger(__name__)

SSIM_WINDOW = 7
_K1, _K2 = 0.01, 0.03  # Wang et al. (2004), as scikit-image


def _pair(clean: Any, other: Any) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(clean)
    b = np.asarray(other)
    for name, x in (("clean", a), ("other", b)):
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"{name} must be a batch of RGB images with shape (N, H, W, 3), got {x.shape}")
        if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer) or x.dtype == bool):
            raise ValueError(f"{name} must hold numbers in [0, 1], got dtype {x.dtype}")
    if a.shape != b.shape:
        raise ValueError(f"clean and other must have the same shape, got {a.shape} and {b.shape}")
    return a.astype(np.float64), b.astype(np.float64)


def mae(clean: Any, other: Any) -> np.ndarray:
    """Mean absolute error per image.

    Parameters
    ----------
    clean, other : array_like
        Batches ``(N, H, W, 3)`` of values in [0, 1].

    Returns
    -------
    numpy.ndarray
        float64 ``(N,)``.
    """
    a, b = _pair(clean, other)
    return np.abs(a - b).mean(axis=(1, 2, 3))


def psnr(clean: Any, other: Any) -> np.ndarray:
    """Peak signal-to-noise ratio per image in dB (data_range 1; ``inf`` where identical).

    Parameters
    ----------
    clean, other : array_like
        Batches ``(N, H, W, 3)`` of values in [0, 1].

    Returns
    -------
    numpy.ndarray
        float64 ``(N,)``.
    """
    a, b = _pair(clean, other)
    mse = ((a - b) ** 2).mean(axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(1.0 / mse)


def ssim(clean: Any, other: Any) -> np.ndarray:
    """Mean structural similarity per image (7x7 uniform window, data_range 1, channels averaged).

    Parameters
    ----------
    clean, other : array_like
        Batches ``(N, H, W, 3)`` of values in [0, 1], at least 7x7 pixels.

    Returns
    -------
    numpy.ndarray
        float64 ``(N,)``, at most 1 (identical images).
    """
    a, b = _pair(clean, other)
    win = SSIM_WINDOW
    if min(a.shape[1:3]) < win:
        raise ValueError(f"SSIM needs images of at least {win}x{win} pixels, got {a.shape[1]}x{a.shape[2]}")

    # Same arithmetic as skimage.metrics.structural_similarity, vectorised over images and channels.
    def local_mean(x: np.ndarray) -> np.ndarray:
        return ndimage.uniform_filter(x, size=(1, win, win, 1))

    cov_norm = win * win / (win * win - 1)  # sample covariance
    ux, uy = local_mean(a), local_mean(b)
    vx = cov_norm * (local_mean(a * a) - ux * ux)
    vy = cov_norm * (local_mean(b * b) - uy * uy)
    vxy = cov_norm * (local_mean(a * b) - ux * uy)
    c1, c2 = _K1 ** 2, _K2 ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux ** 2 + uy ** 2 + c1) * (vx + vy + c2))
    pad = (win - 1) // 2
    return s[:, pad:-pad, pad:-pad, :].mean(axis=(1, 2)).mean(axis=1)


def score(clean: Any, other: Any) -> dict[str, np.ndarray]:
    """All three scores per image: ``{"mae": ..., "psnr": ..., "ssim": ...}``, each float64 ``(N,)``."""
    return {"mae": mae(clean, other), "psnr": psnr(clean, other), "ssim": ssim(clean, other)}


__all__ = ["mae", "psnr", "ssim", "score", "SSIM_WINDOW"]
