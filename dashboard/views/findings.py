"""Findings: the headline numbers, the post's chart done right, sentences from the numbers, example faces."""

import pandas as pd
import streamlit as st

from dashboard import common
from dashboard.tables import best_method, findings, headline_caption, headline_counts, headline_table, marked_table
from denoising.catalogue import METRIC_SHORT, METRICS, noise_label, test_set_title

st.title("What removes noise from small face photos best?")
st.write("Each method got the same noisy test faces and was scored against the original photos. "
         "Average error (MAE) is the main score: the lower, the closer to the original.")

# the page's parts in their order, filled as their data arrive: an empty table first, so that the
# browser fetches its table code while the server reads the result tables (cold start: about 0.8 s)
controls, heading, headline = st.container(), st.empty(), st.empty()
headline.table(pd.DataFrame(index=pd.Index(["Reading the results…"], name="Method")))
if common.tables().error or common.tables().empty:
    headline.empty()  # no table to come: the messages below say why
data = common.tables_or_stop()
names = common.method_names()
if data.empty:
    st.info("No results yet. Make them with `python scripts/evaluate.py --data .cache/faces/<your prepared faces> --out checkpoints/tables`; meanwhile the Noise lab works on the "
            "built-in faces.")
    st.stop()

test_sets = data.test_sets()
common.init_param("set", "find_set", test_sets[0], valid=lambda v: v in test_sets)
common.init_param("metric", "find_metric", "mae", valid=lambda v: v in METRICS)
left, right = controls.columns(2)
test_set = left.selectbox("Test faces", test_sets, key="find_set", format_func=test_set_title)
metric = right.radio("Score", METRICS, key="find_metric", format_func=METRIC_SHORT.get, horizontal=True)
common.publish(set=test_set, metric=metric)

table = headline_table(data.summary, test_set, metric)
best = {noise: best_method(row, metric) for noise, row in table.iterrows()}
heading.subheader(f"Mean {METRIC_SHORT[metric]} per method and kind of noise")
counts = headline_counts(data.summary, test_set)
headline.table(marked_table(table, best, names, noise_label, metric, counts))  # static: on screen at once
st.caption(headline_caption(table, metric, names, noise_label, counts))
common.csv_download(data.summary[data.summary["test_set"] == test_set], f"summary-{test_set}.csv", "find_csv",
                    "Download all summary numbers (CSV)")

st.subheader("In plain words")
sentences = findings(data.summary, test_set, names, metric)  # they follow the chosen score, as the table does
for sentence in sentences:
    st.markdown(f"- {sentence}")

from dashboard.charts import chart_title, grouped_bars  # noqa: E402  (plotly loads after the table is on screen)

st.subheader("Mean score per kind of noise (bars show 95% confidence intervals)")
fig = grouped_bars(data.summary, test_set, metric, names)
common.chart(fig, f"chart-{metric}-{test_set}.html", "find_bars", title=chart_title(metric, test_set))

st.subheader("Example faces")
bank, how = common.face_bank(test_set)
face_set = test_set
if bank is None and "lfw" in test_sets:
    # the numbers above still hold; the built-in faces show what the methods do
    st.caption(f"{how} Showing the built-in LFW faces instead.")
    bank, how = common.face_bank("lfw")
    face_set = "lfw"
noises = list(table.index)
common.init_param("noise", "find_noise", noises[0], valid=lambda v: v in noises)
noise = st.selectbox("Kind of noise for the examples", noises, key="find_noise", format_func=noise_label)
common.publish(noise=noise)
grid_rows = []
if bank is None:
    st.info(how)
else:
    ids = [i for i in common.test_set_ids(face_set) if i in bank][:3]
    in_table = common.methods_in_table(face_set, noise)
    grid = st.empty()
    # Classical filters first (fast, no torch); the neural networks' outputs fill in at the very end
    # so the numbers above are on screen before the models load.
    learned = [m for m in in_table if common.is_learned(m)] if common.has_checkpoints() else []
    grid_rows = common.picture_rows(bank, face_set, ids, noise, [m for m in in_table if m not in learned])


    def draw(rows):
        with grid.container():
            for _, cells in rows:
                common.show_faces([c[1] for c in cells], [c[0] for c in cells])
            if not common.has_checkpoints():
                st.caption(common.HOW_TO_TRAIN)


    draw(grid_rows)


def _report() -> str:
    """The one-file report: the same function, faces and methods as ``scripts/make_report.py``."""
    from dashboard.report import example_faces, faces_note, findings_report

    examples = example_faces(data.per_image, data.summary, bank, face_set, test_set, common.outputs_for, names)
    return findings_report(data, test_set, examples, faces_note(test_set, face_set))


st.download_button("Download the findings as one HTML file (opens offline)", data=_report,
                   file_name=f"denoising-findings-{test_set}.html", mime="text/html", key="find_report",
                   on_click="ignore")
st.caption("A short article for someone who never saw this dashboard: what was compared, the findings in words, "
           "the three tables, the charts and example faces for every kind of noise, in one file of about half a "
           "megabyte that opens offline and prints on A4. `python scripts/make_report.py` writes the same file.")

if bank is not None and learned:
    grid_rows = common.picture_rows(bank, face_set, ids, noise, in_table)
    draw(grid_rows)
