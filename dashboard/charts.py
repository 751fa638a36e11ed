"""Plotly figures for the dashboard and the offline report (no streamlit here)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.tables import log_strength_axis, preset_strength
from denoising.catalogue import (
    HIGHER_IS_BETTER,
    METHODS,
    METRIC_LABELS,
    METRIC_SHORT,
    STRENGTH_ENDS,
    STRENGTHS,
    format_score,
    format_strength,
    noise_label,
    runs_downwards,
    strength_text,
    test_set_title,
)

# One distinct colour per method in the catalogue's order (:func:`method_colors`; the noisy input grey, then the
# classical methods, then the networks); plotly's default palette has only 10 and would repeat. Every chart
# takes a method's colour from method_colors, never from its position among the methods shown.
COLORWAY = ["#7f7f7f", "#aec7e8", "#1f77b4", "#98df8a", "#2ca02c", "#ffbb78", "#ff7f0e", "#c5b0d5", "#9467bd",
            "#d62728", "#e377c2", "#17becf", "#8c564b", "#bcbd22", "#393b79", "#637939", "#843c39", "#7b4173",
            "#9edae5", "#dbdb8d"]


def _name(names: dict[str, str], method: str) -> str:
    return names.get(method, method)


def grouped_bars(summary: pd.DataFrame, test_set: str, metric: str, names: dict[str, str],
                 methods: list[str] | None = None) -> go.Figure:
    """The post's chart, done right: mean error per noise kind and method, with 95% intervals."""
    part = summary[summary["test_set"] == test_set]
    methods = methods or list(dict.fromkeys(part["method"]))
    colors = method_colors(methods)
    most = part["n_images"].max() if "n_images" in part and len(part) else 0
    fig = go.Figure()
    for method in methods:
        rows = part[part["method"] == method]
        if rows.empty:
            continue
        # a mean over fewer faces than the others says so in the legend and on hover
        label = _name(names, method) + (_n_text(rows["n_images"].to_numpy(float), most) if most else "")
        mean = rows[f"{metric}_mean"].to_numpy(float)
        low = rows.get(f"{metric}_ci_low", pd.Series(np.nan, index=rows.index)).to_numpy(float)
        high = rows.get(f"{metric}_ci_high", pd.Series(np.nan, index=rows.index)).to_numpy(float)
        has_ci = np.isfinite(low).any()
        fig.add_bar(
            name=label,
            x=[noise_label(n) for n in rows["noise"]],
            y=mean,
            marker_color=colors[method],
            error_y=dict(type="data", symmetric=False, array=high - mean, arrayminus=mean - low, visible=True)
            if has_ci else None,
            text=[format_score(metric, v) for v in mean], textposition="none",
            hovertemplate=f"{label}<br>%{{x}}<br>{METRIC_SHORT[metric]} %{{text}}<extra></extra>",
        )
    fig.update_layout(
        barmode="group",
        yaxis_title=METRIC_LABELS[metric],
        xaxis_title="Kind of noise",
        legend_title="Method",
        margin=dict(l=10, r=10, t=30, b=10),
        height=420,
        colorway=COLORWAY,
    )
    return fig


def chart_title(metric: str, test_set: str) -> str:
    """The title of :func:`grouped_bars` in a file: the score, the noise kinds and the test faces."""
    return f"Mean {METRIC_SHORT[metric]} per method and kind of noise · {test_set_title(test_set)}"


