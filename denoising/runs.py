"""Run an evaluation from a set of options: faces, methods, where the work runs, what is recorded.

:func:`run_evaluation` is what ``scripts/evaluate.py`` calls: it checks the options, loads the
test faces and the methods, scores them with :func:`denoising.evaluation.evaluate` in this
process, in worker processes (joblib's loky backend) or on a Dask distributed cluster (joblib's
dask backend), and writes the tables with a record of how they were made (command, versions,
machine, SHA-256 of every checkpoint used) into a run folder. The tables are the same bytes
whichever backend ran them.

Output folders: by default a new ``runs/evaluate-<UTC time>/`` (git-ignored). A folder that
already holds result tables (the shipped ``checkpoints/tables`` included) is only replaced with
``force=True``.

Dask: every worker of the cluster needs this package installed (``pip install -e .`` of the same
checkout) and, for learned methods, the checkpoint folder at the same path, because a learned
denoiser travels as its checkpoint path and loads the weights where it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import hashlib
import logging
import os
import platform
import shlex
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from denoising import catalogue
from denoising.evaluation import (
    FILES,
    PER_IMAGE_COLUMNS,
    SWEEP_FILES,
    Progress,
    evaluate,
    faces_summary,
    load_sweep_tables,
    load_tables,
    markdown_results,
    planned_work,
    write_tables,
)
from denoising.registry import DEFAULT_CHECKPOINT_DIR, build_registry

log = logging.getLogger(__name__)

#: Where training and evaluation runs write by default: ``runs/`` in the working directory (git-ignored in
#: this repository, where README's commands run).
RUNS_DIR = Path("runs")
#: The shipped result tables.
SHIPPED_TABLES = DEFAULT_CHECKPOINT_DIR / "tables"
#: Bootstrap resamples for the summary's confidence intervals.
N_BOOT = 2000
#: Seconds to wait for a Dask scheduler to answer before giving up.
DASK_CONNECT_TIMEOUT_S = 10
#: How the recorded command names the script.
SCRIPT = "scripts/evaluate.py"

#: ``progress_bar(total)``: a context manager giving the ``progress(n_done, description)`` callback.
ProgressBar = Callable[[int], AbstractContextManager[Progress]]


class RunError(ValueError):
    """A problem with a run's options or inputs that the user can fix (the message is one line)."""


@dataclass
class EvaluationOptions:
    """Everything an evaluation run needs (``scripts/evaluate.py`` fills it from its flags).

    ``data`` is a prepared face cache whose test split is scored as ``celeba_test``; ``lfw`` adds
    scikit-image's 100 LFW faces. ``methods`` / ``noise`` None mean all. ``out`` None means a new
    run folder under :data:`RUNS_DIR`. ``workers`` processes on this machine, or
    ``dask_scheduler`` (an address such as ``tcp://10.0.0.5:8786``) for a Dask cluster.
    ``argv`` is the command line, recorded in ``meta.json``.
    """

    data: Path | None
    lfw: bool = True
    methods: list[str] | None = None
    noise: list[str] | None = None
    preset: str = catalogue.DEFAULT_PRESET
    checkpoints: Path = DEFAULT_CHECKPOINT_DIR
    out: Path | None = None
    force: bool = False
    seed: int = 0
    slow_subset: int | None = None
    workers: int = 1
    skip_slow: bool = False
    reuse: Path | None = None
    limit: int | None = None
    dask_scheduler: str | None = None
    argv: list[str] = field(default_factory=list)


@dataclass
class EvaluationRun:
    """What a run produced: the tables, their record, where they were written and the README table."""

    per_image: pd.DataFrame
    summary: pd.DataFrame
    meta: dict
    out_dir: Path
    paths: dict[str, Path]
    markdown: str


# ----------------------------------------------------------------------------- output folder


