"""Metrics agree with scikit-image, per image, on whole batches."""

import numpy as np
import pytest
from skimage import metrics as skm

from denoising.metrics import mae, psnr, score, ssim


@pytest.fixture
def pair(tiny_faces):
    rng = np.random.default_rng(0)
    other = np.clip(tiny_faces + rng.normal(0, 0.1, tiny_faces.shape), 0, 1).astype(np.float32)
    return tiny_faces, other


def test_psnr_and_ssim_match_scikit_image(pair):
    clean, other = pair
    a, b = clean.astype(np.float64), other.astype(np.float64)
    ref_psnr = [skm.peak_signal_noise_ratio(x, y, data_range=1.0) for x, y in zip(a, b, strict=True)]
    ref_ssim = [skm.structural_similarity(x, y, win_size=7, channel_axis=-1, data_range=1.0) for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(psnr(clean, other), ref_psnr, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ssim(clean, other), ref_ssim, rtol=0, atol=1e-10)
    # scikit-image computes float32 inputs in float32: close, not equal
    ref32 = [skm.structural_similarity(x, y, win_size=7, channel_axis=-1, data_range=1.0) for x, y in zip(clean, other, strict=True)]
    np.testing.assert_allclose(ssim(clean, other), ref32, atol=1e-5)


def test_mae_by_hand():
    clean = np.zeros((2, 8, 8, 3), np.float32)
    other = clean.copy()
    other[0, 0, 0, 0] = 1.0  # one value of 192 off by 1
    other[1] = 0.25
    np.testing.assert_allclose(mae(clean, other), [1 / 192, 0.25])
    assert mae(clean, other).dtype == np.float64


def test_identical_images(tiny_faces):
    assert np.all(np.isinf(psnr(tiny_faces, tiny_faces)))
    np.testing.assert_allclose(ssim(tiny_faces, tiny_faces), 1.0)
    assert np.all(mae(tiny_faces, tiny_faces) == 0)


def test_psnr_by_hand():
    clean = np.zeros((1, 8, 8, 3))
    np.testing.assert_allclose(psnr(clean, clean + 0.1), [20.0])


def test_score_returns_one_value_per_image(pair):
    result = score(*pair)
    assert set(result) == {"mae", "psnr", "ssim"}
    for values in result.values():
        assert values.shape == (8,) and values.dtype == np.float64
    worse = score(pair[0], np.clip(pair[1] * 0.5, 0, 1))
    assert np.all(worse["mae"] > result["mae"]) and np.all(worse["psnr"] < result["psnr"])


@pytest.mark.parametrize("a_shape, b_shape, message", [
    ((2, 28, 28, 3), (3, 28, 28, 3), "same shape"),
    ((28, 28, 3), (28, 28, 3), r"\(N, H, W, 3\)"),
    ((2, 28, 28, 1), (2, 28, 28, 1), r"\(N, H, W, 3\)"),
])
def test_bad_shapes_raise_clear_errors(a_shape, b_shape, message):
    with pytest.raises(ValueError, match=message):
        score(np.zeros(a_shape, np.float32), np.zeros(b_shape, np.float32))


def test_bad_dtype_and_tiny_images_raise():
    with pytest.raises(ValueError, match="dtype"):
        mae(np.zeros((1, 8, 8, 3), object), np.zeros((1, 8, 8, 3)))
    with pytest.raises(ValueError, match="at least 7x7"):
        ssim(np.zeros((1, 5, 5, 3)), np.zeros((1, 5, 5, 3)))