def distribution(per_image: pd.DataFrame, metric: str, names: dict[str, str], kind: str,
                 most: int | None = None) -> go.Figure:
    """Per-image distribution of ``metric`` for each method: ``kind`` is histogram, box, violin or ecdf.

    Each method keeps its colour (:func:`method_colors`) whichever others are shown; one scored on
    fewer faces than ``most`` (default: the most of any method shown) says how many in its name.
    """
    fig = go.Figure()
    counts = per_image.groupby("method", sort=False)["image_id"].nunique() if len(per_image) else pd.Series()
    most = most if most is not None else (counts.max() if len(counts) else 0)
    colors = method_colors(list(counts.index))
    for method, rows in per_image.groupby("method", sort=False):
        values = rows[metric].replace([np.inf, -np.inf], np.nan).dropna().to_numpy(float)
        label = _name(names, method) + _n_text(np.array([counts[method]], float), most)
        color = colors[method]
        if kind == "histogram":
            fig.add_histogram(x=values, name=label, opacity=0.6, nbinsx=40, marker_color=color)
        elif kind == "box":
            fig.add_box(y=values, name=label, boxmean=True, marker_color=color)
        elif kind == "violin":
            fig.add_violin(y=values, name=label, box_visible=True, meanline_visible=True, line_color=color)
        else:
            xs = np.sort(values)
            fig.add_scatter(x=xs, y=np.arange(1, len(xs) + 1) / max(len(xs), 1), mode="lines", name=label,
                            line=dict(color=color))
    axis = METRIC_LABELS[metric]
    if kind == "histogram":
        fig.update_layout(barmode="overlay", xaxis_title=axis, yaxis_title="Number of faces")
    elif kind == "ecdf":
        fig.update_layout(xaxis_title=axis, yaxis_title="Share of faces at or below this value")
    else:
        fig.update_layout(yaxis_title=axis, showlegend=False)
    fig.update_layout(margin=dict(l=10, r=10, t=30, b=10), height=420, legend_title="Method", colorway=COLORWAY)
    return fig


def paired_histogram(diff: np.ndarray, metric: str, a: str, b: str) -> go.Figure:
    """Histogram of per-face differences (a - b), with a line at zero."""
    fig = go.Figure(go.Histogram(x=diff, nbinsx=40, name="faces"))
    fig.add_vline(x=0, line_dash="dash")
    better = "right" if HIGHER_IS_BETTER[metric] else "left"
    fig.update_layout(
        xaxis_title=f"{METRIC_SHORT[metric]} of {a} minus {b} (faces {better} of the line favour {a})",
        yaxis_title="Number of faces",
        margin=dict(l=10, r=10, t=30, b=10),
        height=320,
    )
    return fig


def training_curves(history: pd.DataFrame, noisy_val: dict | None = None, kept_epoch: int | None = None,
                    loss: str | None = None) -> go.Figure:
    """Training loss, validation MAE and validation PSNR per epoch, side by side, the kept epoch marked.

    ``loss`` names the training loss in the first panel's title ("adversarial + 100 × L1").

    ``noisy_val`` ({"mae", "psnr"} of the untouched noisy validation faces) draws the bar to beat.
    ``kept_epoch`` is the checkpoint's ``best_epoch``; it is not simply the lowest validation MAE,
    because a smaller gain than the training's ``min_improvement`` did not replace the kept weights.
    """
    from plotly.subplots import make_subplots

    x = history["epoch"] if "epoch" in history else pd.Series(np.arange(1, len(history) + 1))
    # two lines each: three panels share the page's width, and one-line titles ran into each other and past the
    # figure's edges ("Training loss (−PSNR of output − PSNR of correction)", "… (higher better)")
    panels = [("train_loss", f"Training loss<br>({loss})" if loss else "Training loss"),
              ("val_mae", "Validation MAE<br>(lower is better)"), ("val_psnr", "Validation PSNR in dB<br>(higher is better)")]
    panels = [(c, t) for c, t in panels if c in history]
    fig = make_subplots(rows=1, cols=max(1, len(panels)), subplot_titles=[t for _, t in panels])
    kept = np.flatnonzero(x.to_numpy() == kept_epoch) if kept_epoch is not None else []
    best = int(kept[0]) if len(kept) else None
    for col, (column, _) in enumerate(panels, start=1):
        fig.add_scatter(x=x, y=history[column], mode="lines+markers", name=column, showlegend=False,
                        marker=dict(size=5), line=dict(color="#1f77b4"), row=1, col=col)
        if best is not None:
            fig.add_scatter(x=[x.iloc[best]], y=[history[column].iloc[best]], mode="markers", showlegend=col == 1,
                            name="kept weights (best validation epoch)", marker=dict(size=12, color="#d62728",
                                                                                   symbol="star"), row=1, col=col)
        metric = column.removeprefix("val_")
        if noisy_val and column.startswith("val_") and noisy_val.get(metric) is not None:
            fig.add_hline(y=noisy_val[metric], line_dash="dash", line_color="grey", row=1, col=col,
                          annotation_text="noisy input", annotation_position="top left")
        fig.update_xaxes(title_text="Epoch", row=1, col=col)
    fig.update_layout(margin=dict(l=10, r=10, t=70, b=10), height=380,
                      legend=dict(orientation="h", yanchor="bottom", y=-0.35))
    return fig


