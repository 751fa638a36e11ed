"""The one-file offline HTML report of the findings (no streamlit here).

Everything is inside the file: plotly.js once (inline), charts, tables, and face pictures as
base64 PNG, so a reader can open it with no network and no Python.
"""

from __future__ import annotations

import datetime as _dt
import html
import re

import numpy as np
import pandas as pd

from dashboard.charts import with_room_for_labels
from dashboard.images import png_data_uri

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th{background:#f3f3f3}.grid td{border:none;text-align:center;font-size:.75em;vertical-align:top}
.grid img{image-rendering:pixelated;display:block;margin:auto}
"""


def _markdown_bold(text: str) -> str:
    return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(text))


def picture_grid_html(rows: list[tuple[str, list[tuple[str, np.ndarray]]]], scale: int = 4) -> str:
    """Rows of (row title, [(caption, image)]) as an HTML table of lossless PNGs."""
    parts = ['<table class="grid">']
    for title, cells in rows:
        parts.append(f"<tr><th>{html.escape(title)}</th>")
        for caption, image in cells:
            parts.append(f'<td><img src="{png_data_uri(image, scale)}" alt="{html.escape(caption)}">'
                         f"{html.escape(caption)}</td>")
        parts.append("</tr>")
    parts.append("</table>")
    return "".join(parts)


def build_report(title: str, intro: str, findings: list[str], tables: list[tuple[str, pd.DataFrame]],
                 figures: list[tuple[str, object]], grids: list[tuple[str, str]], footer: str = "") -> str:
    """Assemble the report.

    Parameters
    ----------
    findings : sentences (``**bold**`` allowed).
    tables : (heading, data frame) pairs.
    figures : (heading, plotly figure) pairs; plotly.js is inlined with the first one only.
    grids : (heading, HTML from :func:`picture_grid_html`) pairs.
    """
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
           f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1><p>{html.escape(intro)}</p>"]
    if findings:
        out.append("<h2>Findings</h2><ul>" + "".join(f"<li>{_markdown_bold(s)}</li>" for s in findings) + "</ul>")
    for heading, frame in tables:
        out.append(f"<h2>{html.escape(heading)}</h2>" + frame.to_html(float_format=lambda v: f"{v:.4f}", na_rep="–"))
    first = True
    for heading, fig in figures:
        out.append(f"<h2>{html.escape(heading)}</h2>")
        out.append(with_room_for_labels(fig).to_html(full_html=False, include_plotlyjs=first))
        first = False
    for heading, grid in grids:
        out.append(f"<h2>{html.escape(heading)}</h2>{grid}")
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    out.append(f"<hr><p><small>{html.escape(footer)} Report made {stamp}.</small></p></body></html>")
    return "".join(out)
