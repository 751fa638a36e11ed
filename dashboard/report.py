"""The one-file offline HTML report of the findings: a short article for someone who never saw the dashboard.

The Findings page's download button and ``scripts/make_report.py`` both call :func:`findings_report`,
so the two give the same file for the same tables and faces. No streamlit here.

Everything is inside the file: the charts as SVG drawn by plotly.js in a headless Chromium (kaleido;
about 45 kB each; plotly.js inlined once, about 4.6 MB, only where that export fails), the tables as
HTML, the example faces as PNG ``data:`` URIs. It opens with no network, shows no machine path, and
prints on A4 ("Save as PDF").
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import html
import logging
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from dashboard.charts import EXPORT_SIZE, chart_title, grouped_bars, static_images, with_room_for_labels
from dashboard.images import png_data_uri
from dashboard.tables import (
    best_method,
    fewer_faces,
    findings,
    headline_counts,
    headline_table,
    noisy_not_beaten,
    tied_best,
)
from denoising import catalogue
from denoising.catalogue import (
    HIGHER_IS_BETTER,
    METRIC_LABELS,
    METRIC_SHORT,
    METRICS,
    NOISE_DESCRIPTIONS,
    format_score,
    noise_label,
    test_set_title,
)
from denoising.tables_schema import FILES

REPO_ROOT = Path(__file__).resolve().parents[1]
_log = logging.getLogger(__name__)
#: Width (px) an example face is enlarged to, pixel for pixel (28 px faces 3x): 8 fit an A4 line.
FACE_WIDTH = 84
#: Example faces per noise kind.
N_FACES = 2
#: The files whose bytes make the tables' fingerprint (what the numbers were read from).
FINGERPRINT_FILES = (FILES["summary"], FILES["per_image"], FILES["meta"])
#: A method's outputs for a batch of noisy faces: (noisy batch, noise spec, method names) -> {name: batch}.
Outputs = Callable[[np.ndarray, object, list[str]], dict[str, np.ndarray]]

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:980px;margin:2em auto;padding:0 1.2em;
 color:#222;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.1em}.sub{color:#555;margin-top:0}
h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.15em}
table.scores{border-collapse:collapse;font-size:.88em;margin:.4em 0 .2em}
.scores td,.scores th{border:1px solid #ccc;padding:.25em .55em}
.scores th{background:#f3f3f3;text-align:left}.scores td{text-align:right;font-variant-numeric:tabular-nums}
.scores td.best{background:rgba(33,195,84,.25);font-weight:bold}
.scores td.noisy-wins{background:rgba(255,170,0,.3);font-weight:bold}
.scores small{color:#666;font-weight:normal}
figure{margin:.8em 0}figcaption,.caption{color:#555;font-size:.85em}
.chart svg{width:100%;height:auto;display:block}
.faces{display:flex;flex-wrap:wrap;gap:6px;margin:.3em 0 .8em}
.faces figure{margin:0;width:84px;max-width:84px}.faces img{image-rendering:pixelated;display:block;max-width:100%}
.faces figcaption{font-size:.68em;text-align:center;line-height:1.2}
footer{margin-top:2.5em;border-top:1px solid #ddd;color:#666;font-size:.8em}
img,svg{max-width:100%}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
@page{size:A4;margin:14mm}
@media print{body{max-width:none;margin:0;padding:0;font-size:10pt}
 h2,h3{break-after:avoid}figure,table,.faces,li{break-inside:avoid}.chart{break-inside:avoid}
 .faces figure{width:72px}}
"""


def _markdown_bold(text: str) -> str:
    return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(text))


def display_names(meta: dict) -> dict[str, str]:
    """Method name -> label for readers: the catalogue's, then names recorded in the tables' meta.json."""
    recorded = {m["name"]: m["display_name"] for m in meta.get("methods", [])
                if isinstance(m, dict) and "name" in m and "display_name" in m}
    return {**recorded, **{name: info.display_name for name, info in catalogue.METHODS.items()}}


