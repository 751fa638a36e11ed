"""Dashboard tests with streamlit's AppTest: every page, with/without checkpoints and a CelebA folder.

The tables are small fixtures written here (same columns as checkpoints/tables), pointed at through the
DENOISING_TABLES_DIR / DENOISING_CHECKPOINT_DIR / DENOISING_CELEBA_DIR environment variables.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dashboard_fixtures import CELEBA_IDS, make_celeba, make_checkpoint, make_tables
from PIL import Image

from dashboard.tables import findings
from denoising import catalogue
from denoising.noise import PRESETS

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "dashboard" / "app.py")
PAGES = ["views/findings.py", "views/browse.py", "views/noise_lab.py", "views/noise_strength.py",
         "views/distributions.py", "views/training.py", "views/method.py"]


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
    if page == PAGES[0]:  # the landing page reads the URL on its first run
        at.query_params.update(query or {})
        return at.run()
    at.run()
    at.switch_page(page)
    at.query_params.update(query or {})
    return at.run()


def assert_ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


TITLES = {
    "views/findings.py": "What removes noise from small face photos best?",
    "views/browse.py": "Browse the test faces",
    "views/noise_lab.py": "Noise lab",
    "views/noise_strength.py": "Noise strength",
    "views/distributions.py": "How the scores spread over the faces",
    "views/training.py": "How the neural networks were trained",
    "views/method.py": "How this comparison works",
}
NAMES = {name: info.display_name for name, info in catalogue.METHODS.items()}


def _captions(at: AppTest) -> list[str]:
    """Every picture caption on the page (st.image lists)."""
    return [caption for image in at.image for caption in image.captions]


@pytest.mark.parametrize("celeba", [False, True], ids=["lfw-only", "with-celeba"])
@pytest.mark.parametrize("checkpoints", [False, True], ids=["classical", "with-checkpoints"])
def test_every_page_renders(env, monkeypatch, celeba, checkpoints):
    if celeba:
        monkeypatch.setenv("DENOISING_CELEBA_DIR", str(env["celeba"]))
    if checkpoints:
        monkeypatch.setenv("DENOISING_CHECKPOINT_DIR", str(env["ckpt"]))
    autoencoder = catalogue.display_name("autoencoder")
    for page in PAGES:
        at = run_page(page)
        assert_ok(at)
        assert [t.value for t in at.title] == [TITLES[page]]
        text = " ".join(m.value for m in [*at.markdown, *at.info, *at.caption])
        if page == "views/findings.py":
            assert at.table, "headline table missing"
            # CelebA is the default test set; without its folder the example faces fall back to LFW, with a note.
            assert ("DENOISING_CELEBA_DIR" in text) != celeba
            captions = _captions(at)
            assert captions[:3] == ["Original", "With noise", NAMES["mean"]]
            # the trained network's pictures (denoised with the table's NoiseSpec) only with its checkpoint
            assert (autoencoder in captions) == checkpoints
        if page == "views/training.py":
            assert ("train.py" in text) != checkpoints
        if page == "views/method.py":
            assert at.image
        if page == "views/noise_lab.py":
            assert "data:image/png;base64," in _face_row(at)
            shown = list(at.session_state["lab_last_scores"]["Method"])
            assert (autoencoder in shown) == checkpoints
        if page == "views/noise_strength.py":
            assert len(at.get("plotly_chart")) == len(catalogue.NOISE_KINDS)
            # the face section: with a checkpoint the network cleans the six strengths, without one a filter does
            assert (f"Cleaned by {autoencoder}" in text) == checkpoints


def test_findings_page_shows_the_tables_numbers(env):
    at = run_page(PAGES[0], {"set": "lfw"})
    assert_ok(at)
    test_sets = at.selectbox(key="find_set")
    assert test_sets.value == "lfw"
    assert test_sets.options == [catalogue.test_set_title("celeba_test"), catalogue.test_set_title("lfw")]
    assert at.radio(key="find_metric").value == "mae"
    summary = pd.read_csv(env["tables"] / "summary.csv")
    part = summary[summary["test_set"] == "lfw"]
    expected = part.pivot_table(index="method", columns="noise", values="mae_mean", sort=False)
    headline = at.table[0].value  # methods as rows, noise kinds as columns, labels from the catalogue
    assert list(headline.index) == [NAMES[m] for m in expected.index]
    assert list(headline.columns) == [catalogue.noise_label(n) for n in expected.columns]
    # at the catalogue's one precision per score
    assert headline.to_numpy().tolist() == expected.map(lambda v: catalogue.format_score("mae", v)).to_numpy().tolist()
    # the sentences under "In plain words" are exactly the ones computed from the table
    shown = [m.value for m in at.markdown if m.value.startswith("- ")]
    assert shown == [f"- {sentence}" for sentence in findings(summary, "lfw", NAMES)]
    # the best mean MAE per noise kind (noisy input excluded) is named under the table
    winners = part[part["method"] != "noisy"].set_index("method").groupby("noise", sort=False)["mae_mean"].idxmin()
    caption = next(c.value for c in at.caption if c.value.startswith("Highlighted"))
    assert caption == ("Highlighted: the best method for each kind of noise. "
                       + "; ".join(f"{catalogue.noise_label(n)}: {NAMES[m]}" for n, m in winners.items()) + ".")


def test_marked_table_marks_each_columns_best():
    from dashboard.tables import best_method, marked_table

    table = pd.DataFrame({"noisy": [0.2, 0.001], "mean": [0.1, 0.03], "bm3d": [0.05, 0.02]},
                         index=pd.Index(["gaussian", "salt_pepper"], name="noise"))
    best = {noise: best_method(row, "mae") for noise, row in table.iterrows()}
    assert best == {"gaussian": "bm3d", "salt_pepper": "bm3d"}  # the noisy input never counts as a method
    styled = marked_table(table, best, {"bm3d": "BM3D"}, str.upper, "mae")
    assert list(styled.data.columns) == ["GAUSSIAN", "SALT_PEPPER"]
    ctx = styled._compute().ctx
    marked = {(styled.data.index[r], styled.data.columns[c]): dict(props) for (r, c), props in ctx.items()
              if ("font-weight", "bold") in props}
    green = {cell for cell, props in marked.items() if "33, 195, 84" in props["background-color"]}
    assert green == {("BM3D", "GAUSSIAN"), ("BM3D", "SALT_PEPPER")}
    # the noisy input, better than every method on salt & pepper, is marked too (orange), never as a method
    assert set(marked) - green == {("noisy", "SALT_PEPPER")}


def test_browse_opens_face_from_url(env, monkeypatch):
    monkeypatch.setenv("DENOISING_CELEBA_DIR", str(env["celeba"]))
    at = run_page("views/browse.py", {"set": "celeba_test", "noise": "poisson", "face": CELEBA_IDS[1]})
    assert_ok(at)
    assert at.selectbox(key="br_face").value == CELEBA_IDS[1]
    assert at.selectbox(key="br_noise").value == "poisson"
    assert at.query_params["face"] == CELEBA_IDS[1]
    assert len(at.image) >= 3  # gallery, face + outputs, heatmaps
    assert [s.value for s in at.subheader] == [f"Face {CELEBA_IDS[1]}"]
    # the picture row: the original, the noisy input rebuilt from the table, every classical method in the table
    assert ["Original", "With noise", NAMES["mean"], NAMES["median"]] in [i.captions for i in at.image]
    # the face's own scores, as in the per-image table
    per_image = pd.read_csv(env["tables"] / "per_image.csv", dtype={"image_id": str})
    rows = per_image[(per_image["test_set"] == "celeba_test") & (per_image["noise"] == "poisson")
                     & (per_image["image_id"] == CELEBA_IDS[1])]
    scores = at.table[-1].value  # a static table: every method's row on screen, none behind a scroll bar
    assert list(scores.index) == [NAMES[m] for m in rows["method"]]
    assert list(scores[catalogue.METRIC_SHORT["mae"]]) == [catalogue.format_score("mae", v) for v in rows["mae"]]


def test_browse_table_orders_faces_by_how_much_a_beats_b(env):
    at = run_page("views/browse.py", {"set": "lfw", "noise": "speckle"})
    assert_ok(at)
    a, b = at.selectbox(key="br_a").value, at.selectbox(key="br_b").value
    assert (a, b, at.selectbox(key="br_order").value) == ("mean", "median", "a_beats_b")  # no pix2pix in the fixture
    per_image = pd.read_csv(env["tables"] / "per_image.csv", dtype={"image_id": str})
    part = per_image[(per_image["test_set"] == "lfw") & (per_image["noise"] == "speckle")]
    mae = part.pivot_table(index="image_id", columns="method", values="mae")
    gain = (mae[b] - mae[a]).sort_values(ascending=False)  # MAE: lower is better, so B - A > 0 means A wins
    table = at.dataframe[0].value
    assert list(table.index) == list(gain.index)
    np.testing.assert_allclose(table["A better than B by"].to_numpy(float), gain.to_numpy(), rtol=0, atol=1e-12)
    assert list(table.columns[1:]) == [NAMES[m] for m in ("noisy", "mean", "median", "autoencoder")]


def _face_row(at: AppTest) -> str:
    """The Noise lab's row of faces (inline PNGs in one HTML element)."""
    return "".join(h.proto.body for h in at.get("html") if "face-row" in h.proto.body)


