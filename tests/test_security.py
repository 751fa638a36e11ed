"""Security cases of a shared dashboard: visitors choose CelebA folders by name, never type a path.

The folders the app may read come only from the server's environment (DENOISING_CELEBA_DIR and the named
DENOISING_CELEBA_DIRS="name=/path;other=/path"). A visitor can neither make the server read or cache an
unconfigured folder nor learn whether a path exists; long strings give messages, never tracebacks.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dashboard_fixtures import CELEBA_IDS, make_celeba, make_tables

from dashboard import common
from denoising.catalogue import test_set_title as set_title

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "dashboard" / "app.py")
PAGES = ["views/findings.py", "views/browse.py", "views/noise_lab.py"]


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("security")
    lfw_ids = [f"lfw_{i:03d}" for i in range(4)]
    return {"tables": make_tables(base / "tables", {"celeba_test": CELEBA_IDS, "lfw": lfw_ids}, sweep=False),
            "celeba": make_celeba(base / "celeba"), "empty_ckpt": base / "no_checkpoints"}


@pytest.fixture
def env(fixtures, monkeypatch, tmp_path):
    """Tables and no checkpoints; no CelebA folder configured; a fresh face cache per test."""
    fixtures["empty_ckpt"].mkdir(exist_ok=True)
    monkeypatch.setenv("DENOISING_TABLES_DIR", str(fixtures["tables"]))
    monkeypatch.setenv("DENOISING_CHECKPOINT_DIR", str(fixtures["empty_ckpt"]))
    monkeypatch.setenv("DENOISING_DASHBOARD_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DENOISING_CELEBA_DIR", raising=False)
    monkeypatch.delenv("DENOISING_CELEBA_DIRS", raising=False)
    return {**fixtures, "cache": tmp_path / "cache"}


def run_page(page: str, query: dict | None = None, state: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in (state or {}).items():
        at.session_state[key] = value
    if page != PAGES[0]:
        at.run()
        at.switch_page(page)
    at.query_params.update(query or {})
    return at.run()


def page_text(at: AppTest) -> str:
    """Everything a visitor reads: messages, captions, markdown, widget options."""
    parts = [m.value for m in [*at.markdown, *at.info, *at.caption, *at.warning, *at.error, *at.success]]
    parts += [str(option) for box in at.selectbox for option in box.options]
    return "\n".join(parts)


def assert_ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


# ---------------------------------------------------------------- configuration parsing
def test_configured_folders_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("DENOISING_CELEBA_DIR", " /data/celeba ")
    monkeypatch.setenv("DENOISING_CELEBA_DIRS", "small=/data/a; big = /data/b ;broken;=/no/name;empty=;small=/data/c")
    assert common.celeba_folders() == {"CelebA": "/data/celeba", "small": "/data/a", "big": "/data/b"}
    monkeypatch.delenv("DENOISING_CELEBA_DIR")
    monkeypatch.delenv("DENOISING_CELEBA_DIRS")
    assert common.celeba_folders() == {}


def test_folder_exists_never_raises():
    assert not common.folder_exists("/x" * 2500)
    assert not common.folder_exists("a\x00b")
    assert common.folder_exists(str(REPO))


# ---------------------------------------------------------------- visitors cannot type or probe paths
def test_no_path_box_and_how_to_configure(env):
    for page in PAGES:
        at = run_page(page)
        assert_ok(at)
        assert not at.text_input, "a visitor must not be able to type a folder"
        sidebar = " ".join(c.value for c in at.sidebar.caption)
        assert "DENOISING_CELEBA_DIR" in sidebar and "server's owner" in sidebar
        assert "Showing the built-in LFW faces." in sidebar


@pytest.mark.parametrize("page", PAGES)
def test_visitor_cannot_make_the_server_read_a_folder(env, page):
    """The old sidebar key, a made-up choice and URL parameters naming a real CelebA folder: nothing is read."""
    folder = str(env["celeba"])
    at = run_page(page, query={"set": "celeba_test", "celeba_dir": folder, "face": CELEBA_IDS[0]},
                  state={"celeba_dir": folder, "celeba_choice": folder})
    assert_ok(at)
    assert not env["cache"].exists(), "nothing may be prepared or cached from an unconfigured folder"
    assert folder not in page_text(at)
    assert "server's owner" in page_text(at)  # says how the owner configures a folder instead
    assert not [p for p in env["celeba"].rglob("*") if "cache" in p.name.lower()]


def test_existing_and_missing_paths_look_the_same(env, tmp_path):
    """Whatever path a visitor tries, the page is the same: no 'does not exist' versus 'no photos' probe."""
    seen = []
    for folder in (str(env["celeba"]), str(tmp_path / "nowhere"), str(tmp_path), "/" + "x" * 5000):
        at = run_page("views/browse.py", query={"set": "celeba_test"}, state={"celeba_dir": folder})
        assert_ok(at)
        seen.append(page_text(at))
    assert all(text == seen[0] for text in seen)


# ---------------------------------------------------------------- the owner's named folders
def test_named_folders_are_chosen_by_name(env, monkeypatch, tmp_path):
    missing = tmp_path / "gone"
    monkeypatch.setenv("DENOISING_CELEBA_DIRS", f"fixture={env['celeba']};other={missing};broken")
    at = run_page("views/noise_lab.py")
    assert_ok(at)
    choice = at.sidebar.selectbox(key="celeba_choice")
    assert choice.options == ["fixture", "other"] and choice.value == "fixture"
    assert at.selectbox(key="lab_set").options == [set_title("lfw"), set_title("celeba_test")]
    assert not at.warning
    choice.set_value("other").run()
    assert_ok(at)
    assert [w.value for w in at.warning] == ["The CelebA folder “other” set up on the server does not exist; showing "
                                             "the built-in faces only."]


def test_one_configured_folder_needs_no_choice(env, monkeypatch):
    monkeypatch.setenv("DENOISING_CELEBA_DIR", str(env["celeba"]))
    at = run_page("views/browse.py", query={"set": "celeba_test", "face": CELEBA_IDS[1]})
    assert_ok(at)
    assert not at.sidebar.selectbox and not at.text_input
    assert at.selectbox(key="br_face").value == CELEBA_IDS[1]


def test_tilde_is_expanded_like_the_loader(env, monkeypatch):
    """The issue's small one: '~/…' was said not to exist although the loader expands it."""
    home = env["celeba"].parent
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("DENOISING_CELEBA_DIR", f"~/{env['celeba'].name}")
    at = run_page(PAGES[0])
    assert_ok(at)
    assert not at.warning


