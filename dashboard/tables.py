"""Reading the precomputed result tables and turning them into plain-language findings.

No streamlit here: the pages wrap these in ``st.cache_data``; tests call them directly.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from denoising import catalogue
from denoising.catalogue import (
    DEFAULT_PRESET,
    HIGHER_IS_BETTER,
    METRICS,
    NOISE_KINDS,
    NOISE_NAMES,
    PRESET_PARAMS,
    STRENGTHS,
    SWEEP_STRENGTHS,
    and_list,
    format_score,
    format_strength,
    mild_to_strong,
    noise_label,
    strength_symbol,
    strength_text,
)
from denoising.tables_schema import TableError

REPO_ROOT = Path(__file__).resolve().parents[1]
SWEEP_FILE = "sweep_summary.csv"
#: The strength sweep's summary columns, in order (the sweep script writes exactly these).
SWEEP_COLUMNS = ("test_set", "noise", "strength", "method", "family", "n_images",
                 *(f"{metric}_{part}" for metric in METRICS for part in ("mean", "ci_low", "ci_high")))


# ---------------------------------------------------------------- locations (env vars, with repo defaults)
def checkpoint_dir() -> Path:
    """Trained models: ``DENOISING_CHECKPOINT_DIR`` or ``<repo>/checkpoints``."""
    return Path(os.environ.get("DENOISING_CHECKPOINT_DIR") or REPO_ROOT / "checkpoints")


def tables_dir() -> Path:
    """Result tables: ``DENOISING_TABLES_DIR`` or ``<checkpoints>/tables``."""
    return Path(os.environ.get("DENOISING_TABLES_DIR") or checkpoint_dir() / "tables")


class SweepTableError(TableError):
    """A strength-sweep table that cannot be read; the message is meant for the reader."""


@dataclass
class Tables:
    """Everything in the tables folder; empty frames when a file is missing."""

    per_image: pd.DataFrame = field(default_factory=pd.DataFrame)
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    timings: pd.DataFrame = field(default_factory=pd.DataFrame)
    meta: dict = field(default_factory=dict)
    folder: str = ""
    #: the strength sweep (``sweep_summary.csv``); empty when missing or unreadable
    sweep: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: why ``sweep_summary.csv`` could not be read ("" when it was read or is simply missing)
    sweep_error: str = ""
    #: why the result tables could not be read (:class:`denoising.tables_schema.TableError`); "" when fine
    error: str = ""

    @property
    def empty(self) -> bool:
        """No tables at all; a malformed set is not empty (its ``error`` says what is wrong, not how to make one)."""
        return not self.error and self.per_image.empty and self.summary.empty

    def test_sets(self) -> list[str]:
        frame = self.summary if not self.summary.empty else self.per_image
        if frame.empty:
            return []
        names = list(dict.fromkeys(frame["test_set"].astype(str)))
        # CelebA first: it is the post's data set.
        return sorted(names, key=lambda name: (name != "celeba_test", name))


def read_tables(folder: Path) -> Tables:
    """Read per_image.csv, summary.csv, timings.csv and meta.json from ``folder`` (missing files -> empty).

    Every file goes through :func:`denoising.tables_schema.read_results`; when one is malformed or
    cut short, all four stay empty and ``error`` holds the plain message naming the file (nothing
    from a bad set is shown as if it were whole). The strength sweep is read on its own.
    """
    from denoising.stats import SUMMARY_COLUMNS
    from denoising.tables_schema import FILES, PER_IMAGE_COLUMNS, read_results  # not evaluation: no scipy

    folder = Path(folder)
    tables = Tables(folder=str(folder))
    try:
        read = read_results(folder, FILES, [c for c in PER_IMAGE_COLUMNS if c != "seconds"],
                            [c for c in SUMMARY_COLUMNS if c != "family"])
    except TableError as error:
        tables.error = str(error)
    else:
        tables.meta = read["meta"]
        if read["per_image"] is not None:
            tables.per_image = read["per_image"]
            tables.summary = read["summary"] if read["summary"] is not None else simple_summary(tables.per_image)
        if read["timings"] is not None:
            tables.timings = read["timings"]
    if (folder / SWEEP_FILE).is_file():
        try:
            tables.sweep = read_sweep(folder / SWEEP_FILE)
        except SweepTableError as error:
            tables.sweep_error = str(error)
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
    # catalogue order (baseline, classical, learned), not the order methods first appear in the table
    order = {name: i for i, name in enumerate(catalogue.METHODS)}
    return table[sorted(table.columns, key=lambda m: (order.get(m, len(order)), m))]


def headline_counts(summary: pd.DataFrame, test_set: str) -> pd.DataFrame:
    """How many faces each cell of :func:`headline_table` averages (same rows and columns)."""
    part = summary[summary["test_set"] == test_set]
    if "n_images" not in part or part.empty:
        return pd.DataFrame()
    counts = part.pivot_table(index="noise", columns="method", values="n_images", sort=False, aggfunc="max")
    order = {name: i for i, name in enumerate(catalogue.METHODS)}
    return counts[sorted(counts.columns, key=lambda m: (order.get(m, len(order)), m))]


def fewer_faces(counts: pd.DataFrame | pd.Series | None) -> dict:
    """Cells scored on fewer faces than the most in ``counts``: {cell: n}; a frame's cells are (noise, method)."""
    if counts is None or not len(counts):
        return {}
    stacked = counts.stack() if isinstance(counts, pd.DataFrame) else counts
    stacked = stacked.dropna()
    most = stacked.max() if len(stacked) else 0
    return {key: int(n) for key, n in stacked.items() if n < most}


