"""The registry: a plain ordered mapping of Denoiser objects, classical first and learned last, every one of
them picklable (what lets evaluation send any method to worker processes or a Dask cluster)."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np
import pytest

from denoising import catalogue, registry
from denoising.denoisers import Denoiser
from denoising.noise import PRESETS, noisy_copies
from denoising.registry import build_registry, classical_methods

EXPECTED = ["noisy", "mean", "median", "gaussian", "bilateral", "tv", "wavelet", "nl_means", "switching_median",
            "bm3d", "bm3d_sigma", "bm3d_anscombe", "bm3d_speckle"]
SLOW = {"bm3d", "bm3d_sigma", "bm3d_anscombe", "bm3d_speckle"}
#: noise-aware references: the one noise kind each is told about
TOLD = {"switching_median": "salt_pepper", "bm3d_sigma": "gaussian", "bm3d_anscombe": "poisson",
        "bm3d_speckle": "speckle"}
FAST = [name for name in EXPECTED if name not in SLOW]
SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints"


def _noisy(faces: np.ndarray, kind: str) -> np.ndarray:
    noisy, _ = noisy_copies(faces, [f"f{i}" for i in range(len(faces))], PRESETS["post"][kind], base_seed=0)
    return noisy


def test_classical_methods_names_order_and_catalogue_facts():
    methods = classical_methods()
    assert list(methods) == EXPECTED
    assert len({m.display_name for m in methods.values()}) == len(methods)
    for name, method in methods.items():
        assert isinstance(method, Denoiser) and method.name == name
        info = catalogue.METHODS[name]
        assert (method.display_name, method.family, method.slow, method.description) == \
            (info.display_name, info.family, info.slow, info.description)
        assert method.family == ("baseline" if name == "noisy" else "classical")
        assert method.slow == (name in SLOW)
        kinds = [kind for kind in catalogue.NOISE_KINDS if method.available(kind)]
        assert kinds == ([TOLD[name]] if name in TOLD else list(catalogue.NOISE_KINDS)), name
    assert methods["median"].display_name == "Median filter (3×3)"
    assert classical_methods() is not classical_methods()  # fresh objects: callers may not share state


def test_fast_methods_work_on_a_batch_with_a_noise_spec(tiny_faces):
    spec = PRESETS["post"]["gaussian"]
    noisy = _noisy(tiny_faces, "gaussian")
    for name, method in classical_methods().items():
        if method.slow or not method.available("gaussian"):
            continue
        out = method(noisy, spec)
        assert out.shape == tiny_faces.shape and out.dtype == np.float32, name
        assert out.min() >= 0.0 and out.max() <= 1.0, name
    identity = classical_methods()["noisy"](noisy, spec)
    assert np.array_equal(identity, noisy) and identity is not noisy


@pytest.mark.parametrize("bad", ["gaussian", None, {"kind": "gaussian"}])
def test_a_noise_kind_string_or_other_non_spec_raises_type_error(bad, tiny_faces):
    for method in classical_methods().values():
        with pytest.raises(TypeError, match="NoiseSpec"):
            method(tiny_faces[:1], bad)


def test_every_method_survives_a_pickle_round_trip_with_identical_outputs(tiny_faces):
    pytest.importorskip("torch")
    methods = build_registry(SHIPPED)
    assert {"autoencoder", "pix2pix", "unet_l1"} <= set(methods)
    for kind in ("gaussian", "salt_pepper"):
        spec = PRESETS["post"][kind]
        noisy = _noisy(tiny_faces[:2], kind)
        for name, method in methods.items():
            if not method.available(kind):
                continue
            expected = method(noisy[:1] if method.slow else noisy, spec)  # the original, models already loaded
            copy = pickle.loads(pickle.dumps(method))
            assert copy is not method and copy.name == name and copy.family == method.family
            got = copy(noisy[:1] if method.slow else noisy, spec)  # a learned copy reloads its checkpoint
            assert np.array_equal(got, expected), (name, kind)


def test_learned_pickle_carries_no_weights():
    pytest.importorskip("torch")
    learned = build_registry(SHIPPED)["unet_l1"]
    learned(_noisy(np.zeros((1, 28, 28, 3), np.float32), "gaussian"), PRESETS["post"]["gaussian"])  # loads a model
    assert len(pickle.dumps(learned)) < 2_000  # a path and a name, not megabytes of weights


def test_build_registry_without_checkpoints(tmp_path):
    assert list(build_registry(tmp_path)) == EXPECTED
    assert list(build_registry(None)) == EXPECTED
    assert list(build_registry(tmp_path / "missing", include_slow=False)) == FAST
    (tmp_path / "not_a_folder").write_text("x")
    assert list(build_registry(tmp_path / "not_a_folder")) == EXPECTED
    (tmp_path / "autoencoder-gaussian.safetensors").write_bytes(b"")  # weights without the card beside them
    assert list(build_registry(tmp_path)) == EXPECTED


def test_learned_methods_come_last(tmp_path):
    pytest.importorskip("torch")
    from dashboard_fixtures import make_checkpoint

    make_checkpoint(tmp_path)  # an autoencoder for Gaussian noise only
    methods = build_registry(tmp_path)
    assert list(methods) == EXPECTED + ["autoencoder"]
    assert methods["autoencoder"].family == "learned"
    assert methods["autoencoder"].available("gaussian") and not methods["autoencoder"].available("speckle")
    assert list(build_registry(tmp_path, include_slow=False)) == FAST + ["autoencoder"]
    assert list(build_registry(SHIPPED))[len(EXPECTED):] == list(catalogue.ARCHS)


def test_unreadable_checkpoint_folder_gives_classical_methods_and_says_why(monkeypatch, tmp_path, caplog):
    def unreadable(checkpoint_dir):
        raise PermissionError(f"[Errno 13] Permission denied: '{checkpoint_dir}'")

    monkeypatch.setattr(registry, "learned_denoisers", unreadable)
    with caplog.at_level(logging.ERROR, logger=registry.__name__):
        assert list(build_registry(tmp_path)) == EXPECTED
    assert "Permission denied" in caplog.text and str(tmp_path) in caplog.text
