"""Fuzz the dashboard's URL parameters: every page, every parameter it reads, hostile values.

The parameter names are read from the pages' own ``common.init_param("name", ...)`` calls (plus ``set`` and
``face`` for pages that use ``common.pick_test_face``), so a new parameter is fuzzed without touching this file.
A bad value must fall back to the widget's default silently: no exception, the page's title shown.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from dashboard_fixtures import CELEBA_IDS, make_celeba, make_checkpoint, make_tables

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "dashboard" / "app.py")
VIEWS = REPO / "dashboard" / "views"
LANDING = "views/findings.py"
HOSTILE = [
    "inf", "-inf", "nan", "1e400", "-1e400", str(10**30), str(-(10**30)), "-1", "0", "",
    "x" * 5000, "9" * 5000, "\x00", "../../../../etc/passwd", "💥\u202e", "a,b,,noisy,,", "[]", "None",
]
ROUNDS = 4  # runs per page: each parameter gets ROUNDS different hostile values (Noise lab: all of them)


def page_params(page: str) -> list[str]:
    """The URL parameters ``page`` reads, from its source."""
    source = (REPO / "dashboard" / page).read_text(encoding="utf-8")
    names = re.findall(r'init_param\(\s*"(\w+)"', source)
    if "pick_test_face(" in source:
        names += ["set", "face"]
    return list(dict.fromkeys(names))


def page_title(page: str) -> str:
    return re.search(r'st\.title\("([^"]+)"\)', (REPO / "dashboard" / page).read_text(encoding="utf-8")).group(1)


PAGES = sorted(f"views/{p.name}" for p in VIEWS.glob("*.py"))


def cases() -> list[tuple[str, dict[str, str]]]:
    """(page, query) pairs: parameter j of run i gets HOSTILE[(i + j) % len(HOSTILE)]."""
    out = []
    for page in PAGES:
        names = page_params(page)
        rounds = len(HOSTILE) if page == "views/noise_lab.py" else ROUNDS
        for i in range(rounds if names else 1):
            out.append((page, {name: HOSTILE[(i + j) % len(HOSTILE)] for j, name in enumerate(names)}))
    return out


@pytest.fixture(scope="module")
def fuzz_env(tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz")
    lfw_ids = [f"lfw_{i:03d}" for i in range(4)]
    return {"tables": make_tables(base / "tables", {"celeba_test": CELEBA_IDS, "lfw": lfw_ids}),
            "celeba": make_celeba(base / "celeba"), "ckpt": make_checkpoint(base / "checkpoints"),
            "cache": base / "cache"}


@pytest.fixture
def env(fuzz_env, monkeypatch):
    monkeypatch.setenv("DENOISING_TABLES_DIR", str(fuzz_env["tables"]))
    monkeypatch.setenv("DENOISING_CHECKPOINT_DIR", str(fuzz_env["ckpt"]))
    monkeypatch.setenv("DENOISING_DASHBOARD_CACHE", str(fuzz_env["cache"]))
    monkeypatch.setenv("DENOISING_CELEBA_DIR", str(fuzz_env["celeba"]))
    monkeypatch.delenv("DENOISING_CELEBA_DIRS", raising=False)
    return fuzz_env


def run_page(page: str, query: dict[str, str]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if page != LANDING:  # the landing page reads the URL on its first run; others after switching to them
        at.run()
        at.switch_page(page)
    at.query_params.update(query)
    return at.run()


def assert_renders(at: AppTest, page: str) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == [page_title(page)]


def test_every_page_reads_some_parameter():
    """The parser still finds the parameters (a rename of init_param would silently empty the fuzz)."""
    assert "strength" in page_params("views/noise_lab.py") and "seed" in page_params("views/noise_lab.py")
    assert "face" in page_params("views/browse.py")
    assert sum(len(page_params(p)) for p in PAGES) >= 20


@pytest.mark.parametrize(("page", "query"), cases(), ids=lambda v: v if isinstance(v, str) else None)
def test_hostile_url_parameters(env, page, query):
    at = run_page(page, query)
    assert_renders(at, page)


@pytest.mark.parametrize("strength", ["inf", "1e400", "-inf", "nan", "-1", "1e308"])
def test_noise_lab_bad_strength_falls_back_to_default(env, strength):
    """The issue's /noise_lab?kind=poisson&strength=inf: the slider starts at the post's light level."""
    at = run_page("views/noise_lab.py", {"kind": "poisson", "strength": strength, "seed": str(10**30)})
    assert_renders(at, "views/noise_lab.py")
    assert at.select_slider(key="lab_strength_poisson").value == 256
    assert at.number_input(key="lab_seed").value == 0
    assert at.query_params["strength"] == "256"
