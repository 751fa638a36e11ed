"""Noise: statistics within tolerances, seeding, clipping, per-image seeds and the NoiseSpec format."""

import json
import math

import numpy as np
import pytest

from denoising.noise import (
    NOISE_KINDS,
    PRESETS,
    NoiseSpec,
    add_gaussian,
    add_poisson,
    add_salt_and_pepper,
    add_speckle,
    derive_seed,
    noisy_copies,
)

GREY = np.full((4, 64, 64, 3), 0.5, np.float32)  # 49,152 values: standard errors well under 1 %


def test_gaussian_mean_and_std():
    noise = add_gaussian(GREY, 0.05, rng=1) - 0.5  # 10 sigma from the clip bounds: clipping is negligible
    assert abs(noise.mean()) < 5 * 0.05 / math.sqrt(noise.size)
    assert noise.std() == pytest.approx(0.05, rel=0.02)


@pytest.mark.parametrize("value", [0.1, 0.3, 0.6])
def test_poisson_variance_is_value_over_peak(value):
    peak = 100.0
    noisy = add_poisson(np.full((4, 64, 64, 3), value, np.float32), peak, rng=2)
    assert noisy.mean() == pytest.approx(value, abs=5 * math.sqrt(value / peak / noisy.size))
    assert noisy.var() == pytest.approx(value / peak, rel=0.04)
    # the outputs are photon counts over peak
    np.testing.assert_allclose(noisy * peak, np.round(noisy * peak), atol=1e-4)


def test_poisson_post_preset_strength_does_not_depend_on_dtype():
    # Explicit peak: the same picture gets the same noise whether it came from 8-bit or float data.
    spec = PRESETS["post"]["poisson"]
    std = (spec.apply(GREY, 0) - 0.5).std()
    assert std == pytest.approx(math.sqrt(0.5 / 256), rel=0.03)


def test_salt_and_pepper_fraction_and_salt_share():
    noisy = add_salt_and_pepper(GREY, 0.1, salt_fraction=0.3, rng=3)
    salt, pepper = noisy == 1.0, noisy == 0.0
    hit = salt | pepper
    assert hit.mean() == pytest.approx(0.1, rel=0.05)
    assert salt.sum() / hit.sum() == pytest.approx(0.3, rel=0.06)
    assert np.all(noisy[~hit] == 0.5)


def test_salt_and_pepper_per_value_hits_channels_independently():
    noisy = add_salt_and_pepper(GREY, 0.1, rng=4)
    hit_channels = (noisy != 0.5).sum(axis=-1)
    assert np.any(hit_channels == 1)  # coloured specks exist


def test_salt_and_pepper_per_pixel_hits_whole_pixels():
    noisy = add_salt_and_pepper(GREY, 0.1, salt_fraction=0.5, per="pixel", rng=5)
    hit_channels = (noisy != 0.5).sum(axis=-1)
    assert set(np.unique(hit_channels)) == {0, 3}
    hit = hit_channels == 3
    assert hit.mean() == pytest.approx(0.1, rel=0.06)
    assert np.all((noisy[hit] == 1.0).all(axis=-1) | (noisy[hit] == 0.0).all(axis=-1))  # black or white pixels


@pytest.mark.parametrize("per", ["value", "pixel"])
def test_salt_and_pepper_reaches_last_row_column_and_channel(per):
    # The post drew coordinates with randint(0, dim - 1), which never reached the last index.
    noisy = add_salt_and_pepper(np.full((1, 6, 6, 3), 0.5, np.float32), 0.5, per=per, rng=6)
    hit = noisy != 0.5
    assert hit[:, -1].any() and hit[:, :, -1].any()
    if per == "value":
        assert hit[..., -1].any()


