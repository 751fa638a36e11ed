"""A corpus of bad strength-sweep tables (issue #12): each gives one plain error naming the file.

``sweep_per_image.parquet``, ``sweep_summary.csv`` and ``sweep_meta.json`` go through
:func:`denoising.tables_schema.read_sweep_results`: the scripts' reader
(:func:`denoising.evaluation.load_sweep_tables`) checks every Parquet value, the dashboard's
(:func:`dashboard.tables.read_sweep`) the Parquet footer only. On the dashboard the Noise strength page
shows the message in one error box and the other pages render as usual.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dashboard.tables import SweepTableError, read_sweep
from denoising.evaluation import SWEEP_FILES, SWEEP_PER_IMAGE_DTYPES, load_sweep_tables, write_sweep_tables
from denoising.noise import PRESETS, NoiseSpec
from denoising.stats import SWEEP_SUMMARY_COLUMNS
from denoising.tables_schema import TableError

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "dashboard" / "app.py")
PARQUET, SUMMARY, META = SWEEP_FILES["per_image"], SWEEP_FILES["summary"], SWEEP_FILES["meta"]


def make_sweep_tables(folder: Path) -> Path:
    """Small but whole sweep tables (2 kinds x 2 strengths x 2 methods x 3 faces) written by the sweep's writer."""
    rng = np.random.default_rng(0)
    records = []
    for kind, parameter, strengths in (("gaussian", "sigma", (0.1, 0.2)), ("poisson", "peak", (8.0, 32.0))):
        for strength in strengths:
            spec = NoiseSpec(kind, {**PRESETS["post"][kind].params, parameter: strength})
            for method in ("noisy", "median"):
                for face in ("a.jpg", "b.jpg", "c.jpg"):
                    records.append(dict(test_set="lfw", image_id=face, noise=kind, strength=strength,
                                        noise_params=spec.to_json(), noise_seed=int(rng.integers(2**40)),
                                        method=method, mae=float(rng.uniform(0.01, 0.1)),
                                        psnr=float(rng.uniform(15, 30)), ssim=float(rng.uniform(0.3, 0.9))))
    per_image = pd.DataFrame(records).astype(SWEEP_PER_IMAGE_DTYPES).assign(seconds=0.01)
    keys = ["test_set", "noise", "strength", "method"]
    summary = per_image.groupby(keys, sort=False).agg(n_images=("image_id", "size"), mae_mean=("mae", "mean"),
                                                      psnr_mean=("psnr", "mean"), ssim_mean=("ssim", "mean"))
    summary = summary.reset_index().assign(family=lambda f: np.where(f["method"] == "noisy", "baseline", "classical"))
    for metric in ("mae", "psnr", "ssim"):
        summary[f"{metric}_ci_low"] = summary[f"{metric}_mean"] - 0.01
        summary[f"{metric}_ci_high"] = summary[f"{metric}_mean"] + 0.01
    write_sweep_tables(per_image, summary[SWEEP_SUMMARY_COLUMNS], {"size": 28, "seed": 0}, folder)
    return folder


def _frame_edit(change: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path], None]:
    """Rewrite the Parquet file from its rows after ``change`` (a valid Parquet file holding bad rows)."""
    def mutate(folder: Path) -> None:
        frame = pd.read_parquet(folder / PARQUET)
        change(frame).to_parquet(folder / PARQUET, index=False)
    return mutate


