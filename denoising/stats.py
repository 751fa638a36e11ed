"""Summary statistics of the per-image result table: means, bootstrap intervals, paired comparisons.

Everything here is pure pandas/numpy on the per-image table (one row per test set x image x
noise x method, see :mod:`denoising.evaluation`); nothing is recomputed from images.

Conventions
-----------
Bootstrap
    95% percentile bootstrap of the mean, ``n_boot`` resamples (2000 by default). Each group
    (test set, noise, method) draws from its own generator, seeded with
    ``derive_seed(seed, test_set, noise, method)``, so a group's interval does not depend on
    which other groups are in the table or on their order. The three metrics of one group share
    the same resampled faces.
Infinite PSNR
    PSNR is ``inf`` only when an output equals the clean face exactly (in practice only the
    ``noisy`` baseline when the noise happened to change nothing). Such values are capped at
    :data:`PSNR_CAP` (100 dB, far above any real score on 8-bit-like faces: 1/255 MSE is about
    48 dB) before any statistic is taken, so means stay finite and no face is dropped. The
    per-image table itself keeps ``inf``.
Standard deviation
    Sample standard deviation (``ddof=1``); NaN for a group of one face.
Family
    ``baseline``, ``classical`` or ``learned``: the method's :attr:`Denoiser.family`, passed in
    by the caller, else :data:`denoising.catalogue.METHODS`' entry; ``unknown`` for a name neither knows.
Strength sweep
    :func:`summarize_sweep` summarises each (test set, noise, strength) slice with
    :func:`summarize`, so a group's resamples are seeded by (seed, test set, noise, method) whatever
    its strength: at the preset strength its numbers are exactly those of the preset summary.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd

from denoising.catalogue import HIGHER_IS_BETTER, METHODS, METRICS
from denoising.noise import derive_seed

log = logging.getLogger(__name__)

#: PSNR values above this (only ``inf``, for identical images) are capped here for statistics.
PSNR_CAP = 100.0
GROUP_KEYS = ["test_set", "noise", "method"]
STAT_NAMES = ("mean", "std", "median", "ci_low", "ci_high")
SUMMARY_COLUMNS = GROUP_KEYS + ["family", "n_images"] + [f"{m}_{s}" for m in METRICS for s in STAT_NAMES]
#: The strength sweep's summary: the kind's own strength parameter, no std or median.
SWEEP_SUMMARY_COLUMNS = ["test_set", "noise", "strength", "method", "family", "n_images"] + \
    [f"{m}_{s}" for m in METRICS for s in ("mean", "ci_low", "ci_high")]
UNKNOWN_FAMILY = "unknown"


def method_family(method: str, families: Mapping[str, str] | None = None) -> str:
    """``baseline`` / ``classical`` / ``learned`` of a method: ``families`` first, then the catalogue."""
    if families and method in families:
        return str(families[method])
    info = METHODS.get(method)
    return info.family if info else UNKNOWN_FAMILY


def finite_metric(values, metric: str) -> np.ndarray:
    """Metric values as float64, with PSNR capped at :data:`PSNR_CAP` (so ``inf`` becomes 100 dB).

    Parameters
    ----------
    values : array_like
        Per-image values of one metric.
    metric : str
        ``"mae"``, ``"psnr"`` or ``"ssim"``.

    Returns
    -------
    numpy.ndarray
        float64 copy.
    """
    x = np.asarray(values, dtype=np.float64).copy()
    if metric == "psnr":
        np.minimum(x, PSNR_CAP, out=x)
    return x


def bootstrap_mean_ci(values, n_boot: int = 2000, rng=None, level: float = 0.95,
                      indices: np.ndarray | None = None) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values``.

    Parameters
    ----------
    values : array_like
        1-D sample (at least one value).
    n_boot : int, optional
        Number of resamples (default 2000).
    rng : numpy.random.Generator or int, optional
        Random source (ignored when ``indices`` is given).
    level : float, optional
        Coverage (default 0.95: the 2.5th and 97.5th percentiles).
    indices : numpy.ndarray, optional
        Precomputed ``(n_boot, n)`` resample indices, to share resamples between metrics.

    Returns
    -------
    (float, float)
        Lower and upper bound.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError(f"need a non-empty 1-D sample, got shape {x.shape}")
    if indices is None:
        indices = np.random.default_rng(rng).integers(0, len(x), size=(n_boot, len(x)))
    means = x[indices].mean(axis=1)  # vectorised: one gather + one reduction for all resamples
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(low), float(high)


def summarize(per_image: pd.DataFrame, n_boot: int = 2000, seed: int = 0,
              families: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Per (test set, noise, method): number of faces, mean, std, median and 95% bootstrap CI per metric.

    Parameters
    ----------
    per_image : pandas.DataFrame
        Per-image table with columns ``test_set, image_id, noise, method, mae, psnr, ssim``.
    n_boot : int, optional
        Bootstrap resamples (default 2000).
    seed : int, optional
        Bootstrap seed (default 0); see the module notes for how groups are seeded.
    families : mapping of str to str, optional
        Method name -> family (e.g. ``{n: m.family for n, m in methods.items()}``); methods not in
        it take the catalogue's family (see the module notes).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SUMMARY_COLUMNS`; groups in their order of first appearance in ``per_image``.
        PSNR statistics use values capped at :data:`PSNR_CAP`.
    """
    missing = [c for c in GROUP_KEYS + list(METRICS) if c not in per_image.columns]
    if missing:
        raise ValueError(f"per-image table lacks column(s) {', '.join(missing)}")
    rows = []
    for key, group in per_image.groupby(GROUP_KEYS, sort=False):
        test_set, noise, method = (str(k) for k in key)
        n = len(group)
        rng = np.random.default_rng(derive_seed(seed, test_set, noise, method))
        indices = rng.integers(0, n, size=(n_boot, n))
        row: dict = {"test_set": test_set, "noise": noise, "method": method,
                     "family": method_family(method, families), "n_images": n}
        for metric in METRICS:
            x = finite_metric(group[metric], metric)
            low, high = bootstrap_mean_ci(x, indices=indices)
            row.update({f"{metric}_mean": float(x.mean()),
                        f"{metric}_std": float(x.std(ddof=1)) if n > 1 else float("nan"),
                        f"{metric}_median": float(np.median(x)),
                        f"{metric}_ci_low": low, f"{metric}_ci_high": high})
        rows.append(row)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS).astype({"n_images": "int64"})


