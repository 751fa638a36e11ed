"""Evaluation tables: schema, determinism, exact regeneration of the scored noisy inputs, slow subsets, CLI."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from denoising.evaluation import (PER_IMAGE_COLUMNS, TIMING_COLUMNS, evaluate, load_tables, markdown_results,
                                  planned_work, write_tables)
from denoising.faces import FaceSet
from denoising.metrics import score
from denoising.noise import PRESETS, NoiseSpec
from denoising.registry import Method, classical_methods
from denoising.stats import SUMMARY_COLUMNS, summarize

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "evaluate.py"
FAST = ("noisy", "mean", "median")


def _faces(images: np.ndarray, shuffle: bool = False) -> FaceSet:
    ids = [f"face_{i:02d}.jpg" for i in range(len(images))]
    order = np.arange(len(images))
    if shuffle:
        order = order[::-1]
    table = pd.DataFrame({"image_id": [ids[i] for i in order], "split": "test",
                          "identity": pd.array([pd.NA] * len(images), dtype="Int64"), "source": "synthetic"})
    return FaceSet(np.ascontiguousarray(images[order]), table)


def _fast_methods() -> dict:
    classical = classical_methods()
    return {name: classical[name] for name in FAST}


def _halve(images, noise_kind):  # module level so it pickles into worker processes
    return np.asarray(images, np.float32) * np.float32(0.5)


def _only_gaussian(kind):
    return kind == "gaussian"


def _run(faces, methods=None, specs=None, **kw):
    return evaluate(faces, "tiny", methods or _fast_methods(), specs or PRESETS["post"], **kw)


def test_schema_one_row_per_image_noise_method(tiny_faces):
    learned_like = Method("fake_model", "Fake model", "learned", False, "halves the image", _halve,
                          available=_only_gaussian)
    methods = {**_fast_methods(), "fake_model": learned_like}
    table = _run(_faces(tiny_faces), methods)
    assert list(table.columns) == PER_IMAGE_COLUMNS
    assert table["noise_seed"].dtype == np.int64
    for col in ("mae", "psnr", "ssim", "seconds"):
        assert table[col].dtype == np.float64
    for col in ("test_set", "image_id", "noise", "noise_params", "method"):
        assert table[col].map(type).eq(str).all(), col
    # 8 faces x 4 noise kinds x 3 methods, plus the model only where it is available (gaussian)
    assert len(table) == 8 * 4 * 3 + 8
    assert not table.duplicated(["test_set", "image_id", "noise", "method"]).any()
    assert set(table.loc[table["method"] == "fake_model", "noise"]) == {"gaussian"}
    assert list(dict.fromkeys(table["noise"])) == ["gaussian", "poisson", "salt_pepper", "speckle"]
    assert (table["seconds"] >= 0).all()
    # every method of one face and noise kind saw the same noisy input
    assert table.groupby(["image_id", "noise"])["noise_seed"].nunique().eq(1).all()
    assert planned_work(8, methods, PRESETS["post"]) == len(table)


def test_same_seed_same_bytes_and_face_order_does_not_matter(tiny_faces, tmp_path):
    first = _run(_faces(tiny_faces))
    again = _run(_faces(tiny_faces, shuffle=True))
    meta = {"seed": 0}
    write_tables(first, summarize(first, n_boot=200), meta, tmp_path / "a")
    write_tables(again, summarize(again, n_boot=200), meta, tmp_path / "b")
    for name in ("per_image.csv", "summary.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    header = (tmp_path / "a" / "per_image.csv").read_text().splitlines()[0]
    assert header.split(",") == [c for c in PER_IMAGE_COLUMNS if c != "seconds"]  # wall time lives in timings.csv
    timings = pd.read_csv(tmp_path / "a" / "timings.csv")
    assert list(timings.columns) == TIMING_COLUMNS
    assert len(timings) == 4 * len(FAST) and (timings["n_images"] == 8).all()
    other_seed = _run(_faces(tiny_faces), base_seed=1)
    assert not np.array_equal(other_seed["noise_seed"], first["noise_seed"])


def test_noise_seed_regenerates_the_scored_input(tiny_faces, tmp_path):
    faces = _faces(tiny_faces)
    write_tables(_run(faces), summarize(_run(faces), n_boot=50), {}, tmp_path)
    table = load_tables(tmp_path).per_image  # through the CSV, as the dashboard reads it
    clean = dict(zip(faces.table["image_id"], faces.images))
    median = classical_methods()["median"]
    for noise in ("poisson", "salt_pepper"):
        for method in ("noisy", "median"):
            row = table[(table["image_id"] == "face_05.jpg") & (table["noise"] == noise)
                        & (table["method"] == method)].iloc[0]
            face = clean[row["image_id"]][None]
            noisy = NoiseSpec.from_json(row["noise_params"]).apply(face, np.random.default_rng(int(row["noise_seed"])))
            out = noisy if method == "noisy" else median(noisy, noise)
            got = score(face, out)
            assert got["mae"][0] == pytest.approx(row["mae"], rel=1e-5)
            assert got["ssim"][0] == pytest.approx(row["ssim"], rel=1e-5)
    # and a wrong seed does not reproduce it
    row = table[(table["image_id"] == "face_05.jpg") & (table["noise"] == "gaussian") & (table["method"] == "noisy")].iloc[0]
    wrong = PRESETS["post"]["gaussian"].apply(clean["face_05.jpg"][None], np.random.default_rng(int(row["noise_seed"]) + 1))
    assert score(clean["face_05.jpg"][None], wrong)["mae"][0] != pytest.approx(row["mae"], rel=1e-5)


def test_slow_subset_takes_the_first_faces_by_id(tiny_faces):
    slow = Method("slowpoke", "Slow method", "classical", True, "pretends to be BM3D", _halve)
    methods = {**_fast_methods(), "slowpoke": slow}
    table = _run(_faces(tiny_faces, shuffle=True), methods, slow_subset=3)
    slow_rows = table[table["method"] == "slowpoke"]
    assert len(slow_rows) == 3 * 4
    assert set(slow_rows["image_id"]) == {"face_00.jpg", "face_01.jpg", "face_02.jpg"}
    assert (table[table["method"] == "noisy"].groupby("noise").size() == 8).all()  # fast methods keep every face
    summary = summarize(table, n_boot=50)
    assert set(summary.loc[summary["method"] == "slowpoke", "n_images"]) == {3}
    assert "(n = 3)" in markdown_results(summary)
    with pytest.raises(ValueError, match="slow_subset"):
        _run(_faces(tiny_faces), methods, slow_subset=0)


def test_parallel_slow_method_matches_serial(tiny_faces):
    # a classical filter flagged slow goes through the worker pool, looked up by name, as BM3D does
    median_slow = dataclasses.replace(classical_methods()["median"], slow=True)
    picklable_slow = Method("halver", "Halver", "classical", True, "halves", _halve)
    methods = {"median": median_slow, "halver": picklable_slow}
    specs = {"gaussian": PRESETS["post"]["gaussian"]}
    serial = _run(_faces(tiny_faces), methods, specs, workers=1)
    parallel = _run(_faces(tiny_faces), methods, specs, workers=2)
    pd.testing.assert_frame_equal(serial.drop(columns="seconds"), parallel.drop(columns="seconds"))


def test_load_tables_round_trip_keeps_types_and_infinite_psnr(tiny_faces, tmp_path):
    table = _run(_faces(tiny_faces[:2]), specs={"gaussian": PRESETS["post"]["gaussian"]})
    table.loc[0, "psnr"] = np.inf
    write_tables(table, summarize(table, n_boot=50), {"seed": 0, "size": 28}, tmp_path)
    loaded = load_tables(tmp_path)
    assert np.isposinf(loaded.per_image.loc[0, "psnr"])
    assert loaded.per_image["noise_seed"].dtype == np.int64
    assert (loaded.per_image["noise_seed"] == table["noise_seed"]).all()
    assert list(loaded.summary.columns) == SUMMARY_COLUMNS
    assert loaded.meta == {"seed": 0, "size": 28}
    assert list(loaded.timings.columns) == TIMING_COLUMNS
    with pytest.raises(FileNotFoundError, match="run scripts/evaluate.py"):
        load_tables(tmp_path / "nowhere")


# ----------------------------------------------------------------------------- command line


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120)


def _prepared_cache(folder: Path, images: np.ndarray) -> Path:
    """A minimal prepared-faces cache (the layout load_prepared reads), all faces in the test split."""
    folder.mkdir(parents=True)
    np.save(folder / "images.npy", np.round(images * 255).astype(np.uint8))
    pd.DataFrame({"image_id": [f"{i:06d}.jpg" for i in range(len(images))], "split": "test", "identity": "",
                  "source": "celeba"}).to_csv(folder / "faces.csv", index=False)
    (folder / "meta.json").write_text(json.dumps({"size": int(images.shape[1])}))
    return folder


def test_help_documents_every_flag():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import evaluate as cli
    finally:
        sys.path.pop(0)
    for action in cli.build_parser()._actions:
        assert action.help, f"{action.option_strings} has no help"
    result = _cli("--help")
    assert result.returncode == 0
    for flag in ("--data", "--lfw", "--methods", "--noise", "--preset", "--checkpoints", "--out", "--seed",
                 "--slow-subset", "--workers", "--skip-slow", "--limit", "--markdown-only"):
        assert flag in result.stdout


@pytest.mark.parametrize("args, needle", [
    (["--data", "does/not/exist"], "does not exist"),
    ([], "--data is required"),
    (["--markdown-only", "--out", "does/not/exist"], "no result tables"),
])
def test_bad_input_is_one_clear_line(args, needle):
    result = _cli(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0]


def test_cli_writes_tables_states_slow_subset_and_markdown_only_reprints(tiny_faces, tmp_path):
    cache = _prepared_cache(tmp_path / "cache", tiny_faces[:4])
    out = tmp_path / "tables"
    result = _cli("--data", str(cache), "--no-lfw", "--methods", "noisy,median,bm3d", "--noise", "gaussian",
                  "--slow-subset", "1", "--workers", "1", "--out", str(out), "--quiet", "--checkpoints",
                  str(tmp_path / "no_checkpoints"))
    assert result.returncode == 0, result.stderr
    tables = load_tables(out)
    per_image = tables.per_image
    assert set(per_image["test_set"]) == {"celeba_test"}
    assert (per_image.groupby("method").size() == pd.Series({"bm3d": 1, "median": 4, "noisy": 4})).all()
    assert per_image.loc[per_image["method"] == "bm3d", "image_id"].tolist() == ["000000.jpg"]
    meta = tables.meta
    assert meta["slow_subset"] == 1 and "sorted image_id" in meta["slow_subset_rule"]
    assert {m["name"]: m["faces"]["celeba_test"] for m in meta["methods"]} == {"noisy": 4, "median": 4, "bm3d": 1}
    assert meta["seed"] == 0 and meta["size"] == 28 and meta["test_sets"]["celeba_test"]["n_faces"] == 4
    # the markdown table printed after evaluation is exactly what --markdown-only regenerates from the files
    again = _cli("--markdown-only", "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert again.stdout == result.stdout
    assert "| Median filter (3×3) |" in again.stdout and "(n = 1)" in again.stdout
    row = tables.summary[(tables.summary["method"] == "median")].iloc[0]
    assert f"{row['mae_mean']:.4f} / {row['psnr_mean']:.2f} / {row['ssim_mean']:.3f}" in again.stdout


def test_cli_rejects_unknown_method_and_noise(tiny_faces, tmp_path):
    cache = _prepared_cache(tmp_path / "cache", tiny_faces[:2])
    bad_method = _cli("--data", str(cache), "--methods", "noisy,magic", "--out", str(tmp_path / "t"))
    assert bad_method.returncode == 2 and "magic" in bad_method.stderr and "Traceback" not in bad_method.stderr
    bad_noise = _cli("--data", str(cache), "--noise", "pink", "--out", str(tmp_path / "t"))
    assert bad_noise.returncode == 2 and "pink" in bad_noise.stderr
    assert not (tmp_path / "t").exists()


def test_benchmark_help_documents_every_flag():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import benchmark
    finally:
        sys.path.pop(0)
    for action in benchmark.build_parser()._actions:
        assert action.help, f"{action.option_strings} has no help"
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "benchmark.py"), "--help"], capture_output=True,
                            text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0 and "--train-steps" in result.stdout


def test_learned_method_scored_only_where_it_has_a_checkpoint(tiny_faces, tmp_path):
    pytest.importorskip("torch")
    from dashboard_fixtures import make_checkpoint

    from denoising.registry import build_registry

    make_checkpoint(tmp_path)  # an (untrained) autoencoder for Gaussian noise only
    registry = build_registry(tmp_path, include_slow=False)
    methods = {name: registry[name] for name in ("noisy", "autoencoder")}
    table = _run(_faces(tiny_faces[:3]), methods)
    assert set(table.loc[table["method"] == "autoencoder", "noise"]) == {"gaussian"}
    assert len(table) == 3 * 4 + 3
    again = _run(_faces(tiny_faces[:3]), methods)
    pd.testing.assert_frame_equal(table.drop(columns="seconds"), again.drop(columns="seconds"))


def test_reuse_takes_matching_rows_and_recomputes_the_rest(tiny_faces):
    calls = []

    def counting_median(images, noise_kind):
        calls.append(noise_kind)
        return classical_methods()["median"](images, noise_kind)

    faces = _faces(tiny_faces)
    methods = {**_fast_methods(), "median": dataclasses.replace(classical_methods()["median"], denoise=counting_median)}
    first = _run(faces, methods)
    calls.clear()
    # rows of another seed do not match the planned noisy inputs: recomputed, same values as a fresh run
    other = _run(faces, methods, base_seed=1)
    calls.clear()
    again = _run(faces, methods, reuse=pd.concat([first[first["noise"] != "speckle"], other]))
    assert calls == ["speckle", "speckle"]  # warm-up + the one batch the earlier rows did not cover
    pd.testing.assert_frame_equal(again.drop(columns="seconds"), first.drop(columns="seconds"))