def best_method(row: pd.Series, metric: str) -> str | None:
    """Best method in one row of the headline table, leaving out the 'noisy' input itself."""
    values = row.drop(labels=["noisy"], errors="ignore").dropna()
    if values.empty:
        return None
    return str(values.idxmax() if HIGHER_IS_BETTER[metric] else values.idxmin())


def tied_best(row: pd.Series, metric: str) -> list[str]:
    """The best method and every other one (the noisy input left out) that reads the same at the shown precision."""
    best = best_method(row, metric)
    if best is None:
        return []
    shown = format_score(metric, row[best])
    values = row.drop(labels=["noisy"], errors="ignore").dropna()
    return [best] + [str(m) for m, v in values.items() if m != best and format_score(metric, v) == shown]


def noisy_not_beaten(row: pd.Series, metric: str) -> bool:
    """Whether the untouched noisy input scores at least as well as the best method, at the shown precision."""
    best, noisy = best_method(row, metric), row.get("noisy")
    if best is None or noisy is None or pd.isna(noisy):
        return False
    if format_score(metric, noisy) == format_score(metric, row[best]):
        return True
    return bool(noisy > row[best]) if HIGHER_IS_BETTER[metric] else bool(noisy < row[best])


BEST_STYLE = "background-color: rgba(33, 195, 84, 0.25); font-weight: bold"
NOISY_STYLE = "background-color: rgba(255, 170, 0, 0.3); font-weight: bold"


def marked_table(table: pd.DataFrame, best: dict[str, str | None], names: dict[str, str],
                 noise_label, metric: str, counts: pd.DataFrame | None = None):
    """The headline table for reading: methods as rows, noise kinds as columns, each column's best cell marked.

    Cells show :func:`denoising.catalogue.format_score`'s digits. Every method tied with ``best`` at
    that precision is marked too, and the noisy input's cell is marked (orange) when no method beats
    it. A cell averaged over fewer faces than the rest of the table (``counts``, from
    :func:`headline_counts`) says how many.
    """
    shown = table.T.map(lambda v: format_score(metric, v))
    few = fewer_faces(counts)
    for (noise, method), n in few.items():
        if method in shown.index and noise in shown.columns and pd.notna(table.at[noise, method]):
            shown.loc[method, noise] += f" (n = {n})"
    marks = pd.DataFrame("", index=shown.index, columns=shown.columns)
    for noise, method in best.items():
        if method not in marks.index or noise not in marks.columns:
            continue
        for tied in tied_best(table.loc[noise], metric) if method == best_method(table.loc[noise], metric) else [method]:
            marks.loc[tied, noise] = BEST_STYLE
        if "noisy" in marks.index and noisy_not_beaten(table.loc[noise], metric):
            marks.loc["noisy", noise] = NOISY_STYLE
    shown.index = [names.get(m, m) for m in shown.index]
    marks.index = shown.index
    shown.index.name = "Method"
    shown.columns = [noise_label(n) for n in shown.columns]
    marks.columns = shown.columns
    return shown.style.apply(lambda _: marks, axis=None)


