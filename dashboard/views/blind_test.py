"""Blind test: two cleaned versions of the same noisy face as "A" and "B"; people pick, the votes are counted.

The pictures are rebuilt from the seeds in the per-image table exactly as Browse does; the votes go to
SQLite through :mod:`denoising.votes` (``DENOISING_VOTES_DIR``). A vote is tied to the random id drawn
with its question, so a double click stores it once; a database that cannot be used turns voting off
with a plain message, and the rest of the page and the app keep working.
"""

import uuid

import numpy as np
import streamlit as st

from dashboard import common
from denoising import votes
from denoising.catalogue import METRIC_SHORT, METRICS, display_name, noise_label, plural, test_set_title
from denoising.noise import NoiseSpec

st.title("Blind test: do the eyes agree with the numbers?")
st.write(
    "You see a test face with noise added, cleaned by two different methods. They are shown as **A** and **B** "
    "in random order, and you are not told which method made which. Sometimes the original face is shown and "
    "you pick the cleaned face closer to it; sometimes it is not, and you pick the one that looks more like a "
    "real photo. “Can't tell” is a perfectly good answer. Each click stores one vote: the picture shown, the "
    "two methods, your answer and a random number for this browser session. Nothing about you (no name, no "
    "address, no cookie beyond this tab) is stored.")

DB = votes.database_path()
st.session_state.setdefault("bt_session", uuid.uuid4().hex)  # random per browser session, nothing personal
per_image = common.per_image_or_stop()


def for_visitor(error: votes.VoteStoreError) -> str:
    """The error's line with the database's file name only: a visitor never sees the server's folders."""
    return common.without_folder(str(error), DB.parent)


def store_problem() -> str | None:
    """Why votes cannot be stored right now (one plain line), or None."""
    try:
        votes.check_store(DB)
    except votes.VoteStoreError as error:
        return for_visitor(error)
    return None


def all_votes():
    """Every vote so far, or (an empty table, the reason it could not be read)."""
    try:
        return votes.read_votes(DB), None
    except votes.VoteStoreError as error:
        return votes.empty_votes(), for_visitor(error)


def choose_test_set() -> tuple[str, object]:
    """The test set to draw faces from (the built-in LFW faces unless a CelebA folder is set) and its faces."""
    in_tables = set(per_image["test_set"].astype(str))
    sets = [s for s in (["celeba_test"] if common.celeba_dir() else []) + ["lfw"] if s in in_tables]
    if not sets:
        st.info("The result tables hold no test faces that can be pictured here.")
        st.stop()
    common.init_param("set", "bt_set", sets[0], valid=lambda v: v in sets)
    test_set = st.selectbox("Test faces", sets, key="bt_set", format_func=test_set_title)
    bank, how = common.face_bank(test_set)
    if bank is None:
        st.info(how)
        test_set, bank = "lfw", common.lfw_bank(common.face_size())
    return test_set, bank


def study_methods(test_set: str) -> dict[str, list[str]]:
    """Noise kind -> the study's methods that are in the table and can run here (learned ones need weights)."""
    available = common.registry(learned=common.has_checkpoints())
    return {kind: [m for m in votes.STUDY_METHODS if m in common.methods_in_table(test_set, kind)
                   and m in available and available[m].available(kind)]
            for kind in dict.fromkeys(per_image.loc[per_image["test_set"] == test_set, "noise"])}


def current_question(test_set: str, bank, known) -> votes.Question | None:
    """This session's open question, drawn anew after each vote (pairs asked least come up most)."""
    question = st.session_state.get("bt_question")
    if question is not None and question.test_set == test_set:
        return question
    part = per_image[(per_image["test_set"] == test_set) & per_image["image_id"].astype(str).isin(bank.ids)]
    cases = part.drop_duplicates(["image_id", "noise"])
    if cases.empty:
        return None
    rng = st.session_state.setdefault("bt_rng", np.random.default_rng())
    try:
        question = votes.draw_question(rng, cases, study_methods(test_set), votes.pair_counts(known))
    except ValueError:
        return None
    st.session_state["bt_question"] = question
    return question


def answer(vote_id: str, choice: str) -> None:
    """Button callback: store the vote for the question it was shown with, then move on to a new one."""
    question = st.session_state.get("bt_question")
    if question is None or question.vote_id != vote_id:
        return  # a second click on a question already answered: its vote is in, nothing more to do
    if choice != "skip":
        try:
            new = votes.record_vote(DB, question, choice, st.session_state["bt_session"])
        except votes.VoteStoreError as error:
            st.session_state["bt_error"] = for_visitor(error)
            return  # the same question stays, so the vote can be sent again
        st.session_state["bt_cast"] = st.session_state.get("bt_cast", 0) + int(new)
    st.session_state.pop("bt_error", None)
    st.session_state["bt_question"] = None