def _set(column: str, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.astype({column: object}) if isinstance(value, str) else frame
        frame.loc[4, column] = value
        return frame
    return change


def _cut(fraction: float) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        data = (folder / PARQUET).read_bytes()
        (folder / PARQUET).write_bytes(data[: int(len(data) * fraction)])
    return mutate


def _write(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda folder: (folder / name).write_bytes(data)


def _meta_edit(change: Callable[[dict], object]) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        meta = json.loads((folder / META).read_text())
        (folder / META).write_text(json.dumps(change(meta)))
    return mutate


def _drop_summary_row(folder: Path) -> None:
    lines = (folder / SUMMARY).read_text().splitlines(keepends=True)
    (folder / SUMMARY).write_text("".join(lines[:-1]))


def _summary_field(column: str, value: str) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        lines = (folder / SUMMARY).read_text().splitlines(keepends=True)
        header = lines[0].rstrip("\n").split(",")
        fields = lines[1].rstrip("\n").split(",")
        fields[header.index(column)] = value
        lines[1] = ",".join(fields) + "\n"
        (folder / SUMMARY).write_text("".join(lines))
    return mutate


# case -> (spoil the good folder, file named, words in the message, caught by the dashboard's footer-only read)
CASES = {
    "parquet_cut_in_half": (_cut(0.5), PARQUET, "cut short", True),
    "parquet_cut_by_one_byte": (_cut(0.9999), PARQUET, "cut short", True),
    "parquet_empty": (_write(PARQUET, b""), PARQUET, "is empty", True),
    "parquet_is_text": (_write(PARQUET, b"test_set,noise\nlfw,gaussian\n"), PARQUET, "not a Parquet table", True),
    "parquet_random_bytes": (_write(PARQUET, b"PAR1" + bytes(np.random.default_rng(1).integers(0, 256, 4000,
                                                                                               dtype=np.uint8))
                                    + b"PAR1"), PARQUET, "not a readable Parquet table", True),
    "parquet_lacks_column": (_frame_edit(lambda f: f.drop(columns=["psnr"])), PARQUET, "lacks the column psnr", True),
    "parquet_mae_as_text": (_frame_edit(lambda f: f.astype({"mae": str})), PARQUET,
                            "column mae holds text values, not float ones", True),
    "parquet_seed_as_float": (_frame_edit(lambda f: f.astype({"noise_seed": float})), PARQUET,
                              "column noise_seed holds float values, not integer ones", True),
    "parquet_lost_rows": (_frame_edit(lambda f: f.iloc[:-3]), PARQUET, "rows but sweep_meta.json says", True),
    "parquet_nan_mae": (_frame_edit(_set("mae", np.nan)), PARQUET, "row 5: mae is 'nan'", False),
    "parquet_inf_ssim": (_frame_edit(_set("ssim", np.inf)), PARQUET, "row 5: ssim is 'inf'", False),
    "parquet_negative_strength": (_frame_edit(_set("strength", -0.1)), PARQUET, "strength", False),
    "parquet_unknown_noise": (_frame_edit(_set("noise", "pink")), PARQUET, "row 5: noise is 'pink'", False),
    "parquet_bad_noise_params": (_frame_edit(_set("noise_params", '{"kind":"gaussian"}')), PARQUET,
                                 "is not gaussian noise of strength", False),
    "summary_lost_row": (_drop_summary_row, SUMMARY, "rows but sweep_meta.json says", True),
    "summary_inf_strength": (_summary_field("strength", "inf"), SUMMARY, "strength is 'inf'", True),
    "summary_text_mean": (_summary_field("psnr_mean", "high"), SUMMARY, "psnr_mean is 'high', not a number", True),
    "meta_not_json": (_write(META, b"{rows: 3"), META, "not valid JSON", True),
    "meta_rows_text": (_meta_edit(lambda m: {**m, "rows": {"per_image": "many"}}), META, "rows must map", True),
    "meta_is_a_list": (_write(META, b"[1, 2]"), META, "holds a list", True),
}


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    return make_sweep_tables(tmp_path_factory.mktemp("sweep") / "tables")


@pytest.fixture(scope="module")
def corpus(good, tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("bad_sweep")
    folders = {}
    for case, (mutate, *_rest) in CASES.items():
        folders[case] = base / case
        shutil.copytree(good, folders[case])
        mutate(folders[case])
    return folders


def test_writer_records_rows_and_the_good_and_shipped_tables_pass(good):
    meta = json.loads((good / META).read_text())
    assert meta["rows"] == {"per_image": 24, "summary": 8, "timings": 8}
    assert len(load_sweep_tables(good).per_image) == 24
    assert len(read_sweep(good / SUMMARY)) == 8
    shipped = REPO / "checkpoints" / "tables"
    if (shipped / PARQUET).is_file():
        written = json.loads((shipped / META).read_text())["rows"]
        assert len(load_sweep_tables(shipped).per_image) == written["per_image"]
        assert len(read_sweep(shipped / SUMMARY)) == written["summary"]


def test_old_meta_without_rows_still_reads_but_a_short_parquet_disagrees_with_the_summary(good, tmp_path):
    folder = shutil.copytree(good, tmp_path / "old")
    _meta_edit(lambda m: {k: v for k, v in m.items() if k != "rows"})(folder)
    assert len(load_sweep_tables(folder).per_image) == 24
    _frame_edit(lambda f: f.iloc[:-1])(folder)
    with pytest.raises(TableError, match="counts 24 faces in all but sweep_per_image.parquet has 23 rows"):
        read_sweep(folder / SUMMARY)


@pytest.mark.parametrize("case", list(CASES))
def test_each_bad_file_gives_one_line_naming_it(corpus, case):
    _, file_name, words, footer = CASES[case]
    with pytest.raises(TableError) as caught:
        load_sweep_tables(corpus[case])
    message = str(caught.value)
    assert file_name in message and words in message, message
    assert "\n" not in message and str(corpus[case]) not in message
    assert not any(word in message for word in ("Traceback", "ArrowInvalid", "pyarrow"))
    if footer:  # the dashboard's reader catches it too, from the footer alone
        with pytest.raises(SweepTableError, match=file_name.replace(".", r"\.")):
            read_sweep(corpus[case] / SUMMARY)
    else:
        assert len(read_sweep(corpus[case] / SUMMARY)) == 8


@pytest.mark.parametrize("case", ["parquet_cut_in_half", "parquet_mae_as_text", "summary_lost_row"])
def test_noise_strength_page_shows_one_error_and_other_pages_render(corpus, case, monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DENOISING_TABLES_DIR", str(corpus[case]))
    monkeypatch.setenv("DENOISING_CHECKPOINT_DIR", str(tmp_path))
    monkeypatch.delenv("DENOISING_CELEBA_DIR", raising=False)
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("views/noise_strength.py").run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and CASES[case][1] in errors[0] and CASES[case][2] in errors[0], errors
    assert str(corpus[case]) not in errors[0]  # no server path on the page
    for page, title in {"views/noise_lab.py": "Noise lab", "views/method.py": "How this comparison works"}.items():
        at.switch_page(page).run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        assert at.title[0].value == title


def test_a_timings_file_cut_short_is_named(good, tmp_path):
    """sweep_timings.csv is checked against sweep_meta.json's count too (the scripts' reader)."""
    folder = shutil.copytree(good, tmp_path / "timings")
    timings = folder / SWEEP_FILES["timings"]
    lines = timings.read_text().splitlines(keepends=True)
    timings.write_text("".join(lines[:-1]))
    with pytest.raises(TableError, match="sweep_timings.csv has 7 rows but sweep_meta.json says 8 were written"):
        load_sweep_tables(folder)
