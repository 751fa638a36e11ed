"""In Chromium (#11 items 4 and 6): the shared configuration hides the Deploy button from a link's
visitor, and the Noise lab's strength slider shows a salt & pepper amount as it is (0.004, not 0.00).

Reuses tests/test_browser.py's server and browser (Debian's chromium; skipped when it is missing).
"""

from __future__ import annotations

from test_browser import chromium_page, dashboard_env, serving  # noqa: F401 - dashboard_env is a fixture

from dashboard import server as live


def test_a_visitor_sees_no_deploy_button_and_a_readable_strength(dashboard_env):  # noqa: F811
    with serving(dashboard_env) as server, chromium_page(1200) as page:
        live.render(page, f"{server}/noise_lab?kind=salt_pepper", live.PAGES["noise_lab"])
        assert page.locator('[data-testid="stException"]').count() == 0
        assert page.locator('[data-testid="stToolbar"]').count() <= 1
        # .streamlit/config.toml (toolbarMode "viewer"): no Deploy button, even for a visitor on localhost
        assert page.get_by_role("button", name="Deploy").count() == 0
        assert page.get_by_text("Deploy", exact=True).count() == 0
        thumb = page.locator('[data-testid="stSliderThumbValue"]').first.inner_text()
        assert thumb == "0.004"
