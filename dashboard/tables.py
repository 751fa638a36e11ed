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
    from denoising.evaluation import FILES, PER_IMAGE_COLUMNS
    from denoising.stats import SUMMARY_COLUMNS
    from denoising.tables_schema import read_results

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
    return shown.style.format(digits, na_rep="—").apply(lambda _: marks, axis=None)


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


# ---------------------------------------------------------------- the strength sweep
def read_sweep(path: Path) -> pd.DataFrame:
    """Read ``sweep_summary.csv``: one row per test set, noise kind, strength and method.

    Columns beyond :data:`SWEEP_COLUMNS` are dropped; numbers are checked to be numbers.

    Raises
    ------
    SweepTableError
        With one line for the reader when the file is not a CSV table, lacks a column, holds text
        where a number belongs, or names the same (test set, noise, strength, method) twice.
    """
    from denoising.tables_schema import read_csv

    name = Path(path).name
    try:  # the shared checks first: empty, binary, cut short, rows with extra or missing fields, columns
        read_csv(Path(path), list(SWEEP_COLUMNS))
    except TableError as error:
        raise SweepTableError(str(error)) from None
    try:
        frame = pd.read_csv(path, dtype={"test_set": str, "noise": str, "method": str, "family": str})
    except (OSError, ValueError) as error:  # pandas' parser and empty-file errors are ValueErrors
        raise SweepTableError(f"{name} could not be read as a CSV table ({type(error).__name__}).") from None
    missing = [column for column in SWEEP_COLUMNS if column not in frame.columns]
    if missing:
        raise SweepTableError(f"{name} lacks the column{'s' * (len(missing) > 1)} {', '.join(missing)}.")
    if frame.empty:
        raise SweepTableError(f"{name} has no rows.")
    frame = frame[list(SWEEP_COLUMNS)].copy()
    for column in SWEEP_COLUMNS[5:]:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() & frame[column].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise SweepTableError(f"{name}, line {row + 2}: {column} is {frame[column].iloc[row]!r}, not a number.")
        frame[column] = values.astype(float)
    if not (np.isfinite(frame["strength"]) & (frame["strength"] > 0)).all():
        raise SweepTableError(f"{name}: every strength must be a positive number.")
    repeated = frame.duplicated(["test_set", "noise", "strength", "method"])
    if repeated.any():
        row = frame[repeated].iloc[0]
        raise SweepTableError(f"{name} has two rows for {row['method']} at {row['noise']} {row['strength']:g} "
                              f"on {row['test_set']}.")
    return frame


def strengths_text(kind: str, values: list[float]) -> str:
    """E.g. ``"σ 0.02"``, ``"σ 0.02 and 0.05"``, ``"peak 8, 4 and 2"`` (in the order given)."""
    shown = [format_strength(v) for v in values]
    listed = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
    return f"{strength_symbol(kind)} {listed}"


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
    trained = "; ".join(f"{_and(methods)} {'was' if len(methods) == 1 else 'were'} trained on {text}"
                        for text, methods in outside.items())
    return (f"{strength_text(kind, value)} is outside what the networks were trained on: {trained}. Expect them to "
            "do worse here than at their training strength; the Noise strength page shows by how much.")


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def history_frame(history) -> pd.DataFrame:
    """History as one row per epoch, whether stored as a list of dicts or a dict of lists."""
    if isinstance(history, dict):
        return pd.DataFrame({k: pd.Series(v) for k, v in history.items() if isinstance(v, list)})
    if isinstance(history, list):
        # a range-trained network's per-strength scores become columns "val_psnr_by_strength 0.004"
        return pd.json_normalize([h for h in history if isinstance(h, dict)], sep=" ")
    return pd.DataFrame()
