"""Real-browser test: the dashboard served by `streamlit run`, every page opened in headless Chromium.

Uses Debian's /usr/bin/chromium through Playwright (never a downloaded browser); skipped when it is
missing. Screenshots go to tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from dashboard import server as live
from dashboard_fixtures import make_checkpoint, make_tables

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not Path(live.CHROMIUM).is_file():
        pytest.skip(f"{live.CHROMIUM} is missing (install Debian's chromium: apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    base = tmp_path_factory.mktemp("browser")
    env = dict(os.environ,
               DENOISING_TABLES_DIR=str(make_tables(base / "tables", {"lfw": [f"lfw_{i:03d}" for i in range(4)]})),
               DENOISING_CHECKPOINT_DIR=str(make_checkpoint(base / "checkpoints")),
               DENOISING_DASHBOARD_CACHE=str(base / "cache"))
    env.pop("DENOISING_CELEBA_DIR", None)
    port = live.free_port()
    proc = live.start(env, port)
    try:
        live.wait_healthy(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        live.stop(proc)


def test_every_page_in_chromium(server):
    from playwright.sync_api import sync_playwright

    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=live.CHROMIUM, args=live.CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2200})
            for slug, needs in live.PAGES.items():
                live.render(page, f"{server}/{slug}", needs)
                page.screenshot(path=str(ARTIFACTS / f"{slug or 'findings'}.png"), full_page=True)
                assert page.locator('[data-testid="stException"]').count() == 0, f"exception on {slug}"
                assert page.get_by_text("Page not found").count() == 0, f"{slug} is not a page"
                for need in needs:
                    assert page.locator(live.SELECTORS[need]).count() > 0, f"no {need} on {slug}"
        finally:
            browser.close()
    assert len(list(ARTIFACTS.glob("*.png"))) == len(live.PAGES)
