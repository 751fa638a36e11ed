"""Browse test faces: a sortable table of per-face scores, a gallery, and one face in detail."""

import streamlit as st

from dashboard import common
from dashboard.images import HEATMAP_MAX, error_map, heatmap, heatmap_legend, png_bytes
from denoising.catalogue import (
    HIGHER_IS_BETTER,
    METRIC_SHORT,
    METRICS,
    SCORE_COLUMN_FORMAT,
    format_score,
    noise_label,
    test_set_title,
)

st.title("Browse the test faces")
data = common.tables_or_stop()
per_image = common.per_image_or_stop()
names = common.method_names()

test_sets = data.test_sets()
# without a CelebA folder only the built-in faces can be pictured, so they open first
viewable = test_sets[0] if common.celeba_dir() or "lfw" not in test_sets else "lfw"
common.init_param("set", "br_set", viewable, valid=lambda v: v in test_sets)
c1, c2, c3 = st.columns(3)
test_set = c1.selectbox("Test faces", test_sets, key="br_set", format_func=test_set_title)
noises = list(dict.fromkeys(per_image.loc[per_image["test_set"] == test_set, "noise"]))
common.init_param("noise", "br_noise", noises[0], valid=lambda v: v in noises)
noise = c2.selectbox("Kind of noise", noises, key="br_noise", format_func=noise_label)
common.init_param("metric", "br_metric", "mae", valid=lambda v: v in METRICS)
metric = c3.selectbox("Score", METRICS, key="br_metric", format_func=METRIC_SHORT.get)

methods = common.methods_in_table(test_set, noise)
compare = [m for m in methods if m != "noisy"] or methods
default_a = "pix2pix" if "pix2pix" in compare else compare[0]
default_b = "median" if "median" in compare else compare[-1]
common.init_param("a", "br_a", default_a, valid=lambda v: v in compare)
common.init_param("b", "br_b", default_b, valid=lambda v: v in compare)
c1, c2, c3 = st.columns(3)
a = c1.selectbox("Method A", compare, key="br_a", format_func=lambda m: names.get(m, m))
b = c2.selectbox("Method B", compare, key="br_b", format_func=lambda m: names.get(m, m))
orders = {
    "a_beats_b": "Where A beats B most",
    "b_beats_a": "Where B beats A most",
    "a_worst": "Where A does worst",
    "a_best": "Where A does best",
}
common.init_param("order", "br_order", "a_beats_b", valid=lambda v: v in orders)
order = c3.selectbox("Put first", list(orders), key="br_order", format_func=orders.get)

part = per_image[(per_image["test_set"] == test_set) & (per_image["noise"] == noise)]
wide = part.pivot_table(index="image_id", columns="method", values=metric, sort=False)
wide = wide[[m for m in methods if m in wide]]
sign = -1.0 if HIGHER_IS_BETTER[metric] else 1.0
gain = (wide[b] - wide[a]) * sign  # positive: A is better than B on this face
key_col = {"a_beats_b": -gain, "b_beats_a": gain, "a_worst": -sign * wide[a], "a_best": sign * wide[a]}[order]
wide = wide.assign(_key=key_col.to_numpy()).sort_values("_key").drop(columns="_key")
wide.insert(0, "A better than B by", gain.loc[wide.index])
shown = wide.rename(columns=names)
shown.index.name = "Face"

bank, how = common.face_bank(test_set)
left, right = st.columns([3, 2])
with left:
    # more method columns than fit beside the gallery: say that the rest are to the right
    sideways = (f" {len(shown.columns) - 1} methods: scroll the table sideways for the columns on the right →"
                if len(shown.columns) > 4 else "")
    st.caption(f"{METRIC_SHORT[metric]} of every method on every face; click a column name to sort, a row to open "
               f"the face.{sideways}")
    event = st.dataframe(shown, key="br_table", on_select="rerun", selection_mode="single-row",
                         height=min(380, 35 * (len(shown) + 1) + 3),
                         column_config={c: st.column_config.NumberColumn(format=SCORE_COLUMN_FORMAT[metric])
                                        for c in shown.columns})
    faces = part.groupby("method", sort=False)["image_id"].nunique()
    few = {m: int(n) for m, n in faces.items() if n < faces.max()}
    if few:  # their columns are empty on the other faces
        st.caption(f"Scored on fewer than the {int(faces.max())} faces (empty cells elsewhere): "
                   + "; ".join(f"{names.get(m, m)} on {n}" for m, n in few.items()) + ".")
    common.csv_download(part, f"per-image-{test_set}-{noise}.csv", "br_csv", "Download these per-face scores (CSV)")
with right:
    first = [i for i in wide.index[:12]]
    if bank is None:
        st.info(how)
    else:
        shown_ids = [i for i in first if i in bank]
        st.caption(f"The first {len(shown_ids)} faces in this order (original photos)")
        common.show_faces([bank.get(i) for i in shown_ids], shown_ids, scale=3)

ids = list(wide.index)
selected_rows = event.selection.rows if event is not None else []
if selected_rows and selected_rows != st.session_state.get("br_last_rows"):
    st.session_state["br_face"] = ids[selected_rows[0]]  # a newly clicked row opens that face
st.session_state["br_last_rows"] = selected_rows
common.init_param("face", "br_face", ids[0], valid=lambda v: v in ids)
face = st.selectbox("Face to open", ids, key="br_face")
common.publish(set=test_set, noise=noise, metric=metric, a=a, b=b, order=order, face=face)

st.subheader(f"Face {face}")
if bank is not None:  # without it, the note beside the table has said why (once on the page)
    # only the methods with a score for this face: a picture without its score would look scored
    scored = set(part.loc[part["image_id"] == face, "method"])
    rows = common.picture_rows(bank, test_set, [face], noise, [m for m in methods if m in scored])
    unscored = [names.get(m, m) for m in methods if m not in scored]
    if unscored:
        st.caption(f"Not shown: {', '.join(unscored)}, not scored on this face (run on a subset of the faces only).")
    if rows:
        cells = rows[0][1]
        common.show_faces([c[1] for c in cells], [c[0] for c in cells])
        clean = cells[0][1]
        st.caption(f"Where each picture differs from the original (brighter = larger error; full brightness = "
                   f"{HEATMAP_MAX} or more on the 0–1 scale):")
        st.image(png_bytes(heatmap_legend(), 1), output_format="PNG")
        common.show_faces([heatmap(error_map(clean, c[1])) for c in cells[1:]], [c[0] for c in cells[1:]])
    else:
        st.warning("This face is not among the prepared faces.")
scores = part[part["image_id"] == face][["method", *METRICS]].copy()
scores["method"] = scores["method"].map(lambda m: names.get(m, m))
for m in METRICS:  # the catalogue's precision, every row on screen (a static table, no inner scrolling)
    scores[m] = scores[m].map(lambda v, m=m: format_score(m, v))
st.table(scores.rename(columns={"method": "Method", **{m: METRIC_SHORT[m] for m in METRICS}}).set_index("Method"))