def headline_caption(table: pd.DataFrame, metric: str, names: dict[str, str], noise_label,
                     counts: pd.DataFrame | None = None) -> str:
    """What the marks of :func:`marked_table` mean, kind by kind: the best, ties, the noisy input unbeaten, n."""
    label = lambda m: names.get(m, m)  # noqa: E731
    parts = []
    for noise, row in table.iterrows():
        tied = tied_best(row, metric)
        if not tied:
            continue
        text = f"{noise_label(noise)}: " + (label(tied[0]) if len(tied) == 1 else
                                            and_list([label(m) for m in tied]) + " (a tie at the shown precision)")
        if noisy_not_beaten(row, metric):
            text += f", yet no method beats the noisy input ({format_score(metric, row['noisy'])}, orange)"
        parts.append(text)
    caption = "Highlighted: the best method for each kind of noise. " + "; ".join(parts) + "."
    few = fewer_faces(counts)
    if few:
        most = int(counts.max().max())
        caption += (f" \"n = …\" marks a mean over fewer faces than the {most} of the rest (the method ran on a "
                    "subset): compare it with care.")
    return caption


def _mean(summary: pd.DataFrame, test_set: str, noise: str, method: str, metric: str = "mae") -> float | None:
    if f"{metric}_mean" not in summary:
        return None
    rows = summary[(summary["test_set"] == test_set) & (summary["noise"] == noise) & (summary["method"] == method)]
    if rows.empty or pd.isna(rows[f"{metric}_mean"].iloc[0]):
        return None
    return float(rows[f"{metric}_mean"].iloc[0])


#: How a sentence names each score's mean ("the lowest average error").
SCORE_WORDS = {"mae": "the lowest average error", "psnr": "the highest average PSNR",
               "ssim": "the highest average SSIM"}


def _score(metric: str, value: float) -> str:
    return format_score(metric, value) + (" dB" if metric == "psnr" else "")


def findings(summary: pd.DataFrame, test_set: str, names: dict[str, str] | None = None,
             metric: str = "mae") -> list[str]:
    """A few plain sentences computed from the mean ``metric`` table (never hand-written numbers).

    One sentence per noise kind (the best method by ``metric``, its lead over the next best, how it
    compares with the noisy photo), then the blog post's two claims, which were about the average
    error (MAE), checked against these numbers.

    Parameters
    ----------
    summary : summary table (``summary.csv``).
    test_set : which test set to describe.
    names : method name -> display name for readers.
    metric : the score the sentences follow (the page's choice), default MAE.

    Returns
    -------
    list[str]
        Sentences in markdown (noise kinds in bold).
    """
    names = names or {}
    table = headline_table(summary, test_set, metric)
    counts = headline_counts(summary, test_set)
    sentences = [best_sentence(str(noise), row, names, metric, counts.loc[noise] if noise in counts.index else None)
                 for noise, row in table.iterrows()]
    kinds = [str(noise) for noise in table.index]
    sentences += [autoencoder_claim(summary, test_set, kinds), pix2pix_claim(summary, test_set, kinds)]
    return [sentence for sentence in sentences if sentence]


def _lead(metric: str, best: float, other: float) -> str:
    """How far ``best`` is ahead of ``other``: a share for MAE, a difference for the scores that grow."""
    if metric == "mae":
        gap = (other - best) / other * 100 if other else 0.0
        return f"{gap:.0f}% lower than"
    # from the shown values, so the gap is what a reader gets by subtracting them (21.98 - 21.71 = 0.27)
    shown = abs(float(format_score(metric, best)) - float(format_score(metric, other)))
    return f"{_score(metric, shown)} above"


def best_sentence(noise: str, row: pd.Series, names: dict[str, str], metric: str = "mae",
                  counts: pd.Series | None = None) -> str | None:
    """The sentence for one noise kind from its row of mean ``metric`` per method; None when no method was run.

    A tie at the shown precision is called a tie; a mean over fewer faces than the others (``counts``:
    faces per method) says on how many.
    """
    tied = tied_best(row, metric)
    if not tied:
        return None
    best = tied[0]
    few = fewer_faces(counts)
    label = lambda m: names.get(m, m) + (f" (on {few[m]} faces only)" if m in few else "")  # noqa: E731
    if len(tied) > 1:
        text = f"**{noise_label(noise)}**: {and_list([label(m) for m in tied])} tie for {SCORE_WORDS[metric]} " \
               f"({_score(metric, row[best])} at the shown precision)"
    else:
        text = f"**{noise_label(noise)}**: {label(best)} has {SCORE_WORDS[metric]} ({_score(metric, row[best])})"
        others = row.drop(labels=[best, "noisy"], errors="ignore").dropna()
        others = others.sort_values(ascending=not HIGHER_IS_BETTER[metric])
        if not others.empty:
            runner = others.index[0]
            text += f", {_lead(metric, row[best], others.iloc[0])} the next best, {label(runner)} " \
                    f"({_score(metric, others.iloc[0])})"
    return text + _noisy_clause(row, best, metric) + "."


