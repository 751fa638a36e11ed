"""The method registry: every classical method with display name and slow flag, learned ones merged."""

import logging
import sys

import numpy as np
import pytest

from denoising import registry
from denoising.registry import Method, build_registry, classical_methods

EXPECTED = ["noisy", "mean", "median", "gaussian", "bilateral", "tv", "wavelet", "nl_means", "bm3d"]


def test_classical_methods_names_order_and_labels():
    methods = classical_methods()
    assert list(methods) == EXPECTED
    assert len({m.display_name for m in methods.values()}) == len(methods)
    for name, method in methods.items():
        assert method.name == name
        assert method.display_name and method.description.endswith(".")
        assert method.family == ("baseline" if name == "noisy" else "classical")
        assert method.slow == (name == "bm3d")
        assert method.available("gaussian")
    assert methods["median"].display_name == "Median filter (3×3)"


def test_fast_methods_work_on_a_batch(tiny_faces):
    noisy = np.clip(tiny_faces + 0.1 * np.random.default_rng(0).standard_normal(tiny_faces.shape), 0, 1)
    for name, method in classical_methods().items():
        if method.slow:
            continue
        out = method(noisy.astype(np.float32), "gaussian")
        assert out.shape == tiny_faces.shape and out.dtype == np.float32, name
    identity = classical_methods()["noisy"](noisy, "gaussian")
    assert np.array_equal(identity, noisy.astype(np.float32)) and identity is not noisy


def test_build_registry_without_checkpoints(tmp_path):
    assert list(build_registry(tmp_path)) == EXPECTED
    assert list(build_registry(None)) == EXPECTED
    assert list(build_registry(tmp_path / "missing", include_slow=False)) == EXPECTED[:-1]


def _fake_learned(slow=False):
    return {"autoencoder": Method("autoencoder", "Autoencoder", "learned", slow, "A network.",
                                  lambda images, kind: np.asarray(images, np.float32),
                                  available=lambda kind: kind == "gaussian")}


def test_learned_methods_come_last(monkeypatch, tmp_path):
    import denoising.models

    monkeypatch.setattr(denoising.models, "learned_methods", lambda checkpoint_dir: _fake_learned())
    methods = build_registry(tmp_path)
    assert list(methods) == EXPECTED + ["autoencoder"]
    assert methods["autoencoder"].available("gaussian") and not methods["autoencoder"].available("speckle")
    assert list(build_registry(tmp_path, include_slow=False)) == EXPECTED[:-1] + ["autoencoder"]


def test_broken_learned_models_are_logged_not_hidden(monkeypatch, tmp_path, caplog):
    import denoising.models

    def broken(checkpoint_dir):
        raise RuntimeError("checkpoint folder is corrupt")

    monkeypatch.setattr(denoising.models, "learned_methods", broken)
    with caplog.at_level(logging.ERROR, logger=registry.__name__):
        assert list(build_registry(tmp_path)) == EXPECTED
    assert "checkpoint folder is corrupt" in caplog.text


def test_missing_models_package_gives_classical_methods(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "denoising.models", None)  # makes the import raise ImportError
    assert list(build_registry(tmp_path)) == EXPECTED


@pytest.mark.parametrize("kind", ["gaussian", "salt_pepper"])
def test_method_call_passes_noise_kind(kind):
    seen = []
    method = Method("x", "X", "learned", False, "X.", lambda images, k: seen.append(k) or images)
    method(np.zeros((1, 28, 28, 3), np.float32), kind)
    assert seen == [kind]