def tables_fingerprint(folder: str | Path) -> str:
    """First 12 hex digits of the SHA-256 of the result tables' bytes (names in a fixed order); "" when none."""
    digest, found = hashlib.sha256(), False
    for name in FINGERPRINT_FILES:
        path = Path(folder) / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes())
            found = True
    return digest.hexdigest()[:12] if found else ""


def code_commit() -> str:
    """The short git commit of this code, or "" where there is no git checkout (a copied install)."""
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{4,40}", commit) else ""


# ----------------------------------------------------------------------------- tables
def _cell_marks(table: pd.DataFrame, metric: str) -> dict[tuple[str, str], str]:
    """(method, noise) -> CSS class: the best per kind ("best", "best tie" for a tie at the shown precision),
    and the noisy input where no method beats it ("noisy-wins")."""
    marks = {}
    for noise, row in table.iterrows():
        tied = tied_best(row, metric)
        for method in tied:
            marks[(method, noise)] = "best tie" if len(tied) > 1 else "best"
        if "noisy" in row.index and noisy_not_beaten(row, metric):
            marks[("noisy", noise)] = "noisy-wins"
    return marks


def _cell(value: float, metric: str, mark: str, n: int | None) -> str:
    if pd.isna(value):
        return '<td title="not run for this kind of noise">—</td>'
    text = ("= " if "tie" in mark else "") + format_score(metric, value)
    if n is not None:
        text += f" <small>(n = {n})</small>"
    return f'<td class="{mark}">{text}</td>' if mark else f"<td>{text}</td>"


def scores_table_html(summary: pd.DataFrame, test_set: str, metric: str, names: dict[str, str]) -> str:
    """Mean ``metric`` as the Findings page shows it: methods as rows, noise kinds as columns, the best marked.

    Precision is :func:`denoising.catalogue.format_score`'s; a method tied with the best at that
    precision is marked too, with "=" (a tie, not a win); "—" where a method does not apply; "(n = …)"
    on a mean over fewer faces than the rest of the table.
    """
    table = headline_table(summary, test_set, metric)
    counts = headline_counts(summary, test_set)
    few = fewer_faces(counts)
    marks = _cell_marks(table, metric)
    head = "".join(f'<th scope="col">{html.escape(noise_label(str(n)))}</th>' for n in table.index)
    body = []
    for method in table.columns:
        cells = "".join(_cell(table.at[noise, method], metric, marks.get((method, noise), ""),
                              few.get((noise, method))) for noise in table.index)
        body.append(f'<tr><th scope="row">{html.escape(names.get(method, method))}</th>{cells}</tr>')
    direction = "higher" if HIGHER_IS_BETTER[metric] else "lower"
    note = (f"Mean {METRIC_SHORT[metric]} over the test faces ({direction} is better). Green: the best method "
            "for each kind of noise (the noisy input left out); “=” marks methods tied at the precision shown. "
            "Orange: the noisy input where no method beats it. “—”: the method does not apply to that kind of "
            "noise (each reference told the noise handles one kind).")
    if few:
        most = int(counts.max().max())
        note += f" “n = …”: a mean over fewer faces than the {most} of the rest: compare it with care."
    return (f'<table class="scores"><thead><tr><th scope="col">Method</th>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table><p class="caption">{html.escape(note)}</p>')


# ----------------------------------------------------------------------------- charts
def report_figures(summary: pd.DataFrame, test_set: str, names: dict[str, str]) -> list:
    """The post's bar chart once per score, titled, with room for every label, sized for the report."""
    figs = []  # grouped_bars names a method scored on fewer faces than the rest ("n = …") in its legend
    for metric in METRICS:
        fig = with_room_for_labels(grouped_bars(summary, test_set, metric, names), chart_title(metric, test_set))
        fig.update_layout(height=EXPORT_SIZE[1], yaxis_title=METRIC_LABELS[metric])
        figs.append(fig)
    return figs