def _noisy_clause(row: pd.Series, best: str, metric: str) -> str:
    """What the best method does to the noisy photo's score, or that leaving the photo alone scores as well."""
    noisy = row.get("noisy")
    if noisy is None or pd.isna(noisy):
        return ""
    if noisy_not_beaten(row, metric):
        if format_score(metric, noisy) == format_score(metric, row[best]):
            return (f", and the noisy photo left alone scores the same ({_score(metric, noisy)}): at this strength "
                    "no method improves on it")
        return (f", yet the noisy photo left alone is closer to the original ({_score(metric, noisy)}): at this "
                "strength every method makes it worse")
    if metric == "mae":
        return f"; it removes {100 * (1 - row[best] / noisy):.0f}% of the error of the noisy photo" if noisy > 0 else ""
    return f"; the noisy photo scores {_score(metric, noisy)}"


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


# ---------------------------------------------------------------- the strength sweep
def read_sweep(path: Path) -> pd.DataFrame:
    """Read ``sweep_summary.csv``: one row per test set, noise kind, strength and method.

    Its neighbours are checked with it (:func:`denoising.tables_schema.read_sweep_results`):
    ``sweep_meta.json`` and the footer of ``sweep_per_image.parquet`` (its columns, types and row count
    against the meta's record and the summary's ``n_images``); the Parquet rows themselves are not read,
    the page shows the summary. Columns beyond :data:`SWEEP_COLUMNS` are dropped.

    Raises
    ------
    SweepTableError
        With one line for the reader, naming the file: not a CSV table, a missing column, text where a
        number belongs, a repeated (test set, noise, strength, method), a cut-short or malformed
        Parquet file or ``sweep_meta.json``, or row counts that disagree.
    """
    from denoising.tables_schema import SWEEP_FILES, SWEEP_PER_IMAGE_DTYPES, read_sweep_results

    path = Path(path)
    files = {**SWEEP_FILES, "summary": path.name}
    try:
        read = read_sweep_results(path.parent, files, SWEEP_PER_IMAGE_DTYPES, list(SWEEP_COLUMNS), read_rows=False)
    except TableError as error:
        raise SweepTableError(str(error)) from None
    if read["summary"] is None:
        raise SweepTableError(f"{path.name} could not be read (it is missing).")
    return read["summary"]


def strengths_text(kind: str, values: list[float]) -> str:
    """E.g. ``"σ 0.02"``, ``"σ 0.02 and 0.05"``, ``"peak 8, 4 and 2"`` (in the order given)."""
    return f"{strength_symbol(kind)} {and_list([format_strength(v) for v in values])}"


def log_strength_axis(kind: str) -> bool:
    """Whether the kind's sweep spans enough (20x or more: Gaussian σ, peak, amount) to be drawn on a log axis.

    On a linear axis the mild end of such a sweep (σ 0.02 and 0.05) would crowd into one corner.
    """
    sweep = SWEEP_STRENGTHS.get(kind, ())
    return bool(sweep) and max(sweep) >= 20 * min(sweep)


def preset_strength(kind: str) -> float:
    """The post's strength for ``kind`` (the default preset's value of the kind's own parameter)."""
    return float(PRESET_PARAMS[DEFAULT_PRESET][kind][STRENGTHS[kind].parameter])


def _range_text(kind: str, values: list[float], every: bool) -> str:
    if len(values) == 1:
        return f"at {strength_text(kind, values[0])}"
    span = f"{strength_symbol(kind)} {format_strength(values[0])} to {format_strength(values[-1])}"
    return f"at every strength ({span})" if every else f"from {span}"


FAMILY_VERDICTS = {"baseline": "leaving the photo alone is best", "classical": "classical filters win",
                   "learned": "the networks win"}


def sweep_winners(part: pd.DataFrame, kind: str, metric: str) -> list[tuple[float, str, str]]:
    """(strength, family, method) of the best mean ``metric`` at each strength, mildest first."""
    column = f"{metric}_mean"
    part = part.dropna(subset=[column])
    winners = []
    for strength in mild_to_strong(kind, part["strength"]):
        rows = part[part["strength"] == strength]
        best = rows[column].idxmax() if HIGHER_IS_BETTER[metric] else rows[column].idxmin()
        winners.append((strength, str(rows.at[best, "family"]), str(rows.at[best, "method"])))
    return winners


