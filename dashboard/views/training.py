"""Training: loss and validation curves and a model card for every trained model."""

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import common
from dashboard.tables import history_frame, loss_text, network_text
from denoising.catalogue import format_score, noise_label

st.title("How the neural networks were trained")
folder = common.checkpoint_dir()
cards = sorted(p for p in folder.glob("*.json") if p.with_suffix(".safetensors").is_file()) if folder.is_dir() else []
if not cards:
    st.info(common.HOW_TO_TRAIN)
    st.stop()
STOPPED = {"early_stopping": "validation error stopped improving", "max_epochs": "reached the epoch limit",
           "diverged": "the loss diverged (kept the last good weights)",
           None: "not finished (still training, or interrupted: resume with --resume)"}


@st.cache_data(show_spinner=False)
def read_card(path: str, stamp: tuple) -> tuple[dict | None, str | None]:
    """(card, None), or (None, why) for a card that is empty, not UTF-8, not a JSON object or has wrong fields,
    or whose weights file is cut short or malformed (its header is checked, its tensors are not read)."""
    from denoising.models.checkpoint import CheckpointError, check_tensor_file, read_json, validate_card

    try:
        card = validate_card(read_json(path), Path(path).name)
        check_tensor_file(Path(path).with_suffix(".safetensors"))
        return card, None
    except CheckpointError as exc:
        return None, common.without_folder(str(exc), Path(path).parent)


def readable_cards(paths: list) -> dict:
    """Stem -> card of every readable card; one plain warning for each bad one, which is skipped."""
    good = {}
    for p in paths:
        try:
            card, problem = read_card(str(p), (p.stat().st_mtime_ns, p.with_suffix(".safetensors").stat().st_mtime_ns))
        except OSError as exc:
            card, problem = None, f"{p.name} cannot be read ({exc.strerror or type(exc).__name__})"
        if card is None:
            st.warning(f"Skipped a model whose card is unusable: {problem}")
        else:
            good[p.stem] = card
    return good


def model_label(stem: str) -> str:
    arch, _, noise = stem.partition("-")
    return f"{names.get(arch, arch)} · {noise_label(noise)}" if noise else stem


def facts(card: dict, history: pd.DataFrame) -> dict[str, str]:
    """The model card a reader needs, in words (everything else is in the JSON below)."""
    data, versions = card.get("data", {}), card.get("versions", {})
    minutes = card.get("wall_time_s")
    out = {
        "Network": network_text(card),
        "Training loss": loss_text(card) or "?",
        "Trainable parameters": f"{card['parameters']:,}" if isinstance(card.get("parameters"), int) else "?",
        "Cleans": card.get("noise_label", card.get("noise_kind", "?")),
        "Trained on": f"{card.get('device_name', card.get('device', '?'))}",
        "Training time": f"{minutes / 60:.1f} min" if isinstance(minutes, (int, float)) else "?",
        "Epochs": f"{card.get('epochs_run', '?')} (stopped: {STOPPED.get(card.get('stopped'), card.get('stopped'))})",
        # the rule that chose the kept epoch, only as the card records it
        "Weights kept": f"epoch {card.get('best_epoch', '?')}" + (f", {card['selection']}" if card.get("selection") else ""),
        "Training faces": f"{data.get('n_train', '?'):,}" if isinstance(data.get("n_train"), int) else "?",
        "Validation faces": f"{data.get('n_validation', '?'):,}" if isinstance(data.get("n_validation"), int) else "?",
        "Face size": "x".join(str(v) for v in data.get("image_size", [])) or "?",
    }
    if isinstance(card.get("best_val_mae"), (int, float)):
        noisy = card.get("val_noisy_input", {})
        out["Validation MAE / PSNR"] = (f"{format_score('mae', card['best_val_mae'])} / "
                                        f"{format_score('psnr', card.get('best_val_psnr', float('nan')))} dB"
                                        + (f" (noisy input: {format_score('mae', noisy['mae'])} / "
                                           f"{format_score('psnr', noisy['psnr'])} dB)"
                                           if "mae" in noisy and "psnr" in noisy else ""))
    gate = card.get("gate_threshold")
    if isinstance(gate, dict) and isinstance(gate.get("validation"), dict):
        chosen = gate.get("chosen")
        scores = gate["validation"].get("soft" if chosen is None else f"{chosen:g}", {})
        out["Gate"] = ("soft, as trained" if chosen is None else f"all or nothing: a value is corrected only where the "
                       f"gate exceeds {chosen:g}, else left exactly as it was") + " (chosen on validation" + (
            f": MAE {format_score('mae', scores['val_mae'])} / PSNR {format_score('psnr', scores['val_psnr'])} dB with it)"
            if isinstance(scores.get("val_mae"), (int, float)) and isinstance(scores.get("val_psnr"), (int, float))
            else ")")
    if "lr" in history and history["lr"].notna().any():
        out["Learning rate"] = f"{history['lr'].iloc[0]:.2g} at the start, {history['lr'].iloc[-1]:.2g} at the end"
    out["Weights file"] = f"{card.get('weights_file', '?')} ({card.get('weights_dtype', '?')}, " \
                          f"{card.get('weights_bytes', 0) / 1e6:.1f} MB)"
    out["Software"] = ", ".join(f"{k} {v}" for k, v in versions.items())
    return out


