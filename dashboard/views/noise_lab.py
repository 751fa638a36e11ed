"""Noise lab: add noise to a face live and watch every method clean it up at once."""

import hashlib
import time

import numpy as np
import streamlit as st

from dashboard import common
from dashboard.tables import training_notice
from denoising.catalogue import METRIC_SHORT, METRICS, NOISE_KINDS, STRENGTHS, format_score, noise_label
from denoising.faces import PHOTO_MAX_COSTLY_PIXELS, PHOTO_MAX_PIXELS, PHOTO_MAX_SIDE, PHOTO_MIN_SIDE, crop_to_face

st.title("Noise lab")
st.write("Pick a face (or upload your own photo), choose a kind of noise and how strong it is: every method "
         "cleans it at once and is scored against the original.")

#: Why a grey photo gets coloured noise: the test faces' noise is drawn per colour value, grey LFW faces included.
GREY_NOTE = ("This photo is grey. The noise is still drawn for each colour value separately, as it was for the grey "
             "LFW test faces and for the training faces, so grain and specks look coloured; that is the noise "
             "every method here was scored on.")


def face_square(pixels: np.ndarray) -> tuple[np.ndarray, str]:
    """The square around the photo's face (the centred square without one) and a line saying which it is."""
    digest = hashlib.sha256(pixels.tobytes()).hexdigest()
    cached = st.session_state.get("lab_crop_cache")
    if not cached or cached[0] != digest:  # the detector takes ~0.1 s: once per photo, not on every slider move
        cached = (digest, crop_to_face(pixels))
        st.session_state["lab_crop_cache"] = cached
    found = cached[1]
    side = found.square[2]
    if found.face is None:
        return found.pixels, (f"No face was found, so the centred {side}×{side} square is used; untick the box to "
                              "use the whole photo.")
    return found.pixels, (f"Cut to the {side}×{side} square around the face found, framed like the test faces "
                          "(eyes on the middle line).")


sources = {"test": "A test face", "upload": "My own photo"}
common.init_param("src", "lab_src", "test", valid=lambda v: v in sources)
source = st.radio("Face", list(sources), key="lab_src", format_func=sources.get, horizontal=True)
clean = None
face_label = ""
scale = common.FACE_SCALE
if source == "test":
    clean, face, test_set = common.pick_test_face("set", "lab_set", "lab_face")
    face_label = face
    common.publish(src=source, set=test_set, face=face)
else:
    common.publish(src=source)
    upload = st.file_uploader(
        "Your photo (any common image file). It is cut to a square around the face, framed like the test faces, "
        f"and cleaned at that size; a photo larger than {PHOTO_MAX_SIDE} pixels on its longer side is first shrunk "
        f"to {PHOTO_MAX_SIDE}.", key="lab_upload",
        help=f"PNG, JPEG, WebP, GIF, BMP or TIFF, at least {PHOTO_MIN_SIDE} pixels on each side and at most "
             f"{PHOTO_MAX_PIXELS // 1_000_000} megapixels ({PHOTO_MAX_COSTLY_PIXELS // 1_000_000} for a picture with "
             "transparency or more than 8 bits per colour, which take more memory to read). Grey photos get "
             "three equal channels, transparent areas become white, and a phone photo is turned upright.")
    crop = st.checkbox("Cut a square around the face (as the test faces are framed)", value=True, key="lab_crop")
    if upload is not None:
        photo, message = common.upload_to_face(upload.getvalue())
        if photo is None:
            st.error(message)
        else:
            clean, face_label = photo.pixels, f"{upload.name} ({photo.size[0]}×{photo.size[1]} pixels)"
            notes = [common.photo_note(photo)]
            if crop:
                clean, note = face_square(photo.pixels)
                face_label, notes = f"{upload.name} (a {clean.shape[1]}×{clean.shape[0]} square)", notes + [note]
            if common.is_grey(clean):
                notes.append(GREY_NOTE)
            scale = common.photo_scale(clean)
            st.caption(" ".join(notes))

c1, c2, c3 = st.columns(3)
common.init_param("kind", "lab_kind", "gaussian", valid=lambda v: v in NOISE_KINDS)
kind = c1.selectbox("Kind of noise", NOISE_KINDS, key="lab_kind", format_func=noise_label)
# every position is exact (the post's Gaussian σ = √0.1 included), so the default is the preset itself
choices, default = common.strength_choices(kind)
skey = f"lab_strength_{kind}"
# the URL's strength belongs to the URL's kind: another kind's value (Gaussian σ 0.1 read as speckle σ 0.1) would
# pass as a valid position, so a kind reached by switching opens at its own preset
url_kind = st.query_params.get("kind", "gaussian")
common.init_param("strength", skey, default, cast=float,
                  valid=lambda v: v in choices and (url_kind == kind or v == default))
strength = c2.select_slider(STRENGTHS[kind].label, choices, key=skey, format_func=common.format_strength,
                            help=STRENGTHS[kind].help)
