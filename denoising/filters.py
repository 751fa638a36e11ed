"""Classical denoisers behind one interface: a float32 batch (N, H, W, 3) in [0, 1] in, the same out.

Every filter is *blind*: it sees only the noisy batch. Those that need a noise level estimate it
per image with :func:`estimate_noise_sigma` (scikit-image's wavelet-based estimator, averaged over
channels, floored at :data:`SIGMA_FLOOR`), so one default works across the four noise kinds and
their strengths. Outputs are clipped to [0, 1] and float32.

Defaults were chosen on 40 of the built-in LFW faces at 28x28 with the post's four noise presets
(lowest mean MAE over the four kinds, favouring the weaker kinds on near-ties); they also suit
64x64 faces. :data:`SLOW_FILTERS` names the
filters too slow for a live view (BM3D: about a second per face).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import ndimage

log = logging.getLogger(__name__)

#: Lower bound on estimated noise sigma, so a clean image still gets a valid (mild) filter.
SIGMA_FLOOR = 0.01

#: Filters too slow for live use (seconds per face); callers opt in.
SLOW_FILTERS = frozenset({"bm3d"})


def _check(images: Any) -> np.ndarray:
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected a batch of RGB images with shape (N, H, W, 3), got {x.shape}")
    return x


def _finish(out: np.ndarray) -> np.ndarray:
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


def _per_image(fn: Callable[[np.ndarray], np.ndarray], images: Any) -> np.ndarray:
    x = _check(images)
    out = np.empty_like(x)
    for i, image in enumerate(x):
        out[i] = fn(image)
    return _finish(out)


def estimate_noise_sigma(image: np.ndarray) -> float:
    """Blind estimate of the noise standard deviation of one image (H, W, 3).

    Uses ``skimage.restoration.estimate_sigma(channel_axis=-1, average_sigmas=True)`` (median
    absolute deviation of the finest wavelet coefficients), floored at :data:`SIGMA_FLOOR`.
    """
    from skimage.restoration import estimate_sigma

    sigma = float(estimate_sigma(np.asarray(image, np.float64), channel_axis=-1, average_sigmas=True))
    return max(sigma, SIGMA_FLOOR) if np.isfinite(sigma) else SIGMA_FLOOR


def mean3(images: Any, size: int = 3) -> np.ndarray:
    """Mean (box) filter per channel, the post's ``size`` x ``size`` = 3x3, reflecting at edges."""
    x = _check(images)
    return _finish(ndimage.uniform_filter(x, size=(1, size, size, 1), mode="reflect"))


def median3(images: Any, size: int = 3) -> np.ndarray:
    """Median filter per channel, the post's 3x3, reflecting at edges. Best against salt & pepper."""
    x = _check(images)
    return _finish(ndimage.median_filter(x, size=(1, size, size, 1), mode="reflect"))


def gaussian(images: Any, sigma: float = 1.0) -> np.ndarray:
    """Gaussian blur per channel with standard deviation ``sigma`` pixels (default 1.0)."""
    x = _check(images)
    return _finish(ndimage.gaussian_filter(x, sigma=(0, sigma, sigma, 0), mode="reflect"))


