"""Every method scored across noise strengths: the strength sweep and its tables.

For each test set, noise kind and strength (the kind's own parameter, :data:`STRENGTHS`
``[kind].parameter``: σ, peak, amount, σ; the kind's other parameters stay at the preset's), every
method available for that kind denoises the same noisy copies, drawn exactly as the preset tables
draw theirs (:func:`denoising.noise.noisy_copies` with that strength's NoiseSpec and the same run
seed). At the preset's own strength the NoiseSpec *is* the preset's, so those rows are the preset
tables' rows and their summary is the preset summary (same faces, same methods).

The work is :func:`denoising.evaluation.evaluate`, called once per (test set, noise kind, strength):
the same chunks, the same joblib/Dask backends, the same interrupt handling.

Slow methods
------------
Methods flagged ``slow`` (BM3D-based) score only the first ``slow_subset`` faces of each test set
in sorted ``image_id`` order at strengths other than the preset's. At the preset strength they
score every face, like the preset tables (``slow_subset_at_preset=True`` uses the subset there
too), so the sweep also does the preset tables' BM3D work: a preset evaluation run afterwards with
``--reuse`` of the sweep's folder takes every classical row from the Parquet file (exact values)
and its ``summary.csv`` then equals ``sweep_summary.csv`` at the preset strength digit for digit.
The other way round works too (``--reuse`` of a folder holding ``per_image.csv``), but those rows
carry 6 significant digits, which can move the last digit of a mean or interval.

Tables (written by :func:`write_sweep_tables`)
----------------------------------------------
``sweep_per_image.parquet``
    :data:`SWEEP_PER_IMAGE_COLUMNS`: the columns of ``per_image.csv`` plus ``strength`` (float64,
    the exact value). Metrics are the float64 values themselves, so a table read back is the table
    written and ``--reuse`` of an earlier sweep gives the same summary as recomputing; written with
    6 significant digits, a preset-strength row is its ``per_image.csv`` row. Rows are in the
    order of the test sets given, then noise kind (``NOISE_KINDS`` order), strength (in the order
    swept: mild to strong), method (registry order) and image id.
``sweep_summary.csv``
    :data:`denoising.stats.SWEEP_SUMMARY_COLUMNS` (:func:`denoising.stats.summarize_sweep`:
    bootstrap seeds as in ``summary.csv``, floats written as in ``summary.csv``; ``strength`` is
    written exactly, e.g. ``0.31622776601683794``, so it reads back equal to the catalogue's value).
``sweep_timings.csv``
    :data:`SWEEP_TIMING_COLUMNS`: compute time per face of each (test set, noise, strength, method).
``sweep_meta.json``
    How the tables were made: command, strengths, slow-method subset rule, versions, checkpoint hashes.

Same options and seed, same bytes (the timings aside).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from denoising import catalogue
from denoising.evaluation import (
    SWEEP_FILES,
    SWEEP_PER_IMAGE_COLUMNS,
    SWEEP_PER_IMAGE_DTYPES,
    SWEEP_TIMING_COLUMNS,
    Progress,
    SweepTables,
    evaluate,
    load_sweep_tables,
    planned_work,
    read_sweep_per_image,
    sweep_timings,
    write_sweep_tables,
)
from denoising.noise import PRESETS, NoiseSpec
from denoising.runs import (
    N_BOOT,
    EvaluationOptions,
    ProgressBar,
    RunError,
    check_dask_scheduler,
    check_data,
    families,
    load_test_sets,
    output_dir,
    parallel_backend,
    reusable_rows,
    run_metadata,
    select_methods,
)
from denoising.stats import summarize_sweep

log = logging.getLogger(__name__)

#: How the recorded command names the script.
SCRIPT = "scripts/sweep.py"
#: Default number of faces per test set that slow methods score away from the preset strength.
SLOW_SUBSET = 100


@dataclass
class SweepOptions(EvaluationOptions):
    """:class:`denoising.runs.EvaluationOptions` for a strength sweep (``scripts/sweep.py`` fills it).

    ``slow_subset`` (default :data:`SLOW_SUBSET`) applies at strengths other than the preset's, and
    there too with ``slow_subset_at_preset``. ``strengths`` maps a noise kind to its strengths
    (default :data:`denoising.catalogue.SWEEP_STRENGTHS`); ``preset`` gives the kinds' other
    parameters and the preset strength. ``reuse`` is a folder of an earlier sweep and/or preset
    tables (``checkpoints/tables`` holds both).
    """

    slow_subset: int | None = SLOW_SUBSET
    strengths: Mapping[str, Sequence[float]] | None = None
    slow_subset_at_preset: bool = False


@dataclass(frozen=True)
class SweepPoint:
    """One noise kind at one strength: its NoiseSpec and whether that is the preset's strength."""

    kind: str
    strength: float
    spec: NoiseSpec
    at_preset: bool

    @property
    def label(self) -> str:
        return f"{catalogue.STRENGTHS[self.kind].parameter}={self.strength:g}"


