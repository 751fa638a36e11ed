"""Score every method on the same noisy test faces, and read/write the result tables.

One honest pipeline: for each noise kind, every test face gets one noisy copy drawn from its own
seed (:func:`denoising.noise.noisy_copies`), every method available for that kind denoises that
same batch, and each output is scored against the clean original (MAE, PSNR, SSIM).

Tables (written by :func:`write_tables` into ``checkpoints/tables``)
------------------------------------------------------------------
``per_image.csv``
    One row per test set x image x noise x method: :data:`PER_IMAGE_COLUMNS` minus ``seconds``.
    ``noise_params`` is ``NoiseSpec.to_json()`` and ``noise_seed`` the seed of that face's noisy
    copy, so ``spec.apply(clean[None], np.random.default_rng(noise_seed))`` rebuilds the exact
    input that was scored. PSNR is ``inf`` for an output identical to the clean face.
``summary.csv``
    :data:`denoising.stats.SUMMARY_COLUMNS` (mean, std, median, 95% bootstrap CI per metric).
``timings.csv``
    :data:`TIMING_COLUMNS`: wall time per face of each method call. Kept apart because wall time
    changes from run to run; everything else is byte-identical for the same seed on one machine.
``meta.json``
    How the tables were made (command, seed, versions, faces, slow-method subset, ...).

Floats are written with :data:`FLOAT_FORMAT` (6 significant digits) so that the same inputs give
the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import pickle
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from denoising.metrics import score
from denoising.noise import NOISE_KINDS, NoiseSpec, noisy_copies
from denoising.stats import METRICS, PSNR_CAP, SUMMARY_COLUMNS, paired_comparison, summarize

log = logging.getLogger(__name__)

PER_IMAGE_COLUMNS = ["test_set", "image_id", "noise", "noise_params", "noise_seed", "method",
                     "mae", "psnr", "ssim", "seconds"]
PER_IMAGE_DTYPES = {"test_set": str, "image_id": str, "noise": str, "noise_params": str, "noise_seed": "int64",
                    "method": str, "mae": "float64", "psnr": "float64", "ssim": "float64", "seconds": "float64"}
TIMING_COLUMNS = ["test_set", "noise", "method", "n_images", "seconds_per_image"]
FLOAT_FORMAT = "%.6g"
FILES = {"per_image": "per_image.csv", "summary": "summary.csv", "timings": "timings.csv", "meta": "meta.json"}
TEST_SET_TITLES = {"celeba_test": "CelebA test split", "lfw": "LFW (scikit-image's 100 built-in faces)"}

#: ``progress(n_done, description)``: ``n_done`` face-method evaluations just finished.
Progress = Callable[[int, str], None]


# ----------------------------------------------------------------------------- parallel slow methods

_WORKER_METHODS: dict[str, Any] = {}


def _worker_denoise(method: Any, images: np.ndarray, noise_kind: str) -> np.ndarray:
    """Run one chunk in a worker process; ``method`` is a classical method name or a picklable callable."""
    if isinstance(method, str):
        if method not in _WORKER_METHODS:
            from denoising.registry import classical_methods

            _WORKER_METHODS.update(classical_methods())
        method = _WORKER_METHODS[method]
    return np.asarray(method(images, noise_kind), dtype=np.float32)


def _portable(method: Any) -> Any | None:
    """What a worker process can rebuild the method from: its classical name, itself, or None."""
    from denoising.registry import classical_methods

    classical = classical_methods()
    if method.family != "learned" and method.name in classical \
            and classical[method.name].display_name == method.display_name:
        return method.name  # registry closures do not pickle; the worker looks the filter up by name
    try:
        pickle.dumps(method)
    except Exception:  # noqa: BLE001 - any pickling failure means: run it in this process
        return None
    return method


#: Faces per piece of a slow method's batch: small enough that the progress bar moves every few seconds.
SLOW_CHUNK = 8


def _chunks(n: int, n_chunks: int) -> list[slice]:
    bounds = np.linspace(0, n, max(1, min(n, n_chunks)) + 1).round().astype(int)
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


class _Runner:
    """Runs methods on batches, in this process or (slow methods) across a lazily started process pool."""

    def __init__(self, workers: int, progress: Progress | None):
        self.workers = max(1, int(workers))
        self.progress = progress
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> "_Runner":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if self.pool is not None:
            if exc_type is not None:
                # an error or Ctrl-C: stop the workers now rather than after the queued chunks (a minute of BM3D)
                terminate = getattr(self.pool, "terminate_workers", None)  # Python >= 3.14
                if terminate is not None:
                    terminate()
                else:
                    for process in list((getattr(self.pool, "_processes", None) or {}).values()):
                        process.terminate()
            self.pool.shutdown(wait=True, cancel_futures=exc_type is not None)

    def _tick(self, n: int, desc: str) -> None:
        if self.progress is not None:
            self.progress(n, desc)

    def run(self, method: Any, images: np.ndarray, noise_kind: str, desc: str) -> np.ndarray:
        portable = _portable(method) if method.slow and self.workers > 1 and len(images) > 1 else None
        if portable is None:
            parts = _chunks(len(images), -(-len(images) // SLOW_CHUNK)) if method.slow else [slice(0, len(images))]
            outputs = []
            for s in parts:
                outputs.append(np.asarray(method(images[s], noise_kind), dtype=np.float32))
                self._tick(s.stop - s.start, desc)
            return np.concatenate(outputs)
        if self.pool is None:
            # spawn, not fork: the parent may hold torch's thread pools, which do not survive a fork
            self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        # several chunks per worker even out the load
        parts = _chunks(len(images), max(4 * self.workers, -(-len(images) // SLOW_CHUNK)))
        futures = [self.pool.submit(_worker_denoise, portable, images[s], noise_kind) for s in parts]
        outputs = []
        for s, future in zip(parts, futures):  # in order, so the result does not depend on scheduling
            outputs.append(future.result())
            self._tick(s.stop - s.start, desc)
        return np.concatenate(outputs)


# ----------------------------------------------------------------------------- evaluation


def planned_work(n_faces: int, methods: dict, specs: dict, slow_subset: int | None = None) -> int:
    """Number of face-method evaluations :func:`evaluate` will make (for a progress bar's total)."""
    total = 0
    for kind in specs:
        for method in methods.values():
            if method.available(kind):
                total += min(n_faces, slow_subset) if (method.slow and slow_subset is not None) else n_faces
    return total


def _sorted_faces(faces: Any) -> tuple[np.ndarray, np.ndarray]:
    ids = faces.table["image_id"].astype(str).to_numpy()
    if len(ids) != len(faces.images):
        raise ValueError(f"face table has {len(ids)} rows for {len(faces.images)} images")
    if len(set(ids)) != len(ids):
        raise ValueError("image ids must be unique within a test set")
    order = np.argsort(ids, kind="stable")
    return np.asarray(faces.images[order], dtype=np.float32), ids[order]


def evaluate(faces: Any, test_set: str, methods: dict, specs: dict[str, NoiseSpec], base_seed: int = 0,
             slow_subset: int | None = None, workers: int = 1, progress: Progress | None = None,
             reuse: pd.DataFrame | None = None) -> pd.DataFrame:
    """Score every method on the same noisy copies of one test set.

    Parameters
    ----------
    faces : denoising.faces.FaceSet
        The test faces (e.g. ``load_prepared(dir).subset("test")``). They are processed in sorted
        ``image_id`` order, whatever their order in ``faces``.
    test_set : str
        Name written in the ``test_set`` column (``"celeba_test"``, ``"lfw"``).
    methods : dict[str, denoising.registry.Method]
        Methods to score; one that is not ``available(kind)`` for a noise kind is skipped there.
    specs : dict[str, NoiseSpec]
        Noise kind -> noise (e.g. ``PRESETS["post"]``).
    base_seed : int, optional
        Run seed passed to :func:`denoising.noise.noisy_copies` (default 0).
    slow_subset : int or None, optional
        Score methods flagged ``slow`` (BM3D) only on the first ``slow_subset`` faces in sorted
        ``image_id`` order (a fixed, reproducible subset); None (default) scores every face.
    workers : int, optional
        Processes for slow methods (chunks of faces in parallel; default 1 = this process).
        Classical filters are rebuilt by name in the workers; other unpicklable methods run here.
    progress : callable, optional
        ``progress(n_done, description)`` after each batch of face-method evaluations.
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
        method's wall time on the batch divided by the number of faces in it, after a one-face
        warm-up call for methods that are not slow (slow ones include starting the process pool).
    """
    clean, ids = _sorted_faces(faces)
    if slow_subset is not None and slow_subset < 1:
        raise ValueError(f"slow_subset must be at least 1 (or None for every face), got {slow_subset}")
    kinds = sorted(specs, key=lambda k: (NOISE_KINDS.index(k) if k in NOISE_KINDS else len(NOISE_KINDS), k))
    frames = []
    with _Runner(workers, progress) as runner:
        for kind in kinds:
            spec = specs[kind]
            if spec.kind != kind:
                raise ValueError(f"specs[{kind!r}] is a {spec.kind} noise spec")
            noisy, seeds = noisy_copies(clean, ids, spec, base_seed)
            params = spec.to_json()
            for name, method in methods.items():
                if not method.available(kind):
                    log.info("%s: no model for %s noise, skipped", name, kind)
                    continue
                n = min(len(ids), slow_subset) if (method.slow and slow_subset is not None) else len(ids)
                earlier = _reusable(reuse, test_set, kind, name, ids[:n], seeds[:n], params)
                if earlier is not None:
                    frames.append(earlier)
                    if progress:
                        progress(n, f"{test_set} {kind} {name} (reused)")
                    log.info("%s %s %s: %d faces reused from an earlier run", test_set, kind, name, n)
                    continue
                if not method.slow:
                    # one-face warm-up, so one-time costs (imports, loading a checkpoint) are not timed
                    method(noisy[:1], kind)
                start = time.perf_counter()
                out = runner.run(method, noisy[:n], kind, f"{test_set} {kind} {name}")
                seconds = (time.perf_counter() - start) / max(n, 1)
                if out.shape != noisy[:n].shape:
                    raise ValueError(f"method {name!r} returned shape {out.shape} for input {noisy[:n].shape}")
                scores = score(clean[:n], out)
                frames.append(pd.DataFrame({
                    "test_set": test_set, "image_id": ids[:n], "noise": kind, "noise_params": params,
                    "noise_seed": seeds[:n].astype(np.int64), "method": name,
                    "mae": scores["mae"], "psnr": scores["psnr"], "ssim": scores["ssim"], "seconds": seconds}))
                log.info("%s %s %s: %d faces, MAE %.4f, %.3g s/face", test_set, kind, name, n,
                         float(scores["mae"].mean()), seconds)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in PER_IMAGE_DTYPES.items()})[PER_IMAGE_COLUMNS]
    # frames are built in (noise, method, sorted id) order already: that is the table's order
    return pd.concat(frames, ignore_index=True)[PER_IMAGE_COLUMNS].astype(PER_IMAGE_DTYPES)


