"""The blind side-by-side test: a vote store in SQLite, how questions are drawn, and what the votes say.

A person sees two cleaned versions of the same noisy face ("A" and "B", methods hidden, order random)
and answers one of :data:`QUESTIONS`. Each answer is one row in a SQLite database
(:func:`database_path`: ``$DENOISING_VOTES_DIR/votes.sqlite3``, by default ``runs/votes/`` of this
checkout, which git ignores). A row holds what is needed to rebuild the exact pictures (test set,
image id, noise spec and seed), the two methods in the order shown, the question, the answer, a
random per-browser session id and the app version: nothing about the person.

Reliability: the database runs in WAL mode with a busy timeout, so many voters write at once
without losing a vote; every question carries a random id drawn with it and a vote is stored with
``INSERT OR IGNORE`` on that id, so a double click, a retried write or a reload stores it once.
Every failure (locked, corrupt, unwritable) is raised as :class:`VoteStoreError` with one plain line.

Results: :func:`bradley_terry` fits a strength per method (Bradley-Terry, a logistic model of who
gets picked) with statsmodels' GLM and Wald 95 % intervals. "Can't tell" counts as half a win for
each side, and every pair that was asked gets one more such virtual "can't tell", which keeps the
strengths finite when a method has won every vote so far; both pull towards a tie, never away.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import math
import os
import sqlite3
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from denoising import catalogue

#: Bumped whenever the table changes; stored as SQLite's ``PRAGMA user_version``.
SCHEMA_VERSION = 1
VOTES_ENV = "DENOISING_VOTES_DIR"
DEFAULT_VOTES_DIR = Path(__file__).resolve().parents[1] / "runs" / "votes"
DB_NAME = "votes.sqlite3"
BUSY_TIMEOUT_MS = 10_000

#: Question kind -> what the person is asked. "closer" shows the original, "real" does not.
QUESTIONS = {
    "closer": "Which cleaned face is closer to the original?",
    "real": "Which looks more like a real photo?",
}
#: Question kind -> the three answer buttons, in the order A, B, can't tell.
ANSWER_LABELS = {
    "closer": ("A is closer to the original", "B is closer", "Can't tell"),
    "real": ("A looks more real", "B looks more real", "Can't tell"),  # short: four buttons share a row
}
ANSWERS = ("A", "B", "tie")
#: The methods the study compares: the post's filters and networks, the L1-only U-Net (the GAN's
#: counterpart) and the noisy input itself as a control (a cleaned face should beat it on "closer").
STUDY_METHODS = ("noisy", *catalogue.POST_METHODS, "unet_l1")
#: The post's claim: the autoencoder looked better than the mean and median filters.
CLAIM = ("autoencoder", ("mean", "median"))
Z95 = 1.959963984540054

COLUMNS = ("vote_id", "time_utc", "test_set", "image_id", "noise_spec", "noise_seed", "method_a", "method_b",
           "question", "answer", "session_id", "app_version")
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS votes (
    vote_id     TEXT PRIMARY KEY,            -- drawn with the question: one vote per question shown
    time_utc    TEXT NOT NULL,               -- ISO 8601, UTC, when the answer arrived
    test_set    TEXT NOT NULL,
    image_id    TEXT NOT NULL,
    noise_spec  TEXT NOT NULL,               -- NoiseSpec JSON
    noise_seed  INTEGER NOT NULL,            -- with noise_spec: the exact noisy input again
    method_a    TEXT NOT NULL,               -- shown as A (left)
    method_b    TEXT NOT NULL,               -- shown as B (right)
    question    TEXT NOT NULL CHECK (question IN ({", ".join(repr(q) for q in QUESTIONS)})),
    answer      TEXT NOT NULL CHECK (answer IN ({", ".join(repr(a) for a in ANSWERS)})),
    session_id  TEXT NOT NULL,               -- random per browser session, nothing personal
    app_version TEXT NOT NULL,
    CHECK (method_a <> method_b)
)
"""


class VoteStoreError(RuntimeError):
    """The vote database cannot be used; the message is one plain line for a reader."""


