"""Reading the precomputed result tables and turning them into plain-language findings.

No streamlit here: the pages wrap these in ``st.cache_data``; tests call them directly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from denoising.catalogue import HIGHER_IS_BETTER, METRICS, noise_label


@dataclass
class Tables:
    """Everything in the tables folder; empty frames when a file is missing."""

    per_image: pd.DataFrame = field(default_factory=pd.DataFrame)
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    timings: pd.DataFrame = field(default_factory=pd.DataFrame)
    meta: dict = field(default_factory=dict)
    folder: str = ""

    @property
    def empty(self) -> bool:
        return self.per_image.empty and self.summary.empty

    def test_sets(self) -> list[str]:
        frame = self.summary if not self.summary.empty else self.per_image
        if frame.empty:
            return []
        names = list(dict.fromkeys(frame["test_set"].astype(str)))
        # CelebA first: it is the post's data set.
        return sorted(names, key=lambda name: (name != "celeba_test", name))


def read_tables(folder: Path) -> Tables:
    """Read per_image.csv, summary.csv, timings.csv and meta.json from ``folder`` (missing files -> empty)."""
    folder = Path(folder)
    tables = Tables(folder=str(folder))
    per_image_path = folder / "per_image.csv"
    if per_image_path.is_file():
        tables.per_image = pd.read_csv(per_image_path, dtype={"image_id": str, "noise_params": str})
    summary_path = folder / "summary.csv"
    if summary_path.is_file():
        tables.summary = pd.read_csv(summary_path)
    elif not tables.per_image.empty:
        tables.summary = simple_summary(tables.per_image)
    timings_path = folder / "timings.csv"
    if timings_path.is_file():
        tables.timings = pd.read_csv(timings_path)
    meta_path = folder / "meta.json"
    if meta_path.is_file():
        try:
            tables.meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            tables.meta = {}
    return tables


def simple_summary(per_image: pd.DataFrame) -> pd.DataFrame:
    """Means, spreads and medians per test set x noise x method, when summary.csv is missing (no intervals)."""
    groups = per_image.groupby(["test_set", "noise", "method"], sort=False)
    out = groups.size().rename("n_images").to_frame()
    for metric in METRICS:
        finite = per_image.assign(**{metric: per_image[metric].replace([np.inf, -np.inf], np.nan)})
        g = finite.groupby(["test_set", "noise", "method"], sort=False)[metric]
        out[f"{metric}_mean"] = g.mean()
        out[f"{metric}_std"] = g.std()
        out[f"{metric}_median"] = g.median()
        out[f"{metric}_ci_low"] = np.nan
        out[f"{metric}_ci_high"] = np.nan
    return out.reset_index()


def headline_table(summary: pd.DataFrame, test_set: str, metric: str) -> pd.DataFrame:
    """Noise kinds as rows, methods as columns, mean ``metric`` in the cells."""
    part = summary[summary["test_set"] == test_set]
    table = part.pivot_table(index="noise", columns="method", values=f"{metric}_mean", sort=False)
    return table


def best_method(row: pd.Series, metric: str) -> str | None:
    """Best method in one row of the headline table, leaving out the 'noisy' input itself."""
    values = row.drop(labels=["noisy"], errors="ignore").dropna()
    if values.empty:
        return None
    return str(values.idxmax() if HIGHER_IS_BETTER[metric] else values.idxmin())


def marked_table(table: pd.DataFrame, best: dict[str, str | None], names: dict[str, str],
                 noise_label, metric: str):
    """The headline table for reading: methods as rows, noise kinds as columns, each column's best cell marked."""
    shown = table.T
    marks = pd.DataFrame("", index=shown.index, columns=shown.columns)
    for noise, method in best.items():
        if method in marks.index and noise in marks.columns:
            marks.loc[method, noise] = "background-color: rgba(33, 195, 84, 0.25); font-weight: bold"
    shown.index = [names.get(m, m) for m in shown.index]
    marks.index = shown.index
    shown.index.name = "Method"
    shown.columns = [noise_label(n) for n in shown.columns]
    marks.columns = shown.columns
    digits = "{:.2f}" if metric == "psnr" else "{:.4f}"
    return shown.style.format(digits, na_rep="not run").apply(lambda _: marks, axis=None)


def _mean(summary: pd.DataFrame, test_set: str, noise: str, method: str, metric: str = "mae") -> float | None:
    rows = summary[(summary["test_set"] == test_set) & (summary["noise"] == noise) & (summary["method"] == method)]
    if rows.empty or pd.isna(rows[f"{metric}_mean"].iloc[0]):
        return None
    return float(rows[f"{metric}_mean"].iloc[0])


def _mae(value: float) -> str:
    """Four decimals, or five below 0.01 so that close small errors (0.00199 vs 0.00201) stay apart."""
    return f"{value:.4f}" if value >= 0.01 else f"{value:.5f}"