def bilateral(images: Any, sigma_spatial: float = 1.5, color_factor: float = 3.0,
              sigma_color: float | None = None, radius: int | None = None) -> np.ndarray:
    """Edge-preserving blur: neighbours count less the more their colour differs.

    Weight of a neighbour at offset ``d`` with RGB difference ``c``:
    ``exp(-|d|**2 / (2 sigma_spatial**2)) * exp(-|c|**2 / (2 sigma_color**2))``; edges reflect.

    Parameters
    ----------
    images : array_like
        Batch (N, H, W, 3), float in [0, 1].
    sigma_spatial : float, optional
        Spatial standard deviation in pixels (default 1.5).
    color_factor : float, optional
        Colour standard deviation as a multiple of each image's estimated noise sigma (default
        3.0; two noisy samples of the same colour already differ by about 2.4 sigma in RGB).
    sigma_color : float, optional
        Fixed colour standard deviation (Euclidean RGB distance); overrides ``color_factor``.
    radius : int, optional
        Window half-width; default ``ceil(2 * sigma_spatial)`` (7x7 at the default; wider
        windows cost time and gained nothing on 28x28 faces).

    Notes
    -----
    Implemented here in NumPy, vectorised over the batch, instead of calling
    ``skimage.restoration.denoise_bilateral``: in scikit-image 0.26 its spatial look-up table has
    ``win_size + 1`` entries per side but is read with stride ``win_size``, so the spatial kernel
    is scrambled (its impulse response is neither centred nor symmetric).
    """
    x = _check(images)
    if len(x) == 0:
        return x.copy()
    r = int(np.ceil(2 * sigma_spatial)) if radius is None else int(radius)
    if sigma_color is None:
        sc = np.array([color_factor * estimate_noise_sigma(image) for image in x], np.float32)
    else:
        sc = np.full(len(x), sigma_color, np.float32)
    inv = (-0.5 / np.maximum(sc, 1e-6) ** 2)[:, None, None]
    h, w = x.shape[1:3]
    # "symmetric" in np.pad is scipy's "reflect" (edge value repeated), clamp so tiny images work
    pad = np.pad(x, ((0, 0), (r, r), (r, r), (0, 0)), mode="symmetric") if r <= min(h, w) else \
        np.pad(x, ((0, 0), (r, r), (r, r), (0, 0)), mode="edge")
    total = np.zeros_like(x)
    norm = np.zeros(x.shape[:3], np.float32)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            spatial = np.float32(np.exp(-(dy * dy + dx * dx) / (2 * sigma_spatial ** 2)))
            shifted = pad[:, r + dy:r + dy + h, r + dx:r + dx + w]
            diff = shifted - x
            weight = spatial * np.exp(inv * np.einsum("nhwc,nhwc->nhw", diff, diff))
            total += weight[..., None] * shifted
            norm += weight
    return _finish(total / norm[..., None])


def _nl_sizes(height: int, width: int) -> tuple[int, int]:
    # skimage's defaults (7, 11) are for photos; small faces need small patches and search windows.
    side = min(height, width)
    return (3, 4) if side <= 40 else (5, 6)


def nl_means(images: Any, h_factor: float = 0.8, patch_size: int | None = None,
             patch_distance: int | None = None) -> np.ndarray:
    """Non-local means: average pixels whose surrounding patches look alike, anywhere nearby.

    Parameters
    ----------
    images : array_like
        Batch (N, H, W, 3), float in [0, 1].
    h_factor : float, optional
        Filter strength ``h`` as a multiple of the estimated noise sigma (default 0.8, the value
        scikit-image recommends with ``fast_mode``).
    patch_size, patch_distance : int, optional
        Patch side and search radius in pixels; by default (3, 4) up to 40x40 images, (5, 6) above.
    """
    from skimage.restoration import denoise_nl_means

    def one(image: np.ndarray) -> np.ndarray:
        default_size, default_distance = _nl_sizes(*image.shape[:2])
        sigma = estimate_noise_sigma(image)
        return denoise_nl_means(image, h=h_factor * sigma, sigma=sigma, fast_mode=True,
                                patch_size=patch_size or default_size,
                                patch_distance=patch_distance or default_distance, channel_axis=-1)

    return _per_image(one, images)