def networks_beaten(part: pd.DataFrame, kind: str, metric: str) -> list[float]:
    """Strengths (mildest first) where the untouched noisy input scores better than every learned network."""
    column = f"{metric}_mean"
    beaten = []
    for strength in mild_to_strong(kind, part["strength"]):
        rows = part[(part["strength"] == strength)].dropna(subset=[column])
        noisy = rows.loc[rows["family"] == "baseline", column]
        learned = rows.loc[rows["family"] == "learned", column]
        if noisy.empty or learned.empty:
            continue
        best_network = learned.max() if HIGHER_IS_BETTER[metric] else learned.min()
        if (noisy.iloc[0] > best_network) if HIGHER_IS_BETTER[metric] else (noisy.iloc[0] < best_network):
            beaten.append(strength)
    return beaten


def strength_finding(sweep: pd.DataFrame, test_set: str, kind: str, metric: str,
                     names: dict[str, str] | None = None) -> str | None:
    """One sentence on which family wins where along one noise kind's strengths, from the sweep's means.

    Parameters
    ----------
    sweep : the strength-sweep table (``sweep_summary.csv``, see :func:`read_sweep`).
    test_set, kind : which rows to describe.
    metric : mean score that decides (its direction from the catalogue).
    names : method name -> display name for readers.

    Returns
    -------
    str or None
        Markdown (noise kind in bold); None when the table has no scores for this kind.
    """
    names = names or {}
    part = sweep[(sweep["test_set"] == test_set) & (sweep["noise"] == kind)]
    winners = sweep_winners(part, kind, metric)
    if not winners:
        return None
    segments: list[list[tuple[float, str, str]]] = []
    for winner in winners:
        if segments and segments[-1][-1][1] == winner[1]:
            segments[-1].append(winner)
        else:
            segments.append([winner])
    phrases = []
    for segment in segments:
        family = segment[0][1]
        verdict = FAMILY_VERDICTS.get(family, f"{family} methods win")
        phrase = f"{verdict} {_range_text(kind, [s for s, _, _ in segment], len(segments) == 1)}"
        if family != "baseline":  # display names hold commas and brackets, hence "led by" and "and"
            phrase += ", led by " + " and ".join(dict.fromkeys(names.get(m, m) for _, _, m in segment))
        phrases.append(phrase)
    text = f"**{NOISE_NAMES.get(kind, kind)}**: " + "; ".join(phrases)
    beaten = networks_beaten(part, kind, metric)
    if beaten:
        text += f"; the networks do worse than the untouched photo at {strengths_text(kind, beaten)}"
    return text + "."


def default_sweep_methods(sweep: pd.DataFrame, test_set: str, metric: str, n_classical: int = 2) -> list[str]:
    """A handful to start with: the noisy input, the classical methods that win most often, every network."""
    part = sweep[sweep["test_set"] == test_set]
    methods = list(dict.fromkeys(part["method"]))
    families = dict(zip(part["method"], part["family"], strict=False))
    wins: dict[str, int] = {}
    for kind in dict.fromkeys(part["noise"]):
        classical = part[(part["noise"] == kind) & (part["family"] == "classical")]
        for _, _, method in sweep_winners(classical, kind, metric):
            wins[method] = wins.get(method, 0) + 1
    best = sorted(wins, key=lambda m: (-wins[m], methods.index(m)))[:n_classical]
    return [m for m in methods if families[m] == "baseline" or m in best or families[m] == "learned"]


# ---------------------------------------------------------------- what the networks were trained on
def training_range(card: dict) -> tuple[str, str, float, float] | None:
    """(method, noise kind, lowest, highest strength) a network's card says it was trained on.

    The card's ``strength_range`` (``mild``, ``strong``: a network trained over a range) comes first;
    else its ``noise`` spec (or ``noise_json``) holds the kind's own parameter: one number, or a
    ``[low, high]`` pair. None when the card does not say.
    """
    ranged = card.get("strength_range")
    if isinstance(ranged, dict) and card.get("noise_kind") in NOISE_KINDS and isinstance(card.get("arch"), str):
        values = [ranged.get("mild"), ranged.get("strong")]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
            return card["arch"], card["noise_kind"], float(min(values)), float(max(values))
    noise = card.get("noise")
    if not isinstance(noise, dict) and isinstance(card.get("noise_json"), str):
        try:
            noise = json.loads(card["noise_json"])
        except ValueError:
            noise = None
    if not isinstance(noise, dict) or not isinstance(card.get("arch"), str):
        return None
    kind = noise.get("kind", card.get("noise_kind"))
    params = noise.get("params")
    if kind not in NOISE_KINDS or not isinstance(params, dict):
        return None
    value = params.get(STRENGTHS[kind].parameter)
    values = value if isinstance(value, (list, tuple)) else [value]
    if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                             for v in values):
        return None
    return card["arch"], kind, float(min(values)), float(max(values))