def findings(summary: pd.DataFrame, test_set: str, names: dict[str, str] | None = None) -> list[str]:
    """A few plain sentences computed from the mean MAE table (never hand-written numbers).

    One sentence per noise kind (the best method, its lead over the next best, what it removes of
    the noisy photo's error), then the blog post's two claims checked against these numbers.

    Parameters
    ----------
    summary : summary table (``summary.csv``).
    test_set : which test set to describe.
    names : method name -> display name for readers.

    Returns
    -------
    list[str]
        Sentences in markdown (noise kinds in bold).
    """
    names = names or {}
    table = headline_table(summary, test_set, "mae")
    sentences = [best_sentence(str(noise), row, names) for noise, row in table.iterrows()]
    kinds = [str(noise) for noise in table.index]
    sentences += [autoencoder_claim(summary, test_set, kinds), pix2pix_claim(summary, test_set, kinds)]
    return [sentence for sentence in sentences if sentence]


def best_sentence(noise: str, row: pd.Series, names: dict[str, str]) -> str | None:
    """The sentence for one noise kind from its row of mean MAE per method; None when no method was run."""
    best = best_method(row, "mae")
    if best is None:
        return None
    label = lambda m: names.get(m, m)  # noqa: E731
    others = row.drop(labels=[best, "noisy"], errors="ignore").dropna().sort_values()
    text = f"**{noise_label(noise)}**: {label(best)} has the lowest average error ({_mae(row[best])})"
    if not others.empty:
        runner = others.index[0]
        gap = (others.iloc[0] - row[best]) / others.iloc[0] * 100 if others.iloc[0] else 0.0
        text += f", {gap:.0f}% lower than the next best, {label(runner)} ({_mae(others.iloc[0])})"
    noisy = row.get("noisy")
    if noisy is not None and pd.notna(noisy) and noisy > 0:
        if row[best] < noisy:
            text += f"; it removes {100 * (1 - row[best] / noisy):.0f}% of the error of the noisy photo"
        else:
            text += (f", yet the noisy photo left alone is closer to the original ({_mae(noisy)}): "
                     f"at this strength every method makes it worse")
    return text + "."


def autoencoder_claim(summary: pd.DataFrame, test_set: str, kinds: list[str]) -> str | None:
    """The post's claim that its autoencoder had a higher error than the mean and median filters, checked."""
    worse = []
    for noise in kinds:
        autoencoder = _mean(summary, test_set, noise, "autoencoder")
        filters = [v for v in (_mean(summary, test_set, noise, m) for m in ("mean", "median")) if v is not None]
        if autoencoder is not None and filters:
            worse.append(autoencoder > min(filters))
    if not worse:
        return None
    n_worse = sum(worse)
    verdict = "holds" if n_worse == len(worse) else ("does not hold" if n_worse == 0 else "holds only in part")
    return (f"The post said the autoencoder had a higher error than the mean and median filters: this {verdict} "
            f"here (higher on {n_worse} of {len(worse)} noise kinds).")


def pix2pix_claim(summary: pd.DataFrame, test_set: str, kinds: list[str]) -> str | None:
    """The post's claim that pix2pix beat the autoencoder on every noise kind (1200% on salt & pepper), checked."""
    wins, salt_pepper_gap = [], None
    for noise in kinds:
        autoencoder = _mean(summary, test_set, noise, "autoencoder")
        pix2pix = _mean(summary, test_set, noise, "pix2pix")
        if autoencoder is None or pix2pix is None:
            continue
        wins.append(pix2pix < autoencoder)
        if noise == "salt_pepper":
            salt_pepper_gap = (autoencoder - pix2pix) / pix2pix * 100 if pix2pix else 0.0
    if not wins:
        return None
    text = (f"The post said pix2pix beat the autoencoder on every noise kind: here it has the lower error on "
            f"{sum(wins)} of {len(wins)}")
    if salt_pepper_gap is not None:
        text += (f"; on salt & pepper the autoencoder's error is {salt_pepper_gap:+.0f}% relative to pix2pix "
                 "(the post claimed 1200%)")
    return text + "."


def paired(per_image: pd.DataFrame, test_set: str, noise: str, a: str, b: str, metric: str = "mae") -> dict | None:
    """Compare methods ``a`` and ``b`` on the same faces (:func:`denoising.stats.paired_comparison`).

    Returns n, the share of faces where ``a`` is better, the mean difference (a - b), its 95%
    percentile-bootstrap interval and the per-face differences, or None when the two share no faces.
    """
    from denoising.stats import paired_comparison

    result = paired_comparison(per_image, a, b, metric, noise, test_set, with_differences=True)
    return result if result["n"] else None
