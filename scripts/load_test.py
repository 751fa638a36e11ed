"""Load test: N browser users moving the Noise lab's strength slider at once, on a loopback-only server.

Starts ``streamlit run dashboard/app.py`` on a free 127.0.0.1 port (never another host), opens N pages in
one headless Chromium (Debian's /usr/bin/chromium via Playwright, one browser context per user) on the
Noise lab, and in each round presses the left arrow on every page's strength slider at (nearly) the same
moment. A move's latency runs from its key press until that page shows the new caption with every picture
loaded. Prints the median and 95th percentile latency, the errors seen (moves that timed out, error boxes
on a page), the fast methods' own time from the page caption, CPU seconds of server and browser, the
slowest health check answered meanwhile and the server process's peak resident memory. The slider has
32 positions left of its default, so the 20 moves at most never reach the end.

Run from the repo root: ``python scripts/load_test.py --sessions 9``.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path

from dashboard import server as live

MAX_SESSIONS = 16
MAX_MOVES = 20
# true once the caption under the pictures differs from `before` and every picture has loaded
_PAINTED_JS = (
    "([before, faces]) => { const els = [...document.querySelectorAll('[data-testid=\"stCaptionContainer\"]')]"
    ".filter(e => e.innerText.includes('fast methods took'));"
    " return els.length > 0 && els[0].innerText !== before"
    " && [...document.querySelectorAll(faces)].every(i => i.complete); }")
_CAPTION_JS = ("() => { const e = [...document.querySelectorAll('[data-testid=\"stCaptionContainer\"]')]"
               ".find(e => e.innerText.includes('fast methods took')); return e ? e.innerText : ''; }")
_ERROR_BOXES = '[data-testid="stException"]'


def build_parser() -> argparse.ArgumentParser:
    """The command line's flags, each with its help."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=4,
                        help=f"browser users moving the slider at the same time, 1 to {MAX_SESSIONS} (default 4)")
    parser.add_argument("--moves", type=int, default=5,
                        help=f"slider moves per user, 1 to {MAX_MOVES} (default 5)")
    parser.add_argument("--port", type=int, default=None,
                        help="loopback port for the server, 1024 to 65535 (default: a free one)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds one move may take before it counts as an error, 1 to 600 (default 60)")
    parser.add_argument("--distinct", action="store_true",
                        help="give each user its own noise seed, so that no two users ever ask for the same "
                             "pictures (the server computes every move; by default all users see the same face "
                             "and seed, and the server computes each setting once for all of them)")
    parser.add_argument("--time-cap", type=float, default=600.0,
                        help="seconds the whole test may run before it stops early, 10 to 1800 (default 600)")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; a bad value ends the program with one line and exit code 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 1 <= args.sessions <= MAX_SESSIONS:
        parser.error(f"--sessions must be between 1 and {MAX_SESSIONS}, not {args.sessions}")
    if not 1 <= args.moves <= MAX_MOVES:
        parser.error(f"--moves must be between 1 and {MAX_MOVES}, not {args.moves}")
    if args.port is not None and not 1024 <= args.port <= 65535:
        parser.error(f"--port must be between 1024 and 65535, not {args.port}")
    if not (math.isfinite(args.timeout) and 1 <= args.timeout <= 600):
        parser.error(f"--timeout must be between 1 and 600 seconds, not {args.timeout}")
    if not (math.isfinite(args.time_cap) and 10 <= args.time_cap <= 1800):
        parser.error(f"--time-cap must be between 10 and 1800 seconds, not {args.time_cap}")
    return args


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of values, interpolating linearly between the closest ranks (numpy's default).

    Parameters
    ----------
    values : list of float
        At least one value, in any order.
    q : float
        Percentile between 0 and 100.

    Returns
    -------
    float
        The percentile; ``percentile([1, 2, 3, 4], 50) == 2.5``.
    """
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _rss_bytes(pid: int) -> int:
    """Resident memory of pid now (psutil, else /proc/<pid>/status VmRSS); 0 if unreadable."""
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss
    except ImportError:
        return _proc_status_kb(pid, "VmRSS") * 1024
    except Exception:  # noqa: BLE001 - the process may have gone
        return 0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds pid has used so far (psutil, else /proc/<pid>/stat); 0 if unreadable."""
    try:
        import psutil

        times = psutil.Process(pid).cpu_times()
        return times.user + times.system
    except ImportError:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return 0.0
    except Exception:  # noqa: BLE001 - the process may have gone
        return 0.0


def _proc_status_kb(pid: int, field: str) -> int:
    """A ``kB`` field of /proc/<pid>/status (e.g. VmHWM, the peak resident size); 0 where there is none."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class Watcher(threading.Thread):
    """Samples the server's memory and times its health check every 0.25 s until stopped."""

    def __init__(self, pid: int, port: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.port = pid, port
        self.peak_rss, self.slowest_health = 0, 0.0
        self.done = threading.Event()
        self.cpu_start, self.wall_start, self.cpu_used, self.wall = 0.0, 0.0, 0.0, 0.0

    def finish(self) -> None:
        """Stop sampling and note the server's CPU seconds and the wall time since the start."""
        self.done.set()
        self.cpu_used = _cpu_seconds(self.pid) - self.cpu_start
        self.wall = time.perf_counter() - self.wall_start

    def run(self) -> None:
        self.cpu_start, self.wall_start = _cpu_seconds(self.pid), time.perf_counter()
        while not self.done.is_set():
            self.peak_rss = max(self.peak_rss, _rss_bytes(self.pid))
            start = time.perf_counter()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_stcore/health", timeout=30) as reply:
                    reply.read()
                self.slowest_health = max(self.slowest_health, time.perf_counter() - start)
            except OSError:
                pass
            self.done.wait(0.25)

    def peak(self) -> int:
        """Peak resident bytes: the larger of the samples and the kernel's own high-water mark."""
        return max(self.peak_rss, _proc_status_kb(self.pid, "VmHWM") * 1024)


def open_sessions(browser, port: int, n: int, timeout_ms: int, distinct: bool = False) -> list:
    """N pages, one per browser context (separate cookies, so separate Streamlit sessions), on the Noise lab.

    ``distinct``: page i opens with noise seed i, so no two pages share a computation.
    """
    pages = []
    for i in range(n):
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        query = f"?seed={i}" if distinct else ""
        page.goto(f"http://127.0.0.1:{port}/noise_lab{query}", wait_until="domcontentloaded")
        pages.append(page)
    for page in pages:
        page.wait_for_selector(live.SELECTORS["faces"], timeout=timeout_ms)
        page.wait_for_function(f"() => ({_CAPTION_JS})() !== ''", timeout=timeout_ms)
        live.wait_idle(page, timeout_ms)
    return pages


def one_round(pages: list, timeout: float) -> tuple[list[float], int]:
    """Press ArrowLeft on every page's slider, then poll all pages until each shows its new pictures.

    Returns the latencies of the moves that finished and the number that did not within ``timeout``.
    """
    befores, started = [], []
    for page in pages:
        befores.append(page.evaluate(_CAPTION_JS))
        page.get_by_role("slider").first.focus()
        page.keyboard.press("ArrowLeft")
        started.append(time.perf_counter())
    latencies, pending = [], set(range(len(pages)))
    while pending:
        for i in sorted(pending):
            if page_ready(pages[i], befores[i]):
                latencies.append(time.perf_counter() - started[i])
                pending.discard(i)
            elif time.perf_counter() - started[i] > timeout:
                pending.discard(i)
        time.sleep(0.005)
    for page in pages:  # let every run finish before the next round
        with contextlib.suppress(Exception):  # a stuck page is counted as an error already
            live.wait_idle(page, int(timeout * 1000))
    return latencies, len(pages) - len(latencies)


def page_ready(page, before: str) -> bool:
    """True once page shows a caption other than ``before`` with every picture loaded."""
    return bool(page.evaluate(_PAINTED_JS, [before, live.SELECTORS["faces"]]))


def drive(port: int, args: argparse.Namespace) -> dict:
    """Open the sessions and run the rounds: latencies, timed-out moves, error boxes, rounds run, compute ms."""
    try:
        from playwright.sync_api import Error as BrowserError
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise RuntimeError("Playwright is not installed (pip install playwright)") from exc
    try:
        return _drive(port, args, sync_playwright)
    except BrowserError as exc:
        raise RuntimeError(f"the browser failed: {str(exc).splitlines()[0]}") from exc


def _drive(port: int, args: argparse.Namespace, sync_playwright) -> dict:
    """One browser, one context per session, ``args.moves`` rounds within ``args.time_cap`` seconds."""
    deadline = time.monotonic() + args.time_cap
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=live.CHROMIUM, args=live.CHROMIUM_ARGS)
        try:
            pages = open_sessions(browser, port, args.sessions, int(args.timeout * 1000) * 2, args.distinct)
            latencies, timed_out, rounds, compute = [], 0, 0, []
            for _ in range(args.moves):
                if time.monotonic() > deadline:
                    print(f"stopped early: --time-cap {args.time_cap:.0f} s reached", file=sys.stderr)
                    break
                done, missed = one_round(pages, args.timeout)
                latencies += done
                timed_out += missed
                rounds += 1
                compute += [m for page in pages if (m := compute_ms(page.evaluate(_CAPTION_JS))) is not None]
            boxes = sum(page.locator(_ERROR_BOXES).count() for page in pages)
        finally:
            browser.close()
    return {"latencies": latencies, "timed_out": timed_out, "boxes": boxes, "rounds": rounds, "compute": compute}


def compute_ms(caption: str) -> float | None:
    """The server's own time for the fast methods, from the Noise lab's caption ("... took 42 ms."); None when
    the caption says they were computed earlier and reused (that time is another run's)."""
    match = re.search(r"fast methods took (\d+) ms\.", caption)
    return float(match.group(1)) if match else None


def report(args: argparse.Namespace, result: dict, watcher: Watcher) -> None:
    """Print the figures, one per line."""
    latencies, timed_out, boxes, rounds = (result[k] for k in ("latencies", "timed_out", "boxes", "rounds"))
    same = "each its own seed" if args.distinct else "all on the same face and seed"
    print(f"sessions {args.sessions} ({same}), rounds {rounds} of {args.moves}, moves timed {len(latencies)}")
    if latencies:
        print(f"slider move -> new pictures painted: median {statistics.median(latencies):.2f} s, "
              f"95th percentile {percentile(latencies, 95):.2f} s, max {max(latencies):.2f} s")
    if result["compute"]:
        print(f"of which the fast methods on the server (page caption): median {statistics.median(result['compute']):.0f} ms, "
              f"95th percentile {percentile(result['compute'], 95):.0f} ms")
    print(f"errors: {timed_out} moves timed out, {boxes} error boxes on the pages")
    print(f"CPU over {watcher.wall:.0f} s on {os.cpu_count()} cores: server {watcher.cpu_used:.1f} s, "
          f"browser (all {args.sessions} pages) {getattr(watcher, 'client_cpu', 0.0):.1f} s")
    print(f"slowest health check meanwhile: {watcher.slowest_health:.2f} s")
    print(f"server peak resident memory: {watcher.peak() / 2**20:.0f} MB")


def main(argv: list[str] | None = None) -> int:
    """Run the load test; exit code 0 without errors, 1 with any, 2 on bad input or no browser."""
    args = parse_args(argv)
    if not Path(live.CHROMIUM).is_file():
        print(f"error: no Chromium at {live.CHROMIUM} (apt-get install chromium)", file=sys.stderr)
        return 2
    port = args.port or live.free_port()
    proc = live.start(None, port)
    watcher = Watcher(proc.pid, port)
    try:
        live.wait_healthy(port, proc)
        watcher.start()
        client_before = sum(os.times()[2:4])
        result = drive(port, args)
        watcher.client_cpu = sum(os.times()[2:4]) - client_before  # the browser and its driver, once reaped
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        watcher.finish()
        peak = watcher.peak()  # read before the process is gone
        live.stop(proc)
    watcher.peak_rss = max(watcher.peak_rss, peak)
    report(args, result, watcher)
    return 1 if result["timed_out"] or result["boxes"] else 0


if __name__ == "__main__":
    sys.exit(main())
