"""The Blind test page in a real browser: `streamlit run` served, Debian's headless Chromium clicking answers.

Starts from an empty vote database of its own (a fresh clone has none), casts votes by clicking the
answer buttons and checks that they are stored once each and counted in the page's results. Skipped
when /usr/bin/chromium is missing. A screenshot goes to tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from dashboard_fixtures import make_checkpoint, make_tables
from test_browser import chromium_page, serving

from dashboard import server as live
from denoising import votes

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
ANSWER = re.compile(r"^(A |B |Can't tell)")


@pytest.fixture
def blind_env(tmp_path) -> dict:
    if not Path(live.CHROMIUM).is_file():
        pytest.skip(f"{live.CHROMIUM} is missing (install Debian's chromium: apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    env = dict(os.environ,
               DENOISING_TABLES_DIR=str(make_tables(tmp_path / "tables", {"lfw": [f"lfw_{i:03d}" for i in range(4)]},
                                                    sweep=False)),
               DENOISING_CHECKPOINT_DIR=str(make_checkpoint(tmp_path / "checkpoints")),
               DENOISING_DASHBOARD_CACHE=str(tmp_path / "cache"),
               DENOISING_VOTES_DIR=str(tmp_path / "votes"))
    env.pop("DENOISING_CELEBA_DIR", None)
    env.pop("DENOISING_CELEBA_DIRS", None)
    return env


def test_votes_cast_in_chromium_appear_in_the_results(blind_env):
    database = Path(blind_env["DENOISING_VOTES_DIR"]) / votes.DB_NAME
    with serving(blind_env) as server, chromium_page(1600) as page:
        live.render(page, f"{server}/blind_test", live.PAGES["blind_test"])
        assert page.locator('[data-testid="stException"]').count() == 0
        assert page.get_by_role("heading", name=re.compile("^Blind test")).count() == 1
        assert page.get_by_text("No verdict yet").count() >= 1
        assert not database.exists()  # an empty study: nothing stored until someone votes
        for cast in range(1, 4):
            buttons = page.get_by_role("button", name=ANSWER)
            assert buttons.count() == 3
            buttons.nth(cast % 3).click()
            page.get_by_text(f"{cast} vote{'s' if cast > 1 else ''} in all").wait_for(timeout=60000)
            live.wait_idle(page)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "blind_test_voted.png"), full_page=True)
        assert page.locator('[data-testid="stException"]').count() == 0
        assert page.get_by_text("Thank you: 3 votes from you").count() == 1
        # a double click answers one question: one vote more, not two
        page.get_by_role("button", name=ANSWER).first.dblclick()
        page.get_by_text("4 votes in all").wait_for(timeout=60000)
        live.wait_idle(page)
        page.wait_for_timeout(1000)
        assert len(votes.read_votes(database)) == 4
        # a reload starts a new session with a new question and sends nothing again
        live.render(page, f"{server}/blind_test", live.PAGES["blind_test"])
        assert page.get_by_text("4 votes in all, from 1 browser session.").count() == 1
    stored = votes.read_votes(database)
    assert len(stored) == stored["vote_id"].nunique() == 4
    assert stored["session_id"].nunique() == 1
    assert sorted(stored["answer"][:3]) == ["A", "B", "tie"] and stored["answer"].iloc[3] == "A"


def test_answer_buttons_show_their_whole_label_at_1280px(blind_env):
    """At a 1280 px window every answer button's label fits its button, for both question kinds.

    "A looks more like a real photo" was cut to "A looks more like a real ph…" in the four-column row.
    "Skip this one" draws a new question without storing a vote, so both kinds come up on one page.
    """
    seen: dict[str, list] = {}
    with serving(blind_env) as server, chromium_page(1500) as page:
        page.set_viewport_size({"width": 1280, "height": 1500})
        live.render(page, f"{server}/blind_test", live.PAGES["blind_test"])
        for _ in range(30):
            labels = page.evaluate("""() => [...document.querySelectorAll('[data-testid="stButton"] button')].map(b => {
                const box = b.querySelector('.stMarkdownEllipsis') || b;
                return [b.innerText, box.scrollWidth, box.clientWidth]; })""")
            heading = page.locator("h3").first.inner_text()
            seen.setdefault(heading, labels)
            if len(seen) == len(votes.QUESTIONS):
                break
            page.get_by_role("button", name="Skip this one").click()
            page.wait_for_timeout(300)
            live.wait_idle(page)
    assert len(seen) == len(votes.QUESTIONS), seen
    clipped = [(label, need, room) for labels in seen.values() for label, need, room in labels if need > room]
    assert not clipped, f"answer labels cut short at 1280 px: {clipped}"
    assert not (Path(blind_env["DENOISING_VOTES_DIR"]) / votes.DB_NAME).exists()  # skipping stores nothing
