"""A corpus of bad result tables (issue #12, item 3): each gives one plain error naming the file.

The library (:func:`denoising.evaluation.load_tables`, :func:`dashboard.tables.read_tables`) raises or
records :class:`denoising.tables_schema.TableError`; in the dashboard the pages that need the tables
show that message in one error box while the Noise lab and Method pages render as usual.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from dashboard_fixtures import CELEBA_IDS, make_tables

from dashboard.tables import read_tables
from denoising.evaluation import load_tables
from denoising.tables_schema import TableError

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "dashboard" / "app.py")


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def _edit_line(name: str, number: int, change: Callable[[str], str]) -> Callable[[Path], None]:
    """Change line ``number`` (0 = header) of ``name``."""
    def mutate(folder: Path) -> None:
        lines = _lines(folder / name)
        lines[number] = change(lines[number])
        (folder / name).write_text("".join(lines), encoding="utf-8")
    return mutate


def _set_field(column: str, value: str, name: str = "per_image.csv") -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        lines = _lines(folder / name)
        header = lines[0].rstrip("\n").split(",")
        index = header.index(column)
        fields = lines[1].rstrip("\n").split(",")
        if name == "per_image.csv" and index > header.index("noise_params"):
            index += len(fields) - len(header)  # noise_params is quoted JSON holding commas
        fields[index] = value
        lines[1] = ",".join(fields) + "\n"
        (folder / name).write_text("".join(lines), encoding="utf-8")
    return mutate


def _write(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda folder: (folder / name).write_bytes(data)


def _meta(value: object) -> Callable[[Path], None]:
    return lambda folder: (folder / "meta.json").write_text(json.dumps(value), encoding="utf-8")


def _drop_last_row(with_rows: bool) -> Callable[[Path], None]:
    """Lose the last per-image row at a line boundary (the file still ends with a newline)."""
    def mutate(folder: Path) -> None:
        lines = _lines(folder / "per_image.csv")
        if with_rows:
            meta = json.loads((folder / "meta.json").read_text())
            meta["rows"] = {"per_image": len(lines) - 1, "summary": len(_lines(folder / "summary.csv")) - 1}
            (folder / "meta.json").write_text(json.dumps(meta))
        (folder / "per_image.csv").write_text("".join(lines[:-1]), encoding="utf-8")
    return mutate


def _drop_summary_row(folder: Path) -> None:
    lines = _lines(folder / "summary.csv")
    (folder / "summary.csv").write_text("".join(lines[:-1]), encoding="utf-8")


def _cut_mid_line(folder: Path) -> None:
    data = (folder / "per_image.csv").read_bytes()
    (folder / "per_image.csv").write_bytes(data[:-7])


BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" + bytes(range(256))

# case -> (mutation of a good folder, file named in the message, words of the message)
CASES: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "empty_per_image": (_write("per_image.csv", b""), "per_image.csv", "is empty"),
    "binary_summary": (_write("summary.csv", BINARY), "summary.csv", "not a text file"),
    "not_utf8": (_write("per_image.csv", "test_set,é\n".encode("latin-1")), "per_image.csv", "not UTF-8"),
    "header_only": (lambda f: (f / "per_image.csv").write_text(_lines(f / "per_image.csv")[0]),
                    "per_image.csv", "has no rows"),
    "extra_field": (_edit_line("per_image.csv", 3, lambda line: line.rstrip("\n") + ",surplus\n"),
                    "per_image.csv", "line 4: the row has 10 fields, more than the header's 9"),
    "missing_fields": (_edit_line("summary.csv", 2, lambda line: ",".join(line.split(",")[:4]) + "\n"),
                       "summary.csv", "line 3: the row has 4 fields, fewer than"),
    "renamed_column": (_edit_line("summary.csv", 0, lambda line: line.replace("mae_mean", "mae_average")),
                       "summary.csv", "lacks the column mae_mean"),
    "text_metric": (_set_field("mae", "lots"), "per_image.csv", "mae is 'lots', not a number"),
    "unknown_noise": (_set_field("noise", "fog", "summary.csv"), "summary.csv", "not a noise kind"),
    "negative_seed": (_set_field("noise_seed", "-5"), "per_image.csv", "noise_seed is '-5'"),
    "huge_seed": (_set_field("noise_seed", str(10**23)), "per_image.csv", "noise_seed is '1000"),
    "bad_noise_params": (_edit_line("per_image.csv", 1, lambda line: line.replace("sigma", "sigmaa", 1)),
                         "per_image.csv", "is not a valid gaussian noise"),
    "summary_without_per_image": (lambda f: (f / "per_image.csv").unlink(), "per_image.csv", "is missing"),
    "cut_mid_line": (_cut_mid_line, "per_image.csv", "cut short"),
    "truncated_vs_meta_rows": (_drop_last_row(True), "per_image.csv", "rows but meta.json says"),
    "truncated_old_meta": (_drop_last_row(False), "per_image.csv", "disagree"),
    "summary_lost_rows": (_drop_summary_row, "summary.csv", "disagree"),
    "meta_size_0": (_meta({"size": 0}), "meta.json", "size is '0'"),
    "meta_size_huge": (_meta({"size": 10**9}), "meta.json", "not a face size"),
    "meta_list": (_meta([1, 2, 3]), "meta.json", "holds a list"),
    "meta_not_json": (_write("meta.json", b"{\"size\": 28,"), "meta.json", "not valid JSON"),
    "meta_bad_methods": (_meta({"methods": "noisy"}), "meta.json", "methods must be a list"),
    "meta_method_numbers": (_meta({"methods": [1]}), "meta.json", "methods must be a list of objects"),
    "meta_method_unnamed": (_meta({"methods": [{"display_name": "X"}]}), "meta.json", "every method needs a name"),
    "meta_huge_seed": (_meta({"seed": 10**23}), "meta.json", "seed is '1000"),
}


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    return make_tables(tmp_path_factory.mktemp("good") / "tables",
                       {"celeba_test": CELEBA_IDS, "lfw": ["lfw_000", "lfw_001"]}, sweep=False)


@pytest.fixture(scope="module")
def corpus(good, tmp_path_factory) -> dict[str, Path]:
    """One folder per bad case, each a copy of the good tables with one file spoiled."""
    base = tmp_path_factory.mktemp("bad")
    folders = {}
    for case, (mutate, _, _) in CASES.items():
        folder = base / case
        shutil.copytree(good, folder)
        mutate(folder)
        folders[case] = folder
    return folders


def test_good_fixture_and_shipped_tables_pass(good):
    assert not read_tables(good).error
    assert len(load_tables(good).per_image) > 0
    shipped = REPO / "checkpoints" / "tables"
    if (shipped / "per_image.csv").is_file():
        assert not read_tables(shipped).error


@pytest.mark.parametrize("case", list(CASES))
def test_library_names_the_file_and_the_problem(corpus, case):
    _, file_name, words = CASES[case]
    with pytest.raises(TableError) as caught:
        load_tables(corpus[case])
    message = str(caught.value)
    assert file_name in message and words in message, message
    assert "Traceback" not in message and str(corpus[case]) not in message  # no server paths
    data = read_tables(corpus[case])  # the dashboard's reader: nothing shown from a bad set
    assert data.error == message
    assert data.per_image.empty and data.summary.empty and data.meta == {}


def test_write_tables_records_row_counts(good, tmp_path):
    tables = load_tables(good)
    per_image = tables.per_image.assign(seconds=0.01)
    from denoising.evaluation import write_tables

    write_tables(per_image, tables.summary, {"size": 28}, tmp_path)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["rows"] == {"per_image": len(per_image), "summary": len(tables.summary),
                            "timings": len(per_image.groupby(["test_set", "noise", "method"]))}
    assert len(load_tables(tmp_path).per_image) == len(per_image)
    _drop_last_row(False)(tmp_path)
    with pytest.raises(TableError, match="per_image.csv has .* rows but meta.json says"):
        load_tables(tmp_path)


def test_markdown_only_refuses_a_cut_summary(corpus):
    """``scripts/evaluate.py --markdown-only`` on a summary cut short: one line, exit code 2, no "nan" cells."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(REPO / "scripts" / "evaluate.py"), "--markdown-only", "--tables",
                           str(corpus["summary_lost_rows"])], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "nan" not in done.stdout
    assert "summary.csv and per_image.csv disagree" in done.stderr


