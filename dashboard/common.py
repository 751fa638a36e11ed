"""Shared dashboard plumbing: where things are, cached loaders, face pictures, URL state, downloads.

Heavy libraries (torch, plotly, the denoising registry) are imported inside functions so the first
page appears quickly; torch is only loaded when a page actually needs a learned method.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from dashboard import facesource
from dashboard.images import png_bytes
from dashboard.tables import Tables, read_tables, training_range

# re-exported: the pages and tests reach them as common.*
from dashboard.tables import checkpoint_dir as checkpoint_dir
from dashboard.tables import tables_dir as tables_dir
from denoising import catalogue
from denoising.catalogue import format_strength as format_strength
from denoising.noise import PRESETS, NoiseSpec
from denoising.tables_schema import FILES

REPO_ROOT = Path(__file__).resolve().parents[1]
HOW_TO_SWEEP = (
    "No strength sweep yet. To make it, run "
    "`python scripts/sweep.py --data .cache/faces/<your prepared faces> --out checkpoints/tables`, "
    "then reload this page."
)
HOW_TO_TRAIN = (
    "No trained neural networks found, so only the classical filters are shown. To add them, run "
    "`python scripts/train.py --arch all --noise all --data .cache/faces/<your prepared faces> --out checkpoints`, "
    "then reload this page."
)
FACE_SCALE = 6  # 28 px faces are shown 6x larger, pixel for pixel


# ---------------------------------------------------------------- locations (env vars, with repo defaults)
# checkpoint_dir() and tables_dir() live in dashboard.tables (no streamlit) so scripts can find the tables too


HOW_TO_CELEBA = (
    "To show CelebA faces, the server's owner sets `DENOISING_CELEBA_DIR=/path/to/celeba` (or several named "
    "folders: `DENOISING_CELEBA_DIRS=\"name=/path/a;other=/path/b\"`) before starting the dashboard."
)
DEFAULT_CELEBA_NAME = "CelebA"  # the name DENOISING_CELEBA_DIR's folder is listed under
#: uploads decoded at the same time by the whole server, and how long a further one waits for a turn
UPLOAD_SLOTS = threading.BoundedSemaphore(2)
UPLOAD_WAIT_S = 20.0
#: PNG chart downloads drawn at the same time by the whole server (each starts a headless Chromium of a few
#: hundred MB), and how long a further one waits before it gets a PNG saying the server is busy
EXPORT_SLOTS = threading.BoundedSemaphore(1)
EXPORT_WAIT_S = 30.0
#: denoising runs at the same time for the whole server: one per core, so visitors moving sliders at the
#: same moment queue for a few milliseconds each instead of slowing every run down together
COMPUTE_SLOTS = threading.BoundedSemaphore(max(1, min(4, os.cpu_count() or 1)))


def celeba_folders() -> dict[str, str]:
    """The CelebA folders the server's owner configured, name -> path; visitors choose among them by name only.

    ``DENOISING_CELEBA_DIR`` is listed as ``"CelebA"``; ``DENOISING_CELEBA_DIRS`` adds named folders as
    ``name=/path`` entries separated by ``;``. Entries without ``=``, a name or a path are skipped, and the
    first folder of a repeated name wins. Nothing a visitor sends can add to this list.

    Returns
    -------
    dict of str to str
        Folder name -> path as configured (``~`` not yet expanded), in configuration order.
    """
    folders = {}
    single = os.environ.get("DENOISING_CELEBA_DIR", "").strip()
    if single:
        folders[DEFAULT_CELEBA_NAME] = single
    for entry in os.environ.get("DENOISING_CELEBA_DIRS", "").split(";"):
        name, sep, path = entry.partition("=")
        if sep and name.strip() and path.strip():
            folders.setdefault(name.strip(), path.strip())
    return folders


def celeba_dir() -> str:
    """The configured CelebA folder chosen in the sidebar (the first one by default), ``~`` expanded; else empty."""
    folders = celeba_folders()
    if not folders:
        return ""
    chosen = st.session_state.get("celeba_choice")
    path = folders.get(chosen) if isinstance(chosen, str) else None
    return os.path.expanduser(path or next(iter(folders.values())))


def celeba_name(folder: str) -> str:
    """The configured name of a CelebA folder path (what visitors see instead of the server's path)."""
    for name, path in celeba_folders().items():
        if os.path.expanduser(path) == folder:
            return name
    return DEFAULT_CELEBA_NAME


def without_path(message: str, folder: str) -> str:
    """``message`` with the server's ``folder`` path (and anything below it) shown as the folder's configured name."""
    return message.replace(folder, f"“{celeba_name(folder)}”") if folder else message


def without_folder(message: str, folder: str | Path) -> str:
    """``message`` with every path under the server's ``folder`` cut to what lies below it (a file's name)."""
    return message.replace(str(folder) + os.sep, "")


def folder_exists(folder: str) -> bool:
    """Whether ``folder`` is a directory; a path the system cannot even look up (too long, NUL) is not one."""
    try:
        return Path(folder).is_dir()
    except (OSError, ValueError):
        return False


# ---------------------------------------------------------------- cached data
@st.cache_resource(show_spinner=False, max_entries=4)
def _tables(folder: str, stamp: tuple) -> Tables:
    # one shared object, not a copy per call: st.cache_data unpickled all the tables (7 MB) on every call,
    # several times per page run (a sixth of the server's time under 9 Noise lab users, py-spy). Pages
    # derive new frames from it and never assign into it (pandas' copy-on-write keeps derived frames apart).
    return read_tables(Path(folder))


def tables() -> Tables:
    """The result tables, re-read only when a file in the folder changes (shared by every visitor: read only)."""
    folder = tables_dir()
    stamp = tuple(
        (p.name, p.stat().st_mtime_ns) for p in sorted(folder.glob("*")) if p.is_file()
    ) if folder.is_dir() else ()
    return _tables(str(folder), stamp)


def tables_or_stop() -> Tables:
    """The result tables; when a file is malformed or cut short, one plain error naming it and the page ends here."""
    data = tables()
    if data.error:
        st.error(f"The result tables cannot be shown: {data.error} Make them again with "
                 "`python scripts/evaluate.py --data .cache/faces/<your prepared faces> --out checkpoints/tables`.")
        st.stop()
    return data


def per_image_or_stop():
    """The per-face results table; without one, say how to make it and end the page here."""
    per_image = tables_or_stop().per_image
    if per_image.empty:
        st.info("No per-face results yet: run `python scripts/evaluate.py --data .cache/faces/<your prepared faces> --out checkpoints/tables`. "
                "The Noise lab works without them.")
        st.stop()
    return per_image


def sweep_or_stop():
    """The strength-sweep table; without one (or with an unreadable one), say so and end the page here."""
    data = tables()
    if data.sweep_error:
        # the message names the file, never the folder: visitors do not see the server's paths
        st.error(f"The strength sweep cannot be shown: {data.sweep_error} "
                 "Make it again with `python scripts/sweep.py --data .cache/faces/<your prepared faces> "
                 "--out checkpoints/tables`.")
        st.stop()
    if data.sweep.empty:
        st.info(HOW_TO_SWEEP)
        st.stop()
    return data.sweep


@st.cache_data(show_spinner=False)
def _training_ranges(folder: str, stamp: tuple) -> dict[tuple[str, str], tuple[float, float]]:
    import json

    ranges = {}
    for name, _ in stamp:
        try:
            card = json.loads((Path(folder) / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # an unreadable card only loses its mark
        found = training_range(card) if isinstance(card, dict) else None
        if found:
            ranges[found[:2]] = found[2:]
    return ranges


def training_ranges(kind: str) -> dict[str, tuple[float, float]]:
    """Network name -> (low, high) strength of ``kind`` it was trained on, from the checkpoint cards."""
    folder = checkpoint_dir()
    cards = sorted(p for p in folder.glob("*.json") if p.with_suffix(".safetensors").is_file()) \
        if folder.is_dir() else []
    stamp = tuple((p.name, p.stat().st_mtime_ns) for p in cards)
    return {method: span for (method, card_kind), span in _training_ranges(str(folder), stamp).items()
            if card_kind == kind}


@st.cache_resource(show_spinner=False)
def classical() -> dict:
    """The classical filters and the 'noisy' baseline (no torch)."""
    from denoising.registry import classical_methods

    return classical_methods()


def has_checkpoints() -> bool:
    """Whether any trained-model weights are in the checkpoint folder."""
    folder = checkpoint_dir()
    return folder.is_dir() and any(folder.glob("*.safetensors"))


@st.cache_resource(show_spinner="Loading the trained models…")
def _registry(folder: str) -> dict:
    from denoising.registry import build_registry

    return build_registry(Path(folder))


def _one_torch_thread() -> None:
    """In the real server (``streamlit run dashboard/app.py``), once torch is loaded, one thread per inference.

    The server serves many visitors on few cores and :data:`COMPUTE_SLOTS` runs one inference per core
    at a time; with torch's default two threads each, nine visitors at once fought over two cores (a
    2 ms U-Net took 100-800 ms). Tests (AppTest inside pytest) keep torch's default, as do the scripts.
    """
    torch = sys.modules.get("torch")  # never imports torch itself: pages without networks stay light
    if torch is not None and Path(sys.argv[0]).name == "app.py" and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def registry(learned: bool = True) -> dict:
    """All methods; learned ones (torch) only when asked for and when checkpoints exist."""
    if learned and has_checkpoints():
        return _registry(str(checkpoint_dir()))
    return classical()


def is_learned(name: str) -> bool:
    """Whether ``name`` is a trained network (needs torch and a checkpoint), per the catalogue."""
    info = catalogue.METHODS.get(name)
    return info is not None and info.family == "learned"


def method_names() -> dict[str, str]:
    """Method name -> label for readers, from the catalogue (no torch, no filters imported).

    A method the tables' meta.json names but the catalogue does not know keeps its recorded name.
    """
    recorded = {m["name"]: m["display_name"] for m in tables().meta.get("methods", [])
                if isinstance(m, dict) and "name" in m and "display_name" in m}
    return {**recorded, **{name: info.display_name for name, info in catalogue.METHODS.items()}}


@st.cache_data(show_spinner=False, max_entries=2048, hash_funcs={NoiseSpec: NoiseSpec.to_json})
def run_method(name: str, noisy: np.ndarray, noise: NoiseSpec, folder: str) -> np.ndarray:
    """One method on a small batch carrying ``noise``, cached so revisiting a face is instant."""
    methods = _registry(folder) if is_learned(name) else classical()
    return np.asarray(methods[name](noisy, noise), np.float32)


def outputs_for(noisy: np.ndarray, noise: NoiseSpec, methods: list[str],
                failed: dict[str, str] | None = None) -> dict[str, np.ndarray]:
    """Outputs of several methods for the same noisy batch (methods without weights are skipped).

    A learned model that fails to load is left out: with ``failed`` (name -> why), it is recorded there
    and not tried again by later calls sharing that dict (the caller warns once); without, it warns now.
    """
    folder = str(checkpoint_dir())
    available = registry(learned=any(is_learned(m) for m in methods))
    out = {}
    for name in methods:
        method = available.get(name)
        if method is None or not method.available(noise.kind) or (failed is not None and name in failed):
            continue
        result = _guarded(name, lambda name=name: run_method(name, noisy, noise, folder), failed)
        if result is not None:
            out[name] = result
    return out


def run_live(methods: dict, wanted: list[str], noisy: np.ndarray, noise: NoiseSpec,
             failed: dict[str, str] | None = None) -> dict[str, np.ndarray]:
    """Run methods now (uncached, for live timing), one inference per core at a time (:data:`COMPUTE_SLOTS`).

    A learned model that fails to load is left out, with a warning now or recorded in ``failed``.
    """
    out = {}
    _one_torch_thread()
    for name in wanted:
        with COMPUTE_SLOTS:  # per method: a slow one (BM3D, seconds) lets other visitors' runs in between
            result = _guarded(name, lambda name=name: np.asarray(methods[name](noisy, noise), np.float32), failed)
        if result is not None:
            out[name] = result
    return out


#: pictures up to this many pixels (test faces, small photos) have their results and PNGs kept for every
#: visitor: 128 kept results of eleven 64×64 outputs take at most about 70 MB, 1,024 PNGs at most about
#: 22 MB (28×28 test faces: a fifth of that); larger uploads are computed live
SHARED_CACHE_PIXELS = 64 * 64


#: set by :func:`_shared_lab_outputs` when it really computes, per thread (each visitor's run has its own)
_LAB_COMPUTED = threading.local()


def lab_outputs(noisy: np.ndarray, noise: NoiseSpec, wanted: list[str]
                ) -> tuple[dict[str, np.ndarray], float, dict[str, str], bool]:
    """The Noise lab's fast methods on one noisy batch: outputs, seconds computing, learned models that failed,
    and whether they came from the shared cache (computed earlier, so the seconds are those of that run).

    Small pictures go through :func:`_shared_lab_outputs` (computed once for every visitor); larger ones
    (uploaded photos, unique to their visitor) are computed now, so the cache's memory stays bounded.
    """
    if noisy.shape[1] * noisy.shape[2] <= SHARED_CACHE_PIXELS:
        _LAB_COMPUTED.now = False
        outputs, seconds, failed = _shared_lab_outputs(noisy, noise, tuple(wanted), str(checkpoint_dir()))
        return outputs, seconds, failed, not _LAB_COMPUTED.now
    return (*_compute_lab_outputs(noisy, noise, wanted), False)


def _compute_lab_outputs(noisy: np.ndarray, noise: NoiseSpec, wanted: list[str] | tuple[str, ...]
                         ) -> tuple[dict[str, np.ndarray], float, dict[str, str]]:
    """Run ``wanted`` on ``noisy`` now: outputs, seconds computing, learned models that failed (-> why)."""
    failed: dict[str, str] = {}
    start = time.perf_counter()
    outputs = run_live(registry(learned=True), list(wanted), noisy, noise, failed)
    return outputs, time.perf_counter() - start, failed


def lab_scores(clean: np.ndarray, pictures: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """MAE, PSNR and SSIM of each picture against ``clean`` (kept for every visitor for small pictures)."""
    small = clean.shape[0] * clean.shape[1] <= SHARED_CACHE_PIXELS
    return (_shared_scores if small else _scores)(clean, pictures)


def _scores(clean: np.ndarray, pictures: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    from denoising.metrics import score

    return {name: score(clean[None], image[None]) for name, image in pictures.items()}


_shared_scores = st.cache_data(show_spinner=False, max_entries=512)(_scores)


@st.cache_data(show_spinner=False, max_entries=128, hash_funcs={NoiseSpec: NoiseSpec.to_json})
def _shared_lab_outputs(noisy: np.ndarray, noise: NoiseSpec, wanted: tuple[str, ...], folder: str
                        ) -> tuple[dict[str, np.ndarray], float, dict[str, str]]:
    """:func:`lab_outputs`, computed once for every visitor.

    Keyed by the noisy picture's bytes (so by face, noise, strength and seed), the methods and the
    checkpoint folder; a visitor who returns to a setting, or asks for one another visitor just saw,
    gets the stored result, and Streamlit computes a key once even when several sessions ask at the
    same moment (the others wait for it).

    Returns
    -------
    outputs : dict
        Method name -> float32 output batch.
    seconds : float
        How long computing them took (when they were computed).
    failed : dict
        Learned models that could not be used -> why (the page warns, once).
    """
    _LAB_COMPUTED.now = True
    return _compute_lab_outputs(noisy, noise, wanted)


def warn_left_out(failed: dict[str, str]) -> None:
    """One warning per learned model that could not be used (see :func:`outputs_for`)."""
    for name, why in failed.items():
        st.warning(f"{catalogue.display_name(name)} is left out: {why}")


def _guarded(name: str, compute: Callable[[], np.ndarray], failed: dict[str, str] | None = None) -> np.ndarray | None:
    try:
        return compute()
    except Exception as error:  # noqa: BLE001 - a broken checkpoint must not take the page down
        if not is_learned(name):
            raise
        # the message names the checkpoint file; visitors see its name, not the server's folder
        why = without_folder(str(error), checkpoint_dir()).splitlines()[0] if str(error) else \
            type(error).__name__
        if failed is None:
            warn_left_out({name: why})
        else:
            failed[name] = why
        return None


@st.cache_resource(show_spinner="Loading the built-in faces…")
def lfw_bank(size: int) -> facesource.FaceBank:
    return facesource.lfw_bank(size)


@st.cache_resource(show_spinner="Preparing the CelebA test faces (only once)…")
def _celeba_bank(folder: str, ids: tuple[str, ...], size: int) -> facesource.FaceBank:
    return facesource.celeba_bank(Path(folder), list(ids), size, cache_root=facesource.dashboard_cache_dir())


def face_size() -> int:
    """Face size used in the tables (meta.json), 28 by default."""
    meta = tables().meta
    for key in ("size", "image_size", "face_size"):
        if isinstance(meta.get(key), int):
            return int(meta[key])
    return 28


def test_set_ids(test_set: str) -> list[str]:
    per_image = tables().per_image
    if per_image.empty:
        return []
    return list(dict.fromkeys(per_image.loc[per_image["test_set"] == test_set, "image_id"].astype(str)))


def face_bank(test_set: str) -> tuple[facesource.FaceBank | None, str | None]:
    """The faces of one test set, or (None, one line saying how to see them)."""
    size = face_size()
    if test_set == "lfw":
        return lfw_bank(size), None
    folder = celeba_dir()
    if not folder:
        return None, f"The CelebA faces themselves are not shown. {HOW_TO_CELEBA}"
    ids = test_set_ids(test_set)
    try:
        return _celeba_bank(folder, tuple(ids), size), None
    except facesource.FaceSourceError as error:  # its text names paths: visitors see the folder's name instead
        return None, without_path(str(error), folder)
    except OSError as error:  # e.g. a configured path too long for the system: a message, never a traceback
        return None, f"The configured CelebA folder could not be read ({type(error).__name__}), so its faces cannot be pictured here."


def pick_test_face(set_param: str, set_key: str, face_key: str) -> tuple[np.ndarray, str, str]:
    """A test set and face chooser, side by side: CelebA's test faces when its folder is set and there, else LFW.

    The choices start from the URL parameters ``set_param`` and ``face``; the caller publishes them back.
    Returns the clean face, its id and the test set it came from.
    """
    sets = ["lfw"] + (["celeba_test"] if celeba_dir() else [])
    # CelebA first when its folder is there, as on Findings and Browse (Tables.test_sets puts it first)
    default = "celeba_test" if celeba_dir() and folder_exists(celeba_dir()) else "lfw"
    init_param(set_param, set_key, default, valid=lambda v: v in sets)
    c1, c2 = st.columns(2)
    test_set = c1.selectbox("Test faces", sets, key=set_key, format_func=catalogue.test_set_title)
    bank, how = face_bank(test_set)
    if bank is None:
        st.info(how)
        bank, test_set = lfw_bank(face_size()), "lfw"
    init_param("face", face_key, bank.ids[0], valid=lambda v: v in bank)
    face = c2.selectbox("Which face", bank.ids, key=face_key)
    return bank.get(face), face, test_set


def available_test_sets() -> list[str]:
    """Test sets with results; the built-in faces always count (the Noise lab needs no tables)."""
    names = tables().test_sets()
    return names or ["lfw"]


def regenerate_noisy(clean: np.ndarray, noise: NoiseSpec, seed: int) -> np.ndarray:
    """The exact noisy input that was scored, rebuilt from the seed stored in the table."""
    return facesource.noisy_from_seed(clean, noise, int(seed))


# ---------------------------------------------------------------- Noise lab strength slider
def strength_choices(kind: str) -> tuple[list[float], float]:
    """The Noise lab's slider positions for ``kind`` and the default among them.

    The positions are the catalogue's strength grid plus every named preset's value, so the default
    is exactly the post's setting (e.g. Gaussian σ = √0.1, which no 0.01 step reaches).
    """
    strength = catalogue.STRENGTHS[kind]
    if isinstance(strength.values, list):
        grid = [float(v) for v in strength.values]
    else:
        low, high, step = strength.values
        grid = [round(low + i * step, 10) for i in range(int(round((high - low) / step)) + 1)]
    presets = [float(PRESETS[name][kind].params[strength.parameter]) for name in PRESETS]
    default = float(PRESETS[catalogue.DEFAULT_PRESET][kind].params[strength.parameter])
    return sorted(set(grid) | set(presets)), default


def lab_noise(kind: str, strength: float) -> NoiseSpec:
    """The default preset's noise of ``kind`` with its strength parameter set to ``strength``."""
    preset = PRESETS[catalogue.DEFAULT_PRESET][kind]
    return NoiseSpec(kind, {**preset.params, catalogue.STRENGTHS[kind].parameter: strength})


# ---------------------------------------------------------------- display helpers
def show_faces(images: list[np.ndarray], captions: list[str], scale: int = FACE_SCALE) -> None:
    """A row of faces, enlarged pixel for pixel, as lossless PNG."""
    # a fixed width: a long caption would otherwise stretch its picture (and blur the pixels)
    width = images[0].shape[1] * scale if images else None
    st.image([png_bytes(image, scale) for image in images], caption=captions, output_format="PNG", width=width)


def _png_uri(image: np.ndarray, scale: int) -> str:
    """:func:`dashboard.images.png_data_uri`; a small picture's is encoded once for every visitor (PNG encoding
    was a tenth of the Noise lab's server time under load)."""
    from dashboard.images import png_data_uri

    if image.shape[0] * image.shape[1] <= SHARED_CACHE_PIXELS:
        return _shared_png_uri(image, scale)
    return png_data_uri(image, scale)


@st.cache_data(show_spinner=False, max_entries=1024)
def _shared_png_uri(image: np.ndarray, scale: int) -> str:
    from dashboard.images import png_data_uri

    return png_data_uri(image, scale)


def show_faces_inline(images: list[np.ndarray], captions: list[str], scale: int = FACE_SCALE) -> None:
    """Like :func:`show_faces`, but the PNGs travel inside the page (data URIs) instead of as separate
    downloads: on a live page (the Noise lab) the new pictures then appear with the scores, without
    a round of image requests after every slider move."""
    import html

    # each PNG holds the picture's own pixels and the browser enlarges it, square pixels kept (pixelated):
    # the same sight as a PNG enlarged on the server, at a 36th of the pixels to encode, send and decode
    cells = "".join(
        f'<figure class="face"><img src="{_png_uri(image, 1)}" width="{image.shape[1] * scale}" '
        f'height="{image.shape[0] * scale}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for image, caption in zip(images, captions, strict=True))
    width = images[0].shape[1] * scale if images else 0
    st.html(f'<div class="face-row" style="display:flex;flex-wrap:wrap;gap:8px">{cells}</div>'
            f"<style>.face-row figure{{margin:0;width:{width}px}} .face-row img{{image-rendering:pixelated;"
            f"display:block}} .face-row figcaption{{font-size:0.8rem;color:grey;text-align:center}}</style>")


MAX_PARAM_CHARS = 2000  # a URL value longer than this is ignored unread
_REJECTED = object()


def _cast_param(raw: Any, cast: Callable) -> Any:
    """``cast(raw)``, or ``_REJECTED`` for a failed cast, a non-finite number or an int beyond 64 bits."""
    if not isinstance(raw, str) or len(raw) > MAX_PARAM_CHARS:
        return _REJECTED
    try:
        value = cast(raw)
    except (TypeError, ValueError, ArithmeticError):  # ArithmeticError: OverflowError and friends
        return _REJECTED
    if isinstance(value, float) and not np.isfinite(value):
        return _REJECTED
    if isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**63:
        return _REJECTED
    return value


def _is_valid(valid: Callable[[Any], bool] | None, value: Any) -> bool:
    try:
        return valid is None or bool(valid(value))
    except (TypeError, ValueError, ArithmeticError):
        return False


def init_param(name: str, key: str, default: Any, cast: Callable = str, valid: Callable[[Any], bool] | None = None) -> None:
    """Seed a widget's value from the page URL (``?name=...``) the first time the page runs.

    A URL value that cannot be cast, is not a finite number, is an int beyond 64 bits, is longer than
    :data:`MAX_PARAM_CHARS` or fails ``valid`` is ignored silently: the widget starts at ``default``.
    """
    if key in st.session_state and _is_valid(valid, st.session_state[key]):
        return
    value = default
    raw = st.query_params.get(name)
    if raw is not None:
        candidate = _cast_param(raw, cast)
        if candidate is not _REJECTED and _is_valid(valid, candidate):
            value = candidate
    st.session_state[key] = value


def publish(**params: Any) -> None:
    """Write the page's selections into the URL so a copied link opens the same view."""
    for name, value in params.items():
        text = str(value)
        if st.query_params.get(name) != text:
            st.query_params[name] = text


def csv_download(frame, file_name: str, key: str, label: str = "Download this table (CSV)") -> None:
    st.download_button(label, data=lambda: frame.to_csv(index=False), file_name=file_name, mime="text/csv",
                       key=key, on_click="ignore")


def chart(fig, file_name: str, key: str, title: str | None = None) -> None:
    """A plotly chart with downloads that read on their own: stand-alone HTML (opens offline) and PNG.

    ``title`` names what the chart shows (test set, noise, score): the page's headings are not in the
    file. The PNG is drawn only when asked for, by kaleido in Debian's Chromium; where that cannot run
    the PNG button is left out with a caption, never a traceback.
    """
    from dashboard.charts import figure_html

    st.plotly_chart(fig, key=f"{key}_chart")
    left, right = st.columns(2)
    # short labels: on Noise strength two charts share a row, and "Download this chart (HTML, opens offline)"
    # was cut to "Download this chart (HTM…" there; the help says the rest
    left.download_button("Download chart (HTML)", data=lambda: figure_html(fig, title),
                         file_name=file_name, mime="text/html", key=f"{key}_dl", on_click="ignore",
                         help="One HTML file that opens offline in any browser, the chart still interactive.")
    if png_export_works():
        right.download_button("Download chart (PNG)", data=lambda: _chart_png(fig, title),
                              file_name=file_name.removesuffix(".html") + ".png", mime="image/png",
                              key=f"{key}_png", on_click="ignore")
    else:
        right.caption("PNG download unavailable on this server (it needs kaleido and Chromium); the HTML file "
                      "opens offline and can be saved as an image from the browser.")


@st.cache_resource(show_spinner=False)
def png_export_works() -> bool:
    """Whether charts can be drawn as PNG here (kaleido installed, a Chromium found), looked up once per server."""
    from dashboard.charts import export_available

    return export_available()


def _chart_png(fig, title: str | None) -> bytes:
    """The chart as PNG, one export at a time (:data:`EXPORT_SLOTS`); if it fails, a PNG that says so."""
    from dashboard.charts import figure_png
    from dashboard.images import message_png

    if not EXPORT_SLOTS.acquire(timeout=EXPORT_WAIT_S):
        return message_png("The server is busy drawing other charts; try again in a moment, or use the HTML download.")
    try:
        png = figure_png(fig, title)
    finally:
        EXPORT_SLOTS.release()
    return png or message_png("This chart could not be drawn as PNG here; use the HTML download instead.")


def sidebar() -> None:
    """Settings shared by every page: a choice among the server's configured CelebA folders, never a typed path."""
    with st.sidebar:
        folders = celeba_folders()
        if len(folders) > 1:
            st.selectbox("CelebA folder", list(folders), key="celeba_choice",
                         help="The CelebA folders set up by the server's owner (DENOISING_CELEBA_DIR, DENOISING_CELEBA_DIRS).")
        elif not folders:
            st.caption(f"Showing the built-in LFW faces. {HOW_TO_CELEBA}")
        folder = celeba_dir()
        if folder and not folder_exists(folder):
            st.warning(f"The CelebA folder “{celeba_name(folder)}” set up on the server does not exist; showing "
                       "the built-in faces only.")
        # the files' presence, not their contents: reading them here held up every page's title on a cold start
        if not any((tables_dir() / FILES[key]).is_file() for key in ("per_image", "summary")):
            st.info("No result tables found yet; run `python scripts/evaluate.py --data .cache/faces/<your prepared faces> --out checkpoints/tables` to make them.")


def table_row(test_set: str, image_id: str, noise: str):
    """The first per-image row for one face and noise kind (holds the noise parameters and seed)."""
    per_image = tables().per_image
    rows = per_image[(per_image["test_set"] == test_set) & (per_image["image_id"] == image_id)
                     & (per_image["noise"] == noise)]
    return None if rows.empty else rows.iloc[0]


def face_case(bank, test_set: str, image_id: str, noise: str) -> tuple[np.ndarray, np.ndarray, NoiseSpec] | None:
    """(clean, noisy, noise spec) for one face, with the noisy input rebuilt exactly as it was scored."""
    row = table_row(test_set, image_id, noise)
    if row is None or bank is None or image_id not in bank:
        return None
    clean, spec = bank.get(image_id), NoiseSpec.from_json(str(row["noise_params"]))
    return clean, regenerate_noisy(clean, spec, int(row["noise_seed"])), spec


def methods_in_table(test_set: str, noise: str) -> list[str]:
    per_image = tables().per_image
    part = per_image[(per_image["test_set"] == test_set) & (per_image["noise"] == noise)]
    return list(dict.fromkeys(part["method"].astype(str)))


def picture_rows(bank, test_set: str, image_ids: list[str], noise: str, methods: list[str]):
    """Per face: [(caption, image)] for clean, noisy and every method (skipping methods without weights)."""
    names = method_names()
    wanted = [m for m in methods if m != "noisy"]
    if not has_checkpoints():
        wanted = [m for m in wanted if not is_learned(m)]
    rows, failed = [], {}
    for image_id in image_ids:
        case = face_case(bank, test_set, image_id, noise)
        if case is None:
            continue
        clean, noisy, spec = case
        outputs = outputs_for(noisy[None], spec, wanted, failed)  # a broken model: tried once, warned once
        cells = [("Original", clean), ("With noise", noisy)]
        cells += [(names.get(m, m), out[0]) for m, out in outputs.items()]
        rows.append((image_id, cells))
    warn_left_out(failed)
    return rows


def upload_to_face(data: bytes, max_side: int | None = None):
    """Decode an uploaded photo at its own size (shrunk only past ``max_side``), or say why it cannot be used.

    Returns ``(photo, None)`` with a :class:`denoising.faces.Photo`, or ``(None, message for the reader)``.
    ``max_side`` defaults to :data:`denoising.faces.PHOTO_MAX_SIDE`.
    """
    from denoising.faces import PHOTO_MAX_SIDE, FaceDataError, load_photo

    # every visitor's session runs in this one process: bound how many photos decode at once, so a few
    # large uploads together cannot exhaust the server's memory (about 600 MB at most each, see load_photo)
    if not UPLOAD_SLOTS.acquire(timeout=UPLOAD_WAIT_S):
        return None, "The server is busy reading other visitors' photos; please try again in a moment."
    try:
        return load_photo(data, PHOTO_MAX_SIDE if max_side is None else max_side), None
    except FaceDataError as error:
        return None, f"That file could not be used: {error}."
    except Exception:  # noqa: BLE001 - never show a traceback (or an exception's name) for a user's file
        logging.getLogger(__name__).exception("an uploaded photo could not be decoded")
        return None, "That file could not be read as a photo: save it again as a JPEG or PNG and upload that."
    finally:
        UPLOAD_SLOTS.release()


def photo_note(photo) -> str:
    """One line on the size an uploaded photo is used at: its own, or how it was shrunk."""
    from denoising.faces import PHOTO_MAX_SIDE

    (width, height), (original_w, original_h) = photo.size, photo.original_size
    if photo.shrunk:
        return (f"Shrunk from {original_w}×{original_h} to {width}×{height} pixels, keeping its shape: the lab "
                f"works on photos up to {PHOTO_MAX_SIDE} pixels on the longer side.")
    return f"Used at its own size, {width}×{height} pixels."


def is_grey(image: np.ndarray) -> bool:
    """Whether an (H, W, 3) picture's three channels are equal everywhere (a grey photo)."""
    return image.ndim == 3 and image.shape[-1] == 3 and bool(
        np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2]))


def photo_scale(image: np.ndarray) -> int:
    """Whole-pixel enlargement that shows an uploaded photo about as large as a test face (1 from 168 px up)."""
    return max(1, -(-FACE_SCALE * 28 // max(image.shape[:2])))


def fixed_input_size(method, kind: str) -> tuple[int, int] | None:
    """(height, width) that a learned model for ``kind`` was built for, or None when it takes any size.

    The post's autoencoder has a dense layer sized for 28×28 faces; the U-Nets are fully convolutional.
    A model that fails to load counts as size-free here: running it then shows the usual warning.
    """
    if not is_learned(getattr(method, "name", "")) or not hasattr(method, "input_size"):
        return None
    try:
        size = method.input_size(kind)
    except Exception:  # noqa: BLE001 - a broken checkpoint is reported when it runs, not here
        return None
    return (size, size) if size else None
