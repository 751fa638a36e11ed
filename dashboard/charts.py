"""Plotly figures for the dashboard and the offline report (no streamlit here)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from denoising.catalogue import HIGHER_IS_BETTER, METRIC_LABELS, METRIC_SHORT, noise_label

# One distinct colour per method in registry order (noisy input grey, 8 filters, 3 networks in strong colours);
# plotly's default palette has only 10 and would repeat.
COLORWAY = ["#7f7f7f", "#aec7e8", "#1f77b4", "#98df8a", "#2ca02c", "#ffbb78", "#ff7f0e", "#c5b0d5", "#9467bd",
            "#d62728", "#e377c2", "#17becf", "#8c564b", "#bcbd22"]


def _name(names: dict[str, str], method: str) -> str:
    return names.get(method, method)


def grouped_bars(summary: pd.DataFrame, test_set: str, metric: str, names: dict[str, str],
                 methods: list[str] | None = None) -> go.Figure:
    """The post's chart, done right: mean error per noise kind and method, with 95% intervals."""
    part = summary[summary["test_set"] == test_set]
    methods = methods or list(dict.fromkeys(part["method"]))
    fig = go.Figure()
    for method in methods:
        rows = part[part["method"] == method]
        if rows.empty:
            continue
        mean = rows[f"{metric}_mean"].to_numpy(float)
        low = rows.get(f"{metric}_ci_low", pd.Series(np.nan, index=rows.index)).to_numpy(float)
        high = rows.get(f"{metric}_ci_high", pd.Series(np.nan, index=rows.index)).to_numpy(float)
        has_ci = np.isfinite(low).any()
        fig.add_bar(
            name=_name(names, method),
            x=[noise_label(n) for n in rows["noise"]],
            y=mean,
            error_y=dict(type="data", symmetric=False, array=high - mean, arrayminus=mean - low, visible=True)
            if has_ci else None,
            hovertemplate=f"{_name(names, method)}<br>%{{x}}<br>{METRIC_SHORT[metric]} %{{y:.4f}}<extra></extra>",
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


def distribution(per_image: pd.DataFrame, metric: str, names: dict[str, str], kind: str) -> go.Figure:
    """Per-image distribution of ``metric`` for each method: ``kind`` is histogram, box, violin or ecdf."""
    fig = go.Figure()
    for method, rows in per_image.groupby("method", sort=False):
        values = rows[metric].replace([np.inf, -np.inf], np.nan).dropna().to_numpy(float)
        label = _name(names, method)
        if kind == "histogram":
            fig.add_histogram(x=values, name=label, opacity=0.6, nbinsx=40)
        elif kind == "box":
            fig.add_box(y=values, name=label, boxmean=True)
        elif kind == "violin":
            fig.add_violin(y=values, name=label, box_visible=True, meanline_visible=True)
        else:
            xs = np.sort(values)
            fig.add_scatter(x=xs, y=np.arange(1, len(xs) + 1) / max(len(xs), 1), mode="lines", name=label)
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


def training_curves(history: pd.DataFrame, noisy_val: dict | None = None, kept_epoch: int | None = None) -> go.Figure:
    """Training loss, validation MAE and validation PSNR per epoch, side by side, the kept epoch marked.

    ``noisy_val`` ({"mae", "psnr"} of the untouched noisy validation faces) draws the bar to beat.
    ``kept_epoch`` is the checkpoint's ``best_epoch``; it is not simply the lowest validation MAE,
    because a smaller gain than the training's ``min_improvement`` did not replace the kept weights.
    """
    from plotly.subplots import make_subplots

    x = history["epoch"] if "epoch" in history else pd.Series(np.arange(1, len(history) + 1))
    panels = [("train_loss", "Training loss"), ("val_mae", "Validation MAE (lower is better)"),
              ("val_psnr", "Validation PSNR in dB (higher better)")]
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
    fig.update_layout(margin=dict(l=10, r=10, t=50, b=10), height=360,
                      legend=dict(orientation="h", yanchor="bottom", y=-0.35))
    return fig


def figure_html(fig: go.Figure) -> str:
    """A stand-alone HTML file for one chart (plotly.js inlined, so it opens offline)."""
    return fig.to_html(include_plotlyjs=True, full_html=True)