@dataclass
class SweepRun:
    """What a sweep produced: its tables, their record and where they were written."""

    per_image: pd.DataFrame
    summary: pd.DataFrame
    meta: dict
    out_dir: Path
    paths: dict[str, Path]


# ----------------------------------------------------------------------------- strengths


def parse_strengths(texts: Sequence[str] | None) -> dict[str, tuple[float, ...]] | None:
    """``["gaussian=0.05,0.1", ...]`` (the ``--strengths`` flag) -> ``{"gaussian": (0.05, 0.1)}``; None for none.

    Raises
    ------
    RunError
        On text that is not ``KIND=NUMBER[,NUMBER...]`` or names a kind twice.
    """
    if not texts:
        return None
    out: dict[str, tuple[float, ...]] = {}
    for text in texts:
        kind, sep, values = text.partition("=")
        kind = kind.strip()
        try:
            numbers = tuple(float(v) for v in values.split(",") if v.strip())
        except ValueError:
            numbers = ()
        if not sep or not kind or not numbers:
            raise RunError(f"--strengths {text!r}: expected KIND=NUMBER[,NUMBER...], e.g. gaussian=0.05,0.1")
        if kind in out:
            raise RunError(f"--strengths names {kind} twice")
        out[kind] = numbers
    return out


def sweep_points(kinds: Sequence[str] | None = None, strengths: Mapping[str, Sequence[float]] | None = None,
                 preset: str = catalogue.DEFAULT_PRESET) -> list[SweepPoint]:
    """The (kind, strength) points of a sweep, kinds in ``NOISE_KINDS`` order, strengths as given.

    Parameters
    ----------
    kinds : sequence of str, optional
        Noise kinds (default: all, or the kinds of ``strengths`` when it is given).
    strengths : mapping, optional
        Kind -> strengths of its own parameter (default :data:`denoising.catalogue.SWEEP_STRENGTHS`
        for every kind it does not name).
    preset : str, optional
        Preset whose other parameters each kind keeps, and whose strength is the "preset" one.

    Raises
    ------
    RunError
        Unknown preset or kind, a strength listed twice or out of the parameter's range.
    """
    if preset not in PRESETS:
        raise RunError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    strengths = dict(strengths or {})
    asked = list(kinds) if kinds else (list(strengths) or list(catalogue.NOISE_KINDS))
    unknown = [k for k in [*asked, *strengths] if k not in catalogue.NOISE_KINDS]
    if unknown:
        raise RunError(f"unknown noise kind(s) {', '.join(dict.fromkeys(unknown))}; "
                       f"choose from {', '.join(catalogue.NOISE_KINDS)}")
    left_out = [k for k in strengths if k not in asked]
    if left_out:
        raise RunError(f"--strengths names {', '.join(left_out)}, which --noise leaves out")
    points = []
    for kind in sorted(set(asked), key=catalogue.NOISE_KINDS.index):
        values = [float(v) for v in strengths.get(kind, catalogue.SWEEP_STRENGTHS[kind])]
        if len(set(values)) != len(values):
            raise RunError(f"{kind}: a strength is listed twice in {values}")
        points += [_point(kind, value, PRESETS[preset][kind]) for value in values]
    return points


