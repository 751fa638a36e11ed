"""Screenshot every dashboard page, as README shows them, on the built-in LFW faces.

Starts ``streamlit run dashboard/app.py`` on the shipped checkpoints and tables with no CelebA folder
(so no CelebA pixels can appear), opens each page in Debian's headless Chromium and saves a PNG per
page. Run from the repo root: ``python scripts/screenshot_dashboard.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from dashboard import server as live
from dashboard.tables import SWEEP_FILE, tables_dir

REPO = live.REPO

# Without a CelebA folder every page opens on (or falls back to) the LFW faces, as a visitor sees it.
# Every page in dashboard.server.PAGES is shot (noise_strength included); the file is named after its URL path.
NAMES = {"": "findings"}


def pages_to_shoot() -> dict[str, tuple[str, ...]]:
    """The pages whose tables exist: the Noise strength page has no chart until the sweep is made."""
    pages = dict(live.PAGES)
    sweep = tables_dir() / SWEEP_FILE
    if not sweep.is_file():
        pages.pop("noise_strength", None)
        print(f"skipped noise_strength: no {sweep} (make it with scripts/sweep.py)", file=sys.stderr)
    return pages


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "dashboard" / "screenshots",
                        help="folder for the PNGs, one per page (default: dashboard/screenshots)")
    parser.add_argument("--width", type=int, default=1280, help="browser window width in pixels (default: 1280)")
    parser.add_argument("--height", type=int, default=1800,
                        help="browser window height in pixels; a screenshot shows one window (default: 1800)")
    args = parser.parse_args()
    if args.width < 400 or args.height < 300:
        parser.error("--width must be at least 400 and --height at least 300")
    return args


def main() -> None:
    args = parse_args()
    if not Path(live.CHROMIUM).is_file():
        sys.exit(f"error: {live.CHROMIUM} is missing; install Debian's chromium (apt-get install chromium)")
    try:
        from playwright.sync_api import TimeoutError as PageTimeout
        from playwright.sync_api import sync_playwright
    except ImportError:
        sys.exit("error: playwright is not installed (pip install -r requirements.txt)")
    args.out.mkdir(parents=True, exist_ok=True)
    # the Blind test page is shot with an empty vote database of its own: no votes in any picture
    env = dict(os.environ, DENOISING_DASHBOARD_CACHE=tempfile.mkdtemp(prefix="dashboard-shots-"),
               DENOISING_VOTES_DIR=tempfile.mkdtemp(prefix="dashboard-votes-"))
    for name in ("DENOISING_CELEBA_DIR", "DENOISING_CELEBA_DIRS"):  # LFW faces only: no CelebA pixels in the pictures
        env.pop(name, None)
    port = live.free_port()
    proc = live.start(env, port)
    try:
        live.wait_healthy(port, proc)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=live.CHROMIUM, args=live.CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": args.width, "height": args.height})
                for slug, needs in pages_to_shoot().items():
                    name = NAMES.get(slug, slug)
                    try:
                        live.render(page, f"http://127.0.0.1:{port}/{slug}", needs, 120000)
                    except PageTimeout:
                        page.screenshot(path=str(args.out / f"{name}-incomplete.png"), full_page=True)
                        sys.exit(f"error: the {name} page did not show its {' and '.join(needs)}s within 120 s; "
                                 f"see {args.out / (name + '-incomplete.png')}")
                    if page.locator('[data-testid="stException"]').count():
                        sys.exit(f"error: the {name} page shows an exception; no screenshot kept")
                    path = args.out / f"{name}.png"
                    page.screenshot(path=str(path))
                    print(f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}  "
                          f"({path.stat().st_size / 1024:.0f} KiB)")
            finally:
                browser.close()
    except RuntimeError as exc:
        sys.exit(f"error: {exc}")
    finally:
        live.stop(proc)


if __name__ == "__main__":
    main()