def _fixed_ids(svg: str, index: int) -> str:
    """The SVG with plotly's random figure id (in its clip-path and defs ids) replaced by ``fig<index>``:
    ids stay unique among the report's charts, and the same tables give the same file."""
    found = re.search(r'id="defs-(\w+)"', svg)
    if not found:
        return svg
    return re.sub(rf"(clip|legend|defs-){found.group(1)}", rf"\g<1>fig{index}", svg)


def charts_html(figs: list) -> str:
    """The figures as inline SVG (static, exact in print); plotly.js inlined once where SVG export fails."""
    svgs = static_images(figs, "svg") if figs else None
    parts = []
    for i, fig in enumerate(figs):
        if svgs:  # plotly's own class: tools that inspect plotly charts (report_check.py) find these too
            svg = _fixed_ids(svgs[i].decode("utf-8"), i)
            parts.append(f'<figure class="chart js-plotly-plot">{svg}</figure>')
        else:
            parts.append('<figure class="chart">' + fig.to_html(full_html=False, include_plotlyjs=i == 0,
                                                                  config={"responsive": True}) + "</figure>")
    return "".join(parts)


# ----------------------------------------------------------------------------- example faces
def example_methods(summary: pd.DataFrame, test_set: str, noise: str, present: list[str]) -> list[str]:
    """Which methods the examples show for ``noise``: the post's filters and networks, and the best classical
    and best overall method by mean MAE, in catalogue order (the tables hold too many for a page)."""
    table = headline_table(summary, test_set, "mae")
    wanted = set(catalogue.POST_METHODS)
    if noise in table.index:
        row = table.loc[noise]
        classical = [m for m in row.index if catalogue.METHODS.get(m) and catalogue.METHODS[m].family == "classical"]
        wanted |= {m for m in (best_method(row[classical], "mae"), best_method(row, "mae")) if m}
    return [m for m in present if m in wanted]


def _face_score(per_image: pd.DataFrame, test_set: str, image_id: str, noise: str, method: str) -> str:
    rows = per_image[(per_image["test_set"] == test_set) & (per_image["image_id"] == image_id)
                     & (per_image["noise"] == noise) & (per_image["method"] == method)]
    return f"MAE {format_score('mae', rows['mae'].iloc[0])}" if len(rows) else ""


def example_faces(per_image: pd.DataFrame, summary: pd.DataFrame, bank, face_set: str, test_set: str,
                  outputs: Outputs, names: dict[str, str], n_faces: int = N_FACES) -> list[tuple[str, list]]:
    """Example faces per noise kind: the original, the scored noisy input and a few methods' outputs.

    Parameters
    ----------
    per_image : the per-face table (noise seeds, and each face's MAE for the captions).
    summary : the summary table; the best methods of ``test_set`` are the ones shown.
    bank : the faces of ``face_set`` (:class:`dashboard.facesource.FaceBank`), or None for no examples.
    outputs : runs methods on a noisy batch (the page's cached runner, or the CLI's registry).

    Returns
    -------
    list of (noise kind, rows); a row is (face id, [(caption, image)]).
    """
    from dashboard.facesource import scored_case

    if bank is None or per_image.empty:
        return []
    part = per_image[per_image["test_set"] == face_set]
    ids = [i for i in dict.fromkeys(part["image_id"].astype(str)) if i in bank][:n_faces]
    examples = []
    for noise in dict.fromkeys(part["noise"].astype(str)):
        present = list(dict.fromkeys(part.loc[part["noise"] == noise, "method"].astype(str)))
        methods = example_methods(summary, test_set, noise, present)
        rows = []
        for image_id in ids:
            case = scored_case(per_image, bank, face_set, image_id, noise)
            if case is None:
                continue
            clean, noisy, spec = case
            done = outputs(noisy[None], spec, methods)
            scores = {m: _face_score(part, face_set, image_id, noise, m) for m in ["noisy", *methods]}
            cells = [("Original", "", clean), ("With noise", scores["noisy"], noisy)]
            cells += [(names.get(m, m), scores[m], done[m][0]) for m in methods if m in done]
            rows.append((image_id, cells))
        if rows:
            examples.append((noise, rows))
    return examples


