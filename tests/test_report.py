"""The one-file report (``dashboard/report.py``, ``scripts/make_report.py``) and the chart downloads.

Each test guards one defect the report once had: machine paths, outside requests, tables turned the
other way with pandas leftovers, no best-value mark, ties shown as wins, PSNR to four decimals, faces
too wide for a laptop or an A4 page, the CLI overwriting a file or printing a traceback. The chart
export (kaleido) is replaced by a stand-in SVG except in the tests that check the real one; those
skip where no Chromium is installed.
"""

from __future__ import annotations

import datetime as dt
import html as htmllib
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dashboard_fixtures import make_tables

from dashboard import report as rep
from dashboard.charts import export_available
from dashboard.tables import read_tables
from denoising.catalogue import METRICS, NOISE_KINDS, display_name, noise_label
from scripts import make_report

LFW_IDS = [f"lfw_{i:03d}" for i in range(4)]
MADE = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.timezone.utc)
FAKE_SVG = b'<svg class="main-svg" width="960" height="540" viewBox="0 0 960 540"><text>chart</text></svg>'
needs_exporter = pytest.mark.skipif(not export_available(), reason="kaleido or Chromium missing: no chart export")


@pytest.fixture(scope="module")
def tables_dir(tmp_path_factory) -> Path:
    return make_tables(tmp_path_factory.mktemp("report") / "tables", {"lfw": LFW_IDS}, sweep=False)


@pytest.fixture
def fake_export(monkeypatch):
    """Charts as a stand-in SVG: the report's layout is under test here, not Chromium (see the real-export tests)."""
    monkeypatch.setattr(rep, "static_images", lambda figs, fmt="svg", size=None: [FAKE_SVG] * len(figs))


def no_outputs(noisy, spec, methods):
    return {}


def _report(folder: Path, summary: pd.DataFrame | None = None, examples=None) -> str:
    data = read_tables(folder)
    if summary is not None:
        data.summary = summary
    return rep.findings_report(data, "lfw", examples or [], made=MADE, commit="abc1234")


def _tables(text: str) -> list[str]:
    return re.findall(r'<table class="scores">.*?</table>', text, flags=re.S)


def _cells(table: str) -> list[list[str]]:
    """Each body row as [row header, cell, cell, ...] (inner HTML of the th/td)."""
    body = table.split("<tbody>")[1]
    return [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row) for row in re.findall(r"<tr>(.*?)</tr>", body)]


def _summary(values: dict[str, dict[str, float]], metric: str = "mae", n: dict | None = None) -> pd.DataFrame:
    """A summary with ``values[noise][method]`` as the mean of ``metric`` (other scores copied)."""
    rows = []
    for noise, methods in values.items():
        for method, value in methods.items():
            row = dict(test_set="lfw", noise=noise, method=method, n_images=(n or {}).get(method, 4))
            for m in METRICS:
                row[f"{m}_mean"] = value if m == metric else 0.5
                row[f"{m}_ci_low"], row[f"{m}_ci_high"] = row[f"{m}_mean"] * 0.9, row[f"{m}_mean"] * 1.1
            rows.append(row)
    return pd.DataFrame(rows)


def test_the_report_shows_no_machine_path(tables_dir, fake_export):
    text = _report(tables_dir)
    assert str(tables_dir) not in text and str(Path.home()) not in text and str(rep.REPO_ROOT) not in text
    visible = htmllib.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<(style|svg).*?</\1>", "", text, flags=re.S)))
    assert not re.findall(r"(?:^|[\s(])(?:/[\w.-]+){2,}", visible)  # what report_check.py looks for, stricter


def test_the_report_makes_no_outside_request(tables_dir, fake_export):
    text = _report(tables_dir)
    links = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']*)', text)
    assert all(link.startswith(("data:", "#")) for link in links), links
    assert "<link" not in text and "<script src" not in text and "@import" not in text
    assert not re.findall(r"url\((?!#|data:)", text)


def test_tables_have_methods_as_rows_noise_as_columns_and_no_pandas_leftovers(tables_dir, fake_export):
    tables = _tables(_report(tables_dir))
    assert len(tables) == len(METRICS)
    for table in tables:
        header = re.findall(r"<th(?: [^>]*)?>(.*?)</th>", table.split("<tbody>")[0])
        assert header == ["Method"] + [htmllib.escape(noise_label(k)) for k in NOISE_KINDS]
        rows = [row[0] for row in _cells(table)]
        assert rows == [htmllib.escape(display_name(m)) for m in ("noisy", "mean", "median", "autoencoder")]
        assert "<th></th>" not in table and ">method<" not in table and ">noise<" not in table
        assert "dataframe" not in table and "nan" not in table.lower()


