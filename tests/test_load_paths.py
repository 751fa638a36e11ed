"""The dashboard's paths under load (issue #12): shared work, bounded concurrency, the server settings."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import tomllib

from dashboard import common
from denoising.noise import PRESETS

REPO = Path(__file__).resolve().parents[1]


def test_server_settings_that_cost_most_under_load_are_off():
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["runner"]["postScriptGC"] is False  # a full collection after every visitor's run
    assert config["server"]["fileWatcherType"] == "none"  # polling every module's file after every run


def test_a_small_picture_is_computed_once_for_every_visitor(monkeypatch):
    calls = []

    def counting(methods, wanted, noisy, noise, failed=None):
        calls.append(noisy.shape)
        return {name: noisy.copy() for name in wanted}

    monkeypatch.setattr(common, "run_live", counting)
    common._shared_lab_outputs.clear()
    spec = PRESETS["post"]["gaussian"]
    face = np.random.default_rng(0).random((1, 28, 28, 3), dtype=np.float32)
    first = common.lab_outputs(face, spec, ["mean", "median"])
    again = common.lab_outputs(face.copy(), spec, ["mean", "median"])  # another session, the same setting
    assert len(calls) == 1 and set(first[0]) == set(again[0]) == {"mean", "median"}
    assert (first[3], again[3]) == (False, True)  # the second is the first's result: said so, not timed again
    common.lab_outputs(face, PRESETS["post"]["poisson"], ["mean"])  # another noise: computed
    assert len(calls) == 2
    photo = np.zeros((1, 100, 120, 3), np.float32)  # an upload larger than 64×64: live, never kept
    common.lab_outputs(photo, spec, ["mean"])
    assert common.lab_outputs(photo, spec, ["mean"])[3] is False
    assert calls[2:] == [(1, 100, 120, 3)] * 2


def test_scores_and_pngs_of_small_pictures_are_kept_and_large_ones_are_not(monkeypatch):
    from dashboard import images
    from denoising import metrics

    encoded, scored = [], []
    encode, score = images.png_data_uri, metrics.score
    monkeypatch.setattr(images, "png_data_uri", lambda image, scale: encoded.append(image.shape) or encode(image, scale))
    monkeypatch.setattr(metrics, "score", lambda clean, image: scored.append(clean.shape) or score(clean, image))
    common._shared_png_uri.clear()
    common._shared_scores.clear()
    face = np.random.default_rng(1).random((28, 28, 3), dtype=np.float32)
    for _ in range(2):  # two visitors, the same picture: encoded and scored once
        assert common.lab_scores(face.copy(), {"x": face})["x"]["mae"][0] == 0.0
        assert common._png_uri(face.copy(), 1).startswith("data:image/png;base64,")
    assert encoded == [(28, 28, 3)] and len(scored) == 1
    big = np.zeros((100, 100, 3), np.float32)  # larger than SHARED_CACHE_PIXELS: done again each time
    for _ in range(2):
        common._png_uri(big, 1)
        common.lab_scores(big, {"x": big})
    assert encoded[1:] == [(100, 100, 3)] * 2 and len(scored) == 3


def test_the_tables_are_one_shared_object_not_a_copy_per_call():
    assert common.tables() is common.tables()


def _free_slots() -> int:
    """How many more inferences could start now (takes every free slot, then gives them back)."""
    taken = 0
    while common.COMPUTE_SLOTS.acquire(blocking=False):
        taken += 1
    for _ in range(taken):
        common.COMPUTE_SLOTS.release()
    return taken


def test_each_inference_holds_a_slot_and_gives_it_back_even_when_it_fails():
    slots = _free_slots()
    assert 1 <= slots <= max(1, min(4, os.cpu_count() or 1))
    seen = []

    def working(noisy, noise):
        seen.append(_free_slots())
        return noisy

    def broken(noisy, noise):
        seen.append(_free_slots())
        raise RuntimeError("weights cut short")

    failed: dict[str, str] = {}
    face = np.zeros((1, 8, 8, 3), np.float32)
    out = common.run_live({"mean": working, "unet_l1": broken}, ["mean", "unet_l1"], face,
                          PRESETS["post"]["gaussian"], failed)
    assert set(out) == {"mean"} and failed == {"unet_l1": "weights cut short"}
    assert seen == [slots - 1, slots - 1] and _free_slots() == slots  # one slot each while running, none kept


def test_torch_threads_are_left_alone_outside_the_server():
    """Only ``streamlit run dashboard/app.py`` sets one torch thread; it never imports torch itself."""
    loaded = "torch" in sys.modules
    before = sys.modules["torch"].get_num_threads() if loaded else None
    common._one_torch_thread()  # pytest's argv: nothing happens
    assert ("torch" in sys.modules) == loaded
    if loaded:
        assert sys.modules["torch"].get_num_threads() == before


def test_no_page_changes_the_shared_tables(tmp_path, monkeypatch):
    """The tables are one object for every visitor (st.cache_resource): every page must leave it as read."""
    from dashboard_fixtures import make_tables
    from streamlit.testing.v1 import AppTest

    from dashboard.tables import read_tables

    folder = make_tables(tmp_path / "tables", {"lfw": ["lfw_000", "lfw_001", "lfw_002"]})
    monkeypatch.setenv("DENOISING_TABLES_DIR", str(folder))
    monkeypatch.setenv("DENOISING_CHECKPOINT_DIR", str(tmp_path / "no_checkpoints"))
    monkeypatch.setenv("DENOISING_DASHBOARD_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DENOISING_CELEBA_DIR", raising=False)
    at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=120).run()
    for page in ("browse", "distributions", "noise_strength", "method", "noise_lab"):
        at.switch_page(f"views/{page}.py").run()
        assert not at.exception, (page, [e.value for e in at.exception])
    shared, fresh = common.tables(), read_tables(folder)
    for name in ("per_image", "summary", "timings", "sweep"):
        assert getattr(shared, name).equals(getattr(fresh, name)), name
    assert shared.meta == fresh.meta
