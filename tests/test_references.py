"""The noise-aware classical references: told the kind and strength of the noise, each for its one kind.

BM3D takes about a second per face, so the BM3D-based tests use two or three small synthetic faces.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from denoising import catalogue, filters
from denoising.denoisers import AnscombeBM3D, GaussianBM3D, NoiseAwareFilter, SpeckleBM3D, SwitchingMedian
from denoising.noise import NoiseSpec, add_salt_and_pepper
from denoising.registry import build_registry, classical_methods

REFERENCES = {"switching_median": "salt_pepper", "bm3d_sigma": "gaussian", "bm3d_anscombe": "poisson",
              "bm3d_speckle": "speckle"}
DEFAULTS = {kind: NoiseSpec(kind, params) for kind, params in catalogue.PRESET_PARAMS["post"].items()}


def _mae(a, b) -> float:
    return float(np.abs(np.asarray(a, np.float64) - b).mean())


def _noisy(faces: np.ndarray, spec: NoiseSpec, seed: int = 0) -> np.ndarray:
    return spec.apply(faces, np.random.default_rng(seed))


# ----------------------------------------------------------------------------- registry and catalogue


def test_references_are_registered_in_order_and_marked_as_told_the_noise(tmp_path):
    names = list(classical_methods())
    assert names.index("nl_means") < names.index("switching_median") < names.index("bm3d")
    assert names[-4:] == ["bm3d", "bm3d_sigma", "bm3d_anscombe", "bm3d_speckle"]
    assert set(REFERENCES) <= set(build_registry(tmp_path))
    for name, info in catalogue.METHODS.items():
        # the classical references, and the networks trained over the strength range, are told the noise
        assert info.told_noise == (name in REFERENCES or name in catalogue.RANGE_ARCHS), name
    for name in REFERENCES:
        info = catalogue.METHODS[name]
        assert info.family == "classical" and "told" in info.description.lower()
        assert info.slow == name.startswith("bm3d")


@pytest.mark.parametrize("name", list(REFERENCES))
def test_each_reference_is_available_for_its_kind_only_and_refuses_the_others(name, tiny_faces):
    method = classical_methods()[name]
    assert [kind for kind in catalogue.NOISE_KINDS if method.available(kind)] == [REFERENCES[name]]
    for kind in catalogue.NOISE_KINDS:
        if kind != REFERENCES[name]:
            with pytest.raises(ValueError, match=f"made for {REFERENCES[name]} noise only, got {kind} noise"):
                method(tiny_faces[:1], DEFAULTS[kind])
    with pytest.raises(TypeError, match="NoiseSpec"):
        method(tiny_faces[:1], REFERENCES[name])  # a kind string is not the spec


@pytest.mark.parametrize("name", list(REFERENCES))
def test_references_pickle_to_equal_objects(name):
    method = classical_methods()[name]
    copy = pickle.loads(pickle.dumps(method))
    assert copy == method and copy is not method and copy.available(REFERENCES[name])
    assert SwitchingMedian(max_radius=2) != SwitchingMedian()


def test_switching_median_copy_gives_identical_output(tiny_faces):
    spec = NoiseSpec("salt_pepper", {"amount": 0.05})
    noisy = _noisy(tiny_faces, spec)
    method = SwitchingMedian()
    assert np.array_equal(pickle.loads(pickle.dumps(method))(noisy, spec), method(noisy, spec))


def test_unknown_parameters_are_refused():
    with pytest.raises(TypeError, match="SwitchingMedian: .*radius"):
        SwitchingMedian(radius=2)
    with pytest.raises(TypeError, match="GaussianBM3D"):
        GaussianBM3D(sigma=0.1)  # the strength comes from the spec, never from the constructor
    assert isinstance(AnscombeBM3D(), NoiseAwareFilter) and isinstance(SpeckleBM3D(), NoiseAwareFilter)


def test_empty_batch_of_the_right_kind_is_fine():
    out = classical_methods()["bm3d_sigma"](np.zeros((0, 8, 8, 3), np.float32), DEFAULTS["gaussian"])
    assert out.shape == (0, 8, 8, 3)


# ----------------------------------------------------------------------------- switching median


@pytest.mark.parametrize("amount", [0.004, 0.05, 0.2])
def test_switching_median_keeps_undamaged_values_and_beats_median_and_noisy(amount, tiny_faces):
    spec = NoiseSpec("salt_pepper", {"amount": amount})
    noisy = _noisy(tiny_faces, spec, seed=1)
    out = SwitchingMedian()(noisy, spec)
    untouched = (noisy != 0.0) & (noisy != 1.0)
    assert np.array_equal(out[untouched], noisy[untouched])  # bit for bit
    assert not np.any(np.isnan(out)) and out.dtype == np.float32
    assert _mae(out, tiny_faces) < 0.25 * _mae(noisy, tiny_faces)
    assert _mae(out, tiny_faces) < 0.5 * _mae(filters.median3(noisy), tiny_faces)


def test_switching_median_on_per_pixel_specks_and_all_salt(tiny_faces):
    for params in ({"amount": 0.05, "per": "pixel"}, {"amount": 0.05, "salt_fraction": 1.0}):
        spec = NoiseSpec("salt_pepper", params)
        noisy = _noisy(tiny_faces, spec, seed=2)
        assert _mae(SwitchingMedian()(noisy, spec), tiny_faces) < 0.25 * _mae(noisy, tiny_faces)


def test_clean_black_and_white_patches_are_not_taken_for_specks(tiny_faces):
    faces = tiny_faces.copy()
    faces[:, :10, :10] = 0.0  # a black background corner
    faces[:, 18:, 20:] = 1.0  # a blown-out highlight
    assert np.array_equal(filters.switching_median(faces, amount=0.004), faces)
    noisy = add_salt_and_pepper(faces, 0.004, rng=3)
    every_extreme = filters.switching_median(noisy, amount=0.004, alpha=1.0)  # alpha 1: every 0 and 1 is a hit
    assert _mae(filters.switching_median(noisy, amount=0.004), faces) < 0.5 * _mae(every_extreme, faces)


def test_window_grows_where_every_neighbour_is_hit():
    image = np.full((1, 9, 9, 3), 0.5, np.float32)
    image[0, 3:6, 3:6] = np.indices((3, 3)).sum(axis=0)[..., None] % 2 == 0  # a 3x3 checkerboard of 1s and 0s
    out = filters.switching_median(image, amount=0.2)
    assert np.array_equal(out, np.full_like(image, 0.5))  # the centre's 3x3 is all hits: 5x5 reaches the grey
    narrow = filters.switching_median(image, amount=0.2, max_radius=1)
    assert narrow[0, 4, 4, 0] == 1.0  # no undamaged neighbour within 3x3: the plain median of that window


def test_no_noise_means_no_change(tiny_faces):
    spec = NoiseSpec("salt_pepper", {"amount": 0.0})
    assert np.array_equal(SwitchingMedian()(tiny_faces, spec), tiny_faces)
    assert np.array_equal(GaussianBM3D()(tiny_faces[:1], NoiseSpec("gaussian", {"sigma": 0.0})), tiny_faces[:1])
    assert np.array_equal(SpeckleBM3D()(tiny_faces[:1], NoiseSpec("speckle", {"sigma": 0.0})), tiny_faces[:1])


# ----------------------------------------------------------------------------- Anscombe


@pytest.mark.parametrize("lam", [0.5, 1.0, 2.0, 5.0, 10.0, 50.0])
def test_exact_unbiased_inverse_recovers_the_poisson_mean_where_the_algebraic_one_is_biased(lam):
    counts = np.random.default_rng(int(lam * 10)).poisson(lam, 200_000)
    expected_stabilised = filters.anscombe(counts).mean()  # what an ideal denoiser of the stabilised image returns
    unbiased_error = abs(filters.inverse_anscombe_unbiased(expected_stabilised) - lam)
    assert unbiased_error < 0.02 * lam + 0.01
    algebraic = (expected_stabilised / 2) ** 2 - 3 / 8
    assert abs(algebraic - lam) > 0.1 and abs(algebraic - lam) > 5 * unbiased_error


def test_inverse_anscombe_is_zero_at_a_zero_count_and_increasing():
    d = np.linspace(0.0, 30.0, 3001)
    inverse = filters.inverse_anscombe_unbiased(d)
    assert np.all(inverse[d < 2 * np.sqrt(3 / 8)] == 0.0) and np.all(inverse >= 0.0)
    assert np.all(np.diff(inverse) >= 0.0)
    np.testing.assert_allclose(filters.inverse_anscombe_unbiased(filters.anscombe(1e4)), 1e4, rtol=1e-4)


# ----------------------------------------------------------------------------- clipped noise and the BM3D references


def test_clipped_noise_moments_match_sampling():
    rng = np.random.default_rng(4)
    for kind, sigma in (("gaussian", 0.3), ("speckle", 1.0)):
        grid, mean, variance = filters.clipped_noise_moments(kind, sigma)
        for x in (0.05, 0.5, 0.9):
            n = rng.standard_normal(400_000)
            y = np.clip(x + sigma * n if kind == "gaussian" else x * (1 + sigma * n), 0, 1)
            assert np.interp(x, grid, mean) == pytest.approx(y.mean(), abs=3e-3)
            assert np.interp(x, grid, variance) == pytest.approx(y.var(), abs=3e-3)
        assert np.all(np.diff(mean) > 0)  # invertible
    with pytest.raises(ValueError, match="gaussian or speckle"):
        filters.clipped_noise_moments("poisson", 1.0)


@pytest.mark.parametrize(("name", "params", "factor"), [
    ("bm3d_sigma", {"sigma": 0.02}, 0.9),
    ("bm3d_sigma", {"sigma": 0.45}, 0.5),
    ("bm3d_anscombe", {"peak": 256.0}, 0.7),
    ("bm3d_anscombe", {"peak": 4.0}, 0.5),
    ("bm3d_speckle", {"sigma": 1.0}, 0.6),
])
def test_bm3d_references_clean_two_faces_at_mild_and_extreme_strengths(name, params, factor, tiny_faces):
    spec = NoiseSpec(REFERENCES[name], params)
    faces = tiny_faces[:2]
    noisy = _noisy(faces, spec, seed=5)
    out = classical_methods()[name](noisy, spec)
    assert out.shape == faces.shape and out.dtype == np.float32 and out.min() >= 0.0 and out.max() <= 1.0
    assert _mae(out, faces) < factor * _mae(noisy, faces)


def test_gaussian_reference_beats_bm3d_told_sigma_itself(tiny_faces):
    spec = NoiseSpec("gaussian", {"sigma": 0.316})
    faces = tiny_faces[:2]
    noisy = _noisy(faces, spec, seed=6)
    plain = filters.bm3d(noisy, sigma=0.316)
    assert _mae(GaussianBM3D()(noisy, spec), faces) < _mae(plain, faces)


def test_bm3d_on_a_grey_face_is_finite_and_close_to_it():
    """Regression: the bm3d package's colour transform returned NaN for a picture whose channels are equal
    (LFW faces are grey; with no speck drawn at a mild salt & pepper strength the input stays grey)."""
    from denoising import filters
    from denoising.faces import load_lfw_faces

    grey = load_lfw_faces(28).images[:1]
    assert np.array_equal(grey[..., 0], grey[..., 2])
    out = filters.bm3d(grey)
    assert np.isfinite(out).all()
    assert np.array_equal(out[..., 0], out[..., 1])
    assert np.abs(out - grey).mean() < 0.01


def test_bm3d_on_a_grey_face_with_one_green_speck_is_finite():
    """Regression: one speck in the green channel of a grey face leaves the red-minus-blue opponent channel flat,
    and the package's colour transform then divided by zero (NaN scores in the sweep at salt & pepper 0.001)."""
    from denoising import filters
    from denoising.faces import load_lfw_faces

    speck = load_lfw_faces(28).images[:1].copy()
    speck[0, 10, 10, 1] = 1.0
    out = filters.bm3d(speck)
    assert np.isfinite(out).all()
    assert np.abs(out - speck).mean() < 0.02
