"""The catalogue: one consistent set of names, and the presets it defines are the post's."""

from __future__ import annotations

import math

from denoising import catalogue
from denoising.noise import PRESETS, NoiseSpec


def test_every_noise_kind_has_every_entry():
    kinds = set(catalogue.NOISE_KINDS)
    for table in (catalogue.NOISE_NAMES, catalogue.NOISE_LABELS, catalogue.NOISE_DESCRIPTIONS, catalogue.STRENGTHS):
        assert set(table) == kinds
    for preset in catalogue.PRESET_PARAMS.values():
        assert set(preset) == kinds


def test_post_preset_is_the_posts_noise():
    post = catalogue.PRESET_PARAMS["post"]
    assert post["gaussian"]["sigma"] == math.sqrt(0.1)  # the post's variance 0.1, exactly
    assert post["salt_pepper"] == {"amount": 0.004, "salt_fraction": 0.5, "per": "value"}
    assert PRESETS["post"]["gaussian"] == NoiseSpec("gaussian", {"sigma": math.sqrt(0.1)})
    assert PRESETS["post"]["poisson"].params == {"peak": 256.0}


def test_each_strength_slider_covers_its_post_preset():
    for kind, strength in catalogue.STRENGTHS.items():
        value = catalogue.PRESET_PARAMS["post"][kind][strength.parameter]
        if isinstance(strength.values, tuple):
            low, high, step = strength.values
            assert low <= value <= high and step > 0, kind
        else:
            assert value in strength.values, kind


def test_methods_archs_and_metrics_are_consistent():
    assert list(catalogue.METHODS)[0] == "noisy"
    assert {info.family for info in catalogue.METHODS.values()} == set(catalogue.FAMILIES)
    assert catalogue.ARCHS == ("autoencoder", "pix2pix", "unet_l1", "unet_range")
    assert set(catalogue.ARCH_MODEL) == set(catalogue.ARCHS)
    assert set(catalogue.RANGE_ARCHS) <= set(catalogue.ARCHS)
    assert all(catalogue.METHODS[arch].told_noise for arch in catalogue.RANGE_ARCHS)
    assert [n for n, i in catalogue.METHODS.items() if i.slow] == ["bm3d", "bm3d_sigma", "bm3d_anscombe", "bm3d_speckle"]
    for table in (catalogue.HIGHER_IS_BETTER, catalogue.METRIC_SHORT, catalogue.METRIC_LABELS):
        assert tuple(table) == catalogue.METRICS
    assert catalogue.HIGHER_IS_BETTER == {"mae": False, "psnr": True, "ssim": True}


def test_unknown_names_are_shown_as_they_are():
    assert catalogue.display_name("median") == "Median filter (3×3)"
    assert catalogue.display_name("my_method") == "my_method"
    assert catalogue.noise_label("blur") == "blur"
    assert catalogue.test_set_title("celeba_test") == "CelebA test split"
    assert catalogue.test_set_title("mine") == "mine"


def test_sweep_has_six_strengths_per_kind_including_the_posts():
    for kind, strengths in catalogue.SWEEP_STRENGTHS.items():
        parameter = catalogue.STRENGTHS[kind].parameter
        assert len(set(strengths)) >= 6, kind
        assert catalogue.PRESET_PARAMS["post"][kind][parameter] in strengths, kind
        for value in strengths:  # every sweep strength is a valid noise of that kind
            NoiseSpec(kind, {**catalogue.PRESET_PARAMS["post"][kind], parameter: value})


def test_and_list_reads_as_a_sentence():
    from denoising.catalogue import and_list

    assert [and_list(["A"]), and_list(["A", "B"]), and_list(["A", "B", "C"])] == ["A", "A and B", "A, B and C"]