def strength_history(history: pd.DataFrame, metric: str = "psnr") -> go.Figure:
    """Validation score per epoch at each strength, for a network trained over a range of strengths.

    ``history`` holds ``val_<metric>_by_strength <strength>`` columns (see ``views/training.history_frame``).
    """
    prefix = f"val_{metric}_by_strength "
    x = history["epoch"] if "epoch" in history else pd.Series(np.arange(1, len(history) + 1))
    fig = go.Figure()
    for i, column in enumerate(c for c in history.columns if c.startswith(prefix)):
        fig.add_scatter(x=x, y=history[column], mode="lines", name=column.removeprefix(prefix),
                        line=dict(color=COLORWAY[i % len(COLORWAY)]))
    fig.update_layout(margin=dict(l=10, r=10, t=30, b=10), height=340, xaxis_title="Epoch",
                      yaxis_title=METRIC_SHORT.get(metric, metric), legend_title_text="strength")
    return fig


def method_colors(methods: list[str]) -> dict[str, str]:
    """A fixed colour per method: the catalogue's methods by their place in it, others after them in the order given.

    So a method keeps its colour whichever others are shown beside it.
    """
    order = list(dict.fromkeys([*METHODS, *methods]))
    return {method: COLORWAY[i % len(COLORWAY)] for i, method in enumerate(order)}


def _rgba(color: str, alpha: float) -> str:
    red, green, blue = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def _n_text(n: np.ndarray, most: float) -> str:
    """' · n = 100' (or '100–660') when a method was scored on fewer faces than the most in the table."""
    if not len(n) or n.min() >= most:
        return ""
    low, high = int(n.min()), int(n.max())
    return f" · n = {low}" if low == high else f" · n = {low}–{high}"


def _method_traces(fig: go.Figure, rows: pd.DataFrame, metric: str, label: str, color: str, kind: str) -> None:
    """One method's line with its 95 % band (drawn as the band's upper edge, then the lower edge filled up to it)."""
    x, mean = rows["strength"].to_numpy(float), rows[f"{metric}_mean"].to_numpy(float)
    low, high = rows[f"{metric}_ci_low"].to_numpy(float), rows[f"{metric}_ci_high"].to_numpy(float)
    if np.isfinite(low).all() and np.isfinite(high).all():
        fig.add_scatter(x=x, y=high, mode="lines", line=dict(width=0), legendgroup=label, showlegend=False,
                        hoverinfo="skip")
        fig.add_scatter(x=x, y=low, mode="lines", line=dict(width=0), fill="tonexty", fillcolor=_rgba(color, 0.18),
                        legendgroup=label, showlegend=False, hoverinfo="skip")
    texts = [f"{strength_text(kind, v)}<br>{METRIC_SHORT[metric]} {m:.4g} (95 % interval {lo:.4g} to {hi:.4g})"
             f"<br>n = {int(n)} faces" for v, m, lo, hi, n in zip(x, mean, low, high, rows["n_images"], strict=True)]
    fig.add_scatter(x=x, y=mean, mode="lines+markers", name=label, legendgroup=label, line=dict(color=color),
                    marker=dict(color=color, size=6), text=texts,
                    hovertemplate=f"{label}<br>%{{text}}<extra></extra>")


def _training_marks(rows: pd.DataFrame, metric: str, span: tuple[float, float], log_x: bool) -> tuple[list, list]:
    """Where a network's line passes its training strength(s): sweep points inside a range, else interpolated."""
    x, y = rows["strength"].to_numpy(float), rows[f"{metric}_mean"].to_numpy(float)
    low, high = span
    inside = (x >= low * (1 - 1e-9)) & (x <= high * (1 + 1e-9))
    if low != high and inside.any():
        return list(x[inside]), list(y[inside])
    order = np.argsort(x)
    xs, ys = x[order], y[order]
    if not len(xs) or not xs[0] <= low <= xs[-1]:
        return [], []
    where = (np.log(xs), np.log(low)) if log_x else (xs, low)
    return [low], [float(np.interp(where[1], where[0], ys))]