def _point(kind: str, strength: float, preset_spec: NoiseSpec) -> SweepPoint:
    parameter = catalogue.STRENGTHS[kind].parameter
    try:
        spec = NoiseSpec(kind, {**preset_spec.params, parameter: strength})
    except ValueError as exc:
        raise RunError(f"strength {strength:g}: {exc}") from None
    return SweepPoint(kind, strength, spec, spec == preset_spec)


def _subset_at(point: SweepPoint, slow_subset: int | None, slow_subset_at_preset: bool) -> int | None:
    return None if (point.at_preset and not slow_subset_at_preset) else slow_subset


# ----------------------------------------------------------------------------- the sweep


def planned_sweep_work(n_faces: int, methods: Mapping[str, Any], points: Sequence[SweepPoint],
                       slow_subset: int | None = SLOW_SUBSET, slow_subset_at_preset: bool = False) -> int:
    """Face-method evaluations :func:`sweep` makes on one test set (a progress bar's total)."""
    return sum(planned_work(n_faces, methods, {p.kind: p.spec}, _subset_at(p, slow_subset, slow_subset_at_preset))
               for p in points)


def sweep(faces: Any, test_set: str, methods: Mapping[str, Any], points: Sequence[SweepPoint], base_seed: int = 0,
          slow_subset: int | None = SLOW_SUBSET, slow_subset_at_preset: bool = False, workers: int | None = 1,
          progress: Progress | None = None, reuse: pd.DataFrame | None = None) -> pd.DataFrame:
    """Score every method on one test set at every point of a sweep.

    Parameters
    ----------
    faces, test_set, methods, base_seed, workers, reuse
        As in :func:`denoising.evaluation.evaluate`, called once per point.
    points : sequence of SweepPoint
        From :func:`sweep_points`.
    slow_subset : int or None, optional
        Slow methods score the first ``slow_subset`` faces by id (None: every face) at points that
        are not the preset's strength, and at those too with ``slow_subset_at_preset``.
    progress : callable, optional
        ``progress(n_done, description)``, the description naming the strength.

    Returns
    -------
    pandas.DataFrame
        :data:`SWEEP_PER_IMAGE_COLUMNS` plus ``seconds`` (per face of each call), in point order,
        then method and image id.
    """
    frames = []
    for point in points:
        def tick(n: int, desc: str, label: str = point.label) -> None:
            if progress is not None:
                progress(n, f"{desc} {label}")

        rows = evaluate(faces, test_set, methods, {point.kind: point.spec}, base_seed=base_seed,
                        slow_subset=_subset_at(point, slow_subset, slow_subset_at_preset), workers=workers,
                        progress=tick, reuse=reuse)
        frames.append(rows.assign(strength=point.strength))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in SWEEP_PER_IMAGE_DTYPES.items()}).assign(
            seconds=pd.Series(dtype="float64"))
    table = pd.concat(frames, ignore_index=True)
    return table[SWEEP_PER_IMAGE_COLUMNS + ["seconds"]].astype(SWEEP_PER_IMAGE_DTYPES)


# ----------------------------------------------------------------------------- a run: options -> tables


def sweep_metadata(options: SweepOptions, points: Sequence[SweepPoint], test_sets: dict, methods: dict,
                   per_image: pd.DataFrame, backend: dict, wall_seconds: float) -> dict:
    """``sweep_meta.json``: :func:`denoising.runs.run_metadata`'s record plus the strengths and the subset rule."""
    specs = {p.kind: PRESETS[options.preset][p.kind] for p in points}
    meta = run_metadata(options, specs, test_sets, methods, per_image, backend, wall_seconds, script=SCRIPT)
    kinds = list(dict.fromkeys(p.kind for p in points))
    meta["noise"] = {kind: {"parameter": catalogue.STRENGTHS[kind].parameter,
                            "strengths": [p.strength for p in points if p.kind == kind],
                            "preset_strength": [p.strength for p in points if p.kind == kind and p.at_preset],
                            "noise_params": [p.spec.to_json() for p in points if p.kind == kind]}
                     for kind in kinds}
    at_preset = {(p.kind, p.strength): p.at_preset for p in points}
    flags = [at_preset[key] for key in zip(per_image["noise"], per_image["strength"], strict=True)]
    counts = per_image.assign(at_preset=flags).groupby(["test_set", "method", "at_preset"])["image_id"].nunique()
    for record in meta["methods"]:
        record["faces"] = {ts: {"preset_strength": int(counts.get((ts, record["name"], True), 0)),
                                "other_strengths": int(counts.get((ts, record["name"], False), 0))}
                           for ts in test_sets}
    meta["slow_subset_at_preset"] = options.slow_subset_at_preset
    if options.slow_subset is None:
        meta["slow_subset_rule"] = "slow methods scored on every face at every strength"
    else:
        where = "every strength" if options.slow_subset_at_preset else \
            "strengths other than the preset's (every face at the preset strength)"
        meta["slow_subset_rule"] = (f"slow methods scored on the first {options.slow_subset} faces of each test set "
                                    f"in sorted image_id order at {where}")
    meta["bootstrap"]["seeds"] = "derive_seed(seed, test_set, noise, method), the same at every strength"
    return meta


