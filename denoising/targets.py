"""The targets of issue #10, measured from the shipped tables: met or missed, with numbers.

Four targets (README's "Targets (issue #10)" section is :func:`targets_markdown` of the shipped
tables, written there by ``python scripts/targets.py --write-readme README.md``):

1. At every strength of the sweep and every noise kind (CelebA test split), the best learned model
   (the learned method with the highest mean PSNR on all its faces at that strength) has a higher
   mean PSNR *and* a lower mean MAE than every classical method (blind filters and references told
   the noise: catalogue family ``classical``), and is never worse than the noisy input (family
   ``baseline``) on either metric.
2. At the post's presets, the range-trained model (:data:`RANGE_MODEL`) is within
   :data:`SPECIALIST_TOLERANCE_DB` of the specialist trained at that preset (the best, by PSNR, of
   the other learned recipes), or better.
3. At the post's salt & pepper strength, the best learned model beats :data:`SALT_PEPPER_REFERENCE`
   on MAE and PSNR.
4. On LFW at the presets, targets 1 and 2 hold, or the table says where they do not.

Shared faces
------------
Away from the preset strength the sweep scores slow (BM3D-based) methods on the first faces of a
test set only. Each comparison therefore takes the faces *both* methods were scored on (image ids
of ``sweep_per_image.parquet``) and reports their number ``n``. PSNR is capped at
:data:`denoising.stats.PSNR_CAP` before averaging, as in the summaries.

Targets 1, 3 and 4 (first part) come from ``sweep_per_image.parquet``; target 2 from the mean PSNR
of ``summary.csv`` (every method on every face at the presets).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from denoising import catalogue
from denoising.catalogue import strength_text
from denoising.evaluation import FILES, SWEEP_FILES, read_sweep_per_image, with_family
from denoising.stats import finite_metric, method_family

#: The range-trained model of target 2 (the one method name the targets spell out).
RANGE_MODEL = "unet_range"
#: Target 3's rival at the post's salt & pepper strength, named by the issue.
SALT_PEPPER_REFERENCE = "switching_median"
#: Target 2: how far (dB of mean PSNR) the range model may stay below the preset's specialist.
SPECIALIST_TOLERANCE_DB = 0.3
#: The test set of targets 1-3, and the other-photos test set of target 4.
MAIN_TEST_SET = "celeba_test"
OTHER_TEST_SET = "lfw"
#: README lines between which :func:`replace_section` writes the targets.
README_MARKERS = ("<!-- targets:start -->", "<!-- targets:end -->")
#: The one command that regenerates README's targets section.
COMMAND = "python scripts/targets.py --write-readme README.md"
MINUS = "\u2212"


# ----------------------------------------------------------------------------- strengths


def preset_strength(kind: str) -> float:
    """The post's strength of ``kind``: the default preset's value of the kind's own parameter."""
    return float(catalogue.PRESET_PARAMS[catalogue.DEFAULT_PRESET][kind][catalogue.STRENGTHS[kind].parameter])


def _kind_order(kind: str) -> tuple[int, str]:
    kinds = catalogue.NOISE_KINDS
    return (kinds.index(kind) if kind in kinds else len(kinds), kind)


# ----------------------------------------------------------------------------- comparisons on shared faces


@dataclass(frozen=True)
class Comparison:
    """The best learned model against one other method, on the ``n`` faces both were scored on."""

    method: str
    n: int
    learned_psnr: float
    learned_mae: float
    psnr: float
    mae: float

    @property
    def psnr_margin(self) -> float:
        """dB by which the learned model leads (negative: it trails)."""
        return self.learned_psnr - self.psnr

    @property
    def mae_margin(self) -> float:
        """How much lower the learned model's MAE is (negative: higher)."""
        return self.mae - self.learned_mae

    def beaten(self, strictly: bool = True) -> bool:
        """Learned leads on both metrics (``strictly``), or is at least level on both."""
        if strictly:
            return self.psnr_margin > 0 and self.mae_margin > 0
        return self.psnr_margin >= 0 and self.mae_margin >= 0