# ---------------------------------------------------------------- long strings: messages, never tracebacks
@pytest.mark.parametrize("page", PAGES)
def test_long_configured_path_is_a_message(env, monkeypatch, page):
    monkeypatch.setenv("DENOISING_CELEBA_DIR", "/x" * 2500)
    at = run_page(page, query={"set": "celeba_test"})
    assert_ok(at)
    assert any("does not exist; showing the built-in faces only." in w.value for w in at.sidebar.warning)
    assert not any("/x/x" in w.value for w in [*at.warning, *at.sidebar.warning, *at.error])


def test_long_upload_name_and_junk_bytes_are_a_message(env):
    at = run_page("views/noise_lab.py", {"src": "upload"})
    at.file_uploader(key="lab_upload").set_value(("y" * 5000 + ".png", b"\x89PNG" + b"\x00" * 100, "image/png")).run()
    assert_ok(at)
    assert [e.value for e in at.error] and all("could not" in e.value for e in at.error)


def test_long_url_values_are_ignored(env):
    for page in PAGES:
        at = run_page(page, query={name: "z" * 5000 for name in ("set", "face", "noise", "kind", "strength", "seed")})
        assert_ok(at)


# ---------------------------------------------------------------- the shared default configuration
def test_streamlit_config_is_the_safe_shared_default():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["client"]["showErrorDetails"] == "none"  # no tracebacks or server paths for visitors
    assert 1 <= config["server"]["maxUploadSize"] <= 10  # MB: a face photo, not a 200 MB upload
    assert "address" not in config["server"]  # Streamlit's default unless the owner passes --server.address
    assert config["client"]["toolbarMode"] == "viewer"  # no Deploy button or developer menu for link recipients
    assert config["browser"]["gatherUsageStats"] is False  # no usage statistics sent from a shared server
    assert config["server"]["headless"] is True  # a server opens no browser window


def test_a_configured_folder_without_the_faces_is_named_not_shown(env, monkeypatch, tmp_path):
    empty = tmp_path / "server-side" / "celeba"
    empty.mkdir(parents=True)
    monkeypatch.setenv("DENOISING_CELEBA_DIR", str(empty))
    at = run_page("views/browse.py", query={"set": "celeba_test"})
    assert_ok(at)
    shown = [m.value for m in [*at.warning, *at.error, *at.info, *at.caption, *at.sidebar.warning]]
    assert shown and not any(str(tmp_path) in text for text in shown), shown


def test_only_a_bounded_number_of_uploads_decode_at_once(monkeypatch):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (120, 80, 40)).save(buffer, format="PNG")
    monkeypatch.setattr(common, "UPLOAD_WAIT_S", 0.05)
    taken = 0
    while common.UPLOAD_SLOTS.acquire(blocking=False):  # other visitors' uploads hold every slot
        taken += 1
    try:
        assert taken >= 1
        photo, message = common.upload_to_face(buffer.getvalue())
        assert photo is None and message.startswith("The server is busy reading other visitors' photos")
    finally:
        for _ in range(taken):
            common.UPLOAD_SLOTS.release()
    photo, message = common.upload_to_face(buffer.getvalue())  # a free slot: decoded, and the slot given back
    assert message is None and photo.size == (32, 32)
    assert common.UPLOAD_SLOTS.acquire(blocking=False)
    common.UPLOAD_SLOTS.release()