def new_run_dir(prefix: str, root: str | Path | None = None) -> Path:
    """A folder name under ``root`` (default :data:`RUNS_DIR`) that does not exist yet: ``<prefix>-<UTC time>``.

    A second run in the same second gets ``-2``, ``-3``, ... The folder itself is not created.
    """
    root = RUNS_DIR if root is None else root
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    base = Path(root) / f"{prefix}-{stamp}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def output_dir(out: Path | None, force: bool = False, files: Iterable[str] = tuple(FILES.values()),
               prefix: str = "evaluate") -> Path:
    """Where the tables go: ``out``, or a new run folder ``<prefix>-<time>``; an ``out`` holding any of ``files`` needs ``force``."""
    if out is None:
        return new_run_dir(prefix)
    existing = [name for name in files if (Path(out) / name).exists()]
    if existing and not force:
        raise RunError(f"{out} already holds result tables ({', '.join(existing)}); pass --force to replace "
                       "them, or leave out --out to write a new run folder")
    return Path(out)


# ----------------------------------------------------------------------------- methods, noise, faces


def select_methods(options: EvaluationOptions) -> dict[str, Any]:
    """The registry's methods named in ``options.methods`` (all by default), in registry order."""
    registry = build_registry(options.checkpoints, include_slow=not options.skip_slow)
    if not options.methods:
        return registry
    missing = [m for m in options.methods if m not in registry]
    if missing:
        slow_note = "; --skip-slow drops slow ones" if options.skip_slow else ""
        raise RunError(f"method(s) {', '.join(missing)} unknown or unavailable (learned models need checkpoints in "
                       f"{options.checkpoints}{slow_note}); available: {', '.join(registry)}")
    return {name: m for name, m in registry.items() if name in options.methods}


def noise_specs(options: EvaluationOptions) -> dict[str, Any]:
    """Noise kind -> NoiseSpec of ``options.preset`` for the kinds asked for (all by default)."""
    from denoising.noise import PRESETS

    if options.preset not in PRESETS:
        raise RunError(f"unknown preset {options.preset!r}; choose from {', '.join(PRESETS)}")
    kinds = options.noise or list(catalogue.NOISE_KINDS)
    unknown = [k for k in kinds if k not in PRESETS[options.preset]]
    if unknown:
        raise RunError(f"unknown noise kind(s) {', '.join(unknown)}; choose from {', '.join(catalogue.NOISE_KINDS)}")
    return {k: PRESETS[options.preset][k] for k in kinds}


def first_faces(faces: Any, n: int | None) -> Any:
    """The first ``n`` faces in sorted image-id order (all when ``n`` is None)."""
    from denoising.faces import FaceSet

    if n is None:
        return faces
    order = faces.table["image_id"].astype(str).argsort(kind="stable").to_numpy()[:n]
    return FaceSet(faces.images[order], faces.table.iloc[order].reset_index(drop=True), faces.meta, faces.cache_dir)


def check_data(data: Path | None) -> None:
    """A prepared face cache folder must be given and exist (checked before anything slow)."""
    if data is None:
        raise RunError("--data is required: a prepared face cache from scripts/prepare_data.py "
                       "(or use --markdown-only to print the table of existing results)")
    if not Path(data).is_dir():
        raise RunError(f"data folder {data} does not exist; prepare faces with scripts/prepare_data.py first")


def load_test_sets(options: EvaluationOptions) -> dict[str, Any]:
    """Test-set name -> faces: the cache's test split as ``celeba_test``, and ``lfw`` unless turned off."""
    from denoising.faces import FaceDataError, load_lfw_faces, load_prepared

    check_data(options.data)
    try:
        prepared = load_prepared(options.data)
    except FaceDataError as exc:
        raise RunError(str(exc)) from None
    test_sets = {"celeba_test": first_faces(prepared.subset("test"), options.limit)}
    if len(test_sets["celeba_test"]) == 0:
        raise RunError(f"the prepared faces in {options.data} have no test split")
    if options.lfw:
        test_sets["lfw"] = first_faces(load_lfw_faces(int(prepared.images.shape[1])), options.limit)
    return test_sets