@dataclass(frozen=True)
class PointResult:
    """Target 1 at one test set, noise kind and strength."""

    test_set: str
    kind: str
    strength: float
    learned: str | None = None
    learned_psnr: float = math.nan
    learned_mae: float = math.nan
    n: int = 0
    rivals: tuple[Comparison, ...] = ()
    noisy: Comparison | None = None

    @property
    def unmeasured(self) -> str | None:
        """Why the target cannot be judged here, or None."""
        for missing, what in ((self.learned is None, "learned"), (not self.rivals, "classical"),
                              (self.noisy is None, "noisy-input")):
            if missing:
                return f"not measured (no {what} rows)"
        return None

    @property
    def met(self) -> bool:
        return self.unmeasured is None and all(c.beaten() for c in self.rivals) and self.noisy.beaten(strictly=False)

    @property
    def strongest(self) -> Comparison | None:
        """The classical rival that decides the row: a beaten-failing one first, then the smallest PSNR lead."""
        return min(self.rivals, key=lambda c: (c.beaten(), c.psnr_margin), default=None)

    @property
    def margin_db(self) -> float:
        """The smallest PSNR lead over any classical rival or the noisy input (negative: trails one)."""
        comparisons = [*self.rivals, *([self.noisy] if self.noisy else [])]
        return min((c.psnr_margin for c in comparisons), default=math.nan)

    def rival(self, method: str) -> Comparison | None:
        return next((c for c in self.rivals if c.method == method), None)