def _trained_text(kind: str, low: float, high: float) -> str:
    if low == high:
        return f"{strength_text(kind, low)} only"
    return f"{strength_symbol(kind)} {format_strength(low)} to {format_strength(high)}"


def _inside(value: float, low: float, high: float) -> bool:
    return (low <= value <= high) or math.isclose(value, low, rel_tol=1e-6) or math.isclose(value, high, rel_tol=1e-6)


def training_notice(ranges: dict[str, tuple[float, float]], kind: str, value: float,
                    names: dict[str, str] | None = None) -> str | None:
    """A line for the Noise lab when ``value`` lies outside what some networks were trained on.

    ``ranges`` maps each shown network to the (low, high) strength of ``kind`` it was trained on.
    """
    names = names or {}
    outside: dict[str, list[str]] = {}
    for method, (low, high) in ranges.items():
        if not _inside(value, low, high):
            outside.setdefault(_trained_text(kind, low, high), []).append(names.get(method, method))
    if not outside:
        return None
    # display names hold commas and brackets: list them with "and", one clause per training strength
    trained = "; ".join(f"{and_list(methods)} {'was' if len(methods) == 1 else 'were'} trained on {text}"
                        for text, methods in outside.items())
    where = strength_text(kind, value)  # "σ 0.5", "amount 0", "peak 2": a sentence starts with a capital (σ stays σ)
    where = where[:1].upper() + where[1:] if where[:1].isascii() else where
    return (f"{where} is outside what the networks were trained on: {trained}. Expect them to "
            "do worse here than at their training strength; the Noise strength page shows by how much.")


def loss_text(card: dict, short: bool = False) -> str | None:
    """What a network's training loss is, in words, from its card (arch, and pix2pix's L1 weight); None if unknown.

    ``short``: the chart-title form ("adversarial + 100 × L1").
    """
    template = (catalogue.TRAINING_LOSSES_SHORT if short else catalogue.TRAINING_LOSSES).get(card.get("arch"))
    if template is None:
        return None
    config = card.get("config") if isinstance(card.get("config"), dict) else {}
    weight = config.get("l1_weight", 100.0)
    return template.format(l1_weight=weight if isinstance(weight, (int, float)) else 100.0)


def network_text(card: dict) -> str:
    """A card's network in words: "U-Net: base 16, depth 4, …", and pix2pix's judge (used in training only)."""
    def words(model_class, kwargs) -> str:
        name = catalogue.MODEL_CLASS_NAMES.get(model_class, str(model_class or "?"))
        if not isinstance(kwargs, dict) or not kwargs:
            return name
        settings = [f"{key.replace('_', ' ')} " + ("yes" if value is True else "no" if value is False else
                                                   " / ".join(map(str, value)) if isinstance(value, list) else
                                                   f"{value:g}" if isinstance(value, float) else str(value))
                    for key, value in kwargs.items()]
        return f"{name} ({', '.join(settings)})"

    text = words(card.get("model_class"), card.get("model_kwargs"))
    judge = card.get("discriminator")
    if isinstance(judge, dict):
        text += "; judged in training by a " + words(judge.get("model_class"), judge.get("model_kwargs")) + \
                ", not shipped" * (judge.get("shipped") is False)
    return text


def history_frame(history) -> pd.DataFrame:
    """History as one row per epoch, whether stored as a list of dicts or a dict of lists."""
    if isinstance(history, dict):
        return pd.DataFrame({k: pd.Series(v) for k, v in history.items() if isinstance(v, list)})
    if isinstance(history, list):
        # a range-trained network's per-strength scores become columns "val_psnr_by_strength 0.004"
        return pd.json_normalize([h for h in history if isinstance(h, dict)], sep=" ")
    return pd.DataFrame()
