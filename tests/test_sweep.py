"""The strength sweep: its points, rows equal to the preset tables' at the preset strength, the Parquet and CSV
tables (schema, exact round trip, same bytes for the same seed), --reuse, and the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_tiny_faces  # tests/ is on sys.path under pytest

from denoising import catalogue
from denoising.denoisers import Denoiser, MedianFilter
from denoising.evaluation import FLOAT_FORMAT, evaluate, load_tables, write_tables
from denoising.faces import FaceSet
from denoising.noise import PRESETS, NoiseSpec
from denoising.registry import classical_methods
from denoising.runs import RunError, reusable_rows
from denoising.stats import SWEEP_SUMMARY_COLUMNS, summarize, summarize_sweep
from denoising.sweep import (
    SWEEP_FILES,
    SWEEP_PER_IMAGE_COLUMNS,
    SweepOptions,
    load_sweep_tables,
    parse_strengths,
    planned_sweep_work,
    read_sweep_per_image,
    run_sweep,
    sweep,
    sweep_points,
    write_sweep_tables,
)

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "sweep.py"
POST = PRESETS["post"]
#: Two kinds, three strengths each, the preset's included (and not first, so order is tested too).
STRENGTHS = {"gaussian": (0.05, catalogue.SWEEP_STRENGTHS["gaussian"][4], 0.45), "salt_pepper": (0.001, 0.004, 0.1)}


class SlowMedian(MedianFilter):
    """The median filter flagged slow, standing in for a BM3D-based method."""

    slow = True


class CountingMedian(MedianFilter):
    """The median filter, recording the noise of every call (in this process)."""

    def __init__(self, calls: list):
        super().__init__()
        self.calls = calls

    def denoise(self, batch, noise):
        self.calls.append(noise.to_json())
        return super().denoise(batch, noise)


class Halver(Denoiser):
    """A 'learned' method: never reused, its weights may have changed."""

    name, display_name, family, slow, description = "halver", "Halver", "learned", False, "Halves the image."

    def denoise(self, batch, noise):
        return batch * np.float32(0.5)


def _faces(n: int = 6, seed: int = 0) -> FaceSet:
    images = make_tiny_faces(n, seed=seed)
    table = pd.DataFrame({"image_id": [f"face_{i:02d}.jpg" for i in range(n)][::-1], "split": "test",
                          "identity": pd.array([pd.NA] * n, dtype="Int64"), "source": "synthetic"})
    return FaceSet(np.ascontiguousarray(images[::-1]), table)  # shuffled: the sweep sorts by id


def _methods(calls: list | None = None) -> dict:
    classical = classical_methods()
    median = CountingMedian(calls) if calls is not None else classical["median"]
    return {"noisy": classical["noisy"], "median": median, "slow_median": SlowMedian(), "halver": Halver()}


def _points():
    return sweep_points(strengths=STRENGTHS)


def _sweep(faces=None, methods=None, **kw) -> pd.DataFrame:
    return sweep(faces or _faces(), "tiny", methods or _methods(), _points(), slow_subset=2, **kw)


def _prepared_cache(folder: Path, images: np.ndarray) -> Path:
    """A minimal prepared-faces cache (the layout load_prepared reads), all faces in the test split."""
    folder.mkdir(parents=True)
    np.save(folder / "images.npy", np.round(images * 255).astype(np.uint8))
    pd.DataFrame({"image_id": [f"{i:06d}.jpg" for i in range(len(images))], "split": "test", "identity": "",
                  "source": "celeba"}).to_csv(folder / "faces.csv", index=False)
    (folder / "meta.json").write_text(json.dumps({"size": int(images.shape[1])}))
    return folder


# ----------------------------------------------------------------------------- points


def test_default_points_are_the_catalogue_strengths_with_the_preset_parameters():
    points = sweep_points()
    assert [p.kind for p in points] == [k for k in catalogue.NOISE_KINDS for _ in range(6)]
    for kind in catalogue.NOISE_KINDS:
        mine = [p for p in points if p.kind == kind]
        assert tuple(p.strength for p in mine) == catalogue.SWEEP_STRENGTHS[kind]
        parameter = catalogue.STRENGTHS[kind].parameter
        assert [p.spec.params[parameter] for p in mine] == list(catalogue.SWEEP_STRENGTHS[kind])
        # the other parameters are the preset's; exactly one point is the preset itself, JSON included
        assert all({k: v for k, v in p.spec.params.items() if k != parameter}
                   == {k: v for k, v in POST[kind].params.items() if k != parameter} for p in mine)
        (preset,) = [p for p in mine if p.at_preset]
        assert preset.spec.to_json() == POST[kind].to_json()
    assert sweep_points(["speckle"], preset="notebook")[4].at_preset  # speckle σ 1.0 in both presets


@pytest.mark.parametrize("kinds, strengths, needle", [
    (["pink"], None, "unknown noise kind(s) pink"),
    (None, {"gaussian": (0.1, 0.1)}, "listed twice"),
    (None, {"gaussian": (-0.1,)}, "strength -0.1: gaussian noise: sigma must be >= 0"),
    (None, {"salt_pepper": (1.5,)}, "amount must be"),
    (["poisson"], {"gaussian": (0.1,)}, "--strengths names gaussian, which --noise leaves out"),
])
def test_bad_points_are_one_clear_error(kinds, strengths, needle):
    with pytest.raises(RunError, match=None) as caught:
        sweep_points(kinds, strengths)
    assert needle in str(caught.value)
    with pytest.raises(RunError, match="unknown preset"):
        sweep_points(preset="nope")


def test_parse_strengths():
    assert parse_strengths(None) is None
    assert parse_strengths(["gaussian=0.05, 0.1", "poisson=4"]) == {"gaussian": (0.05, 0.1), "poisson": (4.0,)}
    for bad in ("gaussian", "gaussian=", "=0.1", "gaussian=a,b"):
        with pytest.raises(RunError, match="expected KIND=NUMBER"):
            parse_strengths([bad])
    with pytest.raises(RunError, match="names gaussian twice"):
        parse_strengths(["gaussian=0.1", "gaussian=0.2"])


# ----------------------------------------------------------------------------- the sweep = the preset tables there


def test_preset_strength_rows_and_summary_equal_the_preset_evaluation():
    faces, methods = _faces(), _methods()
    table = _sweep(faces, methods)
    assert list(table.columns) == SWEEP_PER_IMAGE_COLUMNS + ["seconds"]
    preset = evaluate(faces, "tiny", methods, {k: POST[k] for k in STRENGTHS}, slow_subset=None)
    at_preset = table[[s in (POST["gaussian"].params["sigma"], POST["salt_pepper"].params["amount"])
                       for s in table["strength"]]]
    pd.testing.assert_frame_equal(at_preset.drop(columns=["strength", "seconds"]).reset_index(drop=True),
                                  preset.drop(columns="seconds"))
    # bootstrap seeds do not depend on the strength: the preset-strength summary is the preset summary
    families = {n: m.family for n, m in methods.items()}
    swept = summarize_sweep(table, n_boot=200, families=families)
    assert list(swept.columns) == SWEEP_SUMMARY_COLUMNS
    expected = summarize(preset, n_boot=200, families=families)
    got = swept[swept["strength"].isin([p.strength for p in _points() if p.at_preset])]
    pd.testing.assert_frame_equal(got.drop(columns="strength").reset_index(drop=True),
                                  expected[[c for c in SWEEP_SUMMARY_COLUMNS if c != "strength"]])
    assert set(swept["family"]) == {"baseline", "classical", "learned"}


def test_slow_methods_use_the_subset_away_from_the_preset_and_every_face_at_it():
    table = _sweep()
    slow = table[table["method"] == "slow_median"].groupby(["noise", "strength"], sort=False)["image_id"]
    sizes = {key: len(ids) for key, ids in slow}
    for p in _points():
        assert sizes[(p.kind, p.strength)] == (6 if p.at_preset else 2)
    assert set(table.loc[table["method"] == "slow_median", "image_id"]) >= {"face_00.jpg", "face_01.jpg"}
    assert (table[table["method"] == "noisy"].groupby(["noise", "strength"]).size() == 6).all()
    # and the order: noise kind, strength as swept, method, image id
    keys = list(dict.fromkeys(zip(table["noise"], table["strength"], strict=True)))
    assert keys == [(p.kind, p.strength) for p in _points()]
    assert planned_sweep_work(6, _methods(), _points(), slow_subset=2) == len(table)
    everywhere = _sweep(slow_subset_at_preset=True)
    assert (everywhere[everywhere["method"] == "slow_median"].groupby(["noise", "strength"]).size() == 2).all()


def test_strength_changes_the_noise_and_its_seed():
    table = _sweep()
    noisy = table[(table["method"] == "noisy") & (table["image_id"] == "face_03.jpg")].set_index(["noise", "strength"])
    assert noisy["noise_seed"].nunique() == len(noisy)  # each strength its own seed, drawn like the preset tables
    mae = noisy.loc["gaussian", "mae"]
    assert mae.is_monotonic_increasing  # stronger Gaussian noise, larger error
    row = noisy.loc[("salt_pepper", 0.1)]
    clean = make_tiny_faces(6)[3][None]
    regenerated = NoiseSpec.from_json(row["noise_params"]).apply(clean, np.random.default_rng(int(row["noise_seed"])))
    assert np.abs(regenerated - clean).mean() == pytest.approx(row["mae"], rel=1e-6)


# ----------------------------------------------------------------------------- tables on disk


def test_tables_schema_exact_round_trip_and_same_bytes(tmp_path):
    methods = _methods()
    tables = []
    for name, faces in (("a", _faces()), ("b", _faces())):
        table = _sweep(faces, methods)
        write_sweep_tables(table, summarize_sweep(table, n_boot=100), {"seed": 0}, tmp_path / name)
        tables.append(table)
    for file in ("sweep_per_image.parquet", "sweep_summary.csv"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), file
    header = (tmp_path / "a" / "sweep_summary.csv").read_text().splitlines()[0]
    assert header == ("test_set,noise,strength,method,family,n_images,mae_mean,mae_ci_low,mae_ci_high,psnr_mean,"
                      "psnr_ci_low,psnr_ci_high,ssim_mean,ssim_ci_low,ssim_ci_high")
    loaded = load_sweep_tables(tmp_path / "a")
    expected = tables[0].drop(columns="seconds")
    pd.testing.assert_frame_equal(loaded.per_image, expected)  # exact: dtypes, order, every value
    pd.testing.assert_frame_equal(read_sweep_per_image(tmp_path / "a" / SWEEP_FILES["per_image"]), expected)
    # the strength reads back as exactly the catalogue's float, σ = sqrt(0.1) included
    assert set(loaded.summary["strength"]) == {s for values in STRENGTHS.values() for s in values}
    assert "0.31622776601683794" in (tmp_path / "a" / "sweep_summary.csv").read_text()
    assert list(loaded.timings.columns) == ["test_set", "noise", "strength", "method", "n_images",
                                            "seconds_per_image"]
    other_seed = _sweep(methods=methods, base_seed=1)
    assert not np.array_equal(other_seed["noise_seed"], tables[0]["noise_seed"])
    with pytest.raises(FileNotFoundError, match="run scripts/sweep.py"):
        load_sweep_tables(tmp_path / "nowhere")


def test_parquet_rows_at_the_preset_equal_per_image_csv(tmp_path):
    faces, methods = _faces(), _methods()
    preset = evaluate(faces, "tiny", methods, {k: POST[k] for k in STRENGTHS})
    write_tables(preset, summarize(preset, n_boot=50), {}, tmp_path / "preset")
    table = _sweep(faces, methods)
    write_sweep_tables(table, summarize_sweep(table, n_boot=50), {}, tmp_path / "sweep")
    from_csv = load_tables(tmp_path / "preset").per_image
    parquet = load_sweep_tables(tmp_path / "sweep").per_image
    at_preset = parquet[parquet["strength"].isin([p.strength for p in _points() if p.at_preset])]
    at_preset = at_preset.drop(columns="strength").reset_index(drop=True)
    keys = ["test_set", "image_id", "noise", "noise_params", "noise_seed", "method"]
    pd.testing.assert_frame_equal(at_preset[keys], from_csv[keys], check_dtype=False)
    for metric in ("mae", "psnr", "ssim"):  # per_image.csv holds them with 6 significant digits
        assert [FLOAT_FORMAT % v for v in at_preset[metric]] == [FLOAT_FORMAT % v for v in from_csv[metric]]


# ----------------------------------------------------------------------------- --reuse


def test_reuse_keeps_classical_rows_of_matching_noise_only(tmp_path):
    calls: list[str] = []
    faces = _faces()
    first = _sweep(faces, _methods(calls))
    write_sweep_tables(first, summarize_sweep(first, n_boot=50), {}, tmp_path / "earlier")
    rows = reusable_rows(tmp_path / "earlier", _methods())
    assert "halver" not in set(rows["method"])  # learned: recomputed
    calls.clear()
    again = _sweep(faces, _methods(calls), reuse=rows)
    assert calls == []  # every median row came from the earlier sweep
    pd.testing.assert_frame_equal(again.drop(columns="seconds"), first.drop(columns="seconds"))  # exact
    # another seed: nothing matches, everything is computed again (warm-up + one chunk per point)
    sweep(faces, "tiny", _methods(calls), _points(), base_seed=1, slow_subset=2, reuse=rows)
    assert len(calls) == 2 * len(_points())
    # preset tables reuse at the preset strength only
    preset = evaluate(faces, "tiny", _methods(), {k: POST[k] for k in STRENGTHS})
    write_tables(preset, summarize(preset, n_boot=50), {}, tmp_path / "preset")
    calls.clear()
    _sweep(faces, _methods(calls), reuse=reusable_rows(tmp_path / "preset", _methods()))
    assert sorted(set(calls)) == sorted(p.spec.to_json() for p in _points() if not p.at_preset)
    with pytest.raises(RunError, match="--reuse: no result tables .* or sweep tables"):
        reusable_rows(tmp_path / "nowhere", _methods())


def test_preset_evaluation_reusing_a_sweep_gives_the_sweeps_preset_numbers_exactly(tmp_path):
    calls: list[str] = []
    faces = _faces()
    table = _sweep(faces, _methods())
    swept = summarize_sweep(table, n_boot=100)
    write_sweep_tables(table, swept, {}, tmp_path)
    preset = evaluate(faces, "tiny", _methods(calls), {k: POST[k] for k in STRENGTHS},
                      reuse=reusable_rows(tmp_path, _methods()))
    assert calls == []  # the classical rows, the slow one on every face included, came from the sweep's Parquet
    expected = swept[swept["strength"].isin([p.strength for p in _points() if p.at_preset])]
    pd.testing.assert_frame_equal(summarize(preset, n_boot=100)[expected.columns.drop("strength")],
                                  expected.drop(columns="strength").reset_index(drop=True))


# ----------------------------------------------------------------------------- a run and the command line


def test_run_sweep_writes_a_run_folder_and_nothing_on_interrupt(tmp_path, monkeypatch):
    from denoising import runs

    monkeypatch.setattr(runs, "RUNS_DIR", tmp_path / "runs")
    options = SweepOptions(data=_prepared_cache(tmp_path / "cache", make_tiny_faces(3)), lfw=False,
                           methods=["noisy", "median"], noise=["speckle"], strengths={"speckle": (0.1, 1.0)},
                           checkpoints=tmp_path / "none", argv=["--x", "a b"])
    run = run_sweep(options)
    assert run.out_dir.parent == tmp_path / "runs" and run.out_dir.name.startswith("sweep-")
    assert sorted(p.name for p in run.out_dir.iterdir()) == sorted(SWEEP_FILES.values())
    assert run.meta["command"] == "python scripts/sweep.py --x 'a b'"
    assert run.meta["noise"]["speckle"]["strengths"] == [0.1, 1.0]
    assert run.meta["noise"]["speckle"]["preset_strength"] == [1.0]
    assert "first 100 faces" in run.meta["slow_subset_rule"]
    assert run.meta["methods"][1]["faces"]["celeba_test"] == {"preset_strength": 3, "other_strengths": 3}

    def interrupted(total):
        def progress(n, desc):
            raise KeyboardInterrupt

        from contextlib import nullcontext
        return nullcontext(progress)

    options.out = tmp_path / "never"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(options, interrupted)
    assert not (tmp_path / "never").exists()


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout)


def test_help_documents_every_flag_and_the_regenerating_command():
    from scripts import sweep as cli

    for action in cli.build_parser()._actions:
        assert action.help, f"{action.option_strings} has no help"
    result = _cli("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "sweep.py --data .cache/faces/<cache> --slow-subset 100 --out checkpoints/tables --force" in text
    assert "evaluate.py --data .cache/faces/<cache> --reuse checkpoints/tables --out checkpoints/tables" in text


@pytest.mark.parametrize("args, needle", [
    ([], "--data is required"),
    (["--data", "does/not/exist"], "does not exist"),
    (["--data", ".", "--strengths", "gaussian:0.1"], "expected KIND=NUMBER"),
    (["--data", ".", "--noise", "pink"], "unknown noise kind(s) pink"),
])
def test_bad_input_is_one_clear_line(args, needle):
    result = _cli(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], result.stderr


def test_cli_writes_tables_refuses_to_overwrite_and_force_gives_the_same_bytes(tmp_path):
    cache = _prepared_cache(tmp_path / "cache", make_tiny_faces(3, seed=4))
    out = tmp_path / "tables"
    args = ("--data", str(cache), "--no-lfw", "--methods", "noisy,median,bm3d", "--strengths", "gaussian=0.45",
            "--slow-subset", "1", "--workers", "1", "--out", str(out), "--quiet", "--checkpoints", str(tmp_path / "no"))
    result = _cli(*args)
    assert result.returncode == 0, result.stderr
    tables = load_sweep_tables(out)
    assert (tables.per_image.groupby("method").size() == pd.Series({"bm3d": 1, "median": 3, "noisy": 3})).all()
    assert tables.meta["slow_subset"] == 1
    first = {name: (out / name).read_bytes() for name in ("sweep_per_image.parquet", "sweep_summary.csv")}
    refused = _cli(*args)
    assert refused.returncode == 2 and "already holds result tables" in refused.stderr and "--force" in refused.stderr
    forced = _cli(*args, "--force", "--reuse", str(out))  # BM3D rows reused
    assert forced.returncode == 0, forced.stderr
    assert {name: (out / name).read_bytes() for name in first} == first


def test_preset_tables_in_the_folder_are_not_in_the_way(tmp_path):
    from denoising import runs

    (tmp_path / "summary.csv").write_text("x\n")
    assert runs.output_dir(tmp_path, files=SWEEP_FILES.values(), prefix="sweep") == tmp_path
    (tmp_path / "sweep_summary.csv").write_text("x\n")
    with pytest.raises(RunError, match="already holds result tables.*--force"):
        runs.output_dir(tmp_path, files=SWEEP_FILES.values(), prefix="sweep")