def test_best_is_marked_and_ties_are_ties_not_wins(tables_dir, fake_export):
    values = {"gaussian": {"noisy": 0.2, "mean": 0.05, "median": 0.07},  # mean wins
              "poisson": {"noisy": 0.2, "mean": 0.031234, "median": 0.031236}}  # same at 3 significant digits
    table = _tables(_report(tables_dir, _summary(values)))[0]
    rows = {row[0]: row[1:] for row in _cells(table)}
    assert re.search(r'<td class="best">0\.0500</td>', table)
    assert rows[htmllib.escape(display_name("median"))][0] == "0.0700"
    tied = re.findall(r'<td class="best tie">= (0\.03\d+)</td>', table)
    assert tied == ["0.0312", "0.0312"] and 'class="best">0.0312' not in table


def test_psnr_has_two_decimals_and_small_mae_stays_distinguishable(tables_dir, fake_export):
    tables = _tables(_report(tables_dir))
    psnr = [cell for row in _cells(tables[METRICS.index("psnr")]) for cell in row[1:]]
    assert psnr and all(re.fullmatch(r"(= )?-?\d+\.\d\d", re.sub(r"<small>.*", "", c).strip()) for c in psnr), psnr
    values = {"salt_pepper": {"noisy": 0.00199, "mean": 0.00201, "median": 0.0000593}}
    mae = _tables(_report(tables_dir, _summary(values)))[0]
    assert "0.00199" in mae and "0.00201" in mae and "0.0000593" in mae


def test_a_method_on_fewer_faces_says_how_many(tables_dir, fake_export):
    values = {"gaussian": {"noisy": 0.2, "mean": 0.05, "median": 0.07}}
    text = _report(tables_dir, _summary(values, n={"median": 2}))
    table = _tables(text)[0]
    assert "0.0700 <small>(n = 2)</small>" in table and "(n = 4)" not in table
    assert "fewer faces than the 4 of the rest" in text


def test_a_method_that_does_not_apply_shows_a_dash(tables_dir, fake_export):
    values = {"gaussian": {"noisy": 0.2, "mean": 0.05}, "poisson": {"noisy": 0.1, "median": 0.04}}
    rows = {row[0]: row[1:] for row in _cells(_tables(_report(tables_dir, _summary(values)))[0])}
    assert rows[htmllib.escape(display_name("mean"))][1] == "—"


def test_example_faces_fit_a_laptop_and_an_a4_page(tables_dir, fake_export):
    from dashboard.facesource import lfw_bank

    data = read_tables(tables_dir)
    examples = rep.example_faces(data.per_image, data.summary, lfw_bank(28), "lfw", "lfw", no_outputs,
                                 rep.display_names(data.meta))
    assert [noise for noise, _ in examples] == list(NOISE_KINDS) and len(examples[0][1]) == rep.N_FACES
    text = _report(tables_dir, examples=examples)
    widths = [int(w) for w in re.findall(r'<img [^>]*width="(\d+)"', text)]
    assert widths and max(widths) <= 120  # 8 in a row fit an A4 line (about 690 px)
    assert "max-width:980px" in text and "@media print" in text and "size:A4" in text
    assert "break-inside:avoid" in text and "img,svg{max-width:100%}" in text


def test_larger_faces_are_not_enlarged_past_the_row_width():
    face = np.zeros((64, 64, 3), np.float32)
    text = rep.faces_html([("f", [("Original", "", face), ("With noise", "MAE 0.1", face)])])
    assert re.findall(r'width="(\d+)"', text) == ["64", "64"]
    small = rep.faces_html([("f", [("Original", "", face[:28, :28])])])
    assert re.findall(r'width="(\d+)"', small) == [str(rep.FACE_WIDTH)]


def test_the_report_reads_as_an_article(tables_dir, fake_export):
    text = _report(tables_dir)
    assert "What was compared" in text and "In plain words" in text
    for kind in NOISE_KINDS:
        assert f"<li><b>{htmllib.escape(noise_label(kind))}</b>:" in text  # one sentence per kind
    assert "Made 2026-01-02 03:04 UTC" in text and "commit abc1234" in text
    east = MADE.astimezone(dt.timezone(dt.timedelta(hours=2)))  # the same moment given in another zone
    assert "Made 2026-01-02 03:04 UTC" in rep.findings_report(read_tables(tables_dir), "lfw", [], made=east, commit="")
    assert "results computed 2025-11-25" in rep.footer_html(MADE, "", "", "2025-11-25T21:19:41Z")
    assert "results computed" not in rep.footer_html(MADE, "", "", "/home/someone")  # only a date gets through
    assert f"fingerprint {rep.tables_fingerprint(tables_dir)}" in text and len(rep.tables_fingerprint(tables_dir)) == 12


