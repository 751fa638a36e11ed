"""Error distributions: how each method's scores spread over the faces, and a paired comparison."""

import streamlit as st

from dashboard import common
from dashboard.tables import paired
from denoising.catalogue import HIGHER_IS_BETTER, METRIC_SHORT, METRICS, noise_label, test_set_title

st.title("How the scores spread over the faces")
st.write("An average can hide a lot: here is every face's score, per method.")
data = common.tables_or_stop()
per_image = common.per_image_or_stop()
names = common.method_names()

from dashboard.charts import distribution, paired_histogram  # noqa: E402

test_sets = data.test_sets()
common.init_param("set", "dist_set", test_sets[0], valid=lambda v: v in test_sets)
c1, c2, c3, c4 = st.columns(4)
test_set = c1.selectbox("Test faces", test_sets, key="dist_set", format_func=test_set_title)
noises = list(dict.fromkeys(per_image.loc[per_image["test_set"] == test_set, "noise"]))
common.init_param("noise", "dist_noise", noises[0], valid=lambda v: v in noises)
noise = c2.selectbox("Kind of noise", noises, key="dist_noise", format_func=noise_label)
common.init_param("metric", "dist_metric", "mae", valid=lambda v: v in METRICS)
metric = c3.selectbox("Score", METRICS, key="dist_metric", format_func=METRIC_SHORT.get)
kinds = {"box": "Box plot", "violin": "Violin plot", "histogram": "Histogram", "ecdf": "Cumulative share (ECDF)"}
common.init_param("chart", "dist_chart", "box", valid=lambda v: v in kinds)
kind = c4.selectbox("Chart", list(kinds), key="dist_chart", format_func=kinds.get)

part = per_image[(per_image["test_set"] == test_set) & (per_image["noise"] == noise)]
methods = list(dict.fromkeys(part["method"]))
common.init_param("methods", "dist_methods", methods, cast=lambda v: [m for m in v.split(",") if m in methods],
                  valid=lambda v: isinstance(v, list) and all(m in methods for m in v))
chosen = st.multiselect("Methods", methods, key="dist_methods", format_func=lambda m: names.get(m, m))
faces = part.groupby("method", sort=False)["image_id"].nunique()
fig = distribution(part[part["method"].isin(chosen)], metric, names, kind, most=int(faces.max()) if len(faces) else 0)
few = {m: int(n) for m, n in faces.items() if m in chosen and n < faces.max()}
if few:  # the legend says "n = 100" too; here is why
    st.caption("Scored on fewer faces than the others (" + str(int(faces.max())) + "): " + "; ".join(
        f"{names.get(m, m)} on {n}" for m, n in few.items()) + ". Its spread is over those faces only.")
common.chart(fig, f"distribution-{test_set}-{noise}-{metric}.html", "dist_fig",
             title=f"{METRIC_SHORT[metric]} per face · {noise_label(noise)} · {test_set_title(test_set)}")
common.csv_download(part, f"per-image-{test_set}-{noise}.csv", "dist_csv")

st.subheader("Two methods on the same faces")
compare = [m for m in methods if m != "noisy"] or methods
common.init_param("a", "dist_a", "pix2pix" if "pix2pix" in compare else compare[0], valid=lambda v: v in compare)
common.init_param("b", "dist_b", "median" if "median" in compare else compare[-1], valid=lambda v: v in compare)
c1, c2 = st.columns(2)
a = c1.selectbox("Method A", compare, key="dist_a", format_func=lambda m: names.get(m, m))
b = c2.selectbox("Method B", compare, key="dist_b", format_func=lambda m: names.get(m, m))
common.publish(set=test_set, noise=noise, metric=metric, chart=kind, methods=",".join(chosen), a=a, b=b)

result = paired(per_image, test_set, noise, a, b, metric)
if result is None:
    st.info("These two methods have no faces in common.")
else:
    la, lb = names.get(a, a), names.get(b, b)
    word = "higher" if HIGHER_IS_BETTER[metric] else "lower"
    m1, m2 = st.columns(2)
    m1.metric(f"Faces where {la} is better", f"{result['win_rate']:.0%}", help=f"Out of {result['n']} faces.")
    m2.metric(f"Mean difference in {METRIC_SHORT[metric]} (A − B)", f"{result['mean_diff']:+.4f}",
              help="95 % percentile-bootstrap interval over the faces, 2,000 resamples.")
    m2.caption(f"95 % interval: {result['ci_low']:+.4f} to {result['ci_high']:+.4f}")
    sure = result["ci_low"] > 0 or result["ci_high"] < 0
    st.write(f"{METRIC_SHORT[metric]} is better when {word}. "
             + ("The interval does not include zero, so the difference is unlikely to be luck of the faces drawn."
                if sure else "The interval includes zero: on these faces the two are not clearly different."))
    common.chart(paired_histogram(result["diff"], metric, la, lb), f"paired-{a}-{b}-{noise}.html", "dist_pair",
                 title=f"{METRIC_SHORT[metric]}: {la} against {lb} · {noise_label(noise)} · {test_set_title(test_set)}")