names = common.method_names()
loaded = readable_cards(cards)
if not loaded:
    st.info(common.HOW_TO_TRAIN)
    st.stop()
stems = list(loaded)
common.init_param("model", "tr_model", stems[0], valid=lambda v: v in stems)
stem = st.selectbox("Model (network · kind of noise it cleans)", stems, key="tr_model", format_func=model_label)
common.publish(model=stem)
card = loaded[stem]

history = history_frame(card.get("history"))
if history.empty:
    st.info("This model's file has no training history.")
else:
    from dashboard.charts import training_curves

    loss = loss_text(card)
    st.caption("Loss = the error the network was trained to shrink" + (f", here {loss}" if loss else "")
               + "; validation = scores on faces it never trained on, with fresh noise. The star marks the epoch "
               "whose weights were kept; the dashed line is the untouched noisy input.")
    common.chart(training_curves(history, card.get("val_noisy_input"), card.get("best_epoch"),
                                 loss_text(card, short=True)), f"training-{stem}.html", "tr_curves",
                 title=f"Training of {model_label(stem)}")
    if any(c.startswith("val_psnr_by_strength ") for c in history.columns):
        from dashboard.charts import strength_history

        st.caption("This network was trained over the whole range of strengths; its validation faces take the "
                   "strength sweep's strengths in turn. Its training loss is minus the PSNR of its output plus minus "
                   "the PSNR of its correction alone (so it is negative and falls as it learns). Validation PSNR at "
                   "each strength:")
        common.chart(strength_history(history, "psnr"), f"training-{stem}-by-strength.html", "tr_strengths",
                     title=f"Validation PSNR (dB) at each strength · {model_label(stem)}")
    common.csv_download(history, f"history-{stem}.csv", "tr_csv", "Download the training history (CSV)")

st.subheader("Model card")
card_facts = facts(card, history)
st.table(pd.DataFrame({"What": list(card_facts), "Value": list(card_facts.values())}).set_index("What"))
with st.expander("Everything in the model's file (JSON)"):
    st.json({k: v for k, v in card.items() if k != "history"})

st.subheader("All trained models")
overview = []
for p_stem, c in loaded.items():
    overview.append({"Model": model_label(p_stem), "Epochs": c.get("epochs_run"), "Kept epoch": c.get("best_epoch"),
                     "Validation MAE": c.get("best_val_mae"), "Validation PSNR (dB)": c.get("best_val_psnr"),
                     "Minutes": round(c["wall_time_s"] / 60, 1) if isinstance(c.get("wall_time_s"), (int, float))
                     else None, "Device": c.get("device")})
overview = pd.DataFrame(overview)
# a static table: every model's row on screen (a scrolling grid showed 10 of 16), at the catalogue's precision
shown = overview.astype(object).where(overview.notna(), "—")
for column, metric in (("Validation MAE", "mae"), ("Validation PSNR (dB)", "psnr")):
    shown[column] = [format_score(metric, v) if isinstance(v, (int, float)) else v for v in shown[column]]
st.table(shown.astype(str).set_index("Model"))
common.csv_download(overview, "models.csv", "tr_all_csv")