def reusable_rows(folder: str | Path, methods: dict[str, Any]) -> pd.DataFrame:
    """Per-image rows of the non-learned ``methods`` in an earlier run's folder, each with its call's seconds.

    The folder may hold preset tables (``per_image.csv``), strength-sweep tables
    (``sweep_per_image.parquet``) or both, as ``checkpoints/tables`` does; rows are only used where
    their noise parameters, faces and seeds match what is planned (see
    :func:`denoising.evaluation.evaluate`), so a sweep's preset-strength rows serve a preset
    evaluation. Sweep rows come first: they hold the exact values, ``per_image.csv`` 6 significant
    digits. Learned methods are left out: their weights may have changed since. ``seconds`` comes
    from the earlier ``timings.csv`` / ``sweep_timings.csv``.

    Raises
    ------
    RunError
        When the folder has neither kind of tables, or a table that is unreadable or has no timings.
    """
    folder = Path(folder)
    has_sweep, has_preset = (folder / SWEEP_FILES["per_image"]).is_file(), (folder / FILES["per_image"]).is_file()
    if not (has_sweep or has_preset):
        raise RunError(f"--reuse: no result tables ({FILES['per_image']}) or sweep tables "
                       f"({SWEEP_FILES['per_image']}) in {folder}")
    keep = [name for name, m in methods.items() if m.family != "learned"]
    frames = []
    try:
        if has_sweep:
            earlier = load_sweep_tables(folder)
            frames.append(_with_seconds(earlier.per_image, earlier.timings, SWEEP_FILES["timings"], folder, keep))
        if has_preset:
            earlier = load_tables(folder)
            frames.append(_with_seconds(earlier.per_image, earlier.timings, FILES["timings"], folder, keep))
    except (FileNotFoundError, ValueError) as exc:
        if isinstance(exc, RunError):
            raise
        raise RunError(f"--reuse: {exc}") from None
    return pd.concat(frames, ignore_index=True)


def _with_seconds(per_image: pd.DataFrame, timings: pd.DataFrame, timings_name: str, folder: Path,
                  keep: list[str]) -> pd.DataFrame:
    if timings is None or timings.empty:
        raise RunError(f"--reuse: {folder} has no {timings_name}, so reused rows would lose their seconds")
    rows = per_image[per_image["method"].isin(keep)]
    keys = [c for c in ("test_set", "noise", "strength", "method") if c in rows.columns]
    seconds = timings[[*keys, "seconds_per_image"]]
    rows = rows.merge(seconds, on=keys, how="left", validate="many_to_one")
    return rows.rename(columns={"seconds_per_image": "seconds"})[PER_IMAGE_COLUMNS]


# ----------------------------------------------------------------------------- where the work runs


def check_dask_scheduler(address: str, timeout: float = DASK_CONNECT_TIMEOUT_S) -> None:
    """Make sure a Dask scheduler answers at ``address`` within ``timeout`` seconds.

    Raises
    ------
    RunError
        One line naming the address and why it could not be reached.
    """
    from distributed.comm import connect
    from distributed.security import Security

    async def probe() -> None:
        comm = await connect(address, timeout=timeout, **Security().get_connection_args("client"))
        await comm.close()

    try:
        asyncio.run(probe())
    # MemoryError: something that is not a Dask scheduler answered, and its bytes were read as a message length
    except (OSError, ValueError, TypeError, MemoryError) as exc:
        raise RunError(f"cannot reach a Dask scheduler at {address!r} within {timeout:g} s: {exc}") from None


@contextlib.contextmanager
def parallel_backend(workers: int, dask_scheduler: str | None = None) -> Iterator[tuple[int | None, dict]]:
    """Where :func:`denoising.evaluation.evaluate` sends its chunks, as ``(workers argument, record)``.

    Without ``dask_scheduler``: ``workers`` processes on this machine (1 = this process). With it:
    a :class:`distributed.Client` to that scheduler and joblib's dask backend on every thread of
    the cluster, closed on exit.
    """
    if dask_scheduler is None:
        yield workers, {"backend": "loky" if workers > 1 else "this process", "workers": workers}
        return
    import joblib
    from distributed import Client

    check_dask_scheduler(dask_scheduler)
    with Client(dask_scheduler, timeout=DASK_CONNECT_TIMEOUT_S, set_as_default=False) as client:
        threads = sum(client.nthreads().values())
        with joblib.parallel_config(backend="dask", client=client, n_jobs=-1):
            yield None, {"backend": "dask", "dask_scheduler": dask_scheduler,
                         "dask_workers": len(client.nthreads()), "dask_threads": threads}