def test_charts_fall_back_to_plotly_js_inlined_once(tables_dir, monkeypatch):
    monkeypatch.setattr(rep, "static_images", lambda *a, **k: None)
    text = _report(tables_dir)
    assert text.count("* plotly.js v") == 1 and "<script src=" not in text
    assert text.count('class="chart"') == len(METRICS)


@needs_exporter
def test_charts_are_inline_svg_titled_with_test_set_noise_and_score(tables_dir):
    text = _report(tables_dir)
    assert text.count('<svg class="main-svg"') == len(METRICS) and "<script" not in text
    assert "Mean MAE per method and kind of noise · LFW" in text
    assert len(text.encode()) < 1_000_000


# ----------------------------------------------------------------------------- the CLI
def _cli(capsys, *argv) -> tuple[int, str]:
    code = make_report.main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_cli_refuses_to_overwrite_without_force(tmp_path, tables_dir, capsys, fake_export):
    out = tmp_path / "report.html"
    out.write_text("mine")
    code, err = _cli(capsys, "--out", out, "--tables", tables_dir, "--faces", 0)
    assert code == 2 and out.read_text() == "mine"
    assert err.count("\n") == 1 and "--force" in err and "Traceback" not in err
    code, _ = _cli(capsys, "--out", out, "--tables", tables_dir, "--faces", 0, "--force")
    assert code == 0 and out.read_text().startswith("<!doctype html>")


def test_cli_without_out_writes_a_new_run_folder(tmp_path, tables_dir, monkeypatch, capsys, fake_export):
    monkeypatch.chdir(tmp_path)
    code, err = _cli(capsys, "--tables", tables_dir, "--faces", 0)
    written = list(tmp_path.glob("runs/report-*/report.html"))
    assert code == 0 and len(written) == 1 and "wrote" in err
    assert _cli(capsys, "--tables", tables_dir, "--faces", 0)[0] == 0
    assert len(list(tmp_path.glob("runs/report-*/report.html"))) == 2  # the second run does not replace the first


def test_cli_says_when_it_made_the_out_files_folder(tmp_path, tables_dir, capsys, fake_export):
    """A missing folder above --out was made without a word; the success line now says so."""
    out = tmp_path / "new" / "sub" / "report.html"
    code, err = _cli(capsys, "--out", out, "--tables", tables_dir, "--faces", 0)
    assert code == 0 and out.is_file() and err.count("\n") == 1
    assert f"made the folder {out.parent}" in err
    code, err = _cli(capsys, "--out", out.parent / "again.html", "--tables", tables_dir, "--faces", 0)
    assert code == 0 and "made the folder" not in err  # it is there now


@pytest.mark.parametrize("problem", ["missing", "empty", "bad", "test_set"])
def test_cli_says_what_is_wrong_in_one_line(tmp_path, tables_dir, capsys, problem):
    folder = {"missing": tmp_path / "nowhere", "empty": tmp_path, "bad": tmp_path / "bad", "test_set": tables_dir}
    if problem == "bad":
        (tmp_path / "bad").mkdir()
        (tmp_path / "bad" / "summary.csv").write_text("test_set,noise\nlfw")
        (tmp_path / "bad" / "per_image.csv").write_text("nonsense\n1,2,3\n")
    extra = ["--test-set", "celeba_nowhere"] if problem == "test_set" else []
    code, err = _cli(capsys, "--out", tmp_path / "r.html", "--tables", folder[problem], *extra)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "r.html").exists()