def faces_html(rows: list) -> str:
    """One wrapping line of small exact-pixel PNGs per face, each captioned with its method and MAE."""
    parts = []
    for _, cells in rows:
        scale = max(1, round(FACE_WIDTH / cells[0][2].shape[1]))  # whole pixels; larger faces are not enlarged
        figures = "".join(
            f'<figure><img src="{png_data_uri(image, scale)}" width="{image.shape[1] * scale}" '
            f'height="{image.shape[0] * scale}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}" + (f"<br>{html.escape(score)}" if score else "")
            + "</figcaption></figure>" for caption, score, image in cells)
        parts.append(f'<div class="faces">{figures}</div>')
    return "".join(parts)


# ----------------------------------------------------------------------------- the article
def _noise_items(per_image: pd.DataFrame, test_set: str, kinds: list[str]) -> str:
    """Each noise kind in words: its label, the strength it was scored at, what it looks like."""
    from denoising.noise import NoiseSpec

    part = per_image[per_image["test_set"] == test_set] if not per_image.empty else per_image
    items = []
    for kind in kinds:
        params = part.loc[part["noise"] == kind, "noise_params"] if len(part) else pd.Series(dtype=str)
        strength = f" ({NoiseSpec.from_json(str(params.iloc[0])).label})" if len(params) else ""
        items.append(f"<li><b>{html.escape(noise_label(kind))}</b>{html.escape(strength)}: "
                     f"{html.escape(NOISE_DESCRIPTIONS.get(kind, ''))}</li>")
    return "<ul>" + "".join(items) + "</ul>"


def _method_sentence(methods: list[str], names: dict[str, str]) -> str:
    """The compared methods by family, in words, from the catalogue."""
    family = lambda m: catalogue.METHODS[m].family if m in catalogue.METHODS else "learned"  # noqa: E731
    told = [names.get(m, m) for m in methods if m in catalogue.METHODS and catalogue.METHODS[m].told_noise]
    classical = [names.get(m, m) for m in methods if family(m) == "classical" and names.get(m, m) not in told]
    learned = [names.get(m, m) for m in methods if family(m) == "learned"]
    text = (f"{len(methods) - ('noisy' in methods)} methods were compared with the noisy photo left alone, the score "
            f"every method should beat: classical filters that are not told anything about the noise "
            f"({', '.join(classical)}), and neural networks trained on other faces ({', '.join(learned) or 'none'}).")
    if told:
        text += (f" As references, some are told the kind and strength of the noise, which a person with a real "
                 f"photo does not know: {', '.join(told)}.")
    return html.escape(text)


def intro_html(data, test_set: str, names: dict[str, str]) -> str:
    """What was compared and how it was scored, for a reader who never saw the dashboard."""
    summary = data.summary[data.summary["test_set"] == test_set]
    kinds = list(dict.fromkeys(summary["noise"].astype(str)))
    methods = list(headline_table(data.summary, test_set, "mae").columns)
    n_faces = int(summary["n_images"].max()) if "n_images" in summary and len(summary) else 0
    from dashboard.facesource import meta_face_size

    size = meta_face_size(data.meta)
    scores = "; ".join(METRIC_LABELS[m] for m in METRICS)
    return (
        "<h2>What was compared</h2>"
        f"<p>A 2020 blog post compared ways to remove noise from small face photos; this is the comparison redone "
        f"honestly. Face photos ({size}×{size} pixels) were spoiled with {len(kinds)} kinds of noise, at the "
        f"strengths below, and each method tried to remove it. Every method got the same {n_faces} noisy test faces "
        f"({html.escape(test_set_title(test_set))}) and its output was scored against the original photo.</p>"
        + _noise_items(data.per_image, test_set, kinds)
        + f"<p>{_method_sentence(methods, names)}</p>"
        f"<p>Scores, averaged over the faces: {html.escape(scores)}. Error bars on the charts are 95% confidence "
        "intervals of the mean.</p>")


