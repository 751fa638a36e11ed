"""Score every method on the same noisy test faces, and read/write the result tables.

One honest pipeline: for each noise kind, every test face gets one noisy copy drawn from its own
seed (:func:`denoising.noise.noisy_copies`), every method available for that kind denoises that
same batch, and each output is scored against the clean original (MAE, PSNR, SSIM).

Parallel work
-------------
Each method's batch is cut into chunks of a fixed size (:data:`SLOW_CHUNK` faces for slow methods,
so a progress bar moves every few faces, :data:`FAST_CHUNK` for the others) and the chunks go
through :class:`joblib.Parallel`: in this process (``workers=1``), in ``workers`` processes
(joblib's loky backend), or wherever the active :func:`joblib.parallel_config` sends them
(``workers=None``; :func:`denoising.runs.run_evaluation` uses it for a Dask cluster). Denoisers
are picklable, so every method, learned ones included, can go to a worker. Chunk boundaries
depend only on the number of faces and results come back in order, so the tables are the same
bytes whichever backend and however many workers ran them. An interrupt (or any error) aborts
the remaining chunks and stops the worker processes (joblib terminates loky's workers on abort).

Tables (written by :func:`write_tables`)
----------------------------------------
``per_image.csv``
    One row per test set x image x noise x method: :data:`PER_IMAGE_COLUMNS` minus ``seconds``.
    ``noise_params`` is ``NoiseSpec.to_json()`` and ``noise_seed`` the seed of that face's noisy
    copy, so ``spec.apply(clean[None], np.random.default_rng(noise_seed))`` rebuilds the exact
    input that was scored. PSNR is ``inf`` for an output identical to the clean face.
``summary.csv``
    :data:`denoising.stats.SUMMARY_COLUMNS`: ``family`` (baseline / classical / learned) right
    after ``method``, then mean, std, median, 95% bootstrap CI per metric.
``timings.csv``
    :data:`TIMING_COLUMNS`: compute time per face of each method (see :func:`evaluate`). Kept
    apart because times change from run to run; everything else is byte-identical for the same seed.
``meta.json``
    How the tables were made (command, seed, versions, faces, slow-method subset, ...) and ``rows``,
    each table's row count, so that a table cut short is caught when read. :func:`load_tables`
    checks every file (:mod:`denoising.tables_schema`) and raises one ``TableError`` naming it.

The strength sweep (:mod:`denoising.sweep`) writes its own four files beside these
(:data:`SWEEP_FILES`, :func:`write_sweep_tables`): per-image rows in Parquet with a ``strength``
column, ``sweep_summary.csv``, ``sweep_timings.csv`` and ``sweep_meta.json``.

Floats are written with :data:`FLOAT_FORMAT` (6 significant digits) so that the same inputs give
the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from denoising import catalogue
from denoising.catalogue import NOISE_KINDS, test_set_title
from denoising.metrics import score
from denoising.noise import NoiseSpec, noisy_copies
from denoising.stats import (
    METRICS,
    PSNR_CAP,
    SUMMARY_COLUMNS,
    SWEEP_SUMMARY_COLUMNS,
    method_family,
    paired_comparison,
    summarize,
)

# the files' names and columns live with their checks, so readers need not import this module (scipy)
from denoising.tables_schema import (
    FILES,
    PER_IMAGE_COLUMNS,
    SWEEP_FILES,
    SWEEP_PER_IMAGE_COLUMNS,
    SWEEP_PER_IMAGE_DTYPES,
    SWEEP_TIMING_COLUMNS,
    TableError,
    read_results,
)

log = logging.getLogger(__name__)

PER_IMAGE_DTYPES = {"test_set": str, "image_id": str, "noise": str, "noise_params": str, "noise_seed": "int64",
                    "method": str, "mae": "float64", "psnr": "float64", "ssim": "float64", "seconds": "float64"}
TIMING_COLUMNS = ["test_set", "noise", "method", "n_images", "seconds_per_image"]
FLOAT_FORMAT = "%.6g"
#: Parquet compression (zstd: small and fast; the file is byte-identical for the same table).
PARQUET_COMPRESSION = "zstd"

#: ``progress(n_done, description)``: ``n_done`` face-method evaluations just finished.
Progress = Callable[[int, str], None]

#: Faces per chunk of a slow method's batch: small enough that the progress bar moves every few seconds.
SLOW_CHUNK = 8
#: Faces per chunk of the other methods (the learned models' forward-pass batch, so batches match a one-chunk run).
FAST_CHUNK = 256


# ----------------------------------------------------------------------------- chunks, in this process or workers


def _chunks(n: int, size: int) -> list[slice]:
    """Consecutive slices of at most ``size`` faces: they depend on ``n`` only, never on the workers."""
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def _denoise_chunk(method: Any, noisy: np.ndarray, noise: NoiseSpec, warm_up: bool) -> tuple[np.ndarray, float]:
    """One chunk, wherever it runs: the denoised faces and the seconds the timed call took.

    The warm-up (one face, untimed) keeps one-time costs out of the time: imports, and a learned
    model loading its checkpoint in a fresh worker process.
    """
    if warm_up:
        method(noisy[:1], noise)
    start = time.perf_counter()
    out = method(noisy, noise)
    return out, time.perf_counter() - start


def _denoise(method: Any, noisy: np.ndarray, noise: NoiseSpec, workers: int | None,
             tick: Callable[[int], None]) -> tuple[np.ndarray, float]:
    """Run ``method`` on ``noisy`` chunk by chunk through joblib; outputs in order and the summed seconds."""
    parts = _chunks(len(noisy), SLOW_CHUNK if method.slow else FAST_CHUNK)
    if not parts:
        return noisy.copy(), 0.0
    tasks = (delayed(_denoise_chunk)(method, noisy[part], noise, not method.slow) for part in parts)
    # max_nbytes=None: chunks are small, and read-only memory maps would make torch warn in the workers
    parallel = Parallel(n_jobs=workers, return_as="generator", max_nbytes=None)
    outputs, seconds = [], 0.0
    results = parallel(tasks)
    try:
        for part, (out, chunk_seconds) in zip(parts, results, strict=True):
            outputs.append(out)
            seconds += chunk_seconds
            tick(part.stop - part.start)
    finally:
        # closing the generator early (an interrupt or error) aborts the remaining chunks and joblib kills
        # loky's workers; its warning that chunks were cancelled is exactly what was asked for
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*adjusting the input task", category=UserWarning)
            results.close()
    return np.concatenate(outputs), seconds


# ----------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class _Planned:
    """The inputs one method is scored on for one noise kind: faces in sorted id order and their noisy copies."""

    test_set: str
    spec: NoiseSpec
    ids: np.ndarray
    seeds: np.ndarray
    clean: np.ndarray
    noisy: np.ndarray

    @property
    def params(self) -> str:
        return self.spec.to_json()

    def first(self, n: int) -> _Planned:
        return _Planned(self.test_set, self.spec, self.ids[:n], self.seeds[:n], self.clean[:n], self.noisy[:n])


def _faces_for(method: Any, n_faces: int, slow_subset: int | None) -> int:
    return min(n_faces, slow_subset) if (method.slow and slow_subset is not None) else n_faces


def planned_work(n_faces: int, methods: Mapping[str, Any], specs: Mapping[str, NoiseSpec],
                 slow_subset: int | None = None) -> int:
    """Number of face-method evaluations :func:`evaluate` will make (for a progress bar's total)."""
    return sum(_faces_for(method, n_faces, slow_subset)
               for kind in specs for method in methods.values() if method.available(kind))


def _sorted_faces(faces: Any) -> tuple[np.ndarray, np.ndarray]:
    ids = faces.table["image_id"].astype(str).to_numpy()
    if len(ids) != len(faces.images):
        raise ValueError(f"face table has {len(ids)} rows for {len(faces.images)} images")
    if len(set(ids)) != len(ids):
        raise ValueError("image ids must be unique within a test set")
    order = np.argsort(ids, kind="stable")
    return np.asarray(faces.images[order], dtype=np.float32), ids[order]


def _kinds_in_order(specs: Mapping[str, NoiseSpec]) -> list[str]:
    for kind, spec in specs.items():
        if spec.kind != kind:
            raise ValueError(f"specs[{kind!r}] is a {spec.kind} noise spec")
    return sorted(specs, key=lambda k: (NOISE_KINDS.index(k) if k in NOISE_KINDS else len(NOISE_KINDS), k))


def _score(name: str, method: Any, planned: _Planned, workers: int | None, progress: Progress | None) -> pd.DataFrame:
    """Denoise and score one method's planned faces: its rows of the per-image table."""
    desc = f"{planned.test_set} {planned.spec.kind} {name}"
    out, seconds = _denoise(method, planned.noisy, planned.spec, workers,
                            lambda n: progress(n, desc) if progress is not None else None)
    if out.shape != planned.noisy.shape:
        raise ValueError(f"method {name!r} returned shape {out.shape} for input {planned.noisy.shape}")
    scores = score(planned.clean, out)
    per_face = seconds / max(len(out), 1)
    log.info("%s: %d faces, MAE %.4f, %.3g s/face", desc, len(out), float(scores["mae"].mean()), per_face)
    return pd.DataFrame({
        "test_set": planned.test_set, "image_id": planned.ids, "noise": planned.spec.kind,
        "noise_params": planned.params, "noise_seed": planned.seeds.astype(np.int64), "method": name,
        "mae": scores["mae"], "psnr": scores["psnr"], "ssim": scores["ssim"], "seconds": per_face})


def _reusable(reuse: pd.DataFrame | None, name: str, planned: _Planned) -> pd.DataFrame | None:
    """The earlier rows of one method and noise kind when they match the planned faces and seeds exactly."""
    if reuse is None or reuse.empty:
        return None
    part = reuse[(reuse["test_set"] == planned.test_set) & (reuse["noise"] == planned.spec.kind)
                 & (reuse["method"] == name) & (reuse["noise_params"].astype(str) == planned.params)]
    wanted = pd.DataFrame({"image_id": planned.ids.astype(str), "noise_seed": planned.seeds.astype(np.int64)})
    part = part.assign(image_id=part["image_id"].astype(str), noise_seed=part["noise_seed"].astype(np.int64))
    rows = wanted.merge(part.drop_duplicates(["image_id", "noise_seed"]), on=["image_id", "noise_seed"], how="left")
    if rows[["mae", "psnr", "ssim", "seconds"]].isna().any(axis=None):
        return None  # some planned face has no earlier row with this exact noisy input (or lacks its time)
    return rows[PER_IMAGE_COLUMNS].astype(PER_IMAGE_DTYPES)


def _rows_of(name: str, method: Any, planned: _Planned, workers: int | None, progress: Progress | None,
             reuse: pd.DataFrame | None) -> pd.DataFrame:
    """One method's rows for one noise kind: reused from an earlier run when they match, else computed."""
    earlier = _reusable(reuse, name, planned)
    if earlier is None:
        return _score(name, method, planned, workers, progress)
    desc = f"{planned.test_set} {planned.spec.kind} {name}"
    if progress is not None:
        progress(len(planned.ids), f"{desc} (reused)")
    log.info("%s: %d faces reused from an earlier run", desc, len(planned.ids))
    return earlier


def _empty_table() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in PER_IMAGE_DTYPES.items()})[PER_IMAGE_COLUMNS]