def votes_dir() -> Path:
    """The folder holding the vote database: ``$DENOISING_VOTES_DIR``, else ``runs/votes/`` (git-ignored)."""
    configured = os.environ.get(VOTES_ENV, "").strip()
    return Path(configured).expanduser() if configured else DEFAULT_VOTES_DIR


def database_path(folder: Path | None = None) -> Path:
    """The vote database file in ``folder`` (default: :func:`votes_dir`)."""
    return Path(folder if folder is not None else votes_dir()) / DB_NAME


def app_version() -> str:
    """This package's installed version (``"unknown"`` when it is not installed)."""
    try:
        return metadata.version("face-denoising-lab")
    except metadata.PackageNotFoundError:
        return "unknown"


def _plain(error: Exception, path: Path) -> VoteStoreError:
    """One line a reader can act on, for whatever sqlite or the file system raised."""
    text = str(error).lower()
    if "locked" in text or "busy" in text:
        return VoteStoreError(f"The vote database is busy (locked by another program) at {path}; try again in a moment.")
    if isinstance(error, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text
                                                     or "corrupt" in text):
        return VoteStoreError(f"The vote database {path} is damaged (not a readable SQLite file); archive or move "
                              "it away and a fresh one is started.")
    if not isinstance(error, sqlite3.Error) or "readonly" in text or "read-only" in text or "unable to open" in text:
        return VoteStoreError(f"The vote database at {path} cannot be written (check the folder's permissions or "
                              f"set {VOTES_ENV}).")
    return VoteStoreError(f"The vote database at {path} cannot be used ({type(error).__name__}: {error}).")


@contextlib.contextmanager
def connect(path: Path, create: bool = False) -> Iterator[sqlite3.Connection]:
    """An open, checked connection to the vote database at ``path``, closed afterwards.

    Parameters
    ----------
    path : Path
        The database file.
    create : bool
        Create the folder, the file and the table when missing; otherwise a missing file is an error.

    Raises
    ------
    VoteStoreError
        Missing (without ``create``), locked, damaged, unwritable, or of another schema version.
    """
    path = Path(path)
    if not create and not path.is_file():
        raise VoteStoreError(f"There is no vote database at {path} yet (no votes cast).")
    try:
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except (OSError, sqlite3.Error) as error:
        raise _plain(error, path) from None
    try:
        _prepare(connection, path, create)
        yield connection
    except sqlite3.Error as error:
        raise _plain(error, path) from None
    finally:
        connection.close()


def _prepare(connection: sqlite3.Connection, path: Path, create: bool) -> None:
    """Busy timeout, WAL, and the table (made when ``create``); checks the schema version."""
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if create and connection.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        connection.execute("PRAGMA journal_mode = WAL")  # stays set in the file: readers never block the writer
    if version == 0 and create:
        connection.execute("BEGIN IMMEDIATE")  # one creator at a time; the others wait, then find it made
        try:
            connection.execute(_SCHEMA)
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            connection.execute("COMMIT")
        finally:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
        version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version != SCHEMA_VERSION:
        raise VoteStoreError(f"The vote database {path} has schema version {version}, this app reads version "
                             f"{SCHEMA_VERSION}; archive or move it away and a fresh one is started.")


def check_store(path: Path) -> None:
    """Raise :class:`VoteStoreError` when votes could not be stored at ``path``; creates nothing.

    An existing file must open as a vote database of this schema; a missing one needs a folder that
    exists and is writable, or the nearest existing folder above it writable (it is made on the first vote).
    """
    path = Path(path)
    if path.is_file():
        with connect(path):
            pass
        if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
            raise _plain(PermissionError(), path)
        return
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise _plain(PermissionError(), path)


# ---------------------------------------------------------------- questions and votes
@dataclass(frozen=True)
class Question:
    """One question as shown: which face and noise, which method is A and which is B, what is asked."""

    vote_id: str
    test_set: str
    image_id: str
    noise_spec: str  #: NoiseSpec JSON
    noise_seed: int
    method_a: str
    method_b: str
    question: str

    @property
    def noise(self) -> str:
        """The noise kind (the spec's ``kind``)."""
        import json

        return str(json.loads(self.noise_spec)["kind"])


