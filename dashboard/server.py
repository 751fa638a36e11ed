"""Run the dashboard as a real ``streamlit run`` server and drive it in Debian's Chromium.

Shared by the browser test, ``scripts/measure_dashboard.py`` and ``scripts/screenshot_dashboard.py``,
so all three start, wait for and stop the server the same way. Imports neither streamlit nor
Playwright: callers bring their own browser.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "dashboard" / "app.py"
CHROMIUM = "/usr/bin/chromium"
# never a downloaded browser; no network chatter from Chromium itself
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
# url path -> what must be on the page once it has rendered
PAGES = {
    "": ("image", "chart"),  # Findings, the landing page
    "browse": ("image",),
    "noise_lab": ("faces",),
    "noise_strength": ("chart", "image"),
    "distributions": ("chart",),
    "training": ("chart",),
    "blind_test": ("image",),
    "method": ("image",),
}
# the Noise lab shows its faces inline (one HTML row of data-URI PNGs), the other pages as st.image
SELECTORS = {"image": '[data-testid="stImage"] img', "faces": ".face-row img", "chart": ".js-plotly-plot"}
# Streamlit marks the app root with its script state; "notRunning" once a run has finished
_IDLE_JS = ("() => { const app = document.querySelector('[data-testid=\"stApp\"]');"
            " return app && app.getAttribute('data-test-script-state') === 'notRunning'; }")


def free_port() -> int:
    """A loopback TCP port that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(env: dict, port: int, cwd: Path | None = None) -> subprocess.Popen:
    """Launch ``streamlit run dashboard/app.py`` headless on 127.0.0.1:port (stderr kept for errors).

    From the repo root by default, as README says; ``cwd`` starts it from elsewhere, with the app's
    full path (the installed ``dashboard`` and ``denoising`` packages are found either way).
    """
    script = "dashboard/app.py" if cwd is None else str(APP)
    command = [sys.executable, "-m", "streamlit", "run", script, "--server.headless", "true",
               "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    return subprocess.Popen(command, cwd=cwd or REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Block until the server answers its health check; RuntimeError if it exits or never answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited: {proc.stderr.read().decode(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"streamlit did not answer its health check within {timeout:.0f} s")


def stop(proc: subprocess.Popen) -> None:
    """Terminate the server, killing it if it does not exit within 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def wait_idle(page, timeout_ms: int = 60000) -> None:
    """Wait until the app has finished running its script (Streamlit's 'Running' indicator is gone)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    page.wait_for_function(_IDLE_JS, timeout=timeout_ms)


def render(page, url: str, needs: tuple[str, ...], timeout_ms: int = 60000) -> None:
    """Open url and wait until every needed element kind is shown and the script run has finished."""
    page.goto(url, wait_until="domcontentloaded")
    for need in needs:
        page.wait_for_selector(SELECTORS[need], timeout=timeout_ms)
    wait_idle(page, timeout_ms)
    page.wait_for_timeout(300)  # let the last images and charts paint
