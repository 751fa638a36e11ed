"""Measure the dashboard's speed: (a) server start to first page rendered, (b) Noise lab update time.

(a) starts `streamlit run dashboard/app.py` and opens the landing page in headless Chromium (Debian's
/usr/bin/chromium via Playwright), timing until the headline table is on screen and until the page has
finished; without a browser it times the health check plus one AppTest run of the page instead.
(b) times, on one built-in face, every fast method (pure compute), the whole Noise lab page rerun after a
slider move (AppTest), and, with a browser, a real slider move until the new picture is shown.

Run from the repo root: ``python scripts/measure_dashboard.py`` (uses checkpoints/ and checkpoints/tables
unless --checkpoints / --tables say otherwise).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from dashboard import server as live


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", type=Path, default=None,
                        help="folder with per_image.csv/summary.csv (default: DENOISING_TABLES_DIR or checkpoints/tables)")
    parser.add_argument("--checkpoints", type=Path, default=None,
                        help="folder with trained models (default: DENOISING_CHECKPOINT_DIR or checkpoints/)")
    parser.add_argument("--repeats", type=int, default=5, help="slider moves to time in part (b) (default 5)")
    parser.add_argument("--no-browser", action="store_true",
                        help="do not use Chromium; time the server's health check plus an AppTest run instead")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    for flag in ("tables", "checkpoints"):
        value = getattr(args, flag)
        if value is not None and not value.is_dir():
            parser.error(f"--{flag} {value} is not a folder")
    return args


def measure_start(env: dict, use_browser: bool) -> dict[str, float]:
    """Seconds from launching the server to health, to the first page's headline table, to the page finished."""
    port = live.free_port()
    results: dict[str, float] = {}
    browser_ctx = None
    if use_browser:
        from playwright.sync_api import sync_playwright

        # The browser is started before the server so its own start-up is not counted.
        browser_ctx = sync_playwright().start()
        browser = browser_ctx.chromium.launch(executable_path=live.CHROMIUM, args=live.CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
    t0 = time.perf_counter()
    proc = live.start(env, port)
    try:
        try:
            live.wait_healthy(port, proc)
        except RuntimeError as exc:
            sys.exit(f"error: {exc}")
        results["server healthy"] = time.perf_counter() - t0
        if use_browser:
            page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
            page.wait_for_selector("h1", timeout=60000)
            results["first page title shown"] = time.perf_counter() - t0
            # rows of methods, not the one-row stand-in the page shows while it reads the tables
            page.wait_for_function("() => document.querySelectorAll('[data-testid=\"stTable\"] tbody tr').length > 2"
                                   " || document.querySelector('[data-testid=\"stAlert\"]')", timeout=60000)
            results["headline table shown"] = time.perf_counter() - t0
            page.wait_for_selector('[data-testid="stImage"] img, .js-plotly-plot', timeout=60000)
            live.wait_idle(page, timeout_ms=120000)
            results["whole page finished (charts, faces)"] = time.perf_counter() - t0
            results.update(measure_browser_slider(page, port))
        else:
            from streamlit.testing.v1 import AppTest

            at = AppTest.from_file(str(live.APP), default_timeout=120)
            at.run()
            results["first page run (AppTest, after health)"] = time.perf_counter() - t0
    finally:
        live.stop(proc)
        if browser_ctx is not None:
            browser.close()
            browser_ctx.stop()
    return results


def measure_browser_slider(page, port: int, moves: int = 5) -> dict[str, float]:
    """Noise lab in the browser: press an arrow key on the strength slider and time until the new pictures are painted.

    "Painted" = the caption under the pictures shows the new setting, every picture on the page has
    finished loading, and two animation frames have passed (the browser has drawn them). The page
    is polled every 5 ms rather than once per animation frame, which would add up to a frame per check.
    """
    page.goto(f"http://127.0.0.1:{port}/noise_lab", wait_until="domcontentloaded")
    page.wait_for_selector(live.SELECTORS["faces"], timeout=120000)
    caption = page.locator('[data-testid="stCaptionContainer"]').filter(has_text="fast methods took")
    caption.first.wait_for(timeout=60000)
    live.wait_idle(page)
    slider = page.get_by_role("slider").first
    times = []
    for _ in range(moves):
        before = caption.first.inner_text()
        slider.focus()
        start = time.perf_counter()
        page.keyboard.press("ArrowLeft")
        page.wait_for_function(
            "([before, faces]) => { const els = [...document.querySelectorAll('[data-testid=\"stCaptionContainer\"]')]"
            ".filter(e => e.innerText.includes('fast methods took'));"
            " return els.length && els[0].innerText !== before"
            " && [...document.querySelectorAll(faces)].every(i => i.complete); }",
            arg=[before, live.SELECTORS["faces"]], timeout=30000, polling=5)
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r())))")
        times.append(time.perf_counter() - start)
        live.wait_idle(page)  # let the run finish before the next move
    return {"noise lab slider move -> new pictures painted (browser, median)": statistics.median(times)}