def pair_key(a: str, b: str) -> tuple[str, str]:
    """An unordered pair of methods as one key (alphabetical)."""
    return (a, b) if a <= b else (b, a)


def pair_counts(votes: pd.DataFrame) -> dict[tuple[str, str], int]:
    """Votes cast so far per unordered method pair (any question, any answer)."""
    if votes.empty:
        return {}
    keys = [pair_key(a, b) for a, b in zip(votes["method_a"], votes["method_b"], strict=True)]
    return pd.Series(keys, dtype=object).value_counts().to_dict()


def draw_question(rng: np.random.Generator, cases: pd.DataFrame, methods: Mapping[str, Sequence[str]],
                  counts: Mapping[tuple[str, str], int] | None = None,
                  questions: Sequence[str] = tuple(QUESTIONS)) -> Question:
    """Draw the next question at random: a noise kind, a face, a pair of methods, an order and a question.

    Noise kinds and faces are drawn uniformly. A pair is drawn with weight ``1 / (1 + votes it already
    has)``: the pairs asked least, whose comparison is the most uncertain, come up more, so every
    interval narrows at about the same pace. Which method is A is a fair coin.

    Parameters
    ----------
    rng : numpy.random.Generator
        The source of every choice (seed it for a reproducible draw).
    cases : pandas.DataFrame
        One row per face and noise kind that can be shown, with columns ``test_set``, ``image_id``,
        ``noise``, ``noise_params`` (NoiseSpec JSON) and ``noise_seed``, as in the per-image table.
    methods : mapping of str to sequence of str
        Noise kind -> the methods that can be shown for it; kinds with fewer than two are skipped.
    counts : mapping, optional
        Votes so far per :func:`pair_key` (see :func:`pair_counts`).
    questions : sequence of str
        The question kinds to draw among (keys of :data:`QUESTIONS`).

    Returns
    -------
    Question
        With a fresh random ``vote_id`` (uuid4, not from ``rng``, so two seeded sessions never share one).
    """
    kinds = [k for k in dict.fromkeys(cases["noise"]) if len(methods.get(k, ())) >= 2]
    if not kinds:
        raise ValueError("no noise kind has two methods to compare")
    kind = kinds[rng.integers(len(kinds))]
    rows = cases[cases["noise"] == kind]
    row = rows.iloc[rng.integers(len(rows))]
    shown = list(dict.fromkeys(methods[kind]))
    pairs = [(a, b) for i, a in enumerate(shown) for b in shown[i + 1:]]
    weights = np.array([1.0 / (1 + (counts or {}).get(pair_key(a, b), 0)) for a, b in pairs])
    a, b = pairs[rng.choice(len(pairs), p=weights / weights.sum())]
    if rng.random() < 0.5:
        a, b = b, a
    return Question(vote_id=uuid.uuid4().hex, test_set=str(row["test_set"]), image_id=str(row["image_id"]),
                    noise_spec=str(row["noise_params"]), noise_seed=int(row["noise_seed"]), method_a=a, method_b=b,
                    question=str(questions[rng.integers(len(questions))]))


def record_vote(path: Path, question: Question, answer: str, session_id: str,
                when: _dt.datetime | None = None) -> bool:
    """Store one answer; the same question answered again (double click, reload, retry) is stored once.

    Parameters
    ----------
    path : Path
        The database file (created with its folder on the first vote).
    question : Question
        What was shown; its ``vote_id`` is the row's key.
    answer : {"A", "B", "tie"}
    session_id : str
        The random id of the voter's browser session.
    when : datetime, optional
        The time to record (default: now, UTC).

    Returns
    -------
    bool
        True when the vote was new, False when this question's vote was already stored.
    """
    if answer not in ANSWERS:
        raise ValueError(f"answer must be one of {ANSWERS}, got {answer!r}")
    if question.question not in QUESTIONS:
        raise ValueError(f"unknown question kind {question.question!r}")
    stamp = (when or _dt.datetime.now(_dt.timezone.utc)).astimezone(_dt.timezone.utc).isoformat(timespec="seconds")
    row = (question.vote_id, stamp, question.test_set, question.image_id, question.noise_spec,
           int(question.noise_seed), question.method_a, question.method_b, question.question, answer,
           str(session_id), app_version())
    with connect(path, create=True) as connection:
        cursor = connection.execute(
            f"INSERT OR IGNORE INTO votes ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", row)
        return cursor.rowcount == 1


