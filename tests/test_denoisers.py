"""The Denoiser type: the noise spec reaches every method, objects pickle, bad input is refused clearly."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from denoising import filters
from denoising.denoisers import CLASSICAL_TYPES, Denoiser, MedianFilter, NoisyInput
from denoising.noise import PRESETS, NoiseSpec

SPEC = PRESETS["post"]["salt_pepper"]


def _batch(n: int = 2, size: int = 16) -> np.ndarray:
    return np.random.default_rng(3).random((n, size, size, 3), dtype=np.float32)


class _Recorder(Denoiser):
    """Records the noise spec it was given (names must exist in the catalogue)."""

    name = "noisy"

    def __init__(self):
        self.seen = []

    def denoise(self, batch, noise):
        self.seen.append(noise)
        return batch


def test_method_receives_the_whole_noise_spec():
    recorder = _Recorder()
    spec = NoiseSpec("gaussian", {"sigma": 0.05})
    recorder(_batch(), spec)
    assert recorder.seen == [spec] and recorder.seen[0].params["sigma"] == 0.05


def test_noise_kind_string_is_refused():
    with pytest.raises(TypeError, match="noise must be a NoiseSpec"):
        MedianFilter()(_batch(), "gaussian")


@pytest.mark.parametrize("shape", [(16, 16, 3), (2, 16, 16), (2, 16, 16, 4)])
def test_non_batches_are_refused(shape):
    with pytest.raises(ValueError, match=r"shape \(N, H, W, 3\)"):
        NoisyInput()(np.zeros(shape, np.float32), SPEC)


def test_wrong_output_shape_is_caught():
    class Cropper(Denoiser):
        name = "mean"

        def denoise(self, batch, noise):
            return batch[:, 1:]

    with pytest.raises(ValueError, match="returned shape"):
        Cropper()(_batch(), SPEC)


@pytest.mark.parametrize("cls", [c for c in CLASSICAL_TYPES if not c().slow])
def test_classical_denoisers_pickle_to_equal_objects_with_equal_outputs(cls):
    method = cls()
    copy = pickle.loads(pickle.dumps(method))
    assert copy == method and copy is not method
    x = _batch()
    assert np.array_equal(copy(x, SPEC), method(x, SPEC))


def test_median_denoiser_is_the_median_filter_and_parameters_count():
    x = _batch()
    assert np.array_equal(MedianFilter()(x, SPEC), filters.median3(x))
    assert not np.array_equal(MedianFilter(size=5)(x, SPEC), MedianFilter()(x, SPEC))
    assert MedianFilter(size=5) != MedianFilter()
    with pytest.raises(TypeError, match="MedianFilter: .*radius"):
        MedianFilter(radius=2)


def test_catalogue_facts_on_the_objects():
    names = [cls.name for cls in CLASSICAL_TYPES]
    assert names == ["noisy", "mean", "median", "gaussian", "bilateral", "tv", "wavelet", "nl_means",
                     "switching_median", "bm3d", "bm3d_sigma", "bm3d_anscombe", "bm3d_speckle"]
    assert NoisyInput().family == "baseline" and MedianFilter().family == "classical"
    assert [cls.name for cls in CLASSICAL_TYPES if cls().slow] == ["bm3d", "bm3d_sigma", "bm3d_anscombe",
                                                                    "bm3d_speckle"]
    assert MedianFilter().display_name == "Median filter (3×3)"


def test_empty_batch_gives_empty_batch():
    out = MedianFilter()(np.zeros((0, 8, 8, 3), np.float32), SPEC)
    assert out.shape == (0, 8, 8, 3) and out.dtype == np.float32