def test_speckle_variance_is_x_squared_sigma_squared():
    x, sigma = 0.4, 0.2
    noisy = add_speckle(np.full((4, 64, 64, 3), x, np.float32), sigma, rng=7)
    assert noisy.mean() == pytest.approx(x, abs=5 * x * sigma / math.sqrt(noisy.size))
    assert noisy.var() == pytest.approx((x * sigma) ** 2, rel=0.04)
    assert np.all(add_speckle(np.zeros((1, 4, 4, 3)), 1.0, rng=0) == 0)  # black stays black


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_seeding_clipping_and_dtype(kind, tiny_faces):
    spec = PRESETS["post"][kind]
    a = spec.apply(tiny_faces, 11)
    b = spec.apply(tiny_faces.astype(np.float64), np.random.default_rng(11))
    assert a.dtype == np.float32 and a.shape == tiny_faces.shape
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, spec.apply(tiny_faces, 12))
    assert a.min() >= 0.0 and a.max() <= 1.0
    assert not np.array_equal(a, tiny_faces)


def test_strong_noise_is_clipped():
    noisy = add_gaussian(GREY, 2.0, rng=0)
    assert noisy.min() == 0.0 and noisy.max() == 1.0


def test_generator_advances_between_calls(tiny_faces):
    rng = np.random.default_rng(0)
    assert not np.array_equal(add_gaussian(tiny_faces, 0.1, rng), add_gaussian(tiny_faces, 0.1, rng))


def test_noisy_copies_single_face_regenerates_identical_bytes(tiny_faces):
    spec = PRESETS["post"]["salt_pepper"]
    ids = [f"{i:06d}.jpg" for i in range(len(tiny_faces))]
    noisy, seeds = noisy_copies(tiny_faces, ids, spec, base_seed=3)
    assert noisy.dtype == np.float32 and seeds.dtype == np.int64 and seeds.shape == (len(ids),)
    alone, alone_seed = noisy_copies(tiny_faces[5:6], ids[5:6], spec, base_seed=3)
    assert alone.tobytes() == noisy[5:6].tobytes() and alone_seed[0] == seeds[5]
    # what the dashboard does with a stored seed
    again = spec.apply(tiny_faces[5:6], np.random.default_rng(int(seeds[5])))
    assert again.tobytes() == noisy[5:6].tobytes()
    assert seeds[5] == derive_seed(3, ids[5], spec.kind, spec.to_json())
    assert len(set(seeds.tolist())) == len(ids)
    other, _ = noisy_copies(tiny_faces, ids, spec, base_seed=4)
    assert not np.array_equal(other, noisy)


def test_noisy_copies_rejects_wrong_number_of_ids(tiny_faces):
    with pytest.raises(ValueError, match="2 image ids for 8 images"):
        noisy_copies(tiny_faces, ["a", "b"], PRESETS["post"]["gaussian"])


def test_derive_seed_is_stable_and_type_normalised():
    # pinned: changing this value would silently change every stored noisy input
    assert derive_seed(0, "000001.jpg", "gaussian") == 2000436586775231924
    assert derive_seed(np.int64(0), "000001.jpg", "gaussian") == derive_seed(0, "000001.jpg", "gaussian")
    assert derive_seed(0, "a") != derive_seed(0, "b")
    assert 0 <= derive_seed("anything") < 2 ** 63


def test_presets_match_the_post_and_the_notebook():
    post, notebook = PRESETS["post"], PRESETS["notebook"]
    assert set(post) == set(notebook) == set(NOISE_KINDS)
    assert post["gaussian"].params["sigma"] ** 2 == pytest.approx(0.1)
    assert notebook["gaussian"].params["sigma"] ** 2 == pytest.approx(0.01)
    assert post["poisson"].params == {"peak": 256.0} == notebook["poisson"].params
    assert post["salt_pepper"].params == {"amount": 0.004, "per": "value", "salt_fraction": 0.5}
    assert notebook["salt_pepper"].params["amount"] == 0.03
    assert post["speckle"].params == {"sigma": 1.0} == notebook["speckle"].params