def _score_test_sets(test_sets: dict, methods: dict, points: list[SweepPoint], options: SweepOptions,
                     workers: int | None, progress: Progress, reuse: pd.DataFrame | None) -> pd.DataFrame:
    from denoising.models.checkpoint import CheckpointError

    try:
        frames = [sweep(faces, name, methods, points, base_seed=options.seed, slow_subset=options.slow_subset,
                        slow_subset_at_preset=options.slow_subset_at_preset, workers=workers, progress=progress,
                        reuse=reuse) for name, faces in test_sets.items()]
    except CheckpointError as exc:
        raise RunError(f"{exc}; no tables written") from None
    return pd.concat(frames, ignore_index=True)


def run_sweep(options: SweepOptions, progress_bar: ProgressBar | None = None) -> SweepRun:
    """Check the options, score every method at every strength on every test set, write the sweep tables.

    Parameters
    ----------
    options : SweepOptions
        What to score, where and how.
    progress_bar : callable, optional
        ``progress_bar(total)`` returns a context manager giving ``progress(n_done, description)``;
        ``total`` is the number of face-method evaluations of the whole sweep.

    Raises
    ------
    RunError
        Bad options or inputs (one line; nothing is written).
    KeyboardInterrupt
        Passed on after the workers are stopped; nothing is written.
    """
    import contextlib

    check_data(options.data)
    if options.slow_subset is not None and options.slow_subset < 1:
        raise RunError(f"--slow-subset must be at least 1, got {options.slow_subset}")
    points = sweep_points(options.noise, options.strengths, options.preset)
    methods = select_methods(options)
    out = output_dir(options.out, options.force, files=tuple(SWEEP_FILES.values()), prefix="sweep")
    if options.dask_scheduler is not None:  # before loading faces: a wrong address should fail at once
        check_dask_scheduler(options.dask_scheduler)
    test_sets = load_test_sets(options)
    reuse = reusable_rows(options.reuse, methods) if options.reuse is not None else None
    total = sum(planned_sweep_work(len(f), methods, points, options.slow_subset, options.slow_subset_at_preset)
                for f in test_sets.values())
    bar = progress_bar or (lambda n: contextlib.nullcontext(lambda done, desc: None))
    start = time.perf_counter()
    with parallel_backend(options.workers, options.dask_scheduler) as (workers, backend), bar(total) as progress:
        per_image = _score_test_sets(test_sets, methods, points, options, workers, progress, reuse)
    summary = summarize_sweep(per_image, n_boot=N_BOOT, seed=options.seed, families=families(methods))
    meta = sweep_metadata(options, points, test_sets, methods, per_image, backend, time.perf_counter() - start)
    paths = write_sweep_tables(per_image, summary, meta, out)
    return SweepRun(per_image, summary, meta, out, paths)


# the sweep's table I/O lives in denoising.evaluation (beside the preset tables'); re-exported here
__all__ = ["SWEEP_PER_IMAGE_COLUMNS", "SWEEP_TIMING_COLUMNS", "SWEEP_FILES", "SLOW_SUBSET", "SweepOptions",
           "SweepPoint", "SweepRun", "SweepTables", "parse_strengths", "sweep_points", "planned_sweep_work", "sweep",
           "sweep_timings", "write_sweep_tables", "read_sweep_per_image", "load_sweep_tables", "sweep_metadata",
           "run_sweep"]