def strength_curves(sweep: pd.DataFrame, kind: str, metric: str, methods: list[str], names: dict[str, str],
                    colors: dict[str, str], trained: dict[str, tuple[float, float]] | None = None) -> go.Figure:
    """Mean ``metric`` against the kind's strength for each method, with 95 % bands, mild on the left.

    Parameters
    ----------
    sweep : the sweep rows of one test set and noise kind (``sweep_summary.csv``).
    kind : the noise kind; its own parameter is the x axis (log when it spans 20x or more, reversed for peak).
    metric : mae, psnr or ssim.
    methods : which methods to draw, in legend order.
    names, colors : method name -> display name, and -> colour (:func:`method_colors`).
    trained : network name -> (low, high) strength it was trained on, marked with a star on its line.
    """
    fig, log_x = go.Figure(), log_strength_axis(kind)
    most = sweep["n_images"].max() if len(sweep) else 0
    trained, marked = trained or {}, False
    for method in methods:
        rows = sweep[sweep["method"] == method].dropna(subset=[f"{metric}_mean"]).sort_values("strength")
        if rows.empty:
            continue
        label = _name(names, method) + _n_text(rows["n_images"].to_numpy(float), most)
        _method_traces(fig, rows, metric, label, colors.get(method, COLORWAY[0]), kind)
        if method in trained:
            xs, ys = _training_marks(rows, metric, trained[method], log_x)
            fig.add_scatter(x=xs, y=ys, mode="markers", name="trained at", legendgroup="trained",
                            showlegend=bool(xs) and not marked,
                            marker=dict(symbol="star", size=15, color=colors.get(method), line=dict(width=1)),
                            hovertemplate=f"{_name(names, method)} was trained at %{{x:.3g}}<extra></extra>")
            marked = marked or bool(xs)
    _strength_layout(fig, sweep, kind, metric)
    return fig


