"""Evaluation: table schema, determinism whichever backend runs it, exact regeneration of the scored noisy
inputs, slow subsets, the --reuse join, stopping workers on an interrupt, and the command line."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_tiny_faces  # tests/ is on sys.path under pytest

from denoising import runs
from denoising.denoisers import Denoiser, MedianFilter
from denoising.evaluation import (
    FAST_CHUNK,
    PER_IMAGE_COLUMNS,
    SLOW_CHUNK,
    TIMING_COLUMNS,
    _chunks,
    evaluate,
    load_tables,
    markdown_results,
    planned_work,
    write_tables,
)
from denoising.faces import FaceSet
from denoising.metrics import score
from denoising.noise import PRESETS, NoiseSpec
from denoising.registry import build_registry, classical_methods
from denoising.runs import EvaluationOptions, RunError, reusable_rows, run_evaluation
from denoising.stats import SUMMARY_COLUMNS, summarize

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "evaluate.py"
FAST = ("noisy", "mean", "median")
GAUSSIAN = {"gaussian": PRESETS["post"]["gaussian"]}


# ----------------------------------------------------------------------------- stand-ins (module level: they pickle)


class Halver(Denoiser):
    """A 'learned' method with a model for Gaussian noise only."""

    name, display_name, family, slow, description = "halver", "Halver", "learned", False, "Halves the image."

    def available(self, noise_kind: str) -> bool:
        return noise_kind == "gaussian"

    def denoise(self, batch, noise):
        return batch * np.float32(0.5)


class SlowMedian(MedianFilter):
    """The median filter flagged slow, so it goes in chunks of SLOW_CHUNK faces like BM3D."""

    slow = True


class Sleepy(Denoiser):
    """A slow method that takes a while per chunk, to interrupt mid-run."""

    name, display_name, family, slow, description = "sleepy", "Sleepy", "classical", True, "Sleeps."

    def denoise(self, batch, noise):
        time.sleep(1.0)
        return batch.copy()


class CountingMedian(MedianFilter):
    """The median filter, recording the noise kind of every call (in this process)."""

    def __init__(self, calls: list):
        super().__init__()
        self.calls = calls

    def denoise(self, batch, noise):
        self.calls.append(noise.kind)
        return super().denoise(batch, noise)


def _faces(images: np.ndarray, shuffle: bool = False) -> FaceSet:
    ids = [f"face_{i:02d}.jpg" for i in range(len(images))]
    order = np.arange(len(images))[::-1] if shuffle else np.arange(len(images))
    table = pd.DataFrame({"image_id": [ids[i] for i in order], "split": "test",
                          "identity": pd.array([pd.NA] * len(images), dtype="Int64"), "source": "synthetic"})
    return FaceSet(np.ascontiguousarray(images[order]), table)


def _fast_methods() -> dict:
    classical = classical_methods()
    return {name: classical[name] for name in FAST}


def _run(faces, methods=None, specs=None, **kw):
    return evaluate(faces, "tiny", methods or _fast_methods(), specs or PRESETS["post"], **kw)


def _loky_workers() -> set[int]:
    """Live worker processes of joblib's loky backend started by this process.

    Left out: loky's resource tracker, which does no work and exits with this process.
    """
    psutil = pytest.importorskip("psutil")
    alive = set()
    for child in psutil.Process().children(recursive=True):
        try:
            command = " ".join(child.cmdline())
            if child.status() != psutil.STATUS_ZOMBIE and "loky" in command and "resource_tracker" not in command:
                alive.add(child.pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def _gone(pids: set[int], within_s: float = 10.0) -> set[int]:
    """Those of ``pids`` still running after waiting up to ``within_s`` seconds."""
    psutil = pytest.importorskip("psutil")

    def running(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    deadline = time.monotonic() + within_s
    left = {pid for pid in pids if running(pid)}
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = {pid for pid in left if running(pid)}
    return left


# ----------------------------------------------------------------------------- the table


def test_schema_one_row_per_image_noise_method(tiny_faces):
    methods = {**_fast_methods(), "halver": Halver()}
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
    assert set(table.loc[table["method"] == "halver", "noise"]) == {"gaussian"}
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
    clean = dict(zip(faces.table["image_id"], faces.images, strict=True))
    median = classical_methods()["median"]
    for noise in ("poisson", "salt_pepper"):
        for method in ("noisy", "median"):
            row = table[(table["image_id"] == "face_05.jpg") & (table["noise"] == noise)
                        & (table["method"] == method)].iloc[0]
            face = clean[row["image_id"]][None]
            spec = NoiseSpec.from_json(row["noise_params"])
            noisy = spec.apply(face, np.random.default_rng(int(row["noise_seed"])))
            out = noisy if method == "noisy" else median(noisy, spec)
            got = score(face, out)
            assert got["mae"][0] == pytest.approx(row["mae"], rel=1e-5)
            assert got["ssim"][0] == pytest.approx(row["ssim"], rel=1e-5)
    # and a wrong seed does not reproduce it
    row = table[(table["image_id"] == "face_05.jpg") & (table["noise"] == "gaussian") & (table["method"] == "noisy")].iloc[0]
    wrong = PRESETS["post"]["gaussian"].apply(clean["face_05.jpg"][None], np.random.default_rng(int(row["noise_seed"]) + 1))
    assert score(clean["face_05.jpg"][None], wrong)["mae"][0] != pytest.approx(row["mae"], rel=1e-5)


def test_methods_get_the_noise_spec_not_its_name(tiny_faces):
    seen = []

    class Recorder(Halver):
        def denoise(self, batch, noise):
            seen.append(noise)
            return batch

    _run(_faces(tiny_faces[:2]), {"halver": Recorder()}, GAUSSIAN)
    assert seen and all(s == PRESETS["post"]["gaussian"] for s in seen)
    with pytest.raises(TypeError, match="NoiseSpec"):
        classical_methods()["median"](tiny_faces[:1], "gaussian")


def test_slow_subset_takes_the_first_faces_by_id(tiny_faces):
    methods = {**_fast_methods(), "slow_median": SlowMedian()}
    table = _run(_faces(tiny_faces, shuffle=True), methods, slow_subset=3)
    slow_rows = table[table["method"] == "slow_median"]
    assert len(slow_rows) == 3 * 4
    assert set(slow_rows["image_id"]) == {"face_00.jpg", "face_01.jpg", "face_02.jpg"}
    assert (table[table["method"] == "noisy"].groupby("noise").size() == 8).all()  # fast methods keep every face
    summary = summarize(table, n_boot=50)
    assert set(summary.loc[summary["method"] == "slow_median", "n_images"]) == {3}
    assert "(n = 3)" in markdown_results(summary)
    with pytest.raises(ValueError, match="slow_subset"):
        _run(_faces(tiny_faces), methods, slow_subset=0)


def test_chunks_depend_on_the_number_of_faces_only():
    parts = _chunks(20, SLOW_CHUNK)
    assert [(p.start, p.stop) for p in parts] == [(0, 8), (8, 16), (16, 20)]
    assert _chunks(0, SLOW_CHUNK) == []
    assert [(p.start, p.stop) for p in _chunks(FAST_CHUNK + 1, FAST_CHUNK)] == [(0, FAST_CHUNK), (FAST_CHUNK, FAST_CHUNK + 1)]


def test_worker_processes_give_the_single_process_table_learned_model_included(tmp_path):
    pytest.importorskip("torch")
    from dashboard_fixtures import make_checkpoint

    make_checkpoint(tmp_path)  # an (untrained) autoencoder for Gaussian noise, loaded again in each worker
    registry = build_registry(tmp_path, include_slow=False)
    methods = {"noisy": registry["noisy"], "median": registry["median"], "autoencoder": registry["autoencoder"],
               "slow_median": SlowMedian()}  # 20 faces -> 3 chunks of the slow one, spread over the workers
    specs = {k: PRESETS["post"][k] for k in ("gaussian", "salt_pepper")}
    faces = _faces(make_tiny_faces(20, seed=3))
    serial = _run(faces, methods, specs, workers=1)
    parallel = _run(faces, methods, specs, workers=2)
    assert set(serial["method"]) == set(methods)
    pd.testing.assert_frame_equal(serial.drop(columns="seconds"), parallel.drop(columns="seconds"))


def test_interrupt_stops_the_worker_processes(tiny_faces):
    seen_workers: set[int] = set()

    def interrupt(n, desc):  # the first finished chunk: workers are busy with the others
        seen_workers.update(_loky_workers())
        raise KeyboardInterrupt

    faces = _faces(make_tiny_faces(6 * SLOW_CHUNK))
    with pytest.raises(KeyboardInterrupt):
        _run(faces, {"sleepy": Sleepy()}, GAUSSIAN, workers=2, progress=interrupt)
    assert seen_workers, "the run started no worker process"
    assert not _gone(seen_workers), "worker processes still running 10 s after the interrupt"


def test_load_tables_round_trip_keeps_types_and_infinite_psnr(tiny_faces, tmp_path):
    table = _run(_faces(tiny_faces[:2]), specs=GAUSSIAN)
    table.loc[0, "psnr"] = np.inf
    write_tables(table, summarize(table, n_boot=50), {"seed": 0, "size": 28}, tmp_path)
    loaded = load_tables(tmp_path)
    assert np.isposinf(loaded.per_image.loc[0, "psnr"])
    assert loaded.per_image["noise_seed"].dtype == np.int64
    assert (loaded.per_image["noise_seed"] == table["noise_seed"]).all()
    assert list(loaded.summary.columns) == SUMMARY_COLUMNS
    # write_tables adds each table's row count, so a reader can tell a table cut short (issue #12)
    assert loaded.meta == {"seed": 0, "size": 28, "rows": {"per_image": 6, "summary": 3, "timings": 3}}
    assert list(loaded.timings.columns) == TIMING_COLUMNS
    with pytest.raises(FileNotFoundError, match="run scripts/evaluate.py"):
        load_tables(tmp_path / "nowhere")


def test_summary_has_a_family_column_and_old_tables_without_it_still_load(tiny_faces, tmp_path):
    methods = {**_fast_methods(), "halver": Halver()}
    table = _run(_faces(tiny_faces[:2]), methods, GAUSSIAN)
    write_tables(table, summarize(table, n_boot=50, families={n: m.family for n, m in methods.items()}), {}, tmp_path)
    header = (tmp_path / "summary.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["test_set", "noise", "method", "family", "n_images"]
    written = load_tables(tmp_path).summary
    assert dict(zip(written["method"], written["family"], strict=True)) == {
        "noisy": "baseline", "mean": "classical", "median": "classical", "halver": "learned"}
    # a summary.csv from before the column (as shipped before issue #9): filled from the catalogue, same place
    old = pd.read_csv(tmp_path / "summary.csv").drop(columns="family")
    old.to_csv(tmp_path / "summary.csv", index=False)
    loaded = load_tables(tmp_path).summary
    assert list(loaded.columns) == SUMMARY_COLUMNS
    assert list(loaded["family"]) == ["baseline", "classical", "classical", "unknown"]  # halver is no catalogue name
    pd.testing.assert_frame_equal(loaded.drop(columns="family"), old, check_dtype=False)


# ----------------------------------------------------------------------------- --reuse


def test_reuse_takes_matching_rows_and_recomputes_the_rest(tiny_faces):
    calls: list[str] = []
    faces = _faces(tiny_faces)
    methods = {**_fast_methods(), "median": CountingMedian(calls)}
    first = _run(faces, methods)
    # rows of another seed do not match the planned noisy inputs: recomputed, same values as a fresh run
    other = _run(faces, methods, base_seed=1)
    calls.clear()
    again = _run(faces, methods, reuse=pd.concat([first[first["noise"] != "speckle"], other]))
    assert calls == ["speckle", "speckle"]  # warm-up + the one chunk the earlier rows did not cover
    pd.testing.assert_frame_equal(again.drop(columns="seconds"), first.drop(columns="seconds"))


def test_reusable_rows_join_timings_and_leave_learned_methods_out(tiny_faces, tmp_path):
    methods = {**_fast_methods(), "halver": Halver()}
    first = _run(_faces(tiny_faces), methods)
    write_tables(first, summarize(first, n_boot=50), {}, tmp_path)
    rows = reusable_rows(tmp_path, methods)
    assert set(rows["method"]) == set(FAST)  # the learned one is recomputed: its weights may have changed
    assert list(rows.columns) == PER_IMAGE_COLUMNS
    timings = pd.read_csv(tmp_path / "timings.csv").set_index(["test_set", "noise", "method"])["seconds_per_image"]
    for (test_set, noise, method), seconds in rows.groupby(["test_set", "noise", "method"])["seconds"].first().items():
        assert seconds == timings[(test_set, noise, method)]
    again = _run(_faces(tiny_faces), methods, reuse=rows)
    pd.testing.assert_frame_equal(again.drop(columns="seconds"), first.drop(columns="seconds"))
    (tmp_path / "timings.csv").unlink()
    with pytest.raises(RunError, match="no timings.csv"):
        reusable_rows(tmp_path, methods)
    with pytest.raises(RunError, match="--reuse: no result tables"):
        reusable_rows(tmp_path / "nowhere", methods)


# ----------------------------------------------------------------------------- library run: options -> tables


def _prepared_cache(folder: Path, images: np.ndarray) -> Path:
    """A minimal prepared-faces cache (the layout load_prepared reads), all faces in the test split."""
    folder.mkdir(parents=True)
    np.save(folder / "images.npy", np.round(images * 255).astype(np.uint8))
    pd.DataFrame({"image_id": [f"{i:06d}.jpg" for i in range(len(images))], "split": "test", "identity": "",
                  "source": "celeba"}).to_csv(folder / "faces.csv", index=False)
    (folder / "meta.json").write_text(json.dumps({"size": int(images.shape[1])}))
    return folder


def test_run_records_checkpoint_hashes_and_writes_a_new_run_folder(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from dashboard_fixtures import make_checkpoint

    make_checkpoint(tmp_path / "ckpt")
    monkeypatch.setattr(runs, "RUNS_DIR", tmp_path / "runs")
    options = EvaluationOptions(data=_prepared_cache(tmp_path / "cache", make_tiny_faces(3)), lfw=False,
                                methods=["noisy", "autoencoder"], checkpoints=tmp_path / "ckpt", argv=["--x", "a b"])
    run = run_evaluation(options)
    assert run.out_dir.parent == tmp_path / "runs" and run.out_dir.name.startswith("evaluate-")
    assert sorted(p.name for p in run.out_dir.iterdir()) == ["meta.json", "per_image.csv", "summary.csv",
                                                             "timings.csv"]
    weights = tmp_path / "ckpt" / "autoencoder-gaussian.safetensors"
    assert run.meta["checkpoints_sha256"] == {weights.name: hashlib.sha256(weights.read_bytes()).hexdigest()}
    assert run.meta["command"] == "python scripts/evaluate.py --x 'a b'"
    assert run.meta["machine"]["backend"] == "this process"
    assert {"torch", "joblib", "dask"} <= set(run.meta["versions"])
    taken = runs.new_run_dir("evaluate")
    taken.mkdir()
    assert runs.new_run_dir("evaluate") != taken  # a second run in the same second gets its own folder


def test_existing_tables_are_replaced_only_with_force(tmp_path):
    (tmp_path / "summary.csv").write_text("x\n")
    with pytest.raises(RunError, match="already holds result tables.*--force"):
        runs.output_dir(tmp_path)
    assert runs.output_dir(tmp_path, force=True) == tmp_path
    assert runs.output_dir(tmp_path / "empty") == tmp_path / "empty"
    with pytest.raises(RunError, match="already holds"):
        runs.output_dir(runs.SHIPPED_TABLES)


def test_dask_cluster_gives_the_single_process_table(tmp_path):
    distributed = pytest.importorskip("distributed")
    cache = _prepared_cache(tmp_path / "cache", make_tiny_faces(12, seed=5))
    common = dict(data=cache, lfw=False, methods=["noisy", "mean", "median", "bm3d"], noise=["gaussian", "poisson"],
                  slow_subset=2, checkpoints=tmp_path / "no_checkpoints")
    local = run_evaluation(EvaluationOptions(**common, workers=1, out=tmp_path / "local"))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster:
        on_dask = run_evaluation(EvaluationOptions(**common, dask_scheduler=cluster.scheduler_address,
                                                   out=tmp_path / "dask"))
    assert on_dask.meta["machine"]["backend"] == "dask" and on_dask.meta["machine"]["dask_workers"] == 2
    assert (on_dask.per_image["method"] == "bm3d").sum() == 2 * 2
    pd.testing.assert_frame_equal(local.per_image.drop(columns="seconds"), on_dask.per_image.drop(columns="seconds"))
    for name in ("per_image.csv", "summary.csv"):
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "dask" / name).read_bytes(), name


def test_unreachable_dask_scheduler_is_one_clear_error():
    with pytest.raises(RunError, match=r"cannot reach a Dask scheduler at 'tcp://127.0.0.1:1' within 1 s"):
        runs.check_dask_scheduler("tcp://127.0.0.1:1", timeout=1)
    with pytest.raises(RunError, match="cannot reach a Dask scheduler at 'no-port'"):
        runs.check_dask_scheduler("no-port", timeout=1)


# ----------------------------------------------------------------------------- command line


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout)


def test_help_documents_every_flag():
    from scripts import evaluate as cli

    for action in cli.build_parser()._actions:
        assert action.help, f"{action.option_strings} has no help"
    result = _cli("--help")
    assert result.returncode == 0
    for flag in ("--data", "--lfw", "--methods", "--noise", "--preset", "--checkpoints", "--out", "--force", "--seed",
                 "--slow-subset", "--workers", "--dask-scheduler", "--skip-slow", "--reuse", "--limit",
                 "--markdown-only", "--tables"):
        assert flag in result.stdout


@pytest.mark.parametrize("args, needle", [
    (["--data", "does/not/exist"], "does not exist"),
    ([], "--data is required"),
    (["--markdown-only", "--tables", "does/not/exist"], "no result tables"),
    (["--markdown-only", "--out", "somewhere"], "--markdown-only writes nothing"),
    (["--data", ".", "--out", "checkpoints/tables"], "already holds result tables"),
    (["--data", ".", "--dask-scheduler", "no-port"], "cannot reach a Dask scheduler"),
])
def test_bad_input_is_one_clear_line(args, needle):
    result = _cli(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], result.stderr


def test_cli_writes_tables_states_slow_subset_and_markdown_only_reprints(tiny_faces, tmp_path):
    cache = _prepared_cache(tmp_path / "cache", tiny_faces[:4])
    out = tmp_path / "tables"
    args = ("--data", str(cache), "--no-lfw", "--methods", "noisy,median,bm3d", "--noise", "gaussian",
            "--slow-subset", "1", "--workers", "1", "--out", str(out), "--quiet", "--checkpoints",
            str(tmp_path / "no_checkpoints"))
    result = _cli(*args)
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
    again = _cli("--markdown-only", "--tables", str(out))
    assert again.returncode == 0, again.stderr
    assert again.stdout == result.stdout
    assert "| Median filter (3×3) |" in again.stdout and "(n = 1)" in again.stdout
    row = tables.summary[(tables.summary["method"] == "median")].iloc[0]
    assert f"{row['mae_mean']:.4f} / {row['psnr_mean']:.2f} / {row['ssim_mean']:.3f}" in again.stdout
    # the same folder again: refused without --force, replaced with it (same bytes: BM3D is deterministic)
    first_bytes = (out / "per_image.csv").read_bytes()
    refused = _cli(*args)
    assert refused.returncode == 2 and "--force" in refused.stderr
    forced = _cli(*args, "--force")
    assert forced.returncode == 0, forced.stderr
    assert (out / "per_image.csv").read_bytes() == first_bytes


def test_cli_rejects_unknown_method_and_noise(tiny_faces, tmp_path):
    cache = _prepared_cache(tmp_path / "cache", tiny_faces[:2])
    bad_method = _cli("--data", str(cache), "--methods", "noisy,magic", "--out", str(tmp_path / "t"))
    assert bad_method.returncode == 2 and "magic" in bad_method.stderr and "Traceback" not in bad_method.stderr
    bad_noise = _cli("--data", str(cache), "--noise", "pink", "--out", str(tmp_path / "t"))
    assert bad_noise.returncode == 2 and "pink" in bad_noise.stderr
    assert not (tmp_path / "t").exists()


def test_sigterm_stops_the_script_and_its_workers(tmp_path):
    psutil = pytest.importorskip("psutil")
    cache = _prepared_cache(tmp_path / "cache", make_tiny_faces(64))
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "--data", str(cache), "--no-lfw", "--methods", "bm3d",
                             "--noise", "gaussian,poisson", "--workers", "2", "--out", str(tmp_path / "t"),
                             "--checkpoints", str(tmp_path / "none")],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        workers: set[int] = set()
        deadline = time.monotonic() + 120
        while len(workers) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                workers = {c.pid for c in psutil.Process(proc.pid).children(recursive=True)}
            except psutil.NoSuchProcess:
                break
        assert len(workers) >= 2, "the script started no worker processes"
        time.sleep(1.0)  # the workers are busy with BM3D now
        os.kill(proc.pid, signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2
    assert stderr.strip().splitlines()[-1].endswith("error: interrupted; no tables written")
    assert not (tmp_path / "t").exists()
    assert not _gone(workers), "worker processes still running 10 s after SIGTERM"


def test_benchmark_help_documents_every_flag():
    from scripts import benchmark

    for action in benchmark.build_parser()._actions:
        assert action.help, f"{action.option_strings} has no help"
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "benchmark.py"), "--help"], capture_output=True,
                            text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0 and "--train-steps" in result.stdout