def footer_html(made: _dt.datetime, commit: str, fingerprint: str, scored: str = "") -> str:
    """Dates, code version and the tables' fingerprint: enough to find what made the file, and no machine path.

    ``scored`` is when the tables were computed (their meta.json's ``date_utc``), "" when not recorded.
    """
    parts = [f"Made {made:%Y-%m-%d %H:%M} UTC with the face-denoising lab"]
    if re.fullmatch(r"\d{4}-\d\d-\d\d.*", scored):
        parts.append(f"results computed {scored[:10]}")
    if commit:
        parts.append(f"code at commit {commit}")
    if fingerprint:
        parts.append(f"result tables fingerprint {fingerprint} (SHA-256 of {', '.join(FINGERPRINT_FILES)})")
    return "<footer><p>" + html.escape(" · ".join(parts)) + ".</p></footer>"


#: Where the example faces come from when the test set's own photos are not available here.
LFW_STAND_IN = ("The {title} photos are not available where this report was made, so the examples show the "
                "built-in LFW faces instead, with the noise they were scored with; the numbers above are {title}'s.")


def faces_note(test_set: str, face_set: str) -> str:
    """One line for the examples when they come from another test set than the numbers ("" when the same)."""
    return "" if face_set == test_set else LFW_STAND_IN.format(title=test_set_title(test_set))


def findings_report(data, test_set: str, examples: list[tuple[str, list]], faces_note: str = "",
                    made: _dt.datetime | None = None, commit: str | None = None) -> str:
    """The whole report, one HTML string: intro, findings in words, tables, charts, example faces, footer.

    Parameters
    ----------
    data : :class:`dashboard.tables.Tables` read from a tables folder.
    test_set : the test set the numbers describe.
    examples : from :func:`example_faces`; empty for none.
    faces_note : one line on where the example faces come from (e.g. LFW standing in for CelebA).
    made : the report's time (UTC, now by default); commit : the code's (found with git by default).
    """
    names = display_names(data.meta)
    made = (made or _dt.datetime.now(_dt.timezone.utc)).astimezone(_dt.timezone.utc)  # the footer says UTC
    commit = code_commit() if commit is None else commit
    title = "What removes noise from small face photos best?"
    out = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
           f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{html.escape(title)}</title>"
           f"<style>{_STYLE}</style></head><body><header><h1>{html.escape(title)}</h1>"
           f"<p class='sub'>Findings on {html.escape(test_set_title(test_set))} · {made:%d %B %Y}</p></header>",
           intro_html(data, test_set, names), "<h2>In plain words</h2><ul>"
           + "".join(f"<li>{_markdown_bold(s)}</li>" for s in findings(data.summary, test_set, names)) + "</ul>"]
    for metric in METRICS:
        out.append(f"<h2>Mean {html.escape(METRIC_SHORT[metric])} per method and kind of noise</h2>"
                   + scores_table_html(data.summary, test_set, metric, names))
    out.append("<h2>The scores as charts</h2>" + charts_html(report_figures(data.summary, test_set, names)))
    if examples:
        out.append("<h2>Example faces</h2>" + (f"<p>{html.escape(faces_note)}</p>" if faces_note else "")
                   + "<p class='caption'>Each face enlarged pixel for pixel; under each picture its MAE against "
                   "the original (lower is closer).</p>")
        for noise, rows in examples:
            out.append(f"<h3>{html.escape(noise_label(noise))}</h3>" + faces_html(rows))
    out.append(footer_html(made, commit, tables_fingerprint(data.folder) if data.folder else "",
                           str(data.meta.get("date_utc", ""))))
    return "".join(out) + "</body></html>"