def evaluate(faces: Any, test_set: str, methods: Mapping[str, Any], specs: Mapping[str, NoiseSpec],
             base_seed: int = 0, slow_subset: int | None = None, workers: int | None = 1,
             progress: Progress | None = None, reuse: pd.DataFrame | None = None) -> pd.DataFrame:
    """Score every method on the same noisy copies of one test set.

    Parameters
    ----------
    faces : denoising.faces.FaceSet
        The test faces (e.g. ``load_prepared(dir).subset("test")``). They are processed in sorted
        ``image_id`` order, whatever their order in ``faces``.
    test_set : str
        Name written in the ``test_set`` column (``"celeba_test"``, ``"lfw"``).
    methods : mapping of str to denoising.denoisers.Denoiser
        Methods to score, called as ``method(noisy_batch, noise_spec)``; one that is not
        ``available(kind)`` for a noise kind is skipped there.
    specs : mapping of str to NoiseSpec
        Noise kind -> noise (e.g. ``PRESETS["post"]``).
    base_seed : int, optional
        Run seed passed to :func:`denoising.noise.noisy_copies` (default 0).
    slow_subset : int or None, optional
        Score methods flagged ``slow`` (BM3D) only on the first ``slow_subset`` faces in sorted
        ``image_id`` order (a fixed, reproducible subset); None (default) scores every face.
    workers : int or None, optional
        1 (default): every chunk in this process. N > 1: N worker processes (joblib's loky
        backend). None: the backend and ``n_jobs`` of the active :func:`joblib.parallel_config`
        (e.g. ``backend="dask"``). The table is the same whichever is used.
    progress : callable, optional
        ``progress(n_done, description)`` after each chunk of face-method evaluations.
    reuse : pandas.DataFrame, optional
        Rows of an earlier run (:data:`PER_IMAGE_COLUMNS`). A method's rows for one noise kind are
        taken from it instead of recomputed when they cover exactly the faces, noise parameters and
        noise seeds planned here (so an interrupted or extended evaluation need not redo BM3D).
        Only pass rows of methods whose code and weights have not changed since.

    Returns
    -------
    pandas.DataFrame
        :data:`PER_IMAGE_COLUMNS`, one row per image x noise x method, sorted by noise (in
        ``NOISE_KINDS`` order), method (in ``methods`` order) and image id. ``seconds`` is the
        method's compute time per face: the timed calls of all its chunks, wherever they ran,
        divided by the number of faces (each chunk of a method that is not slow first gets an
        untimed one-face warm-up), so it does not depend on the number of workers.
    """
    clean, ids = _sorted_faces(faces)
    if slow_subset is not None and slow_subset < 1:
        raise ValueError(f"slow_subset must be at least 1 (or None for every face), got {slow_subset}")
    frames = []
    for kind in _kinds_in_order(specs):
        noisy, seeds = noisy_copies(clean, ids, specs[kind], base_seed)
        planned = _Planned(test_set, specs[kind], ids, seeds, clean, noisy)
        for name, method in methods.items():
            if not method.available(kind):
                log.info("%s: no model for %s noise, skipped", name, kind)
                continue
            n = _faces_for(method, len(ids), slow_subset)
            frames.append(_rows_of(name, method, planned.first(n), workers, progress, reuse))
    if not frames:
        return _empty_table()
    # frames are built in (noise, method, sorted id) order already: that is the table's order
    return pd.concat(frames, ignore_index=True)[PER_IMAGE_COLUMNS].astype(PER_IMAGE_DTYPES)


