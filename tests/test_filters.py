"""Classical filters: one interface, each one actually removes noise."""

import numpy as np
import pytest
from scipy import ndimage

from denoising import filters
from denoising.noise import add_gaussian, add_salt_and_pepper

FAST = [name for name in filters.FILTERS if name not in filters.SLOW_FILTERS]


def _mae(a, b):
    return float(np.abs(a.astype(np.float64) - b).mean())


@pytest.fixture
def gaussian_noisy(tiny_faces):
    return add_gaussian(tiny_faces, 0.1, rng=0)


@pytest.mark.parametrize("name", FAST)
def test_fast_filter_lowers_mae_on_gaussian_noise(name, tiny_faces, gaussian_noisy):
    before = gaussian_noisy.copy()
    out = filters.FILTERS[name](gaussian_noisy)
    assert out.shape == tiny_faces.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert np.array_equal(gaussian_noisy, before)  # input untouched
    noisy_mae = _mae(gaussian_noisy, tiny_faces)
    assert _mae(out, tiny_faces) < 0.8 * noisy_mae
    per_image = np.abs(out - tiny_faces).mean(axis=(1, 2, 3))
    assert np.all(per_image < np.abs(gaussian_noisy - tiny_faces).mean(axis=(1, 2, 3)))


def test_median_beats_noisy_on_salt_and_pepper(tiny_faces):
    noisy = add_salt_and_pepper(tiny_faces, 0.05, rng=0)
    assert _mae(filters.median3(noisy), tiny_faces) < 0.5 * _mae(noisy, tiny_faces)


def test_bm3d_on_one_small_image(tiny_faces, gaussian_noisy):
    out = filters.bm3d(gaussian_noisy[:1])
    assert out.shape == (1, 28, 28, 3) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert _mae(out, tiny_faces[:1]) < 0.6 * _mae(gaussian_noisy[:1], tiny_faces[:1])


def test_bilateral_spatial_kernel_is_a_centred_gaussian():
    # Guards against scikit-image 0.26's scrambled bilateral kernel (see filters.bilateral).
    rng = np.random.default_rng(0)
    x = rng.random((2, 20, 20, 3)).astype(np.float32)
    wide = filters.bilateral(x, sigma_spatial=1.0, sigma_color=1e4)
    blur = ndimage.gaussian_filter(x, (0, 1, 1, 0), mode="reflect", truncate=2.0)
    np.testing.assert_allclose(wide, blur, atol=1e-5)
    np.testing.assert_allclose(filters.bilateral(x, sigma_color=1e-4), x, atol=1e-6)


def test_larger_images_work():
    rng = np.random.default_rng(0)
    clean = ndimage.gaussian_filter(rng.random((1, 64, 64, 3)), (0, 4, 4, 0)).astype(np.float32)
    noisy = add_gaussian(clean, 0.05, rng=1)
    for name in ("nl_means", "wavelet"):
        out = filters.FILTERS[name](noisy)
        assert out.shape == clean.shape and _mae(out, clean) < _mae(noisy, clean)


def test_estimate_noise_sigma_is_floored_and_sensible(tiny_faces):
    assert filters.estimate_noise_sigma(np.full((28, 28, 3), 0.5)) == filters.SIGMA_FLOOR
    flat = np.full((64, 64, 3), 0.5, np.float32)
    assert filters.estimate_noise_sigma(add_gaussian(flat[None], 0.1, rng=0)[0]) == pytest.approx(0.1, rel=0.15)


def test_slow_marker_and_interface():
    assert {"bm3d"} == filters.SLOW_FILTERS
    assert set(filters.SLOW_FILTERS) <= set(filters.FILTERS)
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        filters.median3(np.zeros((28, 28, 3), np.float32))
    empty = np.zeros((0, 28, 28, 3), np.float32)
    for name in FAST:
        assert filters.FILTERS[name](empty).shape == empty.shape
