"""Real-browser test: the dashboard served by `streamlit run`, every page opened in headless Chromium.

Uses Debian's /usr/bin/chromium through Playwright (never a downloaded browser); skipped when it is
missing. Screenshots go to tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest
from dashboard_fixtures import make_checkpoint, make_tables

from dashboard import server as live

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
STRENGTH_IN_URL = "() => new URLSearchParams(location.search).get('strength')"


def skip_without_browser() -> None:
    """Skip the calling test where Debian's chromium or Playwright is missing."""
    if not Path(live.CHROMIUM).is_file():
        pytest.skip(f"{live.CHROMIUM} is missing (install Debian's chromium: apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def dashboard_env(tmp_path_factory) -> dict:
    skip_without_browser()
    base = tmp_path_factory.mktemp("browser")
    env = dict(os.environ,
               DENOISING_TABLES_DIR=str(make_tables(base / "tables", {"lfw": [f"lfw_{i:03d}" for i in range(4)]})),
               DENOISING_CHECKPOINT_DIR=str(make_checkpoint(base / "checkpoints")),
               DENOISING_DASHBOARD_CACHE=str(base / "cache"))
    env.pop("DENOISING_CELEBA_DIR", None)
    return env


@contextlib.contextmanager
def serving(env: dict, cwd: Path | None = None):
    """A `streamlit run` server for the test's duration; yields its base URL."""
    port = live.free_port()
    proc = live.start(env, port, cwd=cwd)
    try:
        live.wait_healthy(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        live.stop(proc)


@contextlib.contextmanager
def chromium_page(height: int = 2200):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=live.CHROMIUM, args=live.CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": height})
        finally:
            browser.close()


@contextlib.contextmanager
def figure_page(fig, folder: Path, height: int, ready: str):
    """A plotly figure written as a stand-alone HTML file and opened in Chromium, once `ready` is drawn."""
    skip_without_browser()
    page_file = folder / "chart.html"
    page_file.write_text(fig.to_html(include_plotlyjs=True), encoding="utf-8")
    with chromium_page(height) as page:
        page.goto(page_file.as_uri())
        page.wait_for_selector(ready)
        yield page


def test_every_page_in_chromium(dashboard_env):
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    with serving(dashboard_env) as server, chromium_page() as page:
        for slug, needs in live.PAGES.items():
            live.render(page, f"{server}/{slug}", needs)
            page.screenshot(path=str(ARTIFACTS / f"{slug or 'findings'}.png"), full_page=True)
            assert page.locator('[data-testid="stException"]').count() == 0, f"exception on {slug}"
            assert page.get_by_text("Page not found").count() == 0, f"{slug} is not a page"
            for need in needs:
                assert page.locator(live.SELECTORS[need]).count() > 0, f"no {need} on {slug}"
    assert len(list(ARTIFACTS.glob("*.png"))) == len(live.PAGES)


def test_noise_strength_opens_a_shared_link(dashboard_env):
    """A copied link of the Noise strength page opens the same view: score, kind and face from the URL."""
    assert "noise_strength" in live.PAGES
    query = "metric=ssim&methods=noisy,mean&kind=poisson&face=lfw_003&method=median"
    with serving(dashboard_env) as server, chromium_page() as page:
        live.render(page, f"{server}/noise_strength?{query}", live.PAGES["noise_strength"])
        assert page.locator('[data-testid="stException"]').count() == 0
        assert page.get_by_role("heading", name="Noise strength").count() == 1
        assert page.locator(live.SELECTORS["chart"]).count() == 4  # one chart per noise kind
        params = page.evaluate("() => Object.fromEntries(new URLSearchParams(location.search))")
        assert {k: params.get(k) for k in ("metric", "methods", "kind", "face", "method")} == {
            "metric": "ssim", "methods": "noisy,mean", "kind": "poisson", "face": "lfw_003", "method": "median"}
        # the face row: six Poisson strengths from peak 1024 to peak 4, and the median filter's six outputs
        captions = page.locator('[data-testid="stImageCaption"]').all_inner_texts()
        assert captions[1].startswith("peak 1024") and captions[6].startswith("peak 4")
        assert len(captions) == 13


def test_runs_from_any_folder(dashboard_env, tmp_path):
    """`streamlit run /path/to/dashboard/app.py` from another folder: the installed packages and the pages are found."""
    with serving(dashboard_env, cwd=tmp_path) as server, chromium_page(1000) as page:
        live.render(page, f"{server}/noise_lab", live.PAGES["noise_lab"])
        assert page.locator('[data-testid="stException"]').count() == 0
        assert page.get_by_role("heading", name="Noise lab").count() == 1
        # original, noisy, the 7 fast filters and the fixture's autoencoder (its checkpoint cleans Gaussian noise)
        assert page.locator(live.SELECTORS["faces"]).count() == 10
        # the strength slider opens at the post's σ = √0.1 exactly and steps onto the 0.01 grid and back
        caption = page.locator('[data-testid="stCaptionContainer"]').filter(has_text="fast methods took").first
        for key, shown in (("", "σ = 0.316,"), ("ArrowLeft", "σ = 0.31,"), ("ArrowRight", "σ = 0.316,")):
            if key:
                before = page.evaluate(STRENGTH_IN_URL)
                page.get_by_role("slider").first.focus()
                page.keyboard.press(key)
                page.wait_for_function(f"before => ({STRENGTH_IN_URL})() !== before", arg=before)
                live.wait_idle(page)
            assert shown in caption.inner_text()


def test_strength_chart_legend_stays_clear_of_its_axes(tmp_path):
    """Noise strength's chart with every method chosen, at its half-page width (about 400 px in a 1280 px window).

    The legend hung at a fixed fraction of the plot's height below it: each extra row of legend shrank the plot,
    so with many methods the legend rose over the x-axis title, scrolled, and the y-axis title was cut off.
    """
    import pandas as pd

    from dashboard.charts import method_colors, strength_curves
    from denoising.catalogue import display_name

    sweep = pd.read_csv(Path(__file__).resolve().parents[1] / "checkpoints" / "tables" / "sweep_summary.csv")
    part = sweep[(sweep["test_set"] == "celeba_test") & (sweep["noise"] == "poisson")]
    methods = list(dict.fromkeys(part["method"]))
    fig = strength_curves(part, "poisson", "psnr", methods, {m: display_name(m) for m in methods},
                          method_colors(methods), {"unet_range": (2.0, 1024.0), "autoencoder": (256.0, 256.0)})
    fig.update_layout(width=400)
    with figure_page(fig, tmp_path, 1200, ".js-plotly-plot .legend .traces") as page:
        box = page.evaluate("""() => {
            const p = document.querySelector('.js-plotly-plot'), r = s => p.querySelector(s).getBoundingClientRect();
            const items = [...p.querySelectorAll('.legend .traces')].map(e => e.getBoundingClientRect());
            const bar = p.querySelector('.legend .scrollbar');
            return {xtitle: r('.g-xtitle text').bottom, legend: Math.min(...items.map(b => b.top)),
                    plot: r('.nsewdrag').height, ytitle: r('.g-ytitle text').height,
                    scrolls: !!bar && Number(bar.getAttribute('height') || 0) > 0}; }""")
    assert box["xtitle"] <= box["legend"], box  # no legend row over the axis title
    assert not box["scrolls"], box  # every method's entry in sight
    assert box["plot"] >= box["ytitle"] - 40, box  # the y-axis title is not cut at the top and bottom


def test_no_button_label_is_cut_short_at_1280px(dashboard_env):
    """Every button and download button on every page shows its whole label in a 1280 px window.

    The chart downloads sit two to a chart, and on Noise strength two charts to a row: "Download this chart
    (HTML, opens offline)" was cut to "Download this chart (HTM…".
    """
    clipped = {}
    with serving(dashboard_env) as server, chromium_page() as page:
        page.set_viewport_size({"width": 1280, "height": 2200})
        for slug, needs in live.PAGES.items():
            live.render(page, f"{server}/{slug}", needs)
            cut = page.evaluate("""() => [...document.querySelectorAll(
                    '[data-testid="stButton"] button, [data-testid="stDownloadButton"] button')]
                .map(b => [b.innerText, b.querySelector('.stMarkdownEllipsis') || b])
                .filter(([, box]) => box.scrollWidth > box.clientWidth).map(([text]) => text)""")
            if cut:
                clipped[slug or "findings"] = cut
    assert not clipped, f"button labels cut short: {clipped}"


@pytest.mark.parametrize("arch", ["autoencoder", "pix2pix", "unet_range"])
def test_training_chart_panel_titles_fit_side_by_side(tmp_path, arch):
    """Training's three panels at the page's width in a 1280 px window (about 820 px): no title runs into
    another or past the figure's edges ("Training loss (−PSNR of output − PSNR of correction)" ran over the
    next panel's title and was cut at the left; "Validation PSNR in dB (higher better)" was cut at the right).
    """
    import json

    from dashboard.charts import training_curves
    from dashboard.tables import history_frame, loss_text

    card = json.loads((Path(__file__).resolve().parents[1] / "checkpoints" / f"{arch}-gaussian.json").read_text())
    fig = training_curves(history_frame(card["history"]), card.get("val_noisy_input"), card.get("best_epoch"),
                          loss_text(card, short=True))
    fig.update_layout(width=820)
    with figure_page(fig, tmp_path, 1000, ".js-plotly-plot .annotation-text") as page:
        boxes = page.evaluate("""() => {
            const svg = document.querySelector('.js-plotly-plot .main-svg').getBoundingClientRect();
            return [...document.querySelectorAll('.js-plotly-plot .annotation-text')]
                .filter(t => /Training loss|Validation/.test(t.textContent))
                .map(t => { const b = t.getBoundingClientRect();
                            return [t.textContent, b.left - svg.left, b.right - svg.left, svg.width]; }); }""")
    assert len(boxes) == 3, boxes
    assert all(left >= 0 and right <= width for _, left, right, width in boxes), boxes
    ordered = sorted(boxes, key=lambda b: b[1])
    assert all(a[2] <= b[1] for a, b in zip(ordered, ordered[1:], strict=False)), ordered