# ----------------------------------------------------------------------------- record of the run


def versions() -> dict[str, str]:
    """Versions of Python, this package and the libraries that change the numbers or run the work."""
    import denoising

    out = {"denoising": denoising.__version__, "python": platform.python_version()}
    for dist in ("numpy", "pandas", "scipy", "scikit-image", "bm3d", "torch", "joblib", "dask", "distributed"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_hashes(methods: dict[str, Any], kinds: list[str]) -> dict[str, str]:
    """Weights file name -> SHA-256 for every checkpoint the learned ``methods`` use on ``kinds``."""
    hashes = {}
    for method in methods.values():
        if method.family != "learned" or not hasattr(method, "checkpoint_path"):
            continue
        for kind in kinds:
            path = Path(method.checkpoint_path(kind))
            if method.available(kind) and path.is_file():
                hashes[path.name] = sha256_file(path)
    return dict(sorted(hashes.items()))


def families(methods: dict[str, Any]) -> dict[str, str]:
    """Method name -> family (baseline / classical / learned) of each Denoiser, for the summaries."""
    return {name: method.family for name, method in methods.items()}


def _method_records(methods: dict[str, Any], per_image: pd.DataFrame, test_sets: list[str]) -> list[dict]:
    counts = per_image.groupby(["test_set", "method"], sort=False)["image_id"].nunique()
    return [{"name": n, "display_name": m.display_name, "family": m.family, "slow": m.slow,
             "faces": {ts: int(counts.get((ts, n), 0)) for ts in test_sets}} for n, m in methods.items()]


def run_metadata(options: EvaluationOptions, specs: dict, test_sets: dict, methods: dict, per_image: pd.DataFrame,
                 backend: dict, wall_seconds: float, script: str = SCRIPT) -> dict:
    """The ``meta.json`` record of a run: command (as ``python <script> ...``), data, faces, methods,
    checkpoints, versions, machine."""
    from denoising.stats import PSNR_CAP

    size = int(next(iter(test_sets.values())).images.shape[1])
    return {
        "command": "python " + shlex.join([script, *options.argv]),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seed": options.seed, "preset": options.preset, "size": size, "data": str(options.data),
        "noise": {k: s.to_json() for k, s in specs.items()},
        "test_sets": {name: faces_summary(faces) for name, faces in test_sets.items()},
        "limit": options.limit, "slow_subset": options.slow_subset,
        "reused_from": str(options.reuse) if options.reuse else None,
        "slow_subset_rule": "slow methods scored on the first N faces of each test set in sorted image_id order"
                            if options.slow_subset else "slow methods scored on every face",
        "methods": _method_records(methods, per_image, list(test_sets)),
        "checkpoints_sha256": checkpoint_hashes(methods, list(specs)),
        "metrics": {"mae": "mean |clean - output| over pixels and channels, values in [0, 1]",
                    "psnr": f"10 log10(1 / MSE), data_range 1; inf for identical images, capped at {PSNR_CAP:g} dB "
                            "in summary statistics",
                    "ssim": "skimage-equivalent structural_similarity, channel_axis=-1, data_range=1, win_size=7"},
        "bootstrap": {"kind": "percentile, 95%", "n_boot": N_BOOT, "seed": options.seed},
        "noise_seed_rule": "noise_seed = derive_seed(seed, image_id, kind, noise_params); "
                           "noisy = NoiseSpec.from_json(noise_params).apply(clean[None], default_rng(noise_seed))[0]",
        "versions": versions(),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), **backend},
        "wall_seconds": round(wall_seconds, 1),
    }


# ----------------------------------------------------------------------------- the run


def _score_test_sets(test_sets: dict, methods: dict, specs: dict, options: EvaluationOptions, workers: int | None,
                     progress: Progress, reuse: pd.DataFrame | None) -> pd.DataFrame:
    from denoising.models.checkpoint import CheckpointError

    frames = []
    try:
        for name, faces in test_sets.items():
            frames.append(evaluate(faces, name, methods, specs, base_seed=options.seed,
                                   slow_subset=options.slow_subset, workers=workers, progress=progress, reuse=reuse))
    except CheckpointError as exc:
        raise RunError(f"{exc}; no tables written") from None
    return pd.concat(frames, ignore_index=True)