def _lab_state(at: AppTest) -> tuple[str, pd.DataFrame]:
    return _face_row(at), at.session_state["lab_last_scores"]


def test_noise_lab_reacts_to_kind_and_slider(env):
    at = run_page("views/noise_lab.py")
    assert_ok(at)
    images0, scores0 = _lab_state(at)
    at.select_slider(key="lab_strength_gaussian").set_value(0.1).run()
    assert_ok(at)
    images1, scores1 = _lab_state(at)
    assert images1 != images0
    assert _scores_differ(scores1, scores0)
    assert at.query_params["strength"] == "0.1"
    at.selectbox(key="lab_kind").set_value("salt_pepper").run()
    assert_ok(at)
    images2, scores2 = _lab_state(at)
    assert images2 != images1
    assert _scores_differ(scores2, scores1)


def test_noise_lab_opens_on_the_same_test_set_as_findings_and_browse(env, monkeypatch):
    """With a CelebA folder the Noise lab opened on LFW while Findings and Browse opened on CelebA."""
    monkeypatch.setenv("DENOISING_CELEBA_DIR", str(env["celeba"]))
    opened = {}
    for page in ("views/findings.py", "views/browse.py", "views/noise_lab.py"):
        at = AppTest.from_file(APP, default_timeout=60).run()
        at.switch_page(page)
        at.query_params.clear()  # opened afresh, not with the landing page's URL (its set=celeba_test)
        opened[page] = at.run()
        assert_ok(at)
    assert [at.query_params.get("set") for at in opened.values()] == ["celeba_test"] * 3
    assert opened["views/noise_lab.py"].selectbox(key="lab_face").value in CELEBA_IDS