def _strength_layout(fig: go.Figure, sweep: pd.DataFrame, kind: str, metric: str) -> None:
    """Axes in the kind's own unit, mild on the left, the post's strength and the words at the two ends."""
    preset = preset_strength(kind)
    values = sweep[f"{metric}_mean"].replace([np.inf, -np.inf], np.nan).dropna()
    if len(values):  # a dotted vertical at the post's strength, as a trace: shapes on log axes need log10 positions
        fig.add_scatter(x=[preset, preset], y=[values.min(), values.max()], mode="lines+text",
                        text=["", "the post's"], textposition="top center", showlegend=False, hoverinfo="skip",
                        line=dict(color="grey", dash="dot", width=1), textfont=dict(color="grey"))
    ticks = sorted(set(sweep["strength"].astype(float)))
    fig.update_xaxes(type="log" if log_strength_axis(kind) else "linear", tickvals=ticks,
                     ticktext=[format_strength(v) for v in ticks], title_text=STRENGTHS[kind].label,
                     autorange="reversed" if runs_downwards(kind) else True)
    mild, strong = STRENGTH_ENDS
    for x, text, anchor in ((0, f"← {mild}", "left"), (1, f"{strong} →", "right")):
        fig.add_annotation(x=x, y=1.0, xref="paper", yref="paper", text=text, showarrow=False, xanchor=anchor,
                           yanchor="bottom", font=dict(color="grey"))
    # the legend sits at the figure's foot (container coordinates; plotly widens the bottom margin to hold it),
    # never at a fraction of the plot's height below the axis: more methods, more legend rows, a shorter plot
    # and the legend rose over the axis title. The figure grows by a row of the half-page legend per two entries.
    entries = sum(1 for trace in fig.data if trace.showlegend is not False)
    fig.update_layout(title=dict(text=noise_label(kind), x=0.5, xanchor="center"), yaxis_title=METRIC_LABELS[metric],
                      margin=dict(l=10, r=10, t=60, b=10), height=max(430, 400 + 30 * -(-entries // 2)),
                      hovermode="closest",
                      legend=dict(orientation="h", yref="container", yanchor="bottom", y=0, x=0))


#: Smallest margins (px) of a downloaded chart: the page's charts use tight margins that a stand-alone
#: file does not grow on its own, so tick labels and axis titles fell outside it.
DOWNLOAD_MARGIN = {"l": 70, "r": 20, "t": 40, "b": 60}
#: Top margin (px) when the file's chart carries a title of its own (two lines fit).
TITLED_TOP = 80
#: Plotly theme of a chart in a file (a download, the report): white, light grid, prints with little ink.
FILE_TEMPLATE = "plotly_white"
#: Size (px) of an exported PNG or SVG chart: fits a laptop screen and, scaled, an A4 page.
EXPORT_SIZE = (960, 540)
#: Seconds an export may take before it counts as failed (Chromium starts in 2-3 s on 2 cores).
EXPORT_TIMEOUT_S = 90


def with_room_for_labels(fig: go.Figure, title: str | None = None) -> go.Figure:
    """A copy of ``fig`` for a file (a chart download, the report): margins of at least :data:`DOWNLOAD_MARGIN`.

    Parameters
    ----------
    fig : the page's figure; it keeps its own layout.
    title : what the file's chart shows (test set, noise, metric): a file read on its own has no page
        heading around it, so it carries one. ``None`` keeps the figure's own title.
    """
    fig = go.Figure(fig)  # a copy: the page's chart keeps its own layout
    # one look in every file, whoever draws it: under streamlit a figure gets streamlit's theme by default
    fig.update_layout(template=FILE_TEMPLATE)
    margin = fig.layout.margin
    least = dict(DOWNLOAD_MARGIN, t=TITLED_TOP) if title else DOWNLOAD_MARGIN
    fig.update_layout(margin={side: max(getattr(margin, side) or 0, low) for side, low in least.items()})
    if title:
        fig.update_layout(title=dict(text=title, x=0.5, xanchor="center", y=0.98, yanchor="top",
                                     font=dict(size=15)))
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    return fig


def figure_html(fig: go.Figure, title: str | None = None) -> str:
    """A stand-alone HTML file for one chart (plotly.js inlined, so it opens offline), nothing clipped."""
    return with_room_for_labels(fig, title).to_html(include_plotlyjs=True, full_html=True)


#: How an exported file of each format starts.
_SIGNATURES = {"svg": b"<svg", "png": b"\x89PNG"}


def export_available() -> bool:
    """Whether :func:`static_images` can run here: kaleido installed and a Chromium found (nothing is started)."""
    try:
        import kaleido  # noqa: F401
        from choreographer.browsers.chromium import Chromium

        return Chromium.find_browser(skip_local=False) is not None
    except Exception:  # noqa: BLE001 - an exporter that cannot even be looked for is not available
        return False


def static_images(figs: list[go.Figure], fmt: str = "svg", size: tuple[int, int] = EXPORT_SIZE) -> list[bytes] | None:
    """The figures as SVG or PNG files, drawn by plotly.js in a headless Chromium (kaleido); None when that fails.

    Offline: plotly.js comes from the plotly package and MathJax (fetched from the web by default) is
    switched off. One browser serves all figures. Kaleido finds Debian's ``chromium`` on the PATH, or
    the one ``BROWSER_PATH`` names. Any failure (no kaleido, no browser, a timeout) gives None, so a
    caller can fall back to HTML: an export never ends in a traceback.
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    try:
        import kaleido
    except ImportError:
        return None
    width, height = size

    async def draw() -> list[bytes]:
        async with kaleido.Kaleido(n=1, mathjax=False, timeout=EXPORT_TIMEOUT_S) as browser:
            # PNG at twice the pixels: crisp on a high-density screen or a slide
            opts = dict(format=fmt, width=width, height=height, scale=2 if fmt == "png" else 1)
            return [await browser.calc_fig(fig.to_dict(), opts=opts) for fig in figs]

    # kaleido has (rarely, on a busy machine) returned an empty image: such a batch is drawn once more
    for _ in range(2):
        # a thread of its own: asyncio.run cannot start inside a running event loop (a notebook, a server)
        with ThreadPoolExecutor(1) as pool:
            try:
                images = pool.submit(asyncio.run, draw()).result()  # kaleido times out each figure itself
            except Exception:  # noqa: BLE001 - any exporter failure means "offer HTML only", never a traceback
                return None
        if all(isinstance(image, bytes) and image.lstrip().startswith(_SIGNATURES[fmt]) for image in images):
            return images
    return None


def figure_png(fig: go.Figure, title: str | None = None) -> bytes | None:
    """One chart as a PNG file (same margins and title as :func:`figure_html`), or None when export fails."""
    images = static_images([with_room_for_labels(fig, title)], "png")
    return images[0] if images else None