def summarize_sweep(per_image: pd.DataFrame, n_boot: int = 2000, seed: int = 0,
                    families: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Per (test set, noise, strength, method): faces, mean and 95% bootstrap CI per metric.

    Parameters
    ----------
    per_image : pandas.DataFrame
        Per-image rows of a strength sweep: the columns :func:`summarize` needs plus ``strength``.
    n_boot, seed, families
        As in :func:`summarize`, which summarises each (test set, noise, strength) slice: at the
        preset strength the numbers equal the preset summary's (see the module notes).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SWEEP_SUMMARY_COLUMNS`; slices in their order of first appearance in
        ``per_image``, methods within a slice likewise.
    """
    if "strength" not in per_image.columns:
        raise ValueError("per-image table lacks column strength")
    parts = []
    for (_, _, strength), part in per_image.groupby(["test_set", "noise", "strength"], sort=False):
        summary = summarize(part, n_boot=n_boot, seed=seed, families=families)
        parts.append(summary.assign(strength=float(strength)))
    if not parts:
        return summarize(per_image, n_boot=n_boot, seed=seed).assign(strength=pd.Series(dtype="float64"))[
            SWEEP_SUMMARY_COLUMNS]
    return pd.concat(parts, ignore_index=True)[SWEEP_SUMMARY_COLUMNS]


def paired_comparison(per_image: pd.DataFrame, method_a: str, method_b: str, metric: str, noise: str,
                      test_set: str, n_boot: int = 2000, seed: int = 0, with_differences: bool = False) -> dict:
    """Compare two methods on the faces both were scored on (same noisy inputs).

    Parameters
    ----------
    per_image : pandas.DataFrame
        Per-image table.
    method_a, method_b : str
        Method names.
    metric : str
        ``"mae"``, ``"psnr"`` or ``"ssim"`` (PSNR capped at :data:`PSNR_CAP`).
    noise, test_set : str
        Which slice of the table.
    n_boot : int, optional
        Bootstrap resamples for the interval of the mean difference (default 2000).
    seed : int, optional
        Bootstrap seed (default 0).
    with_differences : bool, optional
        Also return ``diff``, the per-face differences ``a - b`` (in image-id order), for plotting.

    Returns
    -------
    dict
        ``n`` (faces in common), ``win_rate`` (share of faces where ``a`` is strictly better:
        lower MAE, higher PSNR/SSIM), ``ties`` (share with equal scores), ``mean_diff``
        (mean of ``a - b``) and ``ci_low``, ``ci_high`` (95% percentile bootstrap of that mean).
        With no faces in common, ``n`` is 0 and the other values are NaN.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    part = per_image[(per_image["test_set"] == test_set) & (per_image["noise"] == noise)]
    a = part.loc[part["method"] == method_a].set_index("image_id")[metric]
    b = part.loc[part["method"] == method_b].set_index("image_id")[metric]
    common = a.index.intersection(b.index).sort_values()
    if len(common) == 0:
        nan = float("nan")
        return {"n": 0, "win_rate": nan, "ties": nan, "mean_diff": nan, "ci_low": nan, "ci_high": nan}
    diff = finite_metric(a.loc[common], metric) - finite_metric(b.loc[common], metric)
    better = diff > 0 if HIGHER_IS_BETTER[metric] else diff < 0
    rng = np.random.default_rng(derive_seed(seed, test_set, noise, method_a, method_b, metric))
    low, high = bootstrap_mean_ci(diff, n_boot=n_boot, rng=rng)
    result = {"n": int(len(diff)), "win_rate": float(better.mean()), "ties": float((diff == 0).mean()),
              "mean_diff": float(diff.mean()), "ci_low": low, "ci_high": high}
    if with_differences:
        result["diff"] = np.asarray(diff, dtype=np.float64)
    return result


__all__ = ["METRICS", "HIGHER_IS_BETTER", "PSNR_CAP", "SUMMARY_COLUMNS", "SWEEP_SUMMARY_COLUMNS", "UNKNOWN_FAMILY",
           "method_family", "finite_metric", "bootstrap_mean_ci", "summarize", "summarize_sweep", "paired_comparison"]