def test_noise_lab_timing_says_when_the_result_was_computed_earlier(env):
    """The caption gave the first visitor's time to every later one served from the shared cache."""
    from dashboard import common

    common._shared_lab_outputs.clear()
    captions = []
    for _ in range(2):  # two visitors, the same face, noise and seed
        at = run_page("views/noise_lab.py")
        assert_ok(at)
        captions += [c.value for c in at.caption if "fast methods took" in c.value]
    assert len(captions) == 2
    assert captions[0].endswith(" ms.") and "reused" not in captions[0]
    assert captions[1].endswith(" ms (computed earlier, reused).")


def _scores_differ(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Whether the MAE of the methods shown in both tables changed (some methods clean one kind only)."""
    mae = catalogue.METRIC_SHORT["mae"]
    a, b = a.set_index("Method")[mae], b.set_index("Method")[mae]
    shared = a.index.intersection(b.index)
    assert len(shared) >= 8  # the noisy input and the blind filters at least
    return not np.allclose(a[shared].to_numpy(), b[shared].to_numpy())


@pytest.mark.parametrize("kind", catalogue.NOISE_KINDS)
def test_noise_lab_default_is_exactly_the_posts_noise(env, kind):
    """The slider opens at the preset itself (Gaussian σ = √0.1, not 0.32) and adds exactly that noise."""
    from dashboard.facesource import lfw_bank
    from denoising.metrics import score

    at = run_page("views/noise_lab.py", {"kind": kind})
    assert_ok(at)
    preset = PRESETS[catalogue.DEFAULT_PRESET][kind]
    parameter = catalogue.STRENGTHS[kind].parameter
    assert at.select_slider(key=f"lab_strength_{kind}").value == preset.params[parameter]
    assert at.select_slider(key=f"lab_strength_{kind}").label == catalogue.STRENGTHS[kind].label
    clean = lfw_bank(28).images[0]
    noisy = preset.apply(clean[None], np.random.default_rng(0))
    table = at.session_state["lab_last_scores"].set_index("Method")
    assert table.loc["With noise (no cleaning)", catalogue.METRIC_SHORT["mae"]] == float(score(clean[None], noisy)["mae"][0])
    assert any(c.value.startswith(f"lfw_000: {preset.label}, seed 0.") for c in at.caption)


@pytest.mark.parametrize("kind", catalogue.NOISE_KINDS)
def test_strength_choices_hold_every_preset_exactly(kind):
    from dashboard.common import format_strength, lab_noise, strength_choices

    choices, default = strength_choices(kind)
    strength = catalogue.STRENGTHS[kind]
    assert default in choices and choices == sorted(choices)
    assert lab_noise(kind, default) == PRESETS[catalogue.DEFAULT_PRESET][kind]
    for preset in PRESETS.values():
        assert preset[kind].params[strength.parameter] in choices
    if isinstance(strength.values, list):
        assert choices == [float(v) for v in strength.values]
    else:
        low, high, step = strength.values
        assert choices[0] == low and choices[-1] == high and round(low + 10 * step, 10) in choices
    # the browser sends the shown label back: two positions must never look the same
    assert len({format_strength(v) for v in choices}) == len(choices)
    assert format_strength(math.sqrt(0.1)) == "0.316" and format_strength(256.0) == "256"


def test_noise_lab_slow_methods_on_request(env):
    from denoising.registry import classical_methods

    methods = {n: m for n, m in classical_methods().items() if n != "noisy" and m.available("poisson")}
    slow = [m.display_name for m in methods.values() if m.slow]
    assert NAMES["bm3d"] in slow
    at = run_page("views/noise_lab.py", {"kind": "poisson"})
    assert not set(slow) & set(at.session_state["lab_last_scores"]["Method"])
    at.button(key="lab_slow").click().run()
    assert_ok(at)
    assert list(at.session_state["lab_last_scores"]["Method"])[-len(slow):] == slow
    assert _face_row(at).count("<figure") == 2 + len(methods)  # original, noisy, every fast and slow filter


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
    missing = tmp_path / "nowhere"
    monkeypatch.setenv("DENOISING_CELEBA_DIR", str(missing))
    at = run_page(PAGES[0])
    assert_ok(at)
    # the server's path is never shown to a visitor, only the folder's configured name
    assert ("The CelebA folder “CelebA” set up on the server does not exist; showing the built-in faces only."
            in [w.value for w in at.warning])
    assert not any(str(missing) in w.value for w in at.warning)
    assert "Showing the built-in LFW faces instead." in " ".join(c.value for c in at.caption)


def test_missing_celeba_folder_on_browse_does_not_claim_only_built_in_faces(env, monkeypatch, tmp_path):
    """Browse still lists the CelebA faces' scores when their folder is gone: its note said "showing the
    built-in faces only", which the table under it contradicted; it says the faces cannot be pictured."""
    monkeypatch.setenv("DENOISING_CELEBA_DIR", str(tmp_path / "nowhere"))
    at = run_page(PAGES[1])
    assert_ok(at)
    notes = [i.value for i in at.info]
    assert any("cannot be pictured" in note for note in notes), notes
    assert not any("built-in faces only" in note for note in notes), notes


@pytest.mark.parametrize("folder", ["missing", "unset"])
def test_browse_says_once_why_the_celeba_faces_are_not_pictured(env, monkeypatch, tmp_path, folder):
    """The note appeared twice, beside the table and again under the face's heading."""
    if folder == "missing":
        monkeypatch.setenv("DENOISING_CELEBA_DIR", str(tmp_path / "nowhere"))
    at = run_page(PAGES[1], {"set": "celeba_test"})
    assert_ok(at)
    notes = [i.value for i in at.info]
    assert len(notes) == len(set(notes)) == 1, notes


def test_no_tables_still_works(env, monkeypatch, tmp_path):
    monkeypatch.setenv("DENOISING_TABLES_DIR", str(tmp_path / "none"))
    for page in PAGES:
        at = run_page(page)
        assert_ok(at)
        infos = " ".join(i.value for i in at.info)
        if page in ("views/findings.py", "views/browse.py", "views/distributions.py"):
            assert "scripts/evaluate.py" in infos and not at.table and not at.dataframe
        if page == "views/noise_strength.py":
            assert "scripts/sweep.py" in infos and not at.get("plotly_chart") and not at.image
        if page == "views/noise_lab.py":  # needs no tables
            assert _face_row(at).count("<figure") == 9


def test_distributions_page_states_the_paired_comparison(env):
    from dashboard.tables import paired, read_tables

    at = run_page("views/distributions.py", {"set": "lfw", "noise": "poisson"})
    assert_ok(at)
    a, b = at.selectbox(key="dist_a").value, at.selectbox(key="dist_b").value
    assert (a, b) == ("mean", "median")
    assert at.multiselect(key="dist_methods").value == ["noisy", "mean", "median", "autoencoder"]
    result = paired(read_tables(env["tables"]).per_image, "lfw", "poisson", a, b, "mae")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {f"Faces where {NAMES[a]} is better": f"{result['win_rate']:.0%}",
                       f"Mean difference in {catalogue.METRIC_SHORT['mae']} (A − B)": f"{result['mean_diff']:+.4f}"}
    assert f"95 % interval: {result['ci_low']:+.4f} to {result['ci_high']:+.4f}" in [c.value for c in at.caption]


def test_training_page_shows_the_model_card(env, monkeypatch):
    monkeypatch.setenv("DENOISING_CHECKPOINT_DIR", str(env["ckpt"]))
    at = run_page("views/training.py")
    assert_ok(at)
    card = json.loads((env["ckpt"] / "autoencoder-gaussian.json").read_text())
    assert at.selectbox(key="tr_model").options == [f"{NAMES['autoencoder']} · {catalogue.noise_label('gaussian')}"]
    facts = at.table[0].value["Value"]
    assert facts["Trainable parameters"] == f"{card['parameters']:,}"
    # the card records no selection rule, so the page claims none
    assert facts["Weights kept"] == "epoch ?"
    overview = at.table[-1].value  # every model, in a static table
    assert list(overview.index) == at.selectbox(key="tr_model").options


def test_method_page_lists_the_catalogue(env):
    at = run_page("views/method.py")
    assert_ok(at)
    methods = at.table[0].value
    assert list(methods.index) == [info.display_name for info in catalogue.METHODS.values()]
    assert list(methods["What it does"]) == [info.description for info in catalogue.METHODS.values()]
    assert list(methods["Kind"]) == [info.family for info in catalogue.METHODS.values()]
    markdown = [m.value for m in at.markdown]
    for kind in catalogue.NOISE_KINDS:
        assert f"- **{catalogue.noise_label(kind)}**: {catalogue.NOISE_DESCRIPTIONS[kind]}" in markdown
    presets = PRESETS[catalogue.DEFAULT_PRESET]
    assert at.image[0].captions == ["Original"] + [presets[k].label for k in presets]


def test_upload_helper_messages():
    """The upload path directly: junk and decompression bombs give a message, never an exception."""
    from dashboard.common import upload_to_face

    image, message = upload_to_face(b"\x89PNG\r\n\x1a\n garbage", 28)
    assert image is None and message
    image, message = upload_to_face(b"", 28)
    assert image is None and message


def test_png_is_exact_and_enlarged():
    from dashboard.images import png_bytes

    face = np.random.default_rng(1).uniform(0, 1, (28, 28, 3)).astype(np.float32)
    decoded = np.asarray(Image.open(io.BytesIO(png_bytes(face, 4))))
    assert decoded.shape == (112, 112, 3)
    assert np.array_equal(decoded[::4, ::4], np.round(face * 255).astype(np.uint8))


def _per_image(scores: dict[str, list[float]], metric: str = "mae") -> pd.DataFrame:
    """A per-image table for one test set and noise kind: method -> one score per face f0, f1, ..."""
    return pd.DataFrame([{"test_set": "t", "noise": "gaussian", "image_id": f"f{i}", "method": method, metric: value}
                         for method, values in scores.items() for i, value in enumerate(values)])


def test_paired_comparison_counts_wins_in_the_metrics_direction():
    from dashboard.tables import paired

    # A has the lower MAE on faces 0-2 and the higher one on face 3
    result = paired(_per_image({"A": [0.1, 0.2, 0.3, 0.4], "B": [0.2, 0.3, 0.4, 0.3]}), "t", "gaussian", "A", "B")
    assert result["n"] == 4 and result["win_rate"] == 0.75 and result["ties"] == 0.0
    assert result["mean_diff"] == pytest.approx(-0.05, abs=1e-12)
    np.testing.assert_allclose(result["diff"], [-0.1, -0.1, -0.1, 0.1], atol=1e-12)
    # PSNR: higher is better, so the same differences count the other way round
    psnr = _per_image({"A": [20, 21, 22, 19], "B": [21, 22, 23, 18]}, "psnr")
    result = paired(psnr, "t", "gaussian", "A", "B", "psnr")
    assert result["win_rate"] == 0.25 and result["mean_diff"] == pytest.approx(-0.5)
    assert paired(_per_image({"A": [0.1], "B": [0.2]}), "t", "gaussian", "A", "missing") is None


def test_paired_interval_matches_the_normal_approximation():
    from dashboard.tables import paired

    rng = np.random.default_rng(5)
    n, shift, spread = 400, 0.01, 0.02
    b = rng.uniform(0.05, 0.1, n)
    a = b + shift + spread * rng.standard_normal(n)
    result = paired(_per_image({"A": list(a), "B": list(b)}), "t", "gaussian", "A", "B")
    diff = a - b
    half = 1.96 * diff.std(ddof=1) / math.sqrt(n)  # for 400 faces the bootstrap interval is close to mean ± 1.96 se
    assert result["ci_high"] - result["ci_low"] == pytest.approx(2 * half, rel=0.1)
    assert (result["ci_low"] + result["ci_high"]) / 2 == pytest.approx(diff.mean(), abs=0.15 * half)
    # every face the same difference: the interval is that difference exactly
    same = paired(_per_image({"A": [0.3, 0.4, 0.5], "B": [0.2, 0.3, 0.4]}), "t", "gaussian", "A", "B")
    assert same["ci_low"] == pytest.approx(0.1) and same["ci_high"] == pytest.approx(0.1)


def _summary(maes: dict[str, dict[str, float]]) -> pd.DataFrame:
    """A summary table for test set "t": noise kind -> method -> mean MAE."""
    return pd.DataFrame([{"test_set": "t", "noise": noise, "method": method, "mae_mean": value}
                         for noise, methods in maes.items() for method, value in methods.items()])


GAUSSIAN = {"noisy": 0.1, "mean": 0.05, "median": 0.04, "autoencoder": 0.06, "pix2pix": 0.03}
SALT_PEPPER = {"noisy": 0.001, "mean": 0.02, "median": 0.005, "autoencoder": 0.03, "pix2pix": 0.004}
POISSON = {"noisy": 0.05, "mean": 0.03, "median": 0.02, "autoencoder": 0.01, "pix2pix": 0.015}


def test_findings_name_the_best_method_and_its_numbers():
    sentences = findings(_summary({"gaussian": GAUSSIAN, "salt_pepper": SALT_PEPPER}), "t", NAMES)
    label, name = catalogue.noise_label, NAMES.get
    assert sentences == [
        f"**{label('gaussian')}**: {name('pix2pix')} has the lowest average error (0.0300), 25% lower than the "
        f"next best, {name('median')} (0.0400); it removes 70% of the error of the noisy photo.",
        # below 0.01 five decimals; the noisy photo itself is closer than any method
        f"**{label('salt_pepper')}**: {name('pix2pix')} has the lowest average error (0.00400), 20% lower than the "
        f"next best, {name('median')} (0.00500), yet the noisy photo left alone is closer to the original "
        "(0.00100): at this strength every method makes it worse.",
        "The post said the autoencoder had a higher error than the mean and median filters: this holds here "
        "(higher on 2 of 2 noise kinds).",
        "The post said pix2pix beat the autoencoder on every noise kind: here it has the lower error on 2 of 2; "
        "on salt & pepper the autoencoder's error is +650% relative to pix2pix (the post claimed 1200%).",
    ]


def test_findings_verdicts_follow_the_numbers():
    mixed = findings(_summary({"gaussian": GAUSSIAN, "salt_pepper": SALT_PEPPER, "poisson": POISSON}), "t", NAMES)
    assert mixed[2] == (f"**{catalogue.noise_label('poisson')}**: {NAMES['autoencoder']} has the lowest average "
                        f"error (0.0100), 33% lower than the next best, {NAMES['pix2pix']} (0.0150); it removes 80% "
                        "of the error of the noisy photo.")
    assert "this holds only in part here (higher on 2 of 3 noise kinds)" in mixed[3]
    assert "lower error on 2 of 3;" in mixed[4]
    reversed_claims = findings(_summary({"poisson": POISSON}), "t", NAMES)
    assert "this does not hold here (higher on 0 of 1 noise kinds)" in reversed_claims[1]
    assert reversed_claims[2] == ("The post said pix2pix beat the autoencoder on every noise kind: here it has the "
                                  "lower error on 0 of 1.")  # no salt & pepper row, so no 1200% comparison
    # without the networks there is nothing to say about the post's claims; a kind with only the noisy input is skipped
    classical = findings(_summary({"gaussian": {"noisy": 0.1, "mean": 0.05}, "speckle": {"noisy": 0.2}}), "t")
    assert classical == [f"**{catalogue.noise_label('gaussian')}**: mean has the lowest average error (0.0500); it removes 50% of the "
                         "error of the noisy photo."]


def test_regenerated_noise_matches_what_was_scored(tiny_faces):
    """The dashboard rebuilds one face's noisy input from its stored seed: same bytes as the evaluation's."""
    from dashboard.facesource import noisy_from_seed
    from denoising.noise import noisy_copies

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


# ---------------------------------------------------------------- the Noise strength page
def _charts(at: AppTest) -> dict[str, dict]:
    """The page's plotly figures by title (their JSON spec)."""
    import json

    figures = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    return {fig["layout"]["title"]["text"]: fig for fig in figures}


def test_noise_strength_page_restores_its_url_and_states_the_findings(env):
    from dashboard.tables import read_sweep, strength_finding

    at = run_page("views/noise_strength.py", {"set": "lfw", "metric": "ssim", "methods": "noisy,bm3d,autoencoder",
                                              "kind": "poisson", "face": "lfw_002", "method": "median"})
    assert_ok(at)
    assert [t.value for t in at.title] == ["Noise strength"]
    assert at.selectbox(key="ns_set").value == "lfw" and at.selectbox(key="ns_metric").value == "ssim"
    assert at.multiselect(key="ns_methods").value == ["noisy", "bm3d", "autoencoder"]
    assert (at.selectbox(key="ns_kind").value, at.selectbox(key="ns_face").value) == ("poisson", "lfw_002")
    assert at.selectbox(key="ns_method").value == "median"
    assert at.query_params["methods"] == "noisy,bm3d,autoencoder" and at.query_params["kind"] == "poisson"
    # one sentence per noise kind, exactly as computed from the table
    sweep = read_sweep(env["tables"] / "sweep_summary.csv")
    expected = "\n".join(f"- {strength_finding(sweep, 'lfw', kind, 'ssim', NAMES)}" for kind in catalogue.NOISE_KINDS)
    assert expected in [m.value for m in at.markdown]
    # four charts, one per kind, each drawing the three chosen methods (lines named after them)
    charts = _charts(at)
    assert sorted(charts) == sorted(catalogue.noise_label(kind) for kind in catalogue.NOISE_KINDS)  # in two columns
    for fig in charts.values():
        lines = [t["name"] for t in fig["data"] if t.get("mode") == "lines+markers"]
        assert lines == [NAMES["noisy"], NAMES["bm3d"], NAMES["autoencoder"]]
    # the face across the six Poisson strengths, mild (peak 1024) to strong (peak 4), then the median filter's output
    strengths = catalogue.SWEEP_STRENGTHS["poisson"]
    rows = [image.captions for image in at.image]
    assert rows[0] == ["Original"] and len(rows) == 3
    assert [c.split(" · ")[0] for c in rows[1]] == [f"peak {v:g}" + (" (the post's)" if v == 256 else "")
                                                    for v in strengths]
    assert f"Cleaned by {NAMES['median']}" in [m.value.strip("*") for m in at.markdown]


def test_noise_strength_axes_run_mild_to_strong(env):
    at = run_page("views/noise_strength.py", {"set": "celeba_test", "metric": "psnr", "methods": "noisy,bm3d"})
    assert_ok(at)
    charts = _charts(at)
    for kind in catalogue.NOISE_KINDS:
        axis = charts[catalogue.noise_label(kind)]["layout"]["xaxis"]
        assert axis["type"] == ("linear" if kind == "speckle" else "log")  # σ 0.02-0.45, peak 1024-4, amount 0.001-0.2
        # Poisson: a larger peak is milder, so the axis runs backwards to keep mild on the left
        assert (axis.get("autorange") == "reversed") == (kind == "poisson")
        assert axis["tickvals"] == sorted(catalogue.SWEEP_STRENGTHS[kind])
        words = [a["text"] for a in charts[catalogue.noise_label(kind)]["layout"]["annotations"]]
        assert words == ["← mild", "strong →"]
        texts = [t.get("text") for t in charts[catalogue.noise_label(kind)]["data"] if t.get("mode") == "lines+text"]
        assert texts == [["", "the post's"]]
    # BM3D ran on 100 faces off the post's strength and on all 660 at it: its legend says so, the noisy input's not
    lines = [t["name"] for t in charts[catalogue.noise_label("gaussian")]["data"] if t.get("mode") == "lines+markers"]
    assert lines == [NAMES["noisy"], f"{NAMES['bm3d']} · n = 100–660"]


def test_noise_strength_marks_each_networks_training_strength(env, monkeypatch):
    monkeypatch.setenv("DENOISING_CHECKPOINT_DIR", str(env["ckpt"]))  # an autoencoder trained at σ = √0.1
    at = run_page("views/noise_strength.py", {"set": "lfw", "metric": "mae", "methods": "noisy,autoencoder"})
    assert_ok(at)
    charts = _charts(at)
    stars = [t for t in charts[catalogue.noise_label("gaussian")]["data"] if t.get("name") == "trained at"]
    assert len(stars) == 1 and stars[0]["x"] == [math.sqrt(0.1)]
    sweep = pd.read_csv(env["tables"] / "sweep_summary.csv")
    row = sweep[(sweep["test_set"] == "lfw") & (sweep["noise"] == "gaussian") & (sweep["method"] == "autoencoder")
                & np.isclose(sweep["strength"], math.sqrt(0.1))]
    assert stars[0]["y"] == pytest.approx([row["mae_mean"].iloc[0]])
    # the checkpoint cleans Gaussian noise only: no star on the other kinds' charts
    for kind in catalogue.NOISE_KINDS[1:]:
        assert not [t for t in charts[catalogue.noise_label(kind)]["data"] if t.get("name") == "trained at"]


def test_noise_strength_slow_method_waits_for_the_button(env):
    at = run_page("views/noise_strength.py", {"method": "bm3d"})
    assert_ok(at)
    assert at.button(key="ns_slow").label.startswith(f"Run {NAMES['bm3d']} at the 6 strengths")
    assert len(at.image) == 2  # the original and the noisy row; no BM3D row until asked


def _write_sweep(folder: Path, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sweep_summary.csv").write_text(text)


GOOD_HEADER = ("test_set,noise,strength,method,family,n_images,mae_mean,mae_ci_low,mae_ci_high,psnr_mean,psnr_ci_low,"
               "psnr_ci_high,ssim_mean,ssim_ci_low,ssim_ci_high")


@pytest.mark.parametrize(("text", "problem"), [
    ("test_set,noise,method\nlfw,gaussian,mean\n", "lacks the columns strength, family, n_images"),
    (GOOD_HEADER + "\nlfw,gaussian,0.1,mean,classical,100,0.05,0.04,0.06,abc,1,2,0.5,0.4,0.6\n",
     "line 2: psnr_mean is 'abc', not a number"),
    (GOOD_HEADER + "\n" + "lfw,gaussian,0.1,mean,classical,100,0.05,0.04,0.06,20,19,21,0.5,0.4,0.6\n" * 2,
     "has two rows for mean at gaussian 0.1 on lfw"),
    (GOOD_HEADER + "\n", "has no rows"),
    ("", "sweep_summary.csv is empty"),
    (GOOD_HEADER + "\nlfw,gaussian,0.1,mean,classical,100,0.05\n", "line 2: the row has 7 fields, fewer than"),
    (GOOD_HEADER + "\nlfw,gaussian,0.1,mean,classical,100,0.05,0.04,0.06,20,19,21,0.5,0.4", "cut short"),
])
def test_malformed_sweep_is_one_message(env, monkeypatch, tmp_path, text, problem):
    _write_sweep(tmp_path / "tables", text)
    monkeypatch.setenv("DENOISING_TABLES_DIR", str(tmp_path / "tables"))
    at = run_page("views/noise_strength.py")
    assert_ok(at)
    assert len(at.error) == 1 and problem in at.error[0].value
    assert "scripts/sweep.py" in at.error[0].value
    assert not at.get("plotly_chart") and not at.image


def test_missing_sweep_says_how_to_make_it(env, monkeypatch, tmp_path):
    make_tables(tmp_path / "tables", {"lfw": ["lfw_000"]}, sweep=False)
    monkeypatch.setenv("DENOISING_TABLES_DIR", str(tmp_path / "tables"))
    at = run_page("views/noise_strength.py")
    assert_ok(at)
    assert [i.value for i in at.info] == [
        "No strength sweep yet. To make it, run `python scripts/sweep.py --data .cache/faces/<your prepared faces> "
        "--out checkpoints/tables`, then reload this page."]
    assert not at.get("plotly_chart")
    assert run_page(PAGES[0]).table  # the other pages do not need it


def test_noise_lab_says_when_the_strength_leaves_the_networks_training(env, monkeypatch):
    monkeypatch.setenv("DENOISING_CHECKPOINT_DIR", str(env["ckpt"]))
    at = run_page("views/noise_lab.py", {"kind": "gaussian"})
    assert_ok(at)
    assert not [i for i in at.info if "trained on" in i.value]  # the post's σ: where the network was trained
    at.select_slider(key="lab_strength_gaussian").set_value(0.1).run()
    assert_ok(at)
    assert [i.value for i in at.info if "trained on" in i.value] == [
        f"σ 0.1 is outside what the networks were trained on: {NAMES['autoencoder']} was trained on σ 0.316 only. "
        "Expect them to do worse here than at their training strength; the Noise strength page shows by how much."]
    # speckle has no network in the fixture, so there is nothing to warn about
    at.selectbox(key="lab_kind").set_value("speckle").run()
    assert not [i for i in at.info if "trained on" in i.value]


def test_noise_lab_has_no_training_notice_without_networks(env):
    at = run_page("views/noise_lab.py", {"kind": "gaussian", "strength": "0.1"})
    assert_ok(at)
    assert not [i for i in at.info if "trained on" in i.value]


# ---------------------------------------------------------------- the sweep's sentences and helpers, on built tables
def _sweep(kind: str, psnr: dict[str, list[float]], families: dict[str, str] | None = None) -> pd.DataFrame:
    """Sweep rows for test set "t": method -> mean PSNR at each of the kind's sweep strengths (mildest first)."""
    families = families or {}
    rows = []
    for method, values in psnr.items():
        family = families.get(method) or catalogue.METHODS[method].family
        for strength, value in zip(catalogue.SWEEP_STRENGTHS[kind], values, strict=True):
            rows.append({"test_set": "t", "noise": kind, "strength": strength, "method": method, "family": family,
                         "n_images": 100, "psnr_mean": value, "mae_mean": 10 ** (-value / 20)})
    return pd.DataFrame(rows)


def test_strength_finding_names_the_winning_family_along_the_strengths():
    from dashboard.tables import strength_finding

    table = _sweep("gaussian", {"noisy": [34, 26, 20, 15, 12, 10], "wavelet": [33, 29, 25, 21, 18, 16],
                                "bm3d": [32, 29.5, 24, 20, 18, 16], "unet_l1": [22, 22, 22, 22.3, 22.1, 19.9],
                                "pix2pix": [20, 20.5, 21, 21, 21, 19]})
    assert strength_finding(table, "t", "gaussian", "psnr", NAMES) == (
        f"**Gaussian**: leaving the photo alone is best at σ 0.02; classical filters win from σ 0.05 to 0.1, led by "
        f"{NAMES['bm3d']} and {NAMES['wavelet']}; the networks win from σ 0.2 to 0.45, led by {NAMES['unet_l1']}; "
        "the networks do worse than the untouched photo at σ 0.02 and 0.05.")
    # MAE decides in the other direction and gives the same verdicts here
    assert strength_finding(table, "t", "gaussian", "mae", NAMES) == strength_finding(table, "t", "gaussian", "psnr",
                                                                                      NAMES)


def test_strength_finding_reads_poisson_from_the_bright_end_and_says_every_strength():
    from dashboard.tables import strength_finding

    # peak 1024 (mild) first, as the catalogue's sweep runs; the table's row order does not matter
    table = _sweep("poisson", {"noisy": [30, 25, 20, 15, 12, 10], "median": [31, 27, 23, 19, 16, 14]})
    table = table.iloc[::-1]
    assert strength_finding(table, "t", "poisson", "psnr", {"median": "Median"}) == (
        "**Poisson**: classical filters win at every strength (peak 1024 to 4), led by Median.")
    # a family the sentence has no words for is named as it is; no networks, so nothing said about them
    odd = _sweep("speckle", {"noisy": [30, 25, 20, 15, 12, 10], "mean": [20, 26, 22, 18, 15, 12]},
                 families={"mean": "oracle"})
    assert strength_finding(odd, "t", "speckle", "psnr", {}) == (
        "**Speckle**: leaving the photo alone is best at σ 0.1; oracle methods win from σ 0.25 to 1.5, led by mean.")
    assert strength_finding(odd, "other", "speckle", "psnr", {}) is None


def test_default_methods_are_the_noisy_input_the_best_filters_and_the_networks():
    from dashboard.tables import default_sweep_methods

    table = _sweep("gaussian", {"noisy": [34, 26, 20, 15, 12, 10], "mean": [20, 20, 19, 18, 17, 16],
                                "median": [21, 21, 20, 19, 17.5, 16.5], "wavelet": [33, 29, 25, 21, 17, 15],
                                "unet_l1": [22, 22, 22, 22.3, 22.1, 19.9]})
    assert default_sweep_methods(table, "t", "psnr", n_classical=2) == ["noisy", "median", "wavelet", "unet_l1"]
    assert default_sweep_methods(table, "t", "psnr", n_classical=1) == ["noisy", "wavelet", "unet_l1"]


def test_training_range_reads_the_cards_noise():
    from dashboard.tables import training_range

    card = json.loads((REPO / "checkpoints" / "unet_l1-gaussian.json").read_text())
    assert training_range(card) == ("unet_l1", "gaussian", math.sqrt(0.1), math.sqrt(0.1))
    assert training_range({"arch": "pix2pix", "noise_json": '{"kind":"poisson","params":{"peak":256.0}}'}) == (
        "pix2pix", "poisson", 256.0, 256.0)
    ranged = {"arch": "unet_l1", "noise": {"kind": "speckle", "params": {"sigma": [0.1, 1.5]}}}
    assert training_range(ranged) == ("unet_l1", "speckle", 0.1, 1.5)
    for unknown in ({"arch": "x"}, {"arch": "x", "noise": {"kind": "rain", "params": {}}},
                    {"arch": "x", "noise": {"kind": "gaussian", "params": {"sigma": "strong"}}},
                    {"arch": "x", "noise_json": "not json"}, {"noise": {"kind": "gaussian", "params": {"sigma": 1}}}):
        assert training_range(unknown) is None


def test_training_notice_starts_with_a_capital():
    """The notice read "amount 0 is outside …" and "peak 2 is outside …"; σ is a symbol and stays as it is."""
    from dashboard.tables import training_notice

    assert training_notice({"a": (0.004, 0.004)}, "salt_pepper", 0.0).startswith("Amount 0 is outside")
    assert training_notice({"a": (256.0, 256.0)}, "poisson", 2.0).startswith("Peak 2 is outside")
    assert training_notice({"a": (1.0, 1.0)}, "speckle", 0.5).startswith("σ 0.5 is outside")


def test_training_notice_names_the_networks_outside_their_training():
    from dashboard.tables import training_notice

    post = math.sqrt(0.1)
    assert training_notice({"a": (post, post)}, "gaussian", post) is None
    assert training_notice({"a": (0.1, 0.5)}, "gaussian", 0.2) is None
    assert training_notice({"a": (post, post), "b": (post, post), "c": (0.1, 0.5)}, "gaussian", 0.05,
                           {"a": "A", "b": "B"}) == (
        "σ 0.05 is outside what the networks were trained on: A and B were trained on σ 0.316 only; c was trained on "
        "σ 0.1 to 0.5. Expect them to do worse here than at their training strength; the Noise strength page shows "
        "by how much.")
    assert training_notice({"a": (256.0, 256.0)}, "poisson", 4.0).startswith("Peak 4 is outside")


@pytest.mark.parametrize("kind", catalogue.NOISE_KINDS)
def test_mild_to_strong_follows_the_catalogues_sweep(kind):
    from dashboard.tables import mild_to_strong

    sweep = catalogue.SWEEP_STRENGTHS[kind]
    assert mild_to_strong(kind, list(reversed(sweep)) + list(sweep)) == list(sweep)


def test_method_colours_do_not_depend_on_which_methods_are_shown():
    from dashboard.charts import method_colors

    everything = method_colors(["noisy", "bm3d", "unet_l1", "switching_median"])
    few = method_colors(["unet_l1"])
    assert few["unet_l1"] == everything["unet_l1"] and few["noisy"] == everything["noisy"]
    assert len(set(everything.values())) == len(everything)  # no two methods share a colour


def test_headline_table_lists_methods_in_catalogue_order_whatever_the_table_order():
    """A noise-aware reference first seen under a later noise kind still sits with the classical methods."""
    import pandas as pd

    from dashboard.tables import headline_table

    rows = [("gaussian", "noisy"), ("gaussian", "unet_l1"), ("salt_pepper", "noisy"), ("salt_pepper", "unet_l1"),
            ("salt_pepper", "switching_median")]
    summary = pd.DataFrame({"test_set": "lfw", "noise": [n for n, _ in rows], "method": [m for _, m in rows],
                            "mae_mean": [0.2, 0.06, 0.002, 0.002, 0.0003]})
    table = headline_table(summary, "lfw", "mae")
    assert list(table.columns) == ["noisy", "switching_median", "unet_l1"]
    assert pd.isna(table.loc["gaussian", "switching_median"])