common.init_param("seed", "lab_seed", 0, cast=int, valid=lambda v: 0 <= v <= 2**31)
seed = c3.number_input("Random seed (same seed, same noise)", 0, 2**31, key="lab_seed", step=1)
common.publish(kind=kind, strength=int(strength) if strength.is_integer() else strength, seed=seed)
if clean is None:  # the noise controls stay on the page meanwhile: a widget left out of a run loses its value
    st.stop()

spec = common.lab_noise(kind, strength)
noisy = np.asarray(spec.apply(clean[None], np.random.default_rng(int(seed))), np.float32)

methods = common.registry(learned=True)
names = {n: m.display_name for n, m in methods.items()}
# the networks learnt one strength of each kind: say so when the slider leaves it
trained = {n: span for n, span in common.training_ranges(kind).items() if n in methods and methods[n].available(kind)}
notice = training_notice(trained, kind, strength, names)
if notice:
    st.info(notice, icon=":material/warning:")
height, width = clean.shape[:2]
# a network built for one input size (the post's autoencoder) sits out other sizes, with a note saying so
fixed = {n: s for n, m in methods.items() if m.available(kind)
         and (s := common.fixed_input_size(m, kind)) is not None and s != (height, width)}
fast = [n for n, m in methods.items() if not m.slow and n != "noisy" and m.available(kind) and n not in fixed]
slow = [n for n, m in methods.items() if m.slow and m.available(kind) and n not in fixed]
# computed once for every visitor who sees the same face, noise and seed (common.lab_outputs)
outputs, elapsed, failed, reused = common.lab_outputs(noisy, spec, fast)
common.warn_left_out(failed)
n_fast = len(outputs)


def run_slow(wanted: list[str]) -> tuple[dict[str, np.ndarray], float]:
    """The slow methods one after another, with a progress bar naming each; their outputs and total seconds."""
    bar, out, begin = st.progress(0.0), {}, time.perf_counter()
    for i, name in enumerate(wanted):
        took = f" in {time.perf_counter() - begin:.1f} s" if i else ""
        bar.progress(i / len(wanted), text=f"{i} of {len(wanted)} slow methods done{took}.")
        with st.spinner(f"Running {names[name]} on the {width}×{height} picture…"):
            out.update(common.run_live(methods, [name], noisy, spec))
    bar.empty()
    return out, time.perf_counter() - begin


state_key = hashlib.sha256(noisy.tobytes() + spec.to_json().encode()).hexdigest()
slow_seconds = None
if slow:
    # BM3D takes about a second on a 28×28 face and 5-10 s on a 256×192 photo: only on request
    label = "Also run the slow methods (" + ", ".join(names[n] for n in slow) + ")"
    if height * width > 64 * 64:
        label += f"; each takes a few seconds at {width}×{height} pixels"
    if st.button(label, key="lab_slow"):
        out, took = run_slow(slow)
        st.session_state["lab_slow_out"] = (state_key, out, took)
    cached = st.session_state.get("lab_slow_out")
    if cached and cached[0] == state_key:
        outputs.update(cached[1])
        slow_seconds = cached[2] if len(cached) > 2 else None  # a session from before the timing was kept

pictures = {"noisy": noisy[0], **{n: out[0] for n, out in outputs.items()}}
scores = common.lab_scores(clean, pictures)
captions = ["Original"] + [
    f"{'With noise' if n == 'noisy' else names.get(n, n)} · MAE {format_score('mae', scores[n]['mae'][0])}"
    for n in pictures
]
common.show_faces_inline([clean] + list(pictures.values()), captions, scale)
slow_text = f" The slow methods took {slow_seconds:.1f} s." if slow_seconds is not None else ""
st.caption(f"{face_label}: {spec.label}, seed {seed}. The {n_fast} fast methods took {elapsed * 1000:.0f} ms"
           + (" (computed earlier, reused)." if reused else ".") + slow_text)
if fixed:
    st.caption(f"Not run on this {width}×{height} picture: " + "; ".join(
        f"{names[n]} works only on {w}×{h} faces" for n, (h, w) in fixed.items()) + ".")
if not common.has_checkpoints():
    st.caption(common.HOW_TO_TRAIN)

import pandas as pd

SHORT_METRIC = {short: metric for metric, short in METRIC_SHORT.items()}

table = pd.DataFrame([
    {"Method": "With noise (no cleaning)" if n == "noisy" else names.get(n, n),
     **{METRIC_SHORT[m]: float(scores[n][m][0]) for m in METRICS}}
    for n in pictures
])
st.session_state["lab_last_scores"] = table  # read by the tests and the speed script
# a static table: it appears with the pictures, without the interactive grid's start-up cost
# plain strings (no Styler rendering on every move) at the catalogue's precision per score
st.table(table.set_index("Method").apply(lambda column: column.map(lambda v: format_score(SHORT_METRIC[column.name], v))))
common.csv_download(table, "noise-lab-scores.csv", "lab_csv")