def show_question(question: votes.Question, bank, problem: str | None) -> None:
    """The pictures of one question and its three answer buttons (none while votes cannot be stored)."""
    clean = bank.get(question.image_id)
    spec = NoiseSpec.from_json(question.noise_spec)
    noisy = common.regenerate_noisy(clean, spec, question.noise_seed)
    outputs = common.outputs_for(noisy[None], spec, [question.method_a, question.method_b])
    st.subheader(votes.QUESTIONS[question.question])
    if len(outputs) < 2:
        st.warning("One of the two methods could not run on this face; please skip to the next one.")
    else:
        faces = [outputs[question.method_a][0], outputs[question.method_b][0]]
        with_original = question.question == "closer"
        common.show_faces(([clean] if with_original else []) + faces, (["Original"] if with_original else []) + ["A", "B"])
    st.caption(f"{noise_label(spec.kind)} noise on a face from the {test_set_title(question.test_set)}.")
    labels = votes.ANSWER_LABELS[question.question]
    columns = st.columns(4)
    for column, choice, label in zip(columns, (*votes.ANSWERS, "skip"), (*labels, "Skip this one"), strict=True):
        column.button(label, key=f"bt_{choice}_{question.vote_id}", on_click=answer,
                      args=(question.vote_id, choice), disabled=problem is not None or (len(outputs) < 2 and choice != "skip"),
                      use_container_width=True)
    cast = st.session_state.get("bt_cast", 0)
    if cast:
        st.caption(f"Thank you: {plural(cast, 'vote')} from you counted in this session.")


def show_results(known, read_error: str | None) -> None:
    """Strength per method beside the metrics' ranking, how often the better score was picked, the verdict."""
    st.header("What the votes say so far")
    if read_error:
        st.warning(f"{read_error} The results cannot be shown until it is fixed.")
        return
    common.init_param("q", "bt_results_q", "real", valid=lambda v: v in votes.QUESTIONS)
    kind = st.radio("Question", list(votes.QUESTIONS), key="bt_results_q", format_func=votes.QUESTIONS.get,
                    horizontal=True)
    common.publish(q=kind)
    part = known[known["question"] == kind]
    sentence, status = votes.verdict(known, kind)
    if sentence:
        claim = "**The post's claim** (the autoencoder looked better than the filters): " if kind == "real" else ""
        st.success(claim + sentence)
        st.caption(status)
    else:
        st.info(status)
    fit = votes.bradley_terry(part)
    if fit is not None:
        show_strengths(fit, part, kind)
    if not known.empty:
        sessions = known["session_id"].nunique()
        st.caption(f"{plural(len(known), 'vote')} in all, from {plural(sessions, 'browser session')}.")
        common.csv_download(known, "blind-test-votes.csv", "bt_csv", "Download every vote (CSV)")


def show_strengths(fit: votes.Strengths, part, kind: str) -> None:
    """The Bradley-Terry table and the metrics' agreement with the votes, for one question."""
    table = votes.results_table(fit, part, per_image)
    shown = table.assign(method=table["method"].map(display_name)).rename(columns={
        "method": "Method", "strength": "Strength", "ci_low": "95 % from", "ci_high": "95 % to",
        "rank_votes": "Rank by votes", "votes": "Shown in votes", "picked": "Picked",
        **{f"rank_{m}": f"Rank by {METRIC_SHORT[m]}" for m in METRICS}})
    ties = int((part["answer"] == "tie").sum())
    st.write(f"**Strength** from {fit.n_votes} votes ({ties} “can't tell”, counted as half a win for each side): "
             f"the log-odds of being picked over {display_name(fit.reference)} (0); 1 means picked about 73 % of "
             "the time against it. Beside it, each score's ranking of the same methods on the faces shown.")
    columns = ["Method", "Strength", "95 % from", "95 % to", "Rank by votes",
               *(f"Rank by {METRIC_SHORT[m]}" for m in METRICS), "Shown in votes", "Picked"]
    st.dataframe(shown[columns], hide_index=True, column_config={
        c: st.column_config.NumberColumn(format="%.2f") for c in ("Strength", "95 % from", "95 % to")})
    common.chart(strength_chart(shown, display_name(fit.reference)), f"blind-test-strengths-{kind}.html",
                 "bt_strengths", title=f"Blind test: strength per method · {votes.QUESTIONS[kind]}")
    if fit.left_out:
        st.caption("Not yet compared, even indirectly, with the others: "
                   + ", ".join(display_name(m) for m in fit.left_out) + ".")
    agreement = votes.metric_agreement(part, per_image)
    lines = [f"{METRIC_SHORT[row.metric]}: {row.agreed} of {row.votes} ({row.share:.0%})"
             for row in agreement.itertuples() if row.votes]
    if lines:
        st.write("How often people picked the method with the better score on that face (votes with a clear "
                 "pick): " + "; ".join(lines) + ".")


def strength_chart(shown, reference: str):
    """Each method's strength as a dot with its 95 % interval, strongest on top; the tie line at 0."""
    import plotly.graph_objects as go

    rows = shown.iloc[::-1]
    fig = go.Figure(go.Scatter(
        x=rows["Strength"], y=rows["Method"], mode="markers", marker=dict(size=10),
        error_x=dict(type="data", symmetric=False, array=rows["95 % to"] - rows["Strength"],
                     arrayminus=rows["Strength"] - rows["95 % from"]),
        hovertemplate="%{y}: %{x:.2f}<extra></extra>"))
    fig.add_vline(x=0, line_dash="dot", line_color="grey")
    fig.update_layout(height=80 + 40 * len(rows), margin=dict(l=10, r=10, t=30, b=10),
                      xaxis_title=f"Strength: log-odds of being picked over {reference} (95 % interval)")
    return fig


test_set, bank = choose_test_set()
problem = store_problem()
if problem:
    st.warning(f"{problem} Voting is off until it is fixed; the rest of the app works as usual.")
known, read_error = all_votes()
question = current_question(test_set, bank, known)
if st.session_state.get("bt_error"):
    st.warning(f"{st.session_state['bt_error']} Your vote was not stored; please try again.")
if question is None:
    st.info("No faces of this test set can be shown with two methods to compare.")
else:
    show_question(question, bank, problem)
common.publish(set=test_set)
show_results(known, read_error)