# ---------------------------------------------------------------- the dashboard on a bad tables folder
TABLE_PAGES = ["views/browse.py", "views/distributions.py"]
FREE_PAGES = {"views/noise_lab.py": "Noise lab", "views/method.py": "How this comparison works",
              "views/training.py": "How the neural networks were trained", "views/noise_strength.py": "Noise strength"}
# every case on the landing page (Findings); a few on every other page, to keep the run time modest
EVERY_PAGE_CASES = ["binary_summary", "extra_field", "meta_size_huge"]


def _app(monkeypatch, folder: Path, empty: Path):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DENOISING_TABLES_DIR", str(folder))
    monkeypatch.setenv("DENOISING_CHECKPOINT_DIR", str(empty))
    monkeypatch.delenv("DENOISING_CELEBA_DIR", raising=False)
    return AppTest.from_file(APP, default_timeout=60)


def _plain_error(at, case: str) -> None:
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    _, file_name, words = CASES[case]
    assert len(errors) == 1 and file_name in errors[0] and words in errors[0], errors


@pytest.mark.parametrize("case", list(CASES))
def test_findings_shows_one_plain_error(corpus, case, monkeypatch, tmp_path):
    pytest.importorskip("streamlit")
    at = _app(monkeypatch, corpus[case], tmp_path).run()
    _plain_error(at, case)


@pytest.mark.parametrize("case", EVERY_PAGE_CASES)
def test_other_pages_show_the_error_or_render(corpus, case, monkeypatch, tmp_path):
    pytest.importorskip("streamlit")
    at = _app(monkeypatch, corpus[case], tmp_path).run()
    for page in TABLE_PAGES:
        at.switch_page(page).run()
        _plain_error(at, case)
    for page, title in FREE_PAGES.items():
        at.switch_page(page).run()
        assert not at.exception, [e.value for e in at.exception]
        assert not at.error, [e.value for e in at.error]
        assert at.title[0].value == title
        # the sidebar does not claim there are no tables (they are there, but bad)
        assert not any("No result tables found" in box.value for box in at.sidebar.info)