def tv(images: Any, weight_factor: float = 0.8, weight: float | None = None) -> np.ndarray:
    """Total-variation denoising (Chambolle): the flattest image close to the noisy one.

    Parameters
    ----------
    images : array_like
        Batch (N, H, W, 3), float in [0, 1].
    weight_factor : float, optional
        Smoothing weight as a multiple of each image's estimated noise sigma (default 0.8).
    weight : float, optional
        Fixed weight; overrides ``weight_factor``.
    """
    from skimage.restoration import denoise_tv_chambolle

    def one(image: np.ndarray) -> np.ndarray:
        w = weight if weight is not None else weight_factor * estimate_noise_sigma(image)
        return denoise_tv_chambolle(image, weight=w, channel_axis=-1)

    return _per_image(one, images)


def wavelet(images: Any, wavelet_name: str = "db2", levels: int | None = 3, mode: str = "soft") -> np.ndarray:
    """Wavelet shrinkage (BayesShrink, soft thresholds) in YCbCr colour, noise level estimated.

    Parameters
    ----------
    images : array_like
        Batch (N, H, W, 3), float in [0, 1].
    wavelet_name : str, optional
        PyWavelets wavelet (default ``"db2"``).
    levels : int, optional
        Decomposition levels (default 3, lowered to what the image size allows; ``None`` uses
        scikit-image's default, a single level at 28x28, which leaves heavy noise in).
    mode : {"soft", "hard"}, optional
        Thresholding.
    """
    import pywt
    from skimage.restoration import denoise_wavelet

    def one(image: np.ndarray) -> np.ndarray:
        n = levels
        if n is not None:  # more levels than the image allows only adds boundary effects (and a warning)
            n = max(1, min(n, pywt.dwt_max_level(min(image.shape[:2]), pywt.Wavelet(wavelet_name).dec_len)))
        return denoise_wavelet(image, wavelet=wavelet_name, wavelet_levels=n, mode=mode,
                               method="BayesShrink", rescale_sigma=True, convert2ycbcr=True, channel_axis=-1)

    return _per_image(one, images)


def bm3d(images: Any, sigma: float | None = None, profile: str = "np") -> np.ndarray:
    """BM3D (the ``bm3d`` package, non-commercial licence): groups similar blocks and filters them jointly.

    Slow: about a second per 28x28 face. Colour version (``bm3d_rgb``, opponent colour space).

    Parameters
    ----------
    images : array_like
        Batch (N, H, W, 3), float in [0, 1].
    sigma : float, optional
        Noise standard deviation; by default estimated per image.
    profile : str, optional
        BM3D settings profile (default ``"np"``, the package's normal profile).
    """
    import bm3d as bm3d_package

    # one thread: the package's default (all cores) adds up blocks in a varying order, so the same face gave
    # different last bits from call to call; parallel runs come from the evaluation's workers instead
    profiles = {"np": bm3d_package.BM3DProfile, "refilter": bm3d_package.BM3DProfileRefilter,
                "vn": bm3d_package.BM3DProfileVN, "high": bm3d_package.BM3DProfileHigh,
                "vn_old": bm3d_package.BM3DProfileVNOld, "deb": bm3d_package.BM3DProfileDeb}
    if profile not in profiles:
        raise ValueError(f"unknown BM3D profile {profile!r}; choose from {', '.join(profiles)}")
    settings = profiles[profile]()
    settings.num_threads = 1

    def one(image: np.ndarray) -> np.ndarray:
        s = sigma if sigma is not None else estimate_noise_sigma(image)
        return bm3d_package.bm3d_rgb(image.astype(np.float64), sigma_psd=s, profile=settings)

    return _per_image(one, images)


#: Registry name -> filter, in display order (fast first).
FILTERS: dict[str, Callable[..., np.ndarray]] = {
    "mean": mean3,
    "median": median3,
    "gaussian": gaussian,
    "bilateral": bilateral,
    "tv": tv,
    "wavelet": wavelet,
    "nl_means": nl_means,
    "bm3d": bm3d,
}

__all__ = ["FILTERS", "SLOW_FILTERS", "SIGMA_FLOOR", "estimate_noise_sigma", "mean3", "median3", "gaussian",
           "bilateral", "nl_means", "tv", "wavelet", "bm3d"]
