"""Dashboard tests with streamlit's AppTest: every page, with/without checkpoints and a CelebA folder.

The tables are small fixtures written here (same columns as checkpoints/tables), pointed at through the
DENOISING_TABLES_DIR / DENOISING_CHECKPOINT_DIR / DENOISING_CELEBA_DIR environment variables.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "dashboard" / "app.py")
PAGES = ["views/findings.py", "views/browse.py", "views/noise_lab.py", "views/distributions.py",
         "views/training.py", "views/method.py"]

from dashboard_fixtures import CELEBA_IDS, make_celeba, make_checkpoint, make_tables  # noqa: E402


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("dash")
    lfw_ids = [f"lfw_{i:03d}" for i in range(4)]
    return {
        "tables": make_tables(base / "tables", {"celeba_test": CELEBA_IDS, "lfw": lfw_ids}),
        "celeba": make_celeba(base / "celeba"),
        "empty_ckpt": (base / "no_checkpoints"),
        "ckpt": make_checkpoint(base / "checkpoints"),
        "cache": base / "cache",
    }


@pytest.fixture
def env(fixtures, monkeypatch):
    """Point the app at the fixture tables; no checkpoints and no CelebA unless a test adds them."""
    fixtures["empty_ckpt"].mkdir(exist_ok=True)
    monkeypatch.setenv("DENOISING_TABLES_DIR", str(fixtures["tables"]))
    monkeypatch.setenv("DENOISING_CHECKPOINT_DIR", str(fixtures["empty_ckpt"]))
    monkeypatch.setenv("DENOISING_DASHBOARD_CACHE", str(fixtures["cache"]))
    monkeypatch.delenv("DENOISING_CELEBA_DIR", raising=False)
    return fixtures


def run_page(page: str, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    if page != PAGES[0] or query:
        at.switch_page(page)
        at.query_params.update(query or {})
        at.run()
    return at


def assert_ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


@pytest.mark.parametrize("celeba", [False, True], ids=["lfw-only", "with-celeba"])
@pytest.mark.parametrize("checkpoints", [False, True], ids=["classical", "with-checkpoints"])
def test_every_page_renders(env, monkeypatch, celeba, checkpoints):
    if celeba:
        monkeypatch.setenv("DENOISING_CELEBA_DIR", str(env["celeba"]))
    if checkpoints:
        monkeypatch.setenv("DENOISING_CHECKPOINT_DIR", str(env["ckpt"]))
    for page in PAGES:
        at = run_page(page)
        assert_ok(at)
        text = " ".join(m.value for m in [*at.markdown, *at.info, *at.caption])
        if page == "views/findings.py":
            assert at.table, "headline table missing"
            # CelebA is the default test set; without its folder the example faces fall back to LFW, with a note.
            assert at.image
            assert ("DENOISING_CELEBA_DIR" in text) != celeba
        if page == "views/training.py":
            assert ("train.py" in text) != checkpoints
        if page == "views/method.py":
            assert at.image
        if page == "views/noise_lab.py":
            assert "data:image/png;base64," in _face_row(at)


def test_findings_text_and_best_marked(env):
    at = run_page(PAGES[0], {"set": "lfw"})
    assert_ok(at)
    headline = at.table[0].value
    assert "Noisy input (no filter)" in headline.index  # methods are rows, noise kinds columns
    assert any("lowest average error" in m.value for m in at.markdown)
    # the fixture's best mean MAE per noise kind (noisy input excluded) is named under the table
    summary = pd.read_csv(env["tables"] / "summary.csv")
    part = summary[(summary["test_set"] == "lfw") & (summary["method"] != "noisy")]
    winners = part.loc[part.groupby("noise")["mae_mean"].idxmin(), "method"]
    names = {"mean": "Mean filter", "median": "Median filter", "autoencoder": "Autoencoder"}
    caption = " ".join(c.value for c in at.caption)
    assert all(names[w] in caption for w in winners)


def test_marked_table_marks_each_columns_best():
    from dashboard.tables import best_method, marked_table

    table = pd.DataFrame({"noisy": [0.2, 0.001], "mean": [0.1, 0.03], "bm3d": [0.05, 0.02]},
                         index=pd.Index(["gaussian", "salt_pepper"], name="noise"))
    best = {noise: best_method(row, "mae") for noise, row in table.iterrows()}
    assert best == {"gaussian": "bm3d", "salt_pepper": "bm3d"}  # the noisy input never counts as a method
    styled = marked_table(table, best, {"bm3d": "BM3D"}, str.upper, "mae")
    assert list(styled.data.columns) == ["GAUSSIAN", "SALT_PEPPER"]
    ctx = styled._compute().ctx
    bold = {(styled.data.index[r], styled.data.columns[c]) for (r, c), props in ctx.items()
            if ("font-weight", "bold") in props}
    assert bold == {("BM3D", "GAUSSIAN"), ("BM3D", "SALT_PEPPER")}


def test_browse_opens_face_from_url(env, monkeypatch):
    monkeypatch.setenv("DENOISING_CELEBA_DIR", str(env["celeba"]))
    at = run_page("views/browse.py", {"set": "celeba_test", "noise": "poisson", "face": CELEBA_IDS[1]})
    assert_ok(at)
    assert at.selectbox(key="br_face").value == CELEBA_IDS[1]
    assert at.selectbox(key="br_noise").value == "poisson"
    assert at.query_params["face"] == CELEBA_IDS[1]
    assert len(at.image) >= 3  # gallery, face + outputs, heatmaps


def _face_row(at: AppTest) -> str:
    """The Noise lab's row of faces (inline PNGs in one HTML element)."""
    return "".join(h.proto.body for h in at.get("html") if "face-row" in h.proto.body)


