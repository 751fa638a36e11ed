"""Training: loss and validation curves and a model card for every trained model."""

import json

import pandas as pd
import streamlit as st

from dashboard import common

st.title("How the neural networks were trained")
folder = common.checkpoint_dir()
cards = sorted(p for p in folder.glob("*.json") if p.with_suffix(".safetensors").is_file()) if folder.is_dir() else []
if not cards:
    st.info(common.HOW_TO_TRAIN)
    st.stop()


@st.cache_data(show_spinner=False)
def read_card(path: str, stamp: int) -> dict:
    return json.loads(open(path, encoding="utf-8").read())


def history_frame(history) -> pd.DataFrame:
    """History as one row per epoch, whether stored as a list of dicts or a dict of lists."""
    if isinstance(history, dict):
        return pd.DataFrame({k: pd.Series(v) for k, v in history.items() if isinstance(v, list)})
    if isinstance(history, list):
        return pd.DataFrame([h for h in history if isinstance(h, dict)])
    return pd.DataFrame()


stems = [p.stem for p in cards]
common.init_param("model", "tr_model", stems[0], valid=lambda v: v in stems)
stem = st.selectbox("Model (network – kind of noise it cleans)", stems, key="tr_model")
common.publish(model=stem)
path = folder / f"{stem}.json"
card = read_card(str(path), path.stat().st_mtime_ns)

history = history_frame(card.get("history"))
if history.empty:
    st.info("This model's file has no training history.")
else:
    from dashboard.charts import training_curves

    st.caption("Loss = the error the network was trained to shrink; validation = scores on faces it never trained on.")
    common.chart(training_curves(history), f"training-{stem}.html", "tr_curves")
    common.csv_download(history, f"history-{stem}.csv", "tr_csv", "Download the training history (CSV)")

st.subheader("Model card")
facts = {}
for key, value in card.items():
    if key == "history":
        continue
    if isinstance(value, dict):
        for sub, inner in value.items():
            facts[f"{key} · {sub}"] = json.dumps(inner) if isinstance(inner, (dict, list)) else str(inner)
    else:
        facts[key] = json.dumps(value) if isinstance(value, list) else str(value)
st.dataframe(pd.DataFrame({"What": list(facts), "Value": list(facts.values())}), hide_index=True)
with st.expander("Everything in the model's file (JSON)"):
    st.json({k: v for k, v in card.items() if k != "history"})