def _scores(rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Method -> its per-face PSNR (capped) and MAE, indexed by image id; methods in catalogue order."""
    order = {name: i for i, name in enumerate(catalogue.METHODS)}
    out = {}
    for method, part in rows.groupby("method", sort=False):
        out[str(method)] = pd.DataFrame({"psnr": finite_metric(part["psnr"], "psnr"),
                                         "mae": finite_metric(part["mae"], "mae")},
                                        index=part["image_id"].astype(str).to_numpy())
    return dict(sorted(out.items(), key=lambda item: (order.get(item[0], len(order)), item[0])))


def _compare(learned: pd.DataFrame, method: str, other: pd.DataFrame) -> Comparison:
    shared = learned.index.intersection(other.index)
    mine, theirs = learned.loc[shared], other.loc[shared]
    return Comparison(method, len(shared), float(mine["psnr"].mean()), float(mine["mae"].mean()),
                      float(theirs["psnr"].mean()), float(theirs["mae"].mean()))


def compare_point(rows: pd.DataFrame, test_set: str, kind: str, strength: float) -> PointResult:
    """Target 1 on the per-image rows of one test set, noise kind and strength.

    Parameters
    ----------
    rows : pandas.DataFrame
        Per-image rows (``image_id``, ``method``, ``mae``, ``psnr``) of that point only.
    test_set, kind, strength
        Which point, recorded in the result.

    Returns
    -------
    PointResult
        The best learned model (highest mean PSNR on all its faces; ties: catalogue order), and its
        comparison with every classical method and the noisy input on the faces both were scored on.
    """
    scores = _scores(rows)
    family = {m: method_family(m) for m in scores}
    learned = [m for m in scores if family[m] == "learned"]
    if not learned:
        return PointResult(test_set, kind, strength)
    best = max(learned, key=lambda m: scores[m]["psnr"].mean())  # max keeps the first of equals
    comparisons = {m: _compare(scores[best], m, scores[m]) for m in scores if family[m] in ("classical", "baseline")}
    rivals = tuple(c for m, c in comparisons.items() if family[m] == "classical" and c.n > 0)
    noisy = next((c for m, c in comparisons.items() if family[m] == "baseline" and c.n > 0), None)
    return PointResult(test_set, kind, strength, best, float(scores[best]["psnr"].mean()),
                       float(scores[best]["mae"].mean()), len(scores[best]), rivals, noisy)


def sweep_results(per_image: pd.DataFrame, test_set: str, presets_only: bool = False) -> list[PointResult]:
    """:func:`compare_point` at every (kind, strength) of ``test_set`` in the sweep's per-image table.

    Kinds in catalogue order, strengths mild to strong; ``presets_only`` keeps each kind's post strength
    (a kind whose preset strength has no rows gives a "not measured" result).
    """
    part = per_image[per_image["test_set"].astype(str) == test_set]
    results = []
    for kind in sorted(dict.fromkeys(part["noise"].astype(str)), key=_kind_order):
        rows = part[part["noise"] == kind]
        strengths = catalogue.mild_to_strong(kind, rows["strength"])
        if presets_only:
            preset = preset_strength(kind)
            strengths = [s for s in strengths if math.isclose(s, preset, rel_tol=1e-9)] or [preset]
        for strength in strengths:
            at = rows[[math.isclose(s, strength, rel_tol=1e-9) for s in rows["strength"]]]
            results.append(compare_point(at, test_set, kind, strength))
    return results


# ----------------------------------------------------------------------------- target 2: range model vs specialists


@dataclass(frozen=True)
class SpecialistResult:
    """Target 2 at one test set and noise kind (mean PSNR at the preset, from ``summary.csv``)."""

    test_set: str
    kind: str
    range_psnr: float = math.nan
    specialist: str | None = None
    specialist_psnr: float = math.nan

    @property
    def unmeasured(self) -> str | None:
        if math.isnan(self.range_psnr):
            return f"not measured (no {RANGE_MODEL} rows)"
        return "not measured (no specialist rows)" if self.specialist is None else None

    @property
    def margin_db(self) -> float:
        return self.range_psnr - self.specialist_psnr

    @property
    def met(self) -> bool:
        return self.unmeasured is None and self.margin_db >= -SPECIALIST_TOLERANCE_DB


def specialist_results(summary: pd.DataFrame, test_set: str) -> list[SpecialistResult]:
    """Target 2 per noise kind of ``test_set``: :data:`RANGE_MODEL` against the best per-preset learned recipe."""
    part = summary[summary["test_set"].astype(str) == test_set]
    results = []
    for kind in sorted(dict.fromkeys(part["noise"].astype(str)), key=_kind_order):
        rows = part[part["noise"] == kind]
        psnr = dict(zip(rows["method"].astype(str), rows["psnr_mean"].astype(float), strict=True))
        specialists = [m for m in psnr if method_family(m) == "learned" and m not in catalogue.RANGE_ARCHS
                       and m != RANGE_MODEL]
        best = max(specialists, key=psnr.__getitem__, default=None)
        results.append(SpecialistResult(test_set, kind, psnr.get(RANGE_MODEL, math.nan), best,
                                        psnr[best] if best else math.nan))
    return results


# ----------------------------------------------------------------------------- markdown


def _db(value: float) -> str:
    return f"{value:+.2f} dB".replace("-", MINUS)


def _scores_text(psnr: float, mae: float) -> str:
    return f"{psnr:.2f} / {mae:#.3g}"


def _point_verdict(result: PointResult) -> str:
    if result.unmeasured:
        return result.unmeasured
    if result.met:
        return f"met, {_db(result.margin_db)}"
    mae_only = all(c.psnr_margin > 0 for c in result.rivals) and result.noisy.psnr_margin >= 0
    below = "" if result.noisy.beaten(strictly=False) else "; worse than the noisy input"
    return f"**missed**{' on MAE' if mae_only else ''}, {_db(result.margin_db)}{below}"


def _rival_text(result: PointResult, rival: Comparison) -> str:
    """The rival's scores on the shared faces, and the learned model's there when those are not all its faces."""
    text = f"{_scores_text(rival.psnr, rival.mae)} (n = {rival.n}"
    if rival.n != result.n:
        text += f"; learned on these: {_scores_text(rival.learned_psnr, rival.learned_mae)}"
    return text + ")"


def _point_row(result: PointResult) -> str:
    cells = [catalogue.noise_label(result.kind), strength_text(result.kind, result.strength)]
    if result.learned is None:
        return "| " + " | ".join(cells + ["—"] * 5 + [_point_verdict(result)]) + " |"
    rival, noisy = result.strongest, result.noisy
    cells += [catalogue.display_name(result.learned), _scores_text(result.learned_psnr, result.learned_mae)]
    cells += [catalogue.display_name(rival.method), _rival_text(result, rival)] if rival else ["—", "—"]
    cells += [_scores_text(noisy.psnr, noisy.mae) if noisy else "—", _point_verdict(result)]
    return "| " + " | ".join(cells) + " |"


def point_table(results: Sequence[PointResult]) -> str:
    """Markdown table of target 1 (one row per noise kind and strength)."""
    lines = ["| noise | strength | best learned model | PSNR dB / MAE | strongest classical rival | "
             "PSNR dB / MAE (faces) | noisy input PSNR dB / MAE | target |", "|---|---|---|---|---|---|---|---|"]
    return "\n".join(lines + [_point_row(r) for r in results])


def _specialist_row(result: SpecialistResult) -> str:
    cells = [catalogue.test_set_title(result.test_set), catalogue.noise_label(result.kind)]
    cells.append("—" if math.isnan(result.range_psnr) else f"{result.range_psnr:.2f}")
    cells.append(f"{catalogue.display_name(result.specialist)}: {result.specialist_psnr:.2f}"
                 if result.specialist else "—")
    if result.unmeasured:
        return "| " + " | ".join(cells + [result.unmeasured]) + " |"
    verdict = "met" if result.met else "**missed**"
    return "| " + " | ".join(cells + [f"{verdict}, {_db(result.margin_db)}"]) + " |"


def specialist_table(results: Sequence[SpecialistResult]) -> str:
    """Markdown table of target 2 (one row per test set and noise kind)."""
    lines = [f"| test set | noise | {catalogue.display_name(RANGE_MODEL)}: PSNR dB | "
             "best specialist: PSNR dB | target |", "|---|---|---|---|---|"]
    return "\n".join(lines + [_specialist_row(r) for r in results])


def _salt_pepper_table(result: PointResult) -> str:
    lines = [f"| best learned model | PSNR dB / MAE | {catalogue.display_name(SALT_PEPPER_REFERENCE)}: PSNR dB / MAE "
             "(faces) | target |", "|---|---|---|---|"]
    rival = result.rival(SALT_PEPPER_REFERENCE)
    if result.learned is None or rival is None:
        return "\n".join(lines + [f"| — | — | — | {salt_pepper_verdict(result)} |"])
    cells = [catalogue.display_name(result.learned), _scores_text(rival.learned_psnr, rival.learned_mae),
             f"{_scores_text(rival.psnr, rival.mae)} (n = {rival.n})", salt_pepper_verdict(result)]
    return "\n".join(lines + ["| " + " | ".join(cells) + " |"])


def salt_pepper_verdict(result: PointResult) -> str:
    """Target 3 on the salt & pepper preset point: met / missed with the PSNR margin, or why not measured."""
    rival = result.rival(SALT_PEPPER_REFERENCE)
    if result.learned is None:
        return "not measured (no learned rows)"
    if rival is None:
        return f"not measured (no {SALT_PEPPER_REFERENCE} rows)"
    verdict = "met" if rival.beaten() else "**missed**"
    return f"{verdict}, {_db(rival.psnr_margin)}, MAE {rival.learned_mae:#.3g} against {rival.mae:#.3g}"


def tally(results: Sequence[PointResult] | Sequence[SpecialistResult], unit: str, test_set: str) -> str:
    """One line for the overview: met everywhere, missed at k of n, or not measured (with the reason)."""
    measured = [r for r in results if r.unmeasured is None]
    if not measured:
        return next((r.unmeasured for r in results), f"not measured (no {test_set} rows)")
    missed = sum(not r.met for r in measured)
    text = f"met at all {len(measured)} {unit}" if not missed else \
        f"**missed** at {missed} of {len(measured)} {unit} (met at {len(measured) - missed})"
    left_out = len(results) - len(measured)
    return text + (f"; {left_out} not measured" if left_out else "")


def _overview(points: list[PointResult], specialists: list[SpecialistResult], salt_pepper: PointResult,
              lfw_points: list[PointResult], lfw_specialists: list[SpecialistResult]) -> str:
    main, other = catalogue.test_set_title(MAIN_TEST_SET), catalogue.test_set_title(OTHER_TEST_SET)
    range_name = catalogue.display_name(RANGE_MODEL)
    rows = [
        (f"1. {main}, every strength of every noise kind: the best learned model beats every classical method "
         "on PSNR and MAE (on the same faces) and is never worse than the noisy input", tally(points, "strengths", MAIN_TEST_SET)),
        (f"2. {main}, the post's presets: {range_name} within {SPECIALIST_TOLERANCE_DB:g} dB PSNR of the "
         "specialist trained at that preset", tally(specialists, "presets", MAIN_TEST_SET)),
        (f"3. {main}, salt & pepper {strength_text('salt_pepper', preset_strength('salt_pepper'))}: the best "
         f"learned model beats {catalogue.display_name(SALT_PEPPER_REFERENCE)} on PSNR and MAE",
         salt_pepper_verdict(salt_pepper)),
        (f"4. {other}, the post's presets: target 1", tally(lfw_points, "presets", OTHER_TEST_SET)),
        (f"4. {other}, the post's presets: target 2", tally(lfw_specialists, "presets", OTHER_TEST_SET)),
    ]
    return "\n".join(["| target | result |", "|---|---|", *(f"| {what} | {result} |" for what, result in rows)])


def targets_markdown(summary: pd.DataFrame, per_image: pd.DataFrame) -> str:
    """README's targets section: an overview, then one table per target.

    Parameters
    ----------
    summary : pandas.DataFrame
        ``summary.csv`` (preset tables): ``test_set``, ``noise``, ``method``, ``psnr_mean``.
    per_image : pandas.DataFrame
        ``sweep_per_image.parquet``: ``test_set``, ``image_id``, ``noise``, ``strength``, ``method``,
        ``mae``, ``psnr``.

    Returns
    -------
    str
        Markdown ending in a newline; never raises for missing methods or test sets (those targets
        read "not measured (...)").
    """
    points = sweep_results(per_image, MAIN_TEST_SET)
    lfw_points = sweep_results(per_image, OTHER_TEST_SET, presets_only=True)
    specialists, lfw_specialists = specialist_results(summary, MAIN_TEST_SET), specialist_results(summary, OTHER_TEST_SET)
    kind = "salt_pepper"
    salt_pepper = next((r for r in points if r.kind == kind and math.isclose(r.strength, preset_strength(kind))),
                       PointResult(MAIN_TEST_SET, kind, preset_strength(kind)))
    blocks = ["Margins are the learned model's lead in mean PSNR (the smallest over the methods it must beat). "
              "Each comparison uses only the faces both methods were scored on: away from the post's strengths "
              "the sweep ran BM3D-based methods on the first faces of a test set only (n = their number).",
              _overview(points, specialists, salt_pepper, lfw_points, lfw_specialists)]
    if RANGE_MODEL not in set(per_image["method"].astype(str)) | set(summary["method"].astype(str)):
        blocks.append(f"No {catalogue.display_name(RANGE_MODEL)} (`{RANGE_MODEL}`) rows in these tables yet: "
                      "targets 1, 3 and 4 take the best of the models that are there.")
    blocks += [f"**Target 1** ({catalogue.test_set_title(MAIN_TEST_SET)}, every strength)", point_table(points),
               "**Target 2** (mean PSNR at the post's presets, `summary.csv`)",
               specialist_table(specialists + lfw_specialists),
               f"**Target 3** ({catalogue.test_set_title(MAIN_TEST_SET)}, salt & pepper at the post's strength)",
               _salt_pepper_table(salt_pepper),
               f"**Target 4**: target 1 at the post's presets on {catalogue.test_set_title(OTHER_TEST_SET)} "
               "(target 2 there is in its table above)", point_table(lfw_points)]
    return "\n\n".join(blocks) + "\n"


# ----------------------------------------------------------------------------- tables in, README out


@dataclass
class TargetTables:
    """What the targets are measured from: the preset summary and the sweep's per-image rows."""

    summary: pd.DataFrame
    per_image: pd.DataFrame


def load_target_tables(directory: str | Path) -> TargetTables:
    """``summary.csv`` and ``sweep_per_image.parquet`` of one tables folder.

    Raises
    ------
    FileNotFoundError
        When either file is missing (the message names the folder and the files).
    """
    folder = Path(directory)
    names = (FILES["summary"], SWEEP_FILES["per_image"])
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"no {' or '.join(missing)} in {folder}")
    summary = with_family(pd.read_csv(folder / names[0], dtype={"test_set": str, "noise": str, "method": str}))
    return TargetTables(summary, read_sweep_per_image(folder / names[1]))


