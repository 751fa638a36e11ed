"""The blind test's vote store, its statistics, its CLI and its page (AppTest); every vote here is synthetic.

Each test writes its own temporary database; nothing here reads or writes the default ``runs/votes/``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import multiprocessing
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dashboard_fixtures import make_checkpoint, make_tables

from denoising import votes
from scripts import votes as cli

REPO = Path(__file__).resolve().parents[1]
SPEC = json.dumps({"kind": "gaussian", "params": {"sigma": 0.316}})
TRUE_STRENGTH = {"noisy": -1.0, "mean": 0.0, "median": 0.4, "autoencoder": 1.2}


def question(vote_id: str = "q1", a: str = "mean", b: str = "median", kind: str = "real",
             image_id: str = "lfw_000") -> votes.Question:
    return votes.Question(vote_id, "lfw", image_id, SPEC, 12345, a, b, kind)


def synthetic_votes(n: int, seed: int = 0, strengths: dict[str, float] = TRUE_STRENGTH, tie_share: float = 0.0,
                    kind: str = "real") -> pd.DataFrame:
    """``n`` made-up votes from a Bradley-Terry model with ``strengths`` (for the statistics only)."""
    rng = np.random.default_rng(seed)
    names, rows = list(strengths), []
    for k in range(n):
        a, b = rng.choice(names, 2, replace=False)
        p_a = 1 / (1 + math.exp(strengths[b] - strengths[a]))
        answer = "tie" if rng.random() < tie_share else ("A" if rng.random() < p_a else "B")
        rows.append({**dict.fromkeys(votes.COLUMNS, ""), "vote_id": f"v{k}", "test_set": "lfw",
                     "image_id": f"lfw_{k % 4:03d}", "noise_spec": SPEC, "noise_seed": 12345, "method_a": str(a),
                     "method_b": str(b), "question": kind, "answer": answer, "session_id": f"s{k % 7}"})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- the store
def test_schema_round_trip(tmp_path):
    path = tmp_path / "new" / votes.DB_NAME
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    assert votes.record_vote(path, question(), "A", "session-1", when=when)
    read = votes.read_votes(path)
    assert list(read.columns) == list(votes.COLUMNS) and len(read) == 1
    row = read.iloc[0]
    assert (row.vote_id, row.time_utc, row.noise_spec, int(row.noise_seed)) == ("q1", "2026-01-02T03:04:05+00:00",
                                                                               SPEC, 12345)
    assert (row.method_a, row.method_b, row.question, row.answer, row.session_id) == (
        "mean", "median", "real", "A", "session-1")
    assert row.app_version == votes.app_version()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == votes.SCHEMA_VERSION
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_question_is_counted_once(tmp_path):
    """A double click, a reload or a retried write sends the same question again: one vote."""
    path = tmp_path / votes.DB_NAME
    assert votes.record_vote(path, question(), "A", "s")
    assert not votes.record_vote(path, question(), "A", "s")
    assert not votes.record_vote(path, question(), "B", "s")  # a changed mind after the fact is not a second vote
    assert votes.read_votes(path)["answer"].tolist() == ["A"]


def test_bad_answers_and_questions_are_refused(tmp_path):
    with pytest.raises(ValueError):
        votes.record_vote(tmp_path / "v.sqlite3", question(), "maybe", "s")
    with pytest.raises(ValueError):
        votes.record_vote(tmp_path / "v.sqlite3", question(kind="prettier"), "A", "s")


def _vote_many(args: tuple[str, int, int]) -> int:
    path, worker, n = args
    for i in range(n):
        votes.record_vote(Path(path), question(f"w{worker}-{i}", kind="closer"), "AB"[i % 2], f"session-{worker}")
    return n


def test_ten_concurrent_voters_lose_nothing(tmp_path):
    """Ten processes vote at once into a database none of them has made yet; every vote is counted."""
    path = tmp_path / "fresh" / votes.DB_NAME
    voters, each = 10, 15
    with multiprocessing.get_context("spawn").Pool(voters) as pool:
        sent = pool.map(_vote_many, [(str(path), k, each) for k in range(voters)])
    read = votes.read_votes(path)
    assert sum(sent) == len(read) == read["vote_id"].nunique() == voters * each
    assert read.groupby("session_id").size().tolist() == [each] * voters


def test_a_damaged_database_is_a_plain_error(tmp_path):
    path = tmp_path / votes.DB_NAME
    path.write_bytes(b"this is not sqlite at all " * 200)
    for attempt in (lambda: votes.record_vote(path, question(), "A", "s"), lambda: votes.read_votes(path),
                    lambda: votes.check_store(path)):
        with pytest.raises(votes.VoteStoreError, match="damaged") as caught:
            attempt()
        assert "\n" not in str(caught.value)


def test_a_database_of_another_schema_is_refused(tmp_path):
    path = tmp_path / votes.DB_NAME
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA user_version = 99")
    with pytest.raises(votes.VoteStoreError, match="schema version 99"):
        votes.read_votes(path)


def test_a_folder_that_cannot_be_made_is_a_plain_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    path = blocker / "votes" / votes.DB_NAME
    with pytest.raises(votes.VoteStoreError, match="cannot be written"):
        votes.check_store(path)
    with pytest.raises(votes.VoteStoreError, match="cannot be written"):
        votes.record_vote(path, question(), "A", "s")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_a_plain_error(tmp_path):
    folder = tmp_path / "locked-down"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(votes.VoteStoreError, match="cannot be written"):
            votes.record_vote(folder / votes.DB_NAME, question(), "A", "s")
    finally:
        folder.chmod(0o700)


def test_a_locked_database_is_a_plain_error(tmp_path, monkeypatch):
    path = tmp_path / votes.DB_NAME
    votes.record_vote(path, question("first"), "A", "s")
    monkeypatch.setattr(votes, "BUSY_TIMEOUT_MS", 200)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(votes.VoteStoreError, match="busy"):
            votes.record_vote(path, question("second"), "A", "s")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert votes.record_vote(path, question("second"), "A", "s")  # once the lock is gone the vote goes in


def test_the_default_location_is_git_ignored():
    assert votes.DEFAULT_VOTES_DIR == REPO / "runs" / "votes"
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    default = votes.DEFAULT_VOTES_DIR / votes.DB_NAME
    assert subprocess.run(["git", "check-ignore", "-q", str(default)], cwd=REPO).returncode == 0
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert not [name for name in tracked.splitlines() if name.endswith((".sqlite3", ".sqlite", ".db"))]


def test_the_folder_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(votes.VOTES_ENV, str(tmp_path))
    assert votes.database_path() == tmp_path / votes.DB_NAME
    monkeypatch.delenv(votes.VOTES_ENV)
    assert votes.database_path() == votes.DEFAULT_VOTES_DIR / votes.DB_NAME


def test_archive_names_its_copy_in_utc_whatever_the_zone_given(tmp_path):
    path = tmp_path / votes.DB_NAME
    votes.record_vote(path, question(), "A", "s")
    two_hours_east = dt.timezone(dt.timedelta(hours=2))
    copy, n = votes.archive(path, when=dt.datetime(2026, 1, 2, 5, 4, 5, tzinfo=two_hours_east))
    assert (copy.name, n) == ("votes-20260102T030405Z.sqlite3", 1)


# ---------------------------------------------------------------- drawing questions
CASES = pd.DataFrame({"test_set": "lfw", "image_id": ["lfw_000", "lfw_001", "lfw_000"],
                      "noise": ["gaussian", "gaussian", "poisson"], "noise_params": [SPEC, SPEC, "{}"],
                      "noise_seed": [1, 2, 3]})
METHODS = {"gaussian": ["noisy", "mean", "median", "autoencoder"], "poisson": ["mean"]}


def test_draw_question_is_seeded():
    first = votes.draw_question(np.random.default_rng(3), CASES, METHODS)
    again = votes.draw_question(np.random.default_rng(3), CASES, METHODS)
    assert first.vote_id != again.vote_id  # ids are never shared, even by seeded draws
    assert {**vars(first), "vote_id": ""} == {**vars(again), "vote_id": ""}
    assert first.noise == "gaussian"  # poisson has one method only: never asked


def test_pairs_asked_least_come_up_most():
    rng = np.random.default_rng(0)
    counts = {votes.pair_key("mean", "median"): 50}
    drawn = [votes.draw_question(rng, CASES, METHODS, counts) for _ in range(600)]
    pairs = pd.Series([votes.pair_key(q.method_a, q.method_b) for q in drawn]).value_counts()
    assert len(pairs) == 6 and pairs[("mean", "median")] < 0.2 * pairs.drop(("mean", "median")).mean()
    assert {q.method_a for q in drawn} == set(METHODS["gaussian"])  # every method is shown as A some time
    assert {q.question for q in drawn} == set(votes.QUESTIONS)


# ---------------------------------------------------------------- what the votes say
def test_bradley_terry_recovers_a_known_ordering():
    fit = votes.bradley_terry(synthetic_votes(3000, seed=1))
    assert fit.reference == "noisy" and fit.coef[0] == 0.0
    estimated = dict(zip(fit.methods, fit.coef, strict=True))
    assert sorted(estimated, key=estimated.get) == sorted(TRUE_STRENGTH, key=TRUE_STRENGTH.get)
    for method, truth in TRUE_STRENGTH.items():
        assert estimated[method] == pytest.approx(truth - TRUE_STRENGTH["noisy"], abs=0.25), method
    diff, low, high = fit.contrast("autoencoder", "median")
    assert low < 0.8 < high and low > 0
    lows, highs = fit.intervals()  # against the reference: the same as the contrast with it
    assert lows[0] == highs[0] == 0.0
    k = fit.methods.index("autoencoder")
    assert (lows[k], highs[k]) == pytest.approx(fit.contrast("autoencoder", "noisy")[1:])


def test_intervals_shrink_with_more_votes():
    def width(n: int) -> float:
        _, low, high = votes.bradley_terry(synthetic_votes(n, seed=2)).contrast("autoencoder", "mean")
        return high - low

    few, many = width(200), width(2000)
    assert many < few / 2.5  # about 1/sqrt(10) as wide


def test_cant_tell_is_half_a_win_each():
    """Only "can't tell" answers: every strength stays at 0 (a tie), with finite intervals."""
    fit = votes.bradley_terry(synthetic_votes(100, seed=3, tie_share=1.0))
    assert np.allclose(fit.coef, 0.0) and np.all(np.isfinite(fit.cov))
    # one pair, 10 wins and 10 "can't tell": 10 + 5 + 0.5 (the virtual one) against 5 + 0.5, the exact MLE
    # (ties dropped would give log(10.5 / 0.5), ties as losses log(10.5 / 10.5))
    mixed = pd.DataFrame({"method_a": "autoencoder", "method_b": "mean", "answer": ["A"] * 10 + ["tie"] * 10})
    fit = votes.bradley_terry(mixed)
    assert fit.methods == ("mean", "autoencoder") and fit.n_votes == 20
    assert fit.coef[1] == pytest.approx(math.log(15.5 / 5.5), abs=1e-6)


def test_a_method_that_won_every_vote_stays_finite():
    one_sided = synthetic_votes(40, seed=4, strengths={"mean": 0.0, "autoencoder": 50.0})
    fit = votes.bradley_terry(one_sided)
    assert np.all(np.isfinite(fit.coef)) and fit.coef[fit.methods.index("autoencoder")] > 2


def test_verdict_waits_for_enough_votes():
    sentence, status = votes.verdict(votes.empty_votes())
    assert sentence is None and "No verdict yet" in status
    sentence, status = votes.verdict(synthetic_votes(12, seed=5))
    assert sentence is None and "more votes" in status
    sentence, status = votes.verdict(synthetic_votes(3000, seed=6))
    assert "claim holds" in sentence and "3000 votes" in sentence
    reversed_ = {**TRUE_STRENGTH, "autoencoder": -2.0}
    sentence, _ = votes.verdict(synthetic_votes(3000, seed=7, strengths=reversed_))
    assert "does not hold" in sentence
    assert votes.verdict(synthetic_votes(3000, seed=6, kind="closer"), "real")[0] is None  # other question only
    # the post claimed looks, not closeness: on "closer" the votes are reported without a verdict on its claim
    closer, _ = votes.verdict(synthetic_votes(3000, seed=6, kind="closer"), "closer")
    assert "people picked" in closer and "claim" not in closer


def test_verdict_uses_the_claims_votes_when_the_noisy_input_is_compared_apart():
    """Autoencoder against the filters in one group of votes, the noisy input only against pix2pix in another."""
    rng = np.random.default_rng(9)
    claim = [{"method_a": "autoencoder", "method_b": ("mean", "median")[k % 2], "question": "real",
              "answer": "A" if rng.random() < 0.75 else "B"} for k in range(300)]
    apart = [{"method_a": "noisy", "method_b": "pix2pix", "question": "real", "answer": "B"}] * 40
    sentence, status = votes.verdict(pd.DataFrame(claim + apart))
    assert sentence is not None and "claim holds" in sentence, status


def test_votes_needed_is_about_when_the_interval_leaves_a_tie():
    """60 votes split 60:40 on one pair: with the votes needed more at that split the interval excludes a tie."""
    def split_60_40(n: int) -> pd.DataFrame:
        return pd.DataFrame({"method_a": "median", "method_b": "mean",
                             "answer": ["A"] * (3 * n // 5) + ["B"] * (n - 3 * n // 5)})

    def low_end(n: int) -> float:
        return votes.bradley_terry(split_60_40(n)).contrast("median", "mean")[1]

    needed = votes.bradley_terry(split_60_40(60)).votes_needed("median", "mean")
    assert 25 <= needed <= 55 and low_end(60) < 0
    assert low_end(round(0.85 * (60 + needed))) < 0 < low_end(round(1.15 * (60 + needed)))
    assert votes.bradley_terry(split_60_40(200)).votes_needed("median", "mean") == 0
    assert votes.votes_for_split(0.6) == 98


def test_metric_agreement_and_ranks():
    per_image = pd.DataFrame({"test_set": "lfw", "image_id": "lfw_000", "noise": "gaussian", "noise_params": SPEC,
                              "noise_seed": 12345, "method": ["mean", "median", "noisy"], "mae": [0.1, 0.2, 0.3],
                              "psnr": [20.0, 18.0, 10.0], "ssim": [0.5, 0.7, 0.2]})
    cast = pd.DataFrame([{**vars(question(f"v{i}", "mean", "median")), "answer": ans, "session_id": "s",
                          "time_utc": "", "app_version": ""} for i, ans in enumerate(["A", "A", "B", "tie"])])
    agreement = votes.metric_agreement(cast, per_image).set_index("metric")
    assert agreement.loc["mae", ["votes", "agreed"]].tolist() == [3, 2]  # mean has the lower MAE, picked twice
    assert agreement.loc["ssim", ["votes", "agreed"]].tolist() == [3, 1]
    table = votes.results_table(votes.bradley_terry(cast), cast, per_image).set_index("method")
    assert table.loc["mean", "rank_votes"] == 1 and table.loc["median", "rank_mae"] == 2
    assert table.loc["median", "rank_ssim"] == 1 and table.loc["mean", "picked"] == 2


# ---------------------------------------------------------------- the CLI
def test_cli_summary_export_and_archive(tmp_path, capsys):
    path = tmp_path / votes.DB_NAME
    for i, answer in enumerate(["A", "B", "tie"]):
        votes.record_vote(path, question(f"v{i}"), answer, "s")
    assert cli.main(["summary", "--db", str(path)]) == 0
    out = capsys.readouterr().out
    assert "3 votes from 1 browser session," in out and "No verdict yet" in out
    assert cli.main(["export", "--db", str(path), "--out", str(tmp_path / "v.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "v.csv")) == 3
    assert cli.main(["archive", "--db", str(path), "--to", str(tmp_path / "old"), "--clear"]) == 0
    copies = list((tmp_path / "old").glob("votes-*.sqlite3"))
    assert len(copies) == 1 and len(votes.read_votes(copies[0])) == 3
    assert votes.read_votes(path).empty  # the live database starts again, empty


def test_cli_export_says_when_it_made_the_out_files_folder(tmp_path, capsys):
    """export --out into a missing folder: the folder is made, as the other scripts make theirs, and said."""
    path = tmp_path / votes.DB_NAME
    votes.record_vote(path, question("v0"), "A", "s")
    out = tmp_path / "new" / "sub" / "v.csv"
    assert cli.main(["export", "--db", str(path), "--out", str(out)]) == 0
    assert len(pd.read_csv(out)) == 1
    assert capsys.readouterr().out == f"wrote 1 vote to {out} (made the folder {out.parent})\n"
    assert cli.main(["export", "--db", str(path), "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote 1 vote to {out}\n"


@pytest.mark.parametrize("content", [None, b"garbage " * 100])
def test_cli_errors_are_one_line(tmp_path, content):
    path = tmp_path / votes.DB_NAME
    if content is not None:
        path.write_bytes(content)
    for command in (["summary"], ["export", "--out", str(tmp_path / "x.csv")], ["archive"]):
        result = subprocess.run([sys.executable, "-m", "scripts.votes", *command, "--db", str(path)], cwd=REPO,
                                capture_output=True, text=True)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.stderr


def test_cli_has_help_on_every_flag():
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    for name, sub in subparsers.items():
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings} has no --help text"


# ---------------------------------------------------------------- the page (AppTest)
@pytest.fixture(scope="module")
def page_fixtures(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("blind")
    return {"tables": make_tables(base / "tables", {"lfw": [f"lfw_{i:03d}" for i in range(4)]}, sweep=False),
            "ckpt": make_checkpoint(base / "checkpoints"), "cache": base / "cache"}


@pytest.fixture
def page_env(page_fixtures, monkeypatch, tmp_path):
    monkeypatch.setenv("DENOISING_TABLES_DIR", str(page_fixtures["tables"]))
    monkeypatch.setenv("DENOISING_CHECKPOINT_DIR", str(page_fixtures["ckpt"]))
    monkeypatch.setenv("DENOISING_DASHBOARD_CACHE", str(page_fixtures["cache"]))
    monkeypatch.setenv(votes.VOTES_ENV, str(tmp_path / "votes"))
    monkeypatch.delenv("DENOISING_CELEBA_DIR", raising=False)
    monkeypatch.delenv("DENOISING_CELEBA_DIRS", raising=False)
    return tmp_path / "votes" / votes.DB_NAME


def open_page():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("views/blind_test.py")
    return at.run()


def test_page_casts_votes_that_are_counted(page_env):
    at = open_page()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value.startswith("Blind test")
    assert not page_env.exists()  # opening the page creates nothing; the first vote makes the database
    shown = []
    for choice in ("A", "B", "tie"):
        q = at.session_state["bt_question"]
        shown.append(q)
        captions = [c for image in at.image for c in image.captions]
        assert captions[-2:] == ["A", "B"] and ("Original" in captions) == (q.question == "closer")
        at.button(key=f"bt_{choice}_{q.vote_id}").click().run()
        assert not at.exception, [e.value for e in at.exception]
    stored = votes.read_votes(page_env)
    assert stored["vote_id"].tolist() == [q.vote_id for q in shown]
    assert stored["answer"].tolist() == ["A", "B", "tie"] and stored["session_id"].nunique() == 1
    assert any("3 votes in all" in c.value for c in at.caption)
    # the strengths with their intervals, for a question that got votes (the page draws its questions unseeded:
    # all three may be "closer" while the results open on "real")
    at.radio(key="bt_results_q").set_value(shown[0].question).run()
    assert at.get("plotly_chart")
    # the same question answered again (a reload or a second click arriving late) stays one vote
    at.session_state["bt_question"] = shown[0]
    at.run()
    at.button(key=f"bt_A_{shown[0].vote_id}").click().run()
    assert len(votes.read_votes(page_env)) == 3


@pytest.mark.parametrize("breakage", ["damaged", "not a folder"])
def test_page_with_a_broken_database_says_so_and_renders(page_env, breakage):
    if breakage == "damaged":
        page_env.parent.mkdir(parents=True)
        page_env.write_bytes(b"garbage " * 500)
    else:
        page_env.parent.parent.mkdir(parents=True, exist_ok=True)
        page_env.parent.write_text("a file where the folder should be")
    at = open_page()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Voting is off" in w.value for w in at.warning)
    assert not [w.value for w in at.warning if str(page_env.parent) in w.value]  # no server folder shown
    assert at.image  # the pictures still show
    assert all(b.disabled for b in at.button if b.key and b.key.startswith(("bt_A_", "bt_B_", "bt_tie_")))


def test_counts_read_in_the_singular_for_one(tmp_path, capsys):
    """One vote is "1 vote" and one session "1 browser session" (they read "1 votes", "1 browser sessions")."""
    path = tmp_path / votes.DB_NAME
    votes.record_vote(path, question(), "A", "s")
    assert cli.main(["summary", "--db", str(path)]) == 0
    out = capsys.readouterr().out
    assert "1 vote from 1 browser session," in out and "(1 vote, 0 can't tell)" in out
    assert "1 votes" not in out and "sessions" not in out
    known = votes.read_votes(path)
    assert votes.verdict(known, known["question"].iloc[0])[1].startswith("No verdict yet: 1 vote on ")


def test_archive_to_a_file_says_the_copys_folder_is_the_problem(tmp_path, capsys):
    """--to naming a file: the copy's folder is named, not the live database with a hint to set DENOISING_VOTES_DIR."""
    path = tmp_path / votes.DB_NAME
    votes.record_vote(path, question(), "A", "s")
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("x")
    assert cli.main(["archive", "--db", str(path), "--to", str(not_a_folder)]) == 2
    err = capsys.readouterr().err
    assert str(not_a_folder) in err and votes.VOTES_ENV not in err and "choose another folder" in err
    assert len(votes.read_votes(path)) == 1  # the live votes are untouched
