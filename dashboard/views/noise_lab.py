"""Noise lab: add noise to a face live and watch every method clean it up at once."""

import hashlib
import time

import numpy as np
import streamlit as st

from dashboard import common
from dashboard.tables import METRIC_SHORT

st.title("Noise lab")
st.write("Pick a face (or upload your own photo), choose a kind of noise and how strong it is: every method "
         "cleans it at once and is scored against the original.")

# Strength control per noise kind: (label, parameter, values or (min, max, step), default, help)
STRENGTH = {
    "gaussian": ("Grain strength (σ)", "sigma", (0.0, 0.6, 0.01), 0.32,
                 "Standard deviation of the random grain added to every value; the post used 0.316."),
    "poisson": ("Light level (peak photon count)", "peak", [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024], 256,
                "Fewer photons = darker scene = stronger noise; the post's setting is 256."),
    "salt_pepper": ("Share of specks", "amount", (0.0, 0.2, 0.002), 0.004,
                    "Share of colour values turned fully white or black; the post used 0.004."),
    "speckle": ("Speckle strength (σ)", "sigma", (0.0, 1.5, 0.05), 1.0,
                "Noise proportional to brightness: value × (1 + σ·random); the post used 1.0."),
}
KINDS = list(STRENGTH)
size = common.face_size()

sources = {"test": "A test face", "upload": "My own photo"}
common.init_param("src", "lab_src", "test", valid=lambda v: v in sources)
source = st.radio("Face", list(sources), key="lab_src", format_func=sources.get, horizontal=True)
clean = None
face_label = ""
if source == "test":
    sets = ["lfw"] + (["celeba_test"] if common.celeba_dir() else [])
    common.init_param("set", "lab_set", "lfw", valid=lambda v: v in sets)
    c1, c2 = st.columns(2)
    test_set = c1.selectbox("Test faces", sets, key="lab_set", format_func=common.test_set_label)
    bank, how = common.face_bank(test_set)
    if bank is None:
        st.info(how)
        bank, test_set = common.lfw_bank(size), "lfw"
    common.init_param("face", "lab_face", bank.ids[0], valid=lambda v: v in bank)
    face = c2.selectbox("Which face", bank.ids, key="lab_face")
    clean = bank.get(face)
    face_label = face
    common.publish(src=source, set=test_set, face=face)
else:
    common.publish(src=source)
    upload = st.file_uploader("Your photo (any common image file; it is cropped to a square and shrunk to "
                              f"{size}×{size} pixels like the training faces)", key="lab_upload")
    if upload is not None:
        clean, message = common.upload_to_face(upload.getvalue(), size)
        if message:
            st.error(message)
        face_label = upload.name
    if clean is None:
        st.stop()

c1, c2, c3 = st.columns(3)
common.init_param("kind", "lab_kind", "gaussian", valid=lambda v: v in KINDS)
kind = c1.selectbox("Kind of noise", KINDS, key="lab_kind", format_func=common.noise_label)
label, param, spec_range, default, help_text = STRENGTH[kind]
skey = f"lab_strength_{kind}"
if isinstance(spec_range, list):
    common.init_param("strength", skey, default, cast=lambda v: int(float(v)), valid=lambda v: v in spec_range)
    strength = c2.select_slider(label, spec_range, key=skey, help=help_text)
else:
    lo, hi, step = spec_range
    common.init_param("strength", skey, float(default), cast=float, valid=lambda v: lo <= v <= hi)
    strength = c2.slider(label, lo, hi, step=step, key=skey, help=help_text)
common.init_param("seed", "lab_seed", 0, cast=int, valid=lambda v: 0 <= v <= 2**31)
seed = c3.number_input("Random seed (same seed, same noise)", 0, 2**31, key="lab_seed", step=1)
common.publish(kind=kind, strength=strength, seed=seed)

from denoising.metrics import score  # noqa: E402
from denoising.noise import NoiseSpec  # noqa: E402

params = {param: strength}
if kind == "salt_pepper":
    params.update(salt_fraction=0.5, per="value")
spec = NoiseSpec(kind, params)
noisy = np.asarray(spec.apply(clean[None], np.random.default_rng(int(seed))), np.float32)

methods = common.registry(learned=True)
names = {n: m.display_name for n, m in methods.items()}
fast = [n for n, m in methods.items() if not m.slow and n != "noisy" and m.available(kind)]
slow = [n for n, m in methods.items() if m.slow and m.available(kind)]
start = time.perf_counter()
outputs = common.run_live(methods, fast, noisy, kind)
elapsed, n_fast = time.perf_counter() - start, len(outputs)

state_key = hashlib.sha256(noisy.tobytes() + kind.encode()).hexdigest()
if slow:
    if st.button("Also run the slow methods (" + ", ".join(names[n] for n in slow) + ")", key="lab_slow"):
        with st.spinner("Running the slow methods…"):
            st.session_state["lab_slow_out"] = (state_key, common.run_live(methods, slow, noisy, kind))
    cached = st.session_state.get("lab_slow_out")
    if cached and cached[0] == state_key:
        outputs.update(cached[1])

pictures = {"noisy": noisy[0], **{n: out[0] for n, out in outputs.items()}}
scores = {n: score(clean[None], img[None]) for n, img in pictures.items()}
captions = ["Original"] + [
    f"{'With noise' if n == 'noisy' else names.get(n, n)} · MAE {scores[n]['mae'][0]:.3f}" for n in pictures
]
common.show_faces_inline([clean] + list(pictures.values()), captions)
st.caption(f"{face_label}: {spec.label}, seed {seed}. The {n_fast} fast methods took {elapsed * 1000:.0f} ms.")
if not common.has_checkpoints():
    st.caption(common.HOW_TO_TRAIN)

import pandas as pd  # noqa: E402

table = pd.DataFrame([
    {"Method": "With noise (no cleaning)" if n == "noisy" else names.get(n, n),
     **{METRIC_SHORT[m]: float(scores[n][m][0]) for m in ("mae", "psnr", "ssim")}}
    for n in pictures
])
st.session_state["lab_last_scores"] = table  # read by the tests and the speed script
# a static table: it appears with the pictures, without the interactive grid's start-up cost
st.table(table.set_index("Method").map("{:.4f}".format))  # plain strings: no Styler rendering on every move
common.csv_download(table, "noise-lab-scores.csv", "lab_csv")