def _reusable(reuse: pd.DataFrame | None, test_set: str, kind: str, method: str, ids: np.ndarray,
              seeds: np.ndarray, params: str) -> pd.DataFrame | None:
    """The earlier rows of one method and noise kind when they match the planned faces and seeds exactly."""
    if reuse is None or reuse.empty:
        return None
    part = reuse[(reuse["test_set"] == test_set) & (reuse["noise"] == kind) & (reuse["method"] == method)
                 & (reuse["noise_params"].astype(str) == params)]
    planned = pd.DataFrame({"image_id": ids.astype(str), "noise_seed": seeds.astype(np.int64)})
    part = part.assign(image_id=part["image_id"].astype(str), noise_seed=part["noise_seed"].astype(np.int64))
    rows = planned.merge(part.drop_duplicates(["image_id", "noise_seed"]), on=["image_id", "noise_seed"], how="left")
    if rows[["mae", "psnr", "ssim", "seconds"]].isna().any(axis=None):
        return None  # some planned face has no earlier row with this exact noisy input (or lacks its time)
    return rows[PER_IMAGE_COLUMNS].astype(PER_IMAGE_DTYPES)


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
        JSON-serialisable description of the run (written with sorted keys).
    out_dir : str or Path
        Folder, created if needed. Files are written to a temporary name and renamed.

    Returns
    -------
    dict[str, Path]
        Key (``per_image``, ``summary``, ``timings``, ``meta``) -> written path.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
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
        ``summary``; ``timings`` and ``meta`` when present.

    Raises
    ------
    FileNotFoundError
        When ``per_image.csv`` or ``summary.csv`` is missing (message names the folder).
    ValueError
        When a file is unreadable or lacks required columns.
    """
    folder = Path(directory)
    missing = [FILES[k] for k in ("per_image", "summary") if not (folder / FILES[k]).is_file()]
    if missing:
        raise FileNotFoundError(f"no result tables in {folder} (missing {', '.join(missing)}); "
                                "run scripts/evaluate.py first")
    try:
        per_image = pd.read_csv(folder / FILES["per_image"], keep_default_na=False, na_values=[""],
                                dtype={"test_set": str, "image_id": str, "noise": str, "noise_params": str,
                                       "method": str, "noise_seed": "int64"})
        summary = pd.read_csv(folder / FILES["summary"], dtype={"test_set": str, "noise": str, "method": str})
        timing = pd.read_csv(folder / FILES["timings"]) if (folder / FILES["timings"]).is_file() else pd.DataFrame()
        meta = json.loads((folder / FILES["meta"]).read_text()) if (folder / FILES["meta"]).is_file() else {}
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise ValueError(f"result tables in {folder} are unreadable: {exc}") from exc
    need = [c for c in PER_IMAGE_COLUMNS if c != "seconds" and c not in per_image.columns]
    need += [c for c in SUMMARY_COLUMNS if c not in summary.columns]
    if need:
        raise ValueError(f"result tables in {folder} lack column(s) {', '.join(need)}")
    per_image = per_image.astype({m: "float64" for m in METRICS})
    return ResultTables(per_image, summary, timing, meta)


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
        methods = list(dict.fromkeys(part["method"]))
        n_full = int(part["n_images"].max())
        title = TEST_SET_TITLES.get(test_set, test_set)
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


__all__ = ["PER_IMAGE_COLUMNS", "TIMING_COLUMNS", "FLOAT_FORMAT", "PSNR_CAP", "ResultTables", "evaluate",
           "planned_work", "summarize", "paired_comparison", "timings", "faces_summary", "write_tables",
           "load_tables", "markdown_results"]
