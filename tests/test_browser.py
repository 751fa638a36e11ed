"""Real-browser test: the dashboard served by `streamlit run`, every page opened in headless Chromium.

Uses Debian's /usr/bin/chromium through Playwright (never a downloaded browser); skipped when it is
missing. Screenshots go to tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dashboard_fixtures import make_checkpoint, make_tables

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ARTIFACTS = REPO / "tests" / "artifacts"
# url path -> what must be on the page
PAGES = {
    "": ("image", "chart"),  # Findings, the landing page
    "browse": ("image",),
    "noise_lab": ("image",),
    "distributions": ("chart",),
    "training": ("chart",),
    "method": ("image",),
}
SELECTORS = {"image": '[data-testid="stImage"] img', "chart": ".js-plotly-plot"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env: dict, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.headless", "true",
               "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited: {proc.stderr.read().decode(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError("streamlit did not become healthy")


def wait_idle(page, timeout_ms: int = 30000) -> None:
    """Wait until the app has finished running its script (Streamlit's running indicator is gone)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.match(/Running/i)",
        timeout=timeout_ms)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium: apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    base = tmp_path_factory.mktemp("browser")
    env = dict(os.environ,
               DENOISING_TABLES_DIR=str(make_tables(base / "tables", {"lfw": [f"lfw_{i:03d}" for i in range(4)]})),
               DENOISING_CHECKPOINT_DIR=str(make_checkpoint(base / "checkpoints")),
               DENOISING_DASHBOARD_CACHE=str(base / "cache"))
    env.pop("DENOISING_CELEBA_DIR", None)
    port = free_port()
    proc = start_server(env, port)
    try:
        wait_healthy(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_every_page_in_chromium(server):
    from playwright.sync_api import sync_playwright

    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2200})
            for slug, needs in PAGES.items():
                page.goto(f"{server}/{slug}", wait_until="domcontentloaded")
                for need in needs:
                    page.wait_for_selector(SELECTORS[need], timeout=45000)
                wait_idle(page)
                page.wait_for_timeout(300)  # let the last images and charts paint before the screenshot
                page.screenshot(path=str(ARTIFACTS / f"{slug or 'findings'}.png"), full_page=True)
                assert page.locator('[data-testid="stException"]').count() == 0, f"exception on {slug}"
                assert page.get_by_text("Page not found").count() == 0, f"{slug} is not a page"
                for need in needs:
                    assert page.locator(SELECTORS[need]).count() > 0, f"no {need} on {slug}"
        finally:
            browser.close()
    assert len(list(ARTIFACTS.glob("*.png"))) == len(PAGES)