def measure_lab(repeats: int) -> dict[str, float]:
    """Noise lab: compute time of all fast methods on one face, and the whole page rerun after a slider move."""
    import numpy as np
    from streamlit.testing.v1 import AppTest

    from dashboard.common import checkpoint_dir
    from denoising.catalogue import DEFAULT_PRESET
    from denoising.faces import load_lfw_faces
    from denoising.metrics import score
    from denoising.noise import PRESETS
    from denoising.registry import build_registry

    face = load_lfw_faces(28).images[:1]
    spec = PRESETS[DEFAULT_PRESET]["gaussian"]
    noisy = spec.apply(face, np.random.default_rng(0))
    methods = build_registry(checkpoint_dir())
    fast = {n: m for n, m in methods.items() if not m.slow and n != "noisy" and m.available(spec.kind)}
    for m in fast.values():  # first call loads models; the lab keeps them loaded
        m(noisy, spec)
    compute = []
    for _ in range(repeats):
        start = time.perf_counter()
        for m in fast.values():
            score(face, m(noisy, spec))
        compute.append(time.perf_counter() - start)
    at = AppTest.from_file(str(live.APP), default_timeout=120)
    at.run()
    at.switch_page("views/noise_lab.py").run()
    reruns = []
    for i in range(repeats):
        slider = at.select_slider(key="lab_strength_gaussian")
        start = time.perf_counter()
        slider.set_value(round(0.1 + 0.05 * i, 2)).run()
        reruns.append(time.perf_counter() - start)
        if at.exception:
            sys.exit(f"error: the Noise lab raised {at.exception[0].value}")
    return {
        f"all {len(fast)} fast methods + scores, one face (compute, median)": statistics.median(compute),
        "noise lab page rerun after a slider move (AppTest, median)": statistics.median(reruns),
    }


def main() -> None:
    args = parse_args()
    if args.tables:
        os.environ["DENOISING_TABLES_DIR"] = str(args.tables.resolve())
    if args.checkpoints:
        os.environ["DENOISING_CHECKPOINT_DIR"] = str(args.checkpoints.resolve())
    use_browser = not args.no_browser and Path(live.CHROMIUM).is_file()
    if use_browser:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            use_browser = False
    from dashboard.common import checkpoint_dir, tables_dir

    print(f"tables: {tables_dir()}  checkpoints: {checkpoint_dir()}  cpus: {os.cpu_count()}  "
          f"browser: {'chromium' if use_browser else 'none (AppTest)'}")
    results = measure_start(dict(os.environ), use_browser)
    results.update(measure_lab(args.repeats))
    width = max(len(k) for k in results)
    for name, seconds in results.items():
        print(f"{name:<{width}}  {seconds * 1000:8.0f} ms")


if __name__ == "__main__":
    main()