@pytest.mark.parametrize("spec", list(PRESETS["post"].values()) + list(PRESETS["notebook"].values()),
                         ids=lambda s: s.kind)
def test_noise_spec_json_round_trip(spec):
    text = spec.to_json()
    assert NoiseSpec.from_json(text) == spec
    assert NoiseSpec.from_json(text).to_json() == text
    assert json.loads(text)["kind"] == spec.kind
    assert hash(NoiseSpec.from_json(text)) == hash(spec)


def test_noise_spec_is_canonical():
    a = NoiseSpec("salt_pepper", {"amount": 0.004})
    b = NoiseSpec("salt_pepper", {"per": "value", "salt_fraction": 0.5, "amount": 0.004})
    expected = '{"kind":"salt_pepper","params":{"amount":0.004,"per":"value","salt_fraction":0.5}}'
    assert a.to_json() == b.to_json() == expected
    assert NoiseSpec("poisson", {"peak": 256}).to_json() == PRESETS["post"]["poisson"].to_json()


def test_labels_and_display_names():
    assert PRESETS["post"]["gaussian"].label == "Gaussian, σ = 0.316"
    assert PRESETS["post"]["poisson"].label == "Poisson, peak = 256"
    assert PRESETS["post"]["salt_pepper"].label.startswith("Salt & pepper, 0.4% of values")
    assert "pixels" in NoiseSpec("salt_pepper", {"amount": 0.01, "per": "pixel"}).label
    from denoising.catalogue import NOISE_DESCRIPTIONS, NOISE_LABELS, NOISE_NAMES, STRENGTHS

    assert set(NOISE_NAMES) == set(NOISE_LABELS) == set(NOISE_DESCRIPTIONS) == set(STRENGTHS) == set(NOISE_KINDS)
    assert NoiseSpec("salt_pepper", {"amount": 0.01}).label.startswith(NOISE_NAMES["salt_pepper"] + ",")


@pytest.mark.parametrize("kind, params, message", [
    ("blur", {"sigma": 1}, "unknown noise kind 'blur'; valid kinds: gaussian, poisson, salt_pepper, speckle"),
    ("gaussian", {}, "needs parameter"),
    ("gaussian", {"sigma": -0.1}, "gaussian noise: sigma must be >= 0"),
    ("gaussian", {"sigma": "big"}, "sigma must be a number"),
    ("gaussian", {"sigma": float("nan")}, "must be finite"),
    ("gaussian", {"sigma": 0.1, "var": 0.01}, "unknown parameter.*var.*valid: sigma"),
    ("poisson", {"peak": 0}, "peak must be > 0"),
    ("salt_pepper", {"amount": 1.5}, "amount must be >= 0 and <= 1"),
    ("salt_pepper", {"amount": 0.1, "salt_fraction": -1}, "salt_fraction"),
    ("salt_pepper", {"amount": 0.1, "per": "row"}, "per must be one of 'value', 'pixel'"),
    ("speckle", {"sigma": -1}, "sigma must be >= 0"),
])
def test_bad_noise_spec_raises_clear_value_error(kind, params, message):
    with pytest.raises(ValueError, match=message):
        NoiseSpec(kind, params)


def test_bad_function_arguments_and_json_raise_value_error():
    with pytest.raises(ValueError, match="peak must be > 0"):
        add_poisson(GREY, -1)
    with pytest.raises(ValueError, match="not a noise spec JSON"):
        NoiseSpec.from_json("{not json")
    with pytest.raises(ValueError, match="must be"):
        NoiseSpec.from_json('{"kind": "gaussian"}')


def test_zero_strength_is_identity(tiny_faces):
    assert np.array_equal(add_gaussian(tiny_faces, 0.0, 0), tiny_faces)
    assert np.array_equal(add_salt_and_pepper(tiny_faces, 0.0, rng=0), tiny_faces)