def _no_bar(total: int) -> AbstractContextManager[Progress]:
    return contextlib.nullcontext(lambda n, desc: None)


def run_evaluation(options: EvaluationOptions, progress_bar: ProgressBar | None = None) -> EvaluationRun:
    """Check the options, score every method on every test set, write the tables and their record.

    Parameters
    ----------
    options : EvaluationOptions
        What to score, where and how.
    progress_bar : callable, optional
        ``progress_bar(total)`` returns a context manager giving ``progress(n_done, description)``;
        ``total`` is the number of face-method evaluations planned.

    Returns
    -------
    EvaluationRun

    Raises
    ------
    RunError
        Bad options or inputs (one line; nothing is written).
    KeyboardInterrupt
        Passed on after the workers are stopped; nothing is written.
    """
    from denoising.stats import summarize

    check_data(options.data)
    specs = noise_specs(options)
    methods = select_methods(options)
    out = output_dir(options.out, options.force)
    if options.dask_scheduler is not None:  # before loading faces: a wrong address should fail at once
        check_dask_scheduler(options.dask_scheduler)
    test_sets = load_test_sets(options)
    reuse = reusable_rows(options.reuse, methods) if options.reuse is not None else None
    total = sum(planned_work(len(f), methods, specs, options.slow_subset) for f in test_sets.values())
    start = time.perf_counter()
    with parallel_backend(options.workers, options.dask_scheduler) as (workers, backend), \
            (progress_bar or _no_bar)(total) as progress:
        per_image = _score_test_sets(test_sets, methods, specs, options, workers, progress, reuse)
    summary = summarize(per_image, n_boot=N_BOOT, seed=options.seed, families=families(methods))
    meta = run_metadata(options, specs, test_sets, methods, per_image, backend, time.perf_counter() - start)
    paths = write_tables(per_image, summary, meta, out)
    markdown = markdown_results(summary, names={n: m.display_name for n, m in methods.items()})
    return EvaluationRun(per_image, summary, meta, out, paths, markdown)


def tables_markdown(folder: str | Path = SHIPPED_TABLES) -> str:
    """README's results table from the tables in ``folder`` (display names as recorded in its meta.json).

    Raises
    ------
    RunError
        When the folder holds no readable tables.
    """
    try:
        tables = load_tables(folder)
    except (FileNotFoundError, ValueError) as exc:
        raise RunError(str(exc)) from None
    problem = missing_means(tables.summary)
    if problem:
        raise RunError(f"summary.csv in {folder} {problem}: the table is incomplete or damaged")
    methods = tables.meta.get("methods", []) if isinstance(tables.meta, dict) else []
    names = {m["name"]: m["display_name"] for m in methods if isinstance(m, dict)
             and isinstance(m.get("name"), str) and isinstance(m.get("display_name"), str)}
    return markdown_results(tables.summary, names=names)


def missing_means(summary: pd.DataFrame) -> str | None:
    """Where the README table would show a blank ("nan") cell: the first row without a mean, else None."""
    columns = [f"{metric}_mean" for metric in ("mae", "psnr", "ssim")]
    absent = [c for c in columns if c not in summary]
    if absent:
        return f"has no column {absent[0]}"
    blank = summary[summary[columns].isna().any(axis=1)]
    if blank.empty:
        return None
    row = blank.iloc[0]
    metric = next(c for c in columns if pd.isna(row[c]))
    return f"has no {metric} for {row['method']} on {row['noise']} ({row['test_set']})"


__all__ = ["EvaluationOptions", "EvaluationRun", "RunError", "RUNS_DIR", "SHIPPED_TABLES", "N_BOOT",
           "new_run_dir", "output_dir", "select_methods", "noise_specs", "first_faces", "check_data", "load_test_sets",
           "reusable_rows", "check_dask_scheduler", "parallel_backend", "versions", "sha256_file",
           "checkpoint_hashes", "families", "run_metadata", "run_evaluation", "tables_markdown", "missing_means"]