def empty_votes() -> pd.DataFrame:
    """A votes table with no rows (the columns of :data:`COLUMNS`)."""
    return pd.DataFrame({c: pd.Series(dtype="int64" if c == "noise_seed" else object) for c in COLUMNS})


def read_votes(path: Path, missing_ok: bool = True) -> pd.DataFrame:
    """Every vote, oldest first; a missing database is an empty table (or an error when not ``missing_ok``)."""
    if missing_ok and not Path(path).is_file():
        return empty_votes()
    with connect(path) as connection:
        rows = connection.execute(f"SELECT {', '.join(COLUMNS)} FROM votes ORDER BY time_utc, rowid").fetchall()
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame if not frame.empty else empty_votes()


def archive(path: Path, out_folder: Path | None = None, clear: bool = False,
            when: _dt.datetime | None = None) -> tuple[Path, int]:
    """Copy the vote database to ``votes-<UTC time>.sqlite3`` with SQLite's online backup, safe while voting goes on.

    Parameters
    ----------
    path : Path
        The live database.
    out_folder : Path, optional
        Where the copy goes (default: beside the live database).
    clear : bool
        Afterwards delete from the live database exactly the votes now in the copy (votes cast
        meanwhile stay), so the next study starts empty.
    when : datetime, optional
        The time in the copy's name (default: now).

    Returns
    -------
    (Path, int)
        The copy and the number of votes in it.
    """
    # the name says UTC ("Z"): a time given in another zone is converted, not written as it is
    stamp = (when or _dt.datetime.now(_dt.timezone.utc)).astimezone(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = Path(out_folder or Path(path).parent) / f"votes-{stamp}.sqlite3"
    if target.exists():
        raise VoteStoreError(f"{target} already exists; wait a second and archive again.")
    with connect(path) as source:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            copy = sqlite3.connect(target)
        except (OSError, sqlite3.Error):
            # not the live database's problem: its folder and DENOISING_VOTES_DIR are fine, the copy's folder is not
            raise VoteStoreError(f"The copy cannot be written to {target.parent} (not a folder, or not writable); "
                                 "choose another folder for it.") from None
        try:
            source.backup(copy)
            copied = copy.execute("SELECT vote_id FROM votes").fetchall()
        finally:
            copy.close()
        if clear:
            source.execute("BEGIN IMMEDIATE")
            source.executemany("DELETE FROM votes WHERE vote_id = ?", copied)
            source.execute("COMMIT")
    return target, len(copied)


# ---------------------------------------------------------------- what the votes say
@dataclass(frozen=True)
class Strengths:
    """A Bradley-Terry fit: each method's strength as log-odds of being picked over ``reference``."""

    methods: tuple[str, ...]
    reference: str
    coef: np.ndarray  #: log-odds against the reference (0 for the reference itself)
    cov: np.ndarray  #: their covariance (zero row and column for the reference)
    n_votes: int  #: votes in the fit, "can't tell" included
    left_out: tuple[str, ...] = ()  #: methods never compared, even indirectly, with the reference

    def intervals(self) -> tuple[np.ndarray, np.ndarray]:
        """Each method's 95 % interval (low, high), in the order of :attr:`methods` (the reference's is 0 to 0)."""
        half = Z95 * np.sqrt(np.clip(np.diag(self.cov), 0, None))
        return self.coef - half, self.coef + half

    def contrast(self, a: str, b: str) -> tuple[float, float, float]:
        """Strength of ``a`` minus ``b`` (log-odds that ``a`` is picked over ``b``) and its 95 % interval."""
        i, j = self.methods.index(a), self.methods.index(b)
        diff = float(self.coef[i] - self.coef[j])
        half = Z95 * math.sqrt(max(self.cov[i, i] + self.cov[j, j] - 2 * self.cov[i, j], 0.0))
        return diff, diff - half, diff + half

    def votes_needed(self, a: str, b: str) -> int | None:
        """About how many more votes until the interval of ``a`` against ``b`` excludes a tie (0: it already does).

        The interval's width shrinks like 1/sqrt(votes): with the votes going on as they have (same mix
        of pairs, same split), ``n`` votes become enough at ``n * (half-width / difference)**2``. None when
        the votes so far split exactly evenly (a tie may be the answer).
        """
        diff, low, high = self.contrast(a, b)
        if low > 0 or high < 0:
            return 0
        if abs(diff) < 1e-9:
            return None
        return max(1, math.ceil(self.n_votes * ((high - low) / 2 / abs(diff)) ** 2 - self.n_votes))


def votes_for_split(share: float = 0.6) -> int:
    """Votes on one pair needed to tell two methods apart that people pick ``share`` : 1 - ``share``.

    The log-odds of a share p from n votes has a standard error of about 1/sqrt(n p (1 - p)); the
    interval excludes a tie once 1.96 of those are below log(p / (1 - p)).
    """
    logit = math.log(share / (1 - share))
    return math.ceil((Z95 / logit) ** 2 / (share * (1 - share)))


def picked(votes: pd.DataFrame) -> pd.Series:
    """The method picked by each vote (None for "can't tell")."""
    return pd.Series(np.where(votes["answer"] == "A", votes["method_a"],
                              np.where(votes["answer"] == "B", votes["method_b"], None)), index=votes.index)


def _tallies(votes: pd.DataFrame) -> pd.DataFrame:
    """Per unordered pair (``first`` < ``second``): wins of each and "can't tell" answers."""
    winner = picked(votes)
    a, b = votes["method_a"].astype(str).to_numpy(), votes["method_b"].astype(str).to_numpy()
    first, second = np.where(a <= b, a, b), np.where(a <= b, b, a)
    frame = pd.DataFrame({"first": first, "second": second, "win_first": (winner == first).to_numpy(float),
                          "win_second": (winner == second).to_numpy(float),
                          "tie": (votes["answer"] == "tie").to_numpy(float)})
    return frame.groupby(["first", "second"], as_index=False, sort=True).sum()


def _connected(tallies: pd.DataFrame, start: str) -> set[str]:
    """The methods linked to ``start`` by a chain of compared pairs."""
    seen, todo = {start}, [start]
    while todo:
        node = todo.pop()
        for a, b in zip(tallies["first"], tallies["second"], strict=True):
            for here, there in ((a, b), (b, a)):
                if here == node and there not in seen:
                    seen.add(there)
                    todo.append(there)
    return seen


def bradley_terry(votes: pd.DataFrame, reference: str | None = None, prior_ties: float = 1.0) -> Strengths | None:
    """Fit a strength per method from paired votes (Bradley-Terry, as a logistic GLM in statsmodels).

    P(i picked over j) = 1 / (1 + exp(s_j - s_i)); the reference's strength is fixed at 0 and the
    others come with Wald 95 % intervals. "Can't tell" is half a win for each side, and each pair asked
    gets ``prior_ties`` virtual "can't tell" answers more (keeps a method that won every vote finite).

    Parameters
    ----------
    votes : pandas.DataFrame
        Rows as from :func:`read_votes` (usually of one question kind).
    reference : str, optional
        The method at 0: the noisy input when it was shown, else the first of :data:`STUDY_METHODS` shown.
    prior_ties : float
        Virtual "can't tell" answers per pair asked.

    Returns
    -------
    Strengths or None
        None without votes or when fewer than two methods are linked to the reference.
    """
    import statsmodels.api as sm

    if votes.empty:
        return None
    tallies = _tallies(votes)
    shown = set(tallies["first"]) | set(tallies["second"])
    order = [m for m in STUDY_METHODS if m in shown] + sorted(shown - set(STUDY_METHODS))
    reference = reference if reference in shown else order[0]
    linked = _connected(tallies, reference)
    methods = [reference] + [m for m in order if m in linked and m != reference]
    if len(methods) < 2:
        return None
    used = tallies[tallies["first"].isin(linked)]
    column = {m: k for k, m in enumerate(methods[1:])}
    exog = np.zeros((len(used), len(column)))
    for row, (a, b) in enumerate(zip(used["first"], used["second"], strict=True)):
        if a in column:
            exog[row, column[a]] = 1.0
        if b in column:
            exog[row, column[b]] = -1.0
    half = 0.5 * (used["tie"].to_numpy() + prior_ties)
    endog = np.column_stack([used["win_first"].to_numpy() + half, used["win_second"].to_numpy() + half])
    with warnings.catch_warnings():
        # few votes: a pair per parameter leaves no residual degrees of freedom (the binomial scale is 1
        # anyway), and a method that won every vote looks "perfectly separated" although the virtual
        # "can't tell" answers keep its strength finite
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.filterwarnings("ignore", message=".*[Pp]erfect separation.*")
        fit = sm.GLM(endog, exog, family=sm.families.Binomial()).fit()
    coef = np.concatenate([[0.0], np.asarray(fit.params)])
    cov = np.zeros((len(methods), len(methods)))
    cov[1:, 1:] = np.asarray(fit.cov_params())
    n_votes = int(used[["win_first", "win_second", "tie"]].to_numpy().sum())
    return Strengths(tuple(methods), reference, coef, cov, n_votes, tuple(m for m in order if m not in linked))


def _names(methods: Sequence[str]) -> str:
    return catalogue.and_list([catalogue.display_name(m) for m in methods])


def verdict(votes: pd.DataFrame, question: str = "real") -> tuple[str | None, str]:
    """The post's claim (the autoencoder looked better than the mean and median filters) against the votes.

    Parameters
    ----------
    votes : pandas.DataFrame
        Every vote; only those of ``question`` count.
    question : str
        The question kind; ``"real"`` ("which looks more like a real photo?") is the post's "looked better".

    Returns
    -------
    (str or None, str)
        The verdict in one sentence, only once every interval of the autoencoder against a filter
        excludes a tie (else None), and a line on the votes it rests on or how many more it needs. Only
        on ``"real"`` does the sentence judge the post's claim; on another question it says who was picked.
    """
    part = votes[votes["question"] == question]
    model, filters = CLAIM
    # the claim's own method at 0: the fit keeps what is linked to it (contrasts do not depend on the
    # reference), so votes between it and the filters count even while the noisy input is compared elsewhere
    fit = bradley_terry(part, reference=model)
    asked = f"“{QUESTIONS[question]}”"
    if fit is None or model not in fit.methods or any(f not in fit.methods for f in filters):
        return None, (f"No verdict yet: {catalogue.plural(len(part), 'vote')} on {asked} so far, not yet comparing {_names([model])} with "
                      f"{_names(filters)}. As a guide, two methods that people pick 60:40 take about "
                      f"{votes_for_split(0.6)} votes on that pair to tell apart.")
    contrasts = {f: fit.contrast(model, f) for f in filters}
    open_ = [f for f, (_, low, high) in contrasts.items() if low <= 0 <= high]
    if open_:
        needed = [fit.votes_needed(model, f) for f in open_]
        more = ("the votes so far split evenly, so a tie may be the answer" if None in needed else
                f"about {max(needed)} more votes on this question should narrow it enough, if they split as so far")
        return None, (f"No verdict yet ({catalogue.plural(len(part), 'vote')} on {asked}): the 95 % interval of {_names([model])} against "
                      f"{_names(open_)} still includes a tie; {more}.")
    better = [f for f in filters if contrasts[f][0] > 0]
    worse = [f for f in filters if contrasts[f][0] < 0]
    if not worse:
        claim, held = f"people picked {_names([model])} over {_names(better)}", "holds"
    elif not better:
        claim, held = f"people picked {_names(worse)} over {_names([model])}", "does not hold"
    else:
        claim, held = f"people picked {_names([model])} over {_names(better)} but {_names(worse)} over it", \
            "holds only in part"
    if question == "real":  # the post claimed looks, not closeness (its autoencoder had the higher error)
        claim += f": the post's claim {held}"
    return f"On {catalogue.plural(len(part), 'vote')} on {asked}, {claim}.", f"Resting on {catalogue.plural(fit.n_votes, 'vote')} in the fit."


def _scored_votes(votes: pd.DataFrame, per_image: pd.DataFrame) -> pd.DataFrame:
    """Each vote with the per-image scores of its two methods on that exact face, noise and seed."""
    scores = per_image.rename(columns={"noise_params": "noise_spec"})
    keys = ["test_set", "image_id", "noise_spec", "noise_seed"]
    scores = scores.assign(noise_seed=scores["noise_seed"].astype("int64"), psnr=np.minimum(scores["psnr"], 100.0))
    scores = scores[[*keys, "method", *catalogue.METRICS]]
    merged = votes.assign(noise_seed=votes["noise_seed"].astype("int64"))
    for side in ("a", "b"):
        renamed = scores.rename(columns={"method": f"method_{side}", **{m: f"{m}_{side}" for m in catalogue.METRICS}})
        merged = merged.merge(renamed, on=[*keys, f"method_{side}"], how="inner")
    return merged


def metric_agreement(votes: pd.DataFrame, per_image: pd.DataFrame) -> pd.DataFrame:
    """How often the method with the better score on that face was the one people picked.

    Only votes that picked A or B and whose two methods differ on the score count.

    Returns
    -------
    pandas.DataFrame
        One row per metric: ``metric``, ``votes`` (compared), ``agreed`` and ``share`` (NaN without votes).
    """
    scored = _scored_votes(votes[votes["answer"] != "tie"], per_image)
    rows = []
    for metric in catalogue.METRICS:
        a, b = scored[f"{metric}_a"], scored[f"{metric}_b"]
        better_a = (a > b) if catalogue.HIGHER_IS_BETTER[metric] else (a < b)
        counted = a != b
        agreed = int(((better_a == (scored["answer"] == "A")) & counted).sum())
        n = int(counted.sum())
        rows.append({"metric": metric, "votes": n, "agreed": agreed, "share": agreed / n if n else float("nan")})
    return pd.DataFrame(rows)


def results_table(fit: Strengths, votes: pd.DataFrame, per_image: pd.DataFrame) -> pd.DataFrame:
    """Per method: strength with its interval and rank by votes, beside each metric's rank on the shown faces.

    The metric means are over the distinct faces and noises of ``votes`` (the pictures people judged),
    each method over those it was shown on. Rank 1 is the best.
    """
    shown = votes[["test_set", "image_id", "noise_spec", "noise_seed"]].drop_duplicates()
    scores = per_image.rename(columns={"noise_params": "noise_spec"}).assign(
        noise_seed=per_image["noise_seed"].astype("int64"), psnr=np.minimum(per_image["psnr"], 100.0))
    scores = scores.merge(shown.assign(noise_seed=shown["noise_seed"].astype("int64")), how="inner")
    means = scores[scores["method"].isin(fit.methods)].groupby("method")[list(catalogue.METRICS)].mean()
    low, high = fit.intervals()
    choice = picked(votes)
    table = pd.DataFrame({
        "method": fit.methods, "strength": fit.coef, "ci_low": low, "ci_high": high,
        "votes": [int(((votes["method_a"] == m) | (votes["method_b"] == m)).sum()) for m in fit.methods],
        "picked": [int((choice == m).sum()) for m in fit.methods]})
    table["rank_votes"] = table["strength"].rank(ascending=False, method="min").astype(int)
    for metric in catalogue.METRICS:
        values = table["method"].map(means[metric]) if metric in means else pd.Series(np.nan, index=table.index)
        table[f"{metric}_mean"] = values.to_numpy(float)
        table[f"rank_{metric}"] = table[f"{metric}_mean"].rank(
            ascending=not catalogue.HIGHER_IS_BETTER[metric], method="min").astype("Int64")
    return table.sort_values("rank_votes", kind="stable").reset_index(drop=True)