def _lab_state(at: AppTest) -> tuple[str, pd.DataFrame]:
    return _face_row(at), at.session_state["lab_last_scores"]


def test_noise_lab_reacts_to_kind_and_slider(env):
    at = run_page("views/noise_lab.py")
    assert_ok(at)
    images0, scores0 = _lab_state(at)
    at.slider(key="lab_strength_gaussian").set_value(0.1).run()
    assert_ok(at)
    images1, scores1 = _lab_state(at)
    assert images1 != images0
    assert not np.allclose(scores1.iloc[:, 1].to_numpy(), scores0.iloc[:, 1].to_numpy())
    assert at.query_params["strength"] == "0.1"
    at.selectbox(key="lab_kind").set_value("salt_pepper").run()
    assert_ok(at)
    images2, scores2 = _lab_state(at)
    assert images2 != images1
    assert not np.allclose(scores2.iloc[:, 1].to_numpy(), scores1.iloc[:, 1].to_numpy())


def test_noise_lab_same_seed_same_result(env):
    first = _lab_state(run_page("views/noise_lab.py", {"seed": "7", "kind": "speckle"}))[1]
    second = _lab_state(run_page("views/noise_lab.py", {"seed": "7", "kind": "speckle"}))[1]
    pd.testing.assert_frame_equal(first, second)


def test_noise_lab_bad_upload_shows_message(env):
    at = run_page("views/noise_lab.py", {"src": "upload"})
    assert_ok(at)
    at.file_uploader(key="lab_upload").set_value(("notes.txt", b"this is not a photo", "text/plain")).run()
    assert_ok(at)
    assert at.error and "could not" in at.error[0].value.lower()


def test_noise_lab_grey_upload_is_converted(env):
    buffer = io.BytesIO()
    Image.fromarray(np.tile(np.arange(64, dtype=np.uint8), (80, 1)), mode="L").save(buffer, format="PNG")
    at = run_page("views/noise_lab.py", {"src": "upload"})
    at.file_uploader(key="lab_upload").set_value(("grey.png", buffer.getvalue(), "image/png")).run()
    assert_ok(at)
    assert not at.error
    assert "data:image/png;base64," in _face_row(at)


def test_missing_celeba_folder_is_a_message(env, monkeypatch, tmp_path):
    monkeypatch.setenv("DENOISING_CELEBA_DIR", str(tmp_path / "nowhere"))
    at = run_page(PAGES[0])
    assert_ok(at)
    assert at.warning or at.info


def test_no_tables_still_works(env, monkeypatch, tmp_path):
    monkeypatch.setenv("DENOISING_TABLES_DIR", str(tmp_path / "none"))
    for page in PAGES:
        assert_ok(run_page(page))