def test_cli_turns_an_unexpected_failure_into_one_line(tmp_path, tables_dir, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise KeyError("summary")

    monkeypatch.setattr(make_report, "report_from_folder", broken)
    code, err = _cli(capsys, "--out", tmp_path / "r.html", "--tables", tables_dir, "--faces", 0)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "KeyError" in err


def test_cli_help_explains_every_flag(capsys):
    with pytest.raises(SystemExit):
        make_report.main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--out", "--force", "--tables", "--test-set", "--checkpoints", "--faces"):
        assert re.search(re.escape(flag) + r"[^\n]*\n?\s+\S", text), flag


@needs_exporter
def test_page_and_cli_make_the_same_report(tmp_path, tables_dir, monkeypatch):
    """The Findings page's button (streamlit loaded, its chart theme the default) and the CLI (a process
    without streamlit): same function, faces, outputs and chart look, the same file but for the time."""
    import subprocess
    import sys

    pytest.importorskip("streamlit")
    monkeypatch.setenv("DENOISING_TABLES_DIR", str(tables_dir))
    monkeypatch.setenv("DENOISING_CHECKPOINT_DIR", str(tmp_path / "no_checkpoints"))
    monkeypatch.delenv("DENOISING_CELEBA_DIR", raising=False)
    from dashboard import common

    data = common.tables()
    bank, _ = common.face_bank("lfw")
    examples = rep.example_faces(data.per_image, data.summary, bank, "lfw", "lfw", common.outputs_for,
                                 common.method_names())
    page = rep.findings_report(data, "lfw", examples, rep.faces_note("lfw", "lfw"))
    done = subprocess.run([sys.executable, "scripts/make_report.py", "--out", str(tmp_path / "cli.html"), "--tables",
                           str(tables_dir), "--test-set", "lfw", "--checkpoints", str(tmp_path / "no_checkpoints")],
                          cwd=rep.REPO_ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    cli = (tmp_path / "cli.html").read_text(encoding="utf-8")
    assert len(examples) == len(NOISE_KINDS)
    stamp = re.compile(r"Made [\d-]+ [\d:]+ UTC|\d\d \w+ \d{4}</p>")
    assert stamp.sub("", page) == stamp.sub("", cli)


def test_findings_page_offers_the_report_through_the_shared_function():
    source = (rep.REPO_ROOT / "dashboard" / "views" / "findings.py").read_text(encoding="utf-8")
    assert "findings_report(data, test_set, examples, faces_note(test_set, face_set))" in source
    assert "build_report" not in source and "folder" not in source.split("def _report")[1]


# ----------------------------------------------------------------------------- chart downloads
def test_a_chart_download_names_what_it_shows_and_has_room_for_it(tables_dir):
    from dashboard.charts import TITLED_TOP, figure_html, grouped_bars

    data = read_tables(tables_dir)
    fig = grouped_bars(data.summary, "lfw", "psnr", {})
    title = "Mean PSNR (dB) per method and kind of noise · LFW"
    text = figure_html(fig, title)
    # plotly writes the figure's JSON with orjson where installed (UTF-8 as is), else json ("\u00b7")
    assert title in text or json.dumps(title)[1:-1] in text
    assert f'"t":{TITLED_TOP}' in text.replace(" ", "") and fig.layout.title.text is None


def test_a_chart_file_has_one_look_whatever_the_default_theme(tables_dir):
    import plotly.io as pio

    from dashboard.charts import FILE_TEMPLATE, grouped_bars, with_room_for_labels

    before = pio.templates.default
    try:
        pio.templates.default = "plotly_dark"  # what streamlit does with its own theme on import
        fig = with_room_for_labels(grouped_bars(read_tables(tables_dir).summary, "lfw", "mae", {}), "t")
    finally:
        pio.templates.default = before
    assert fig.layout.template == pio.templates[FILE_TEMPLATE]


def test_a_png_download_that_cannot_be_drawn_is_a_picture_saying_so(monkeypatch):
    pytest.importorskip("streamlit")
    import plotly.graph_objects as go

    from dashboard import charts, common

    monkeypatch.setattr(charts, "static_images", lambda *a, **k: None)
    png = common._chart_png(go.Figure(go.Bar(x=[1], y=[2])), "t")
    assert png.startswith(b"\x89PNG")


def test_png_downloads_are_drawn_one_at_a_time_and_a_waiting_one_says_busy(monkeypatch):
    """Each PNG starts a Chromium: a second visitor waits for the first, then gets a picture saying so."""
    pytest.importorskip("streamlit")
    import plotly.graph_objects as go

    from dashboard import charts, common

    drawn = []
    monkeypatch.setattr(charts, "figure_png", lambda fig, title: drawn.append(title) or b"\x89PNG drawn")
    monkeypatch.setattr(common, "EXPORT_WAIT_S", 0.01)
    fig = go.Figure(go.Bar(x=[1], y=[2]))
    assert common.EXPORT_SLOTS.acquire(blocking=False)  # another visitor's export is running
    try:
        busy = common._chart_png(fig, "second")
    finally:
        common.EXPORT_SLOTS.release()
    assert busy.startswith(b"\x89PNG") and busy != b"\x89PNG drawn" and drawn == []
    assert common._chart_png(fig, "third") == b"\x89PNG drawn" and drawn == ["third"]
    assert common.EXPORT_SLOTS.acquire(blocking=False)  # given back afterwards
    common.EXPORT_SLOTS.release()


@needs_exporter
def test_a_chart_downloads_as_png():
    import plotly.graph_objects as go
    from PIL import Image

    from dashboard.charts import EXPORT_SIZE, figure_png

    png = figure_png(go.Figure(go.Bar(x=["a", "b"], y=[1, 2])), "A title")
    assert Image.open(io.BytesIO(png)).size == (EXPORT_SIZE[0] * 2, EXPORT_SIZE[1] * 2)


# ----------------------------------------------------------------------------- in a real browser
@needs_exporter
def test_the_report_in_chromium_fits_1280_px_with_every_chart_label_inside(tmp_path, tables_dir, capsys):
    """What report_check.py checks, on the CLI's file: no sideways scroll, chart text inside, no request out.

    Streamlit is loaded first: its theme (no automargin) then becomes plotly's default, as in the
    dashboard's process, where the report's charts once lost their tick labels off the edge.
    """
    pytest.importorskip("playwright.sync_api")
    pytest.importorskip("streamlit")
    from playwright.sync_api import sync_playwright

    from dashboard import server as live

    out = tmp_path / "report.html"
    assert _cli(capsys, "--out", out, "--tables", tables_dir, "--checkpoints", tmp_path / "none")[0] == 0
    outside = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=live.CHROMIUM, args=live.CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.route("**/*", lambda r: (outside.append(r.request.url), r.abort())
                   if not r.request.url.startswith(("file:", "data:")) else r.continue_())
        page.goto(out.as_uri(), wait_until="load")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        clipped = page.evaluate("""() => [...document.querySelectorAll('svg.main-svg')].flatMap(svg => {
            const box = svg.getBoundingClientRect();
            return [...svg.querySelectorAll('text')].map(t => t.getBoundingClientRect()).filter(r => r.width &&
                (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 || r.bottom > box.bottom + 1))
                .map(r => r.toJSON()); })""")
        # an axis title drawn over its own tick labels (the y title once sat on the y numbers)
        overlaps = page.evaluate("""() => [...document.querySelectorAll('svg.main-svg')].flatMap(svg =>
            ['x', 'y'].flatMap(axis => {
                const title = svg.querySelector(`.g-${axis}title text`);
                if (!title) return [];
                const a = title.getBoundingClientRect();
                return [...svg.querySelectorAll(`.${axis}tick text`)].map(t => t.getBoundingClientRect())
                    .filter(b => b.width && a.right > b.left && a.left < b.right && a.bottom > b.top && a.top < b.bottom)
                    .map(() => axis); }))""")
        titles = page.evaluate("() => document.querySelectorAll('svg.main-svg .gtitle').length")
        browser.close()
    assert width <= 1280 and not clipped and not overlaps and not outside
    assert titles == len(METRICS)


def test_report_code_never_imports_streamlit():
    import subprocess
    import sys

    code = ("import sys, dashboard.report, scripts.make_report, dashboard.charts, dashboard.facesource; "
            "sys.exit('streamlit' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=rep.REPO_ROOT, check=False).returncode == 0


@pytest.mark.parametrize("works", [True, False])
def test_findings_chart_offers_png_beside_html_or_says_why_not(tmp_path, tables_dir, monkeypatch, works):
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    from dashboard import charts, common

    monkeypatch.setenv("DENOISING_TABLES_DIR", str(tables_dir))
    monkeypatch.setenv("DENOISING_CHECKPOINT_DIR", str(tmp_path / "none"))
    monkeypatch.delenv("DENOISING_CELEBA_DIR", raising=False)
    monkeypatch.setattr(charts, "export_available", lambda: works)
    common.png_export_works.clear()
    try:
        at = AppTest.from_file(str(rep.REPO_ROOT / "dashboard" / "app.py"), default_timeout=60).run()
    finally:
        common.png_export_works.clear()
    assert not at.exception
    labels = {button.key: button.label for button in at.get("download_button")}
    assert labels["find_bars_dl"] == "Download chart (HTML)" and "find_report" in labels
    assert ("find_bars_png" in labels) == works
    assert works or any("PNG download unavailable" in c.value for c in at.caption)


def test_an_export_that_returns_no_image_counts_as_failed(monkeypatch):
    """Kaleido once handed back empty bytes on a busy machine: that is tried once more, then "no export"."""
    kaleido = pytest.importorskip("kaleido")
    import plotly.graph_objects as go

    from dashboard.charts import static_images

    calls = []

    class Empty:
        def __init__(self, **kwargs):
            pass

        async def __aenter__(self):
            return self

        async def __aexit__(self, *exc):
            return False

        async def calc_fig(self, fig, opts):
            calls.append(opts["format"])
            return b""

    monkeypatch.setattr(kaleido, "Kaleido", Empty)
    assert static_images([go.Figure()], "png") is None and calls == ["png", "png"]