def _marker_span(text: str) -> tuple[int, int]:
    start, end = README_MARKERS
    i, j = text.find(start), text.find(end)
    if i < 0 or j < 0 or j < i:
        raise ValueError(f"README needs the lines {start} and {end}, in that order")
    return i + len(start), j


def readme_section(text: str) -> str:
    """The text between README's targets markers, without the newlines next to them."""
    i, j = _marker_span(text)
    return text[i:j].strip("\n") + "\n"


def replace_section(text: str, block: str) -> str:
    """``text`` with the part between the targets markers replaced by ``block``.

    Raises
    ------
    ValueError
        When the markers are missing or out of order.
    """
    i, j = _marker_span(text)
    return text[:i] + "\n" + block.strip("\n") + "\n" + text[j:]


__all__ = ["RANGE_MODEL", "SALT_PEPPER_REFERENCE", "SPECIALIST_TOLERANCE_DB", "MAIN_TEST_SET", "OTHER_TEST_SET",
           "README_MARKERS", "COMMAND", "preset_strength", "strength_text", "Comparison", "PointResult",
           "compare_point", "sweep_results", "SpecialistResult", "specialist_results", "point_table",
           "specialist_table", "salt_pepper_verdict", "tally", "targets_markdown", "TargetTables",
           "load_target_tables", "readme_section", "replace_section"]