# ----------------------------------------------------------------------------- from a tables folder (the CLI)
class ReportError(Exception):
    """Something the user can fix (a missing folder, unusable tables, an unknown test set); one line."""


def load_report_tables(tables: Path, test_set: str | None):
    """The tables of a folder and the test set to report (CelebA's when present), or a :class:`ReportError`."""
    from dashboard.tables import read_tables

    if not tables.is_dir():
        raise ReportError(f"no tables folder at {tables} (pass --tables DIR, a folder holding summary.csv)")
    data = read_tables(tables)
    if data.error:
        raise ReportError(f"the tables in {tables} cannot be used: {data.error}")
    if data.empty or data.summary.empty:
        raise ReportError(f"no result tables (summary.csv, per_image.csv) in {tables}; make them with "
                          "scripts/evaluate.py")
    sets = data.test_sets()
    chosen = test_set or sets[0]
    if chosen not in sets:
        raise ReportError(f"unknown test set {chosen!r}; the tables have: {', '.join(sets)}")
    return data, chosen


def report_face_bank(data, test_set: str):
    """(faces, the test set they belong to): CelebA from DENOISING_CELEBA_DIR when set, else the built-in LFW faces."""
    import os

    from dashboard import facesource

    size = facesource.meta_face_size(data.meta)
    folder = os.environ.get("DENOISING_CELEBA_DIR", "").strip()
    if test_set != "lfw" and folder:
        ids = list(dict.fromkeys(data.per_image.loc[data.per_image["test_set"] == test_set, "image_id"].astype(str)))
        try:
            return facesource.celeba_bank(Path(folder), ids, size, facesource.dashboard_cache_dir()), test_set
        except (facesource.FaceSourceError, OSError) as error:
            _log.warning("note: %s Using the built-in LFW faces for the examples.", error)
    if test_set == "lfw" or "lfw" in data.test_sets():
        return facesource.lfw_bank(size), "lfw"
    return None, test_set


def registry_outputs(checkpoints: Path | None) -> Outputs:
    """A runner for :func:`example_faces`: each method from the registry, once per batch; a broken one is left out."""
    from dashboard.tables import checkpoint_dir
    from denoising.registry import build_registry

    methods = build_registry(checkpoints or checkpoint_dir())

    def outputs(noisy: np.ndarray, spec, wanted: list[str]) -> dict[str, np.ndarray]:
        done = {}
        for name in wanted:
            method = methods.get(name)
            if method is None or not method.available(spec.kind):
                continue
            try:
                done[name] = np.asarray(method(noisy, spec), np.float32)
            except Exception as error:  # noqa: BLE001 - a broken checkpoint leaves one picture out, not the report
                _log.warning("note: %s left out of the examples: %s", name, error)
        return done

    return outputs


def report_from_folder(tables: Path, test_set: str | None = None, checkpoints: Path | None = None,
                       n_faces: int = N_FACES) -> str:
    """The report of a tables folder, as :func:`findings_report` (what ``scripts/make_report.py`` writes).

    ``n_faces`` example faces per noise kind (0: none), drawn from the test set's own photos where
    ``DENOISING_CELEBA_DIR`` provides them, else the built-in LFW faces; ``checkpoints`` holds the networks.
    Raises :class:`ReportError` for a missing or unusable folder or an unknown test set.
    """
    data, test_set = load_report_tables(tables, test_set)
    bank, face_set = report_face_bank(data, test_set) if n_faces else (None, test_set)
    examples = example_faces(data.per_image, data.summary, bank, face_set, test_set, registry_outputs(checkpoints),
                             display_names(data.meta), n_faces) if bank else []
    return findings_report(data, test_set, examples, faces_note(test_set, face_set))