def timings(per_image: pd.DataFrame) -> pd.DataFrame:
    """Wall time per face of each (test set, noise, method) call: :data:`TIMING_COLUMNS`."""
    groups = per_image.groupby(["test_set", "noise", "method"], sort=False)
    out = groups.agg(n_images=("image_id", "size"), seconds_per_image=("seconds", "first")).reset_index()
    return out[TIMING_COLUMNS]


# ----------------------------------------------------------------------------- tables on disk


def faces_summary(faces: Any) -> dict:
    """Which faces a test set holds: count, first/last ids and a hash of the sorted id list."""
    ids = sorted(faces.table["image_id"].astype(str))
    sources = faces.table["source"].astype(str).value_counts().to_dict() if "source" in faces.table else {}
    return {"n_faces": len(ids), "first_id": ids[0] if ids else None, "last_id": ids[-1] if ids else None,
            "ids_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest(),
            "sources": {str(k): int(v) for k, v in sorted(sources.items())},
            "image_size": list(np.asarray(faces.images).shape[1:3])}


def write_tables(per_image: pd.DataFrame, summary: pd.DataFrame, meta: dict, out_dir: str | Path) -> dict[str, Path]:
    """Write ``per_image.csv``, ``summary.csv``, ``timings.csv`` and ``meta.json`` into ``out_dir``.

    Parameters
    ----------
    per_image : pandas.DataFrame
        Output of :func:`evaluate` (several test sets concatenated). Its ``seconds`` column goes to
        ``timings.csv`` (per call), not into ``per_image.csv``, so that file is byte-identical
        between runs with the same seed.
    summary : pandas.DataFrame
        Output of :func:`denoising.stats.summarize`.
    meta : dict
        JSON-serialisable description of the run (written with sorted keys), to which ``rows`` (the
        number of rows of each table) is added so that a reader can tell a table cut short.
    out_dir : str or Path
        Folder, created if needed. Files are written to a temporary name and renamed.

    Returns
    -------
    dict[str, Path]
        Key (``per_image``, ``summary``, ``timings``, ``meta``) -> written path.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = {"per_image": len(per_image), "summary": len(summary)}
    if "seconds" in per_image.columns:
        rows["timings"] = len(per_image.groupby(["test_set", "noise", "method"], sort=False))
    meta = {**meta, "rows": rows}
    texts = {
        "per_image": per_image.drop(columns=["seconds"], errors="ignore")
        .to_csv(index=False, float_format=FLOAT_FORMAT, lineterminator="\n"),
        "summary": summary[SUMMARY_COLUMNS].to_csv(index=False, float_format=FLOAT_FORMAT, lineterminator="\n"),
        "meta": json.dumps(meta, indent=1, sort_keys=True, default=str) + "\n",
    }
    if "seconds" in per_image.columns:
        texts["timings"] = timings(per_image).to_csv(index=False, float_format="%.4g", lineterminator="\n")
    paths = {}
    for key, text in texts.items():
        path = out / FILES[key]
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        paths[key] = path
    log.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    return paths


def with_family(summary: pd.DataFrame) -> pd.DataFrame:
    """``summary`` with a ``family`` column after ``method``, filled from the catalogue when it has none.

    Tables written before the column existed (the summary.csv shipped before issue #9) read like new ones.
    """
    if "family" in summary.columns or "method" not in summary.columns:
        return summary
    out = summary.copy()
    out.insert(out.columns.get_loc("method") + 1, "family", [method_family(str(m)) for m in out["method"]])
    return out


@dataclass
class ResultTables:
    """The tables of one folder (empty frames / dict for missing optional files)."""

    per_image: pd.DataFrame
    summary: pd.DataFrame
    timings: pd.DataFrame = field(default_factory=pd.DataFrame)
    meta: dict = field(default_factory=dict)


def load_tables(directory: str | Path) -> ResultTables:
    """Read the tables written by :func:`write_tables`.

    Parameters
    ----------
    directory : str or Path
        Folder holding at least ``per_image.csv`` and ``summary.csv``.

    Returns
    -------
    ResultTables
        ``per_image`` with string ids/params, int64 seeds and float64 metrics (``inf`` PSNR kept);
        ``summary`` (a ``family`` column filled from the catalogue when the file predates it, see
        :func:`with_family`); ``timings`` and ``meta`` when present.

    Raises
    ------
    FileNotFoundError
        When ``summary.csv`` is missing (message names the folder).
    denoising.tables_schema.TableError
        A ``ValueError`` naming the file, when a file is malformed (see :mod:`denoising.tables_schema`):
        empty or binary, a row with extra or missing fields, a missing column, text where a number
        belongs, a table shorter than ``meta.json`` says, or a summary without ``per_image.csv``.
    """
    folder = Path(directory)
    missing = [FILES[k] for k in ("per_image", "summary") if not (folder / FILES[k]).is_file()]
    if missing and missing != [FILES["per_image"]]:  # a summary alone is a TableError (read_results)
        raise FileNotFoundError(f"no result tables in {folder} (missing {', '.join(missing)}); "
                                "run scripts/evaluate.py first")
    read = read_results(folder, FILES, [c for c in PER_IMAGE_COLUMNS if c != "seconds"],
                        [c for c in SUMMARY_COLUMNS if c != "family"])
    per_image = read["per_image"].astype({c: t for c, t in PER_IMAGE_DTYPES.items() if c in read["per_image"]})
    summary = with_family(read["summary"])
    timing = read["timings"] if read["timings"] is not None else pd.DataFrame()
    meta = read["meta"]
    return ResultTables(per_image, summary, timing, meta)


# ----------------------------------------------------------------------------- strength-sweep tables on disk


def sweep_timings(per_image: pd.DataFrame) -> pd.DataFrame:
    """Compute time per face of each (test set, noise, strength, method) call: :data:`SWEEP_TIMING_COLUMNS`."""
    groups = per_image.groupby(["test_set", "noise", "strength", "method"], sort=False)
    out = groups.agg(n_images=("image_id", "size"), seconds_per_image=("seconds", "first")).reset_index()
    return out[SWEEP_TIMING_COLUMNS]


def _exact_strength(table: pd.DataFrame) -> pd.DataFrame:
    """``strength`` as the shortest text that reads back as the same float (not rounded by FLOAT_FORMAT)."""
    return table.assign(strength=[repr(float(v)) for v in table["strength"]])


def _parquet_bytes(per_image: pd.DataFrame) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(per_image[SWEEP_PER_IMAGE_COLUMNS].astype(SWEEP_PER_IMAGE_DTYPES),
                                 preserve_index=False)
    sink = pa.BufferOutputStream()
    # metrics: byte-stream split (about a sixth smaller than dictionaries of near-unique floats); the rest repeats
    metrics, repeated = list(METRICS), [c for c in SWEEP_PER_IMAGE_COLUMNS if c not in METRICS]
    pq.write_table(table, sink, compression=PARQUET_COMPRESSION, use_dictionary=repeated,
                   use_byte_stream_split=metrics)
    return sink.getvalue().to_pybytes()


def write_sweep_tables(per_image: pd.DataFrame, summary: pd.DataFrame, meta: dict,
                       out_dir: str | Path) -> dict[str, Path]:
    """Write the four sweep files (:data:`SWEEP_FILES`) into ``out_dir``.

    ``per_image`` is :func:`denoising.sweep.sweep`'s output (test sets concatenated); its ``seconds`` go to
    ``sweep_timings.csv``. Every file is
    written to a temporary name first and only then are they all renamed, so an error while
    writing leaves no half-written table.

    Returns
    -------
    dict[str, Path]
        Key (``per_image``, ``summary``, ``timings``, ``meta``) -> written path.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # each table's row count, so that a reader can tell a table cut short (tables_schema.read_sweep_results)
    rows = {"per_image": len(per_image), "summary": len(summary)}
    if "seconds" in per_image.columns:
        rows["timings"] = len(per_image.groupby(["test_set", "noise", "strength", "method"], sort=False))
    meta = {**meta, "rows": rows}
    contents: dict[str, bytes] = {
        "per_image": _parquet_bytes(per_image),
        "summary": _exact_strength(summary[SWEEP_SUMMARY_COLUMNS]).to_csv(
            index=False, float_format=FLOAT_FORMAT, lineterminator="\n").encode(),
        "meta": (json.dumps(meta, indent=1, sort_keys=True, default=str) + "\n").encode(),
    }
    if "seconds" in per_image.columns:
        contents["timings"] = _exact_strength(sweep_timings(per_image)).to_csv(
            index=False, float_format="%.4g", lineterminator="\n").encode()
    temporary = {key: out / (SWEEP_FILES[key] + ".tmp") for key in contents}
    try:
        for key, data in contents.items():
            temporary[key].write_bytes(data)
    except BaseException:
        for path in temporary.values():
            path.unlink(missing_ok=True)
        raise
    paths = {key: tmp.replace(out / SWEEP_FILES[key]) for key, tmp in temporary.items()}
    log.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    return paths


def read_sweep_per_image(path: str | Path) -> pd.DataFrame:
    """``sweep_per_image.parquet`` as a frame of :data:`SWEEP_PER_IMAGE_COLUMNS`, every value checked.

    Raises
    ------
    TableError
        A ``ValueError`` naming the file: cut short, not Parquet, a missing column or a wrong type, a
        value out of range (see :func:`denoising.tables_schema.sweep_per_image_table`).
    """
    from denoising.tables_schema import sweep_per_image_table

    return sweep_per_image_table(Path(path), SWEEP_PER_IMAGE_DTYPES)


@dataclass
class SweepTables:
    """The sweep tables of one folder (empty frame / dict for missing optional files)."""

    per_image: pd.DataFrame
    summary: pd.DataFrame
    timings: pd.DataFrame
    meta: dict


def load_sweep_tables(directory: str | Path) -> SweepTables:
    """Read what :func:`write_sweep_tables` wrote (``strength`` read back to the exact float).

    Raises
    ------
    FileNotFoundError
        When the Parquet file or ``sweep_summary.csv`` is missing (the message names the folder).
    ValueError
        When a file is unreadable or lacks columns.
    """
    folder = Path(directory)
    missing = [SWEEP_FILES[k] for k in ("per_image", "summary") if not (folder / SWEEP_FILES[k]).is_file()]
    if missing:
        raise FileNotFoundError(f"no sweep tables in {folder} (missing {', '.join(missing)}); run scripts/sweep.py first")
    from denoising.tables_schema import check_row_count, read_sweep_results, timings_table

    read = read_sweep_results(folder, SWEEP_FILES, SWEEP_PER_IMAGE_DTYPES, SWEEP_SUMMARY_COLUMNS)
    per_image, summary, meta = read["per_image"], read["summary"], read["meta"]
    timings = folder / SWEEP_FILES["timings"]
    timing = timings_table(timings) if timings.is_file() else pd.DataFrame(columns=SWEEP_TIMING_COLUMNS)
    if "strength" in timing.columns:
        timing["strength"] = pd.to_numeric(timing["strength"], errors="coerce")
    if timings.is_file():
        check_row_count(timings.name, len(timing), SWEEP_FILES["meta"], meta.get("rows", {}).get("timings"))
    return SweepTables(per_image, summary, timing, meta)


# ----------------------------------------------------------------------------- README table


def markdown_results(summary: pd.DataFrame, test_sets: list[str] | None = None,
                     names: dict[str, str] | None = None) -> str:
    """Markdown tables of mean MAE / PSNR / SSIM, methods as rows and noise kinds as columns.

    Parameters
    ----------
    summary : pandas.DataFrame
        Summary table (:func:`denoising.stats.summarize` or ``summary.csv``).
    test_sets : list of str, optional
        Which test sets, in order (default: all, in table order).
    names : dict, optional
        Method name -> display name for the first column (default: the names themselves).

    Returns
    -------
    str
        One heading and table per test set. Cells are ``MAE / PSNR dB / SSIM`` (4, 2 and 3
        decimals) of the rounded summary means; ``n = k`` marks cells averaged over fewer faces
        than the test set (e.g. a BM3D subset); ``—`` where a method was not run.
    """
    names = names or {}
    test_sets = test_sets or list(dict.fromkeys(summary["test_set"].astype(str)))
    blocks = []
    for test_set in test_sets:
        part = summary[summary["test_set"].astype(str) == test_set]
        if part.empty:
            continue
        kinds = sorted(dict.fromkeys(part["noise"]), key=lambda k: NOISE_KINDS.index(k) if k in NOISE_KINDS else 99)
        # catalogue order (baseline, classical, learned), whatever noise kind a method first appears under
        order = {name: i for i, name in enumerate(catalogue.METHODS)}
        methods = sorted(dict.fromkeys(part["method"]), key=lambda m: (order.get(m, len(order)), m))
        n_full = int(part["n_images"].max())
        title = test_set_title(test_set)
        lines = [f"**{title}** ({n_full} faces; each cell: mean MAE ↓ / PSNR dB ↑ / SSIM ↑)", "",
                 "| method | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
        cells = part.set_index(["method", "noise"])
        for method in methods:
            row = [names.get(method, method)]
            for kind in kinds:
                if (method, kind) not in cells.index:
                    row.append("—")
                    continue
                r = cells.loc[(method, kind)]
                text = f"{r['mae_mean']:.4f} / {r['psnr_mean']:.2f} / {r['ssim_mean']:.3f}"
                if int(r["n_images"]) < n_full:
                    text += f" (n = {int(r['n_images'])})"
                row.append(text)
            lines.append("| " + " | ".join(row) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


__all__ = ["PER_IMAGE_COLUMNS", "TIMING_COLUMNS", "FLOAT_FORMAT", "PSNR_CAP", "SLOW_CHUNK", "FAST_CHUNK",
           "ResultTables", "TableError", "evaluate", "planned_work", "summarize", "paired_comparison", "timings", "faces_summary", "write_tables",
           "with_family", "load_tables", "markdown_results", "SWEEP_PER_IMAGE_COLUMNS", "SWEEP_TIMING_COLUMNS",
           "SWEEP_FILES", "sweep_timings", "write_sweep_tables", "read_sweep_per_image", "SweepTables",
           "load_sweep_tables"]
