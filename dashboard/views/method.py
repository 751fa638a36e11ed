"""Method, for non-programmers: the noise kinds, the scores, the methods, and how to reproduce every number."""

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import common
from denoising.catalogue import DEFAULT_PRESET, METHODS, NOISE_DESCRIPTIONS, noise_label
from denoising.noise import PRESETS

st.title("How this comparison works")
size = common.face_size()
face = common.lfw_bank(size).images[0]

st.header("The four kinds of noise")
st.write("Noise is random damage to a photo. We add it on purpose, at the strengths the original blog post used, "
         "so we know exactly what the clean photo looked like.")
presets = PRESETS[DEFAULT_PRESET]
examples = [face] + [np.asarray(presets[k].apply(face[None], np.random.default_rng(0)), np.float32)[0]
                     for k in presets]
common.show_faces(examples, ["Original"] + [presets[k].label for k in presets])
for kind in presets:
    st.markdown(f"- **{noise_label(kind)}**: {NOISE_DESCRIPTIONS[kind]}")

st.header("The three scores")
from denoising.metrics import score

blur = (face + np.roll(face, 1, 0) + np.roll(face, -1, 0) + np.roll(face, 1, 1) + np.roll(face, -1, 1)) / 5
brighter = np.clip(face + 0.1, 0, 1)
noisy = np.asarray(presets["gaussian"].apply(face[None], np.random.default_rng(1)), np.float32)[0]
samples = {"Same photo": face, "Slightly blurred": blur.astype(np.float32), "Brighter": brighter, "Grainy": noisy}
values = {k: score(face[None], v[None]) for k, v in samples.items()}
common.show_faces(list(samples.values()), [
    f"{k}: MAE {v['mae'][0]:.3f}, PSNR {v['psnr'][0]:.1f}, SSIM {v['ssim'][0]:.2f}" for k, v in values.items()
])
st.markdown(
    "- **MAE (mean absolute error)**: on a 0-to-1 brightness scale, how far each pixel is from the original, "
    "on average. 0 means identical; lower is better. This is the score the blog post used.\n"
    "- **PSNR (peak signal-to-noise ratio)**: the same idea on a logarithmic scale, in decibels, punishing "
    "large errors more. Higher is better; an identical photo has an infinite PSNR.\n"
    "- **SSIM (structural similarity)**: whether edges, contrast and textures look the same, from 0 (unrelated) "
    "to 1 (identical). It notices blur, which MAE can miss. Higher is better.\n\n"
    "A brighter photo has a large MAE but keeps its structure (high SSIM); a blurred one is close in MAE but loses "
    "structure."
)

st.header("The methods")
st.write("Most methods are blind: they see only the noisy photo, as with a real photo whose noise nobody knows. "
         "A few classical references, and the U-Net trained at every strength, are told the kind and strength of "
         "the noise we added, and each works on that one kind only: they show what an expert's standard method (or a "
         "network given the same information) reaches when the noise is known.")
TOLD = {"noise": "yes: its kind and strength", "learned": "its kind only (one network per kind, trained at one "
        "strength)", "blind": "no (blind)", "learned_noise": "yes: its kind and strength (one network per kind, "
        "trained over every strength)"}
rows = [{"Method": m.display_name, "Kind": m.family,
         "Told the noise?": TOLD[("learned_" if m.family == "learned" else "") + "noise" if m.told_noise
                                 else "learned" if m.family == "learned" else "blind"],
         "What it does": m.description} for m in METHODS.values()]
st.table(pd.DataFrame(rows).set_index("Method"))  # a static table wraps the long descriptions

st.header("How to reproduce every number")
st.markdown(
    "```bash\n"
    "pip install -r requirements.txt\n"
    "# faces: the official CelebA split; several folders are de-duplicated by file name\n"
    "python scripts/prepare_data.py /path/to/celeba /path/to/celeba-half --size 28 --out .cache/faces/celeba-28\n"
    "# 12 networks (3 kinds x 4 noise kinds); each stops when its validation error stops improving.\n"
    "# Without --out they go to a new runs/ folder; --force replaces the shipped ones.\n"
    "python scripts/train.py --arch all --noise all --data .cache/faces/celeba-28 --epochs 40 --out checkpoints --force\n"
    "# every method on the same seeded noisy test faces; the tables this dashboard reads\n"
    "python scripts/evaluate.py --data .cache/faces/celeba-28 --out checkpoints/tables --force\n"
    "streamlit run dashboard/app.py\n"
    "```\n"
    "Every noisy picture is made from a seed stored in the tables, so the same commands give the same numbers, "
    "and this dashboard shows exactly the noisy pictures that were scored."
)
meta = common.tables().meta
if meta:
    with st.expander("How the tables in this dashboard were made (meta.json)"):
        st.json(meta)