def test_upload_helper_messages():
    """The upload path directly: junk and decompression bombs give a message, never an exception."""
    from dashboard.common import upload_to_face

    image, message = upload_to_face(b"\x89PNG\r\n\x1a\n garbage", 28)
    assert image is None and message
    image, message = upload_to_face(b"", 28)
    assert image is None and message


def test_report_is_one_offline_file(env):
    from dashboard.charts import grouped_bars
    from dashboard.report import build_report, picture_grid_html
    from dashboard.tables import read_tables

    data = read_tables(env["tables"])
    figs = [(m, grouped_bars(data.summary, "lfw", m, {})) for m in ("mae", "psnr")]
    face = np.random.default_rng(0).uniform(0, 1, (28, 28, 3)).astype(np.float32)
    html = build_report("t", "i", ["**x** wins"], [("mean", data.summary.head())], figs,
                        [("g", picture_grid_html([("f", [("Original", face)])]))])
    assert html.count('<img src="data:image/png;base64,') == 1
    # plotly.js is inlined exactly once and nothing is fetched from the network
    assert html.count("* plotly.js v") == 1 and "<script src=" not in html
    assert "<b>x</b>" in html


def test_png_is_exact_and_enlarged():
    from dashboard.images import png_bytes

    face = np.random.default_rng(1).uniform(0, 1, (28, 28, 3)).astype(np.float32)
    decoded = np.asarray(Image.open(io.BytesIO(png_bytes(face, 4))))
    assert decoded.shape == (112, 112, 3)
    assert np.array_equal(decoded[::4, ::4], np.round(face * 255).astype(np.uint8))


def test_paired_comparison_interval(env):
    from dashboard.tables import paired, read_tables

    data = read_tables(env["tables"])
    result = paired(data.per_image, "lfw", "gaussian", "mean", "noisy")
    assert result["n"] == 4
    assert result["ci_low"] <= result["mean_diff"] <= result["ci_high"]
    assert 0.0 <= result["win_rate"] <= 1.0


def test_regenerated_noise_matches_what_was_scored(tiny_faces):
    """The dashboard rebuilds one face's noisy input from its stored seed: same bytes as the evaluation's."""
    from denoising.noise import PRESETS, noisy_copies

    from dashboard.facesource import noisy_from_seed

    ids = [f"f{i}" for i in range(len(tiny_faces))]
    for spec in PRESETS["post"].values():
        noisy, seeds = noisy_copies(tiny_faces, ids, spec, base_seed=3)
        again = noisy_from_seed(tiny_faces[5], spec, int(seeds[5]))
        assert np.array_equal(again, noisy[5])


def test_corrupt_checkpoint_is_a_warning_not_a_traceback(env, monkeypatch, tmp_path):
    broken = tmp_path / "broken"
    make_checkpoint(broken)
    weights = broken / "autoencoder-gaussian.safetensors"
    weights.write_bytes(weights.read_bytes()[:500])  # a download cut short
    monkeypatch.setenv("DENOISING_CHECKPOINT_DIR", str(broken))
    at = run_page("views/noise_lab.py", {"kind": "gaussian"})
    assert_ok(at)
    assert any("truncated or corrupt" in w.value for w in at.warning)
    assert _face_row(at).count("<figure") == 9  # original, noisy and the 7 fast classical filters still show


def test_training_curves_mark_the_kept_epoch_not_the_lowest_mae():
    from dashboard.charts import training_curves

    # epoch 3 is lower, but by less than min_improvement: the checkpoint kept epoch 2
    history = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [0.3, 0.2, 0.19], "val_mae": [0.1, 0.05, 0.04999],
                            "val_psnr": [18.0, 20.0, 20.01]})
    fig = training_curves(history, {"mae": 0.2, "psnr": 11.0}, kept_epoch=2)
    stars = [t for t in fig.data if t.name.startswith("kept weights")]
    assert len(stars) == 3 and all(tuple(t.x) == (2,) for t in stars)
    assert [tuple(t.y) for t in stars] == [(0.2,), (0.05,), (20.0,)]
