"""Noise strength: every method's mean score from mild to strong noise, and one face across the strengths."""

import numpy as np
import streamlit as st

from dashboard import common
from dashboard.tables import default_sweep_methods, preset_strength, strength_finding
from denoising.catalogue import (
    METRIC_SHORT,
    METRICS,
    NOISE_KINDS,
    SWEEP_STRENGTHS,
    noise_label,
    strength_text,
    test_set_title,
)

st.title("Noise strength")
st.write("The post's networks were each trained at one strength of noise (the U-Net marked \"any strength\" at "
         "every strength shown here), and the other pages score every method at one strength, the blog post's. Here "
         "every method is scored from mild noise to well beyond the post's: which methods still help when the noise "
         "is weaker or stronger than they expect?")
sweep = common.sweep_or_stop()
names = common.method_names()

from dashboard.charts import method_colors, strength_curves  # noqa: E402

test_sets = sorted(dict.fromkeys(sweep["test_set"].astype(str)), key=lambda name: (name != "celeba_test", name))
common.init_param("set", "ns_set", test_sets[0], valid=lambda v: v in test_sets)
c1, c2 = st.columns([2, 1])
test_set = c1.selectbox("Test faces", test_sets, key="ns_set", format_func=test_set_title)
common.init_param("metric", "ns_metric", "psnr", valid=lambda v: v in METRICS)
metric = c2.selectbox("Score", METRICS, key="ns_metric", format_func=METRIC_SHORT.get)

part = sweep[sweep["test_set"] == test_set]
methods = list(dict.fromkeys(part["method"].astype(str)))
defaults = default_sweep_methods(sweep, test_set, metric)
common.init_param("methods", "ns_methods", defaults, cast=lambda v: [m for m in v.split(",") if m in methods],
                  valid=lambda v: isinstance(v, list) and all(m in methods for m in v))
chosen = st.multiselect("Methods", methods, key="ns_methods", format_func=lambda m: names.get(m, m))
common.publish(set=test_set, metric=metric, methods=",".join(chosen))

st.subheader("Who wins where")
sentences = [strength_finding(sweep, test_set, kind, metric, names) for kind in NOISE_KINDS]
st.markdown("\n".join(f"- {sentence}" for sentence in sentences if sentence))
st.caption(f"Judged by the mean {METRIC_SHORT[metric]} of all {len(methods)} methods in the table, not only the "
           "ones chosen above.")

st.subheader("Mean score against strength")
st.caption("Lines: the mean over the test faces; bands: 95 % intervals. Mild noise is on the left, strong on the "
           "right (for Poisson noise that means fewer photons: the peak falls to the right). The dotted line is the "
           "post's strength; a star marks the strength each network was trained at (every strength, for a network "
           "trained over the whole range). A method scored on fewer faces "
           "than the others says so in its legend (n).")
colors = method_colors(list(dict.fromkeys(sweep["method"].astype(str))))
columns = st.columns(2)
for i, kind in enumerate(NOISE_KINDS):
    rows = part[part["noise"] == kind]
    with columns[i % 2]:
        if rows.empty:
            st.info(f"No {noise_label(kind)} rows for these test faces.")
            continue
        fig = strength_curves(rows, kind, metric, chosen, names, colors, common.training_ranges(kind))
        common.chart(fig, f"strength-{test_set}-{kind}-{metric}.html", f"ns_{kind}",
                     title=f"Mean {METRIC_SHORT[metric]} by strength · {noise_label(kind)} · {test_set_title(test_set)}")
common.csv_download(part, f"sweep-{test_set}.csv", "ns_csv")


SMALL = 4  # six faces in a row must fit the page: 28 px faces shown 4x, pixel for pixel


def face_picker() -> tuple[np.ndarray, str]:
    """The chosen test face (the built-in LFW faces unless a CelebA folder is set) and its name."""
    clean, face, face_set = common.pick_test_face("fset", "ns_fset", "ns_face")
    common.publish(fset=face_set, face=face)
    return clean, face


def method_picker(kind: str) -> tuple[str, bool]:
    """One method that can clean ``kind`` (a network by default, where one is trained) and whether it is slow."""
    available = common.registry(learned=True)
    options = [n for n, m in available.items() if n != "noisy" and m.available(kind)]
    learned = [n for n in options if common.is_learned(n)]
    common.init_param("method", "ns_method", (learned or options)[0], valid=lambda v: v in options)
    method = st.selectbox("Method", options, key="ns_method", format_func=lambda m: names.get(m, m))
    return method, available[method].slow


def across_strengths() -> None:
    """The same face and the same random draw at each of the kind's sweep strengths, and one method's output."""
    from denoising.metrics import score

    clean, face = face_picker()
    c1, c2 = st.columns(2)
    common.init_param("kind", "ns_kind", "gaussian", valid=lambda v: v in NOISE_KINDS)
    kind = c1.selectbox("Kind of noise", NOISE_KINDS, key="ns_kind", format_func=noise_label)
    with c2:
        method, slow = method_picker(kind)
    common.publish(kind=kind, method=method)
    strengths = SWEEP_STRENGTHS[kind]
    specs = [common.lab_noise(kind, s) for s in strengths]
    noisy = [np.asarray(spec.apply(clean[None], np.random.default_rng(0)), np.float32)[0] for spec in specs]
    wanted = (face, kind, method)
    done = st.session_state.setdefault("ns_slow_done", set())  # slow methods run only once asked, then stay
    if slow and wanted not in done and st.button(f"Run {names.get(method, method)} at the {len(strengths)} "
                                                 "strengths (slow)", key="ns_slow"):
        done.add(wanted)
    outputs = [None] * len(specs)
    if not slow or wanted in done:
        with st.spinner(f"Running {names.get(method, method)}…"):
            outputs = [common.outputs_for(n[None], spec, [method]).get(method)
                       for n, spec in zip(noisy, specs, strict=True)]
    preset = preset_strength(kind)

    def caption(value: float, image: np.ndarray) -> str:
        mark = " (the post's)" if np.isclose(value, preset) else ""
        return f"{strength_text(kind, value)}{mark} · {METRIC_SHORT[metric]} " \
               f"{float(score(clean[None], image[None])[metric][0]):.3g}"

    common.show_faces([clean], ["Original"], SMALL)
    st.markdown("**With noise**, mild to strong")
    common.show_faces(noisy, [caption(v, n) for v, n in zip(strengths, noisy, strict=True)], SMALL)
    shown = [(v, out[0]) for v, out in zip(strengths, outputs, strict=True) if out is not None]
    if shown:
        st.markdown(f"**Cleaned by {names.get(method, method)}**")
        common.show_faces([o for _, o in shown], [caption(v, o) for v, o in shown], SMALL)
    st.caption(f"{face}: {noise_label(kind)} at each strength of the sweep, the same random draw (seed 0) every time; "
               f"scores against the original.")


st.subheader("One face across the strengths")
across_strengths()
