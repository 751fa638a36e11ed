"""Checkpoints: safetensors weights plus a same-stem JSON that can rebuild the model alone.

``<dir>/<arch>-<noise_kind>.safetensors`` holds the weights (float16 or float32, recorded in
the JSON); ``<dir>/<arch>-<noise_kind>.json`` (the card) holds the model class and constructor
arguments, the noise spec, the training config and history, timings, device, library versions,
a data summary and the SHA-256 of the weights. No pickle anywhere.

What a kill at any instant leaves (SIGKILL, power cut after the data reached the disk):

* Every file is written to a temporary name in its own folder, flushed to disk, then renamed
  over the old one (:func:`os.replace`, atomic on one file system): never half a file.
* A checkpoint is two files, so :func:`save` writes in this order: the new weights to a
  temporary file; the new card to ``<stem>.json.pending``; the weights renamed into place; the
  card renamed into place. A kill before the weights' rename leaves the old pair (a stale
  ``.pending`` card does not match the old weights and is ignored); a kill between the two
  renames leaves new weights beside the old card, and :func:`load` then takes the pending card,
  whose SHA-256 matches the new weights. Either the old or the new checkpoint loads.
* The resume state is one file, ``state.safetensors``: weights, optimizer tensors and the JSON
  bookkeeping (in the safetensors metadata header) are replaced together by one rename
  (:func:`save_state`).
* :func:`writer_lock` lets one process at a time write a checkpoint name; a second one is told
  who holds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from denoising.catalogue import ARCH_MODEL

from .autoencoder import Autoencoder
from .patchgan import PatchGAN
from .unet import UNet

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MODEL_CLASSES: dict[str, type[nn.Module]] = {"autoencoder": Autoencoder, "unet": UNet, "patchgan": PatchGAN}
REQUIRED_KEYS = ("format_version", "arch", "model_class", "model_kwargs", "noise_kind", "weights_dtype",
                 "weights_sha256")
DTYPES = {"float16": torch.float16, "float32": torch.float32}
PENDING_SUFFIX = ".json.pending"
STATE_FILE = "state.safetensors"

__all__ = ["ARCH_MODEL", "CheckpointError", "CheckpointLocked", "checkpoint_stem", "build_model", "save", "load",
           "validate_card", "check_model_fields", "KWARG_RULES",
           "save_state", "load_state", "writer_lock", "FORMAT_VERSION", "check_tensor_file"]


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, corrupt or does not match what was asked for."""


class CheckpointLocked(CheckpointError):
    """Another process is writing this checkpoint name."""


def checkpoint_stem(directory: str | Path, arch: str, noise_kind: str) -> Path:
    """``<directory>/<arch>-<noise_kind>`` (add ``.safetensors`` / ``.json``)."""
    return Path(directory) / f"{arch}-{noise_kind}"


def model_class_name(model: nn.Module) -> str:
    """Registry name of a model instance (``"autoencoder"``, ``"unet"``, ``"patchgan"``)."""
    for name, cls in MODEL_CLASSES.items():
        if type(model) is cls:
            return name
    raise TypeError(f"unknown model class {type(model).__name__}")


#: what a card's ``model_kwargs`` may hold, per model class: (types, lowest, highest) of each constructor argument;
#: the bounds cover every shipped model with room to spare and keep a card from asking for absurd memory or time
_INT, _FLOAT, _BOOL = (int,), (int, float), (bool,)
KWARG_RULES: dict[str, dict[str, tuple]] = {
    "autoencoder": {"image_size": (_INT, 8, 1024), "channels": (_INT, 1, 4), "filters": ("ints", 1, 512),
                    "latent_dim": (_INT, 1, 4096)},
    "unet": {"channels": (_INT, 1, 4), "base": (_INT, 1, 512), "depth": (_INT, 1, 8), "max_mult": (_INT, 1, 64),
             "dropout": (_FLOAT, 0.0, 0.99), "cond_channels": (_INT, 0, 1), "gated": (_BOOL, None, None),
             "full_res_layers": (_INT, 0, 16), "extreme_hint": (_BOOL, None, None),
             "gate_threshold": ("threshold", None, None)},
    "patchgan": {"channels": (_INT, 1, 4), "base": (_INT, 1, 512), "n_layers": (_INT, 1, 8)},
}
MAX_FILTER_LAYERS = 6  # an autoencoder's "filters" list: at most this many stride-2 layers


def _kwarg_problem(name: str, value: Any, rule: tuple) -> str | None:
    """Why ``value`` does not fit ``rule`` (see :data:`KWARG_RULES`), or None when it does."""
    kind, low, high = rule
    if kind == "threshold":
        ok = value is None or (type(value) in (int, float) and 0 < value < 1)
        return None if ok else f"must be null or a number strictly between 0 and 1, got {value!r}"
    if kind == "ints":
        ok = (isinstance(value, (list, tuple)) and 1 <= len(value) <= MAX_FILTER_LAYERS
              and all(type(v) is int and low <= v <= high for v in value))
        return None if ok else (f"must be a list of 1 to {MAX_FILTER_LAYERS} whole numbers from {low} to {high}, "
                                f"got {value!r}")
    if type(value) not in kind or (kind is not _BOOL and not low <= value <= high):
        what = "true or false" if kind is _BOOL else (f"a whole number from {low} to {high}" if kind is _INT
                                                     else f"a number from {low} to {high}")
        return f"must be {what}, got {value!r}"
    return None


def check_model_fields(model_class: Any, kwargs: Any, what: str = "card") -> None:
    """Check a card's ``model_class`` and ``model_kwargs`` (types, bounded sizes) without building anything.

    Raises
    ------
    CheckpointError
        Naming ``what`` (the file) and the field that is wrong.
    """
    if not isinstance(model_class, str) or model_class not in MODEL_CLASSES:
        raise CheckpointError(f"{what}: field 'model_class' must be one of {sorted(MODEL_CLASSES)}, "
                              f"got {model_class!r}")
    if not isinstance(kwargs, dict):
        raise CheckpointError(f"{what}: field 'model_kwargs' must be a JSON object, got {type(kwargs).__name__}")
    rules = KWARG_RULES[model_class]
    unknown = sorted(k for k in kwargs if k not in rules)
    if unknown:
        raise CheckpointError(f"{what}: field 'model_kwargs' has keys a {model_class} does not take: {unknown} "
                              f"(known: {sorted(rules)})")
    for name, value in kwargs.items():
        problem = _kwarg_problem(name, value, rules[name])
        if problem:
            raise CheckpointError(f"{what}: field 'model_kwargs.{name}' {problem}")


def build_model(model_class: str, kwargs: dict, device: str | torch.device | None = None) -> nn.Module:
    """Instantiate a registered model class from JSON constructor arguments, checked first.

    ``device="meta"`` builds the shapes only (no memory for the weights): :func:`load` uses it to compare
    the card with the weights file before the real model is built.
    """
    check_model_fields(model_class, kwargs, f"model {model_class!r}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    try:
        with torch.device(device) if device is not None else contextlib.nullcontext():
            return MODEL_CLASSES[model_class](**kwargs)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"cannot build {model_class} from {kwargs}: {exc}") from exc


def versions() -> dict[str, str]:
    """Library versions recorded in every checkpoint."""
    import numpy
    import safetensors

    import denoising

    return {"denoising": denoising.__version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "safetensors": safetensors.__version__, "python": platform.python_version()}


# ---------------------------------------------------------------- atomic files
@contextlib.contextmanager
def _temporary_beside(path: Path) -> Iterator[Path]:
    """A fresh temporary path in ``path``'s folder (so a rename onto ``path`` is atomic); removed if left over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _finish(tmp: Path) -> None:
    """Make a written temporary file shareable and durable before it is renamed into place."""
    os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; checkpoints are meant to be shared
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())  # a rename must never publish data still only in the page cache


def _atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``: a reader sees the old file or the new one."""
    with _temporary_beside(path) as tmp:
        write(tmp)
        _finish(tmp)
        os.replace(tmp, path)


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n"
    _atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None) -> None:
    from safetensors.torch import save_file

    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    save_file(flat, str(path), metadata=metadata)


def write_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Write tensors as safetensors, atomically (tensors are made contiguous CPU copies)."""
    _atomic_write(Path(path), lambda tmp: _save_tensors(tmp, tensors, metadata))


def read_json(path: str | Path) -> dict:
    """Read a JSON object, raising :class:`CheckpointError` when missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"missing checkpoint file {path}")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc})") from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} does not hold a JSON object")
    return obj


#: Largest safetensors header read (bytes of JSON); a model's is about 4 KB, a resume state's a few hundred KB.
MAX_HEADER_BYTES = 16 * 1024 * 1024
#: Largest tensor data a weights or state file may hold (bytes); the shipped networks are under 2 MB each.
MAX_TENSOR_BYTES = 2 * 1024 ** 3
#: Bytes per element of each safetensors dtype this code may meet.
_ITEM_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4, "U32": 4,
               "F32": 4, "I64": 8, "U64": 8, "F64": 8}


def _entry_problem(key: str, entry: Any) -> str | None:
    """Why one tensor entry of a safetensors header is malformed (None when it is well formed)."""
    if not isinstance(entry, dict) or entry.get("dtype") not in _ITEM_BYTES:
        return f"tensor {key[:60]!r} has no known dtype"
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not (isinstance(shape, list) and len(shape) <= 8 and all(type(d) is int and 0 <= d <= 2**31 for d in shape)):
        return f"tensor {key[:60]!r} has a malformed shape"
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int and o >= 0 for o in offsets)):
        return f"tensor {key[:60]!r} has malformed data offsets"
    length = _ITEM_BYTES[entry["dtype"]]
    for d in shape:
        length *= d
    if offsets[1] - offsets[0] != length:
        return f"tensor {key[:60]!r} of shape {tuple(shape)} does not match its {offsets[1] - offsets[0]} bytes"
    return None


def check_tensor_file(path: str | Path) -> None:
    """Check a safetensors file from its header alone, before its tensors are read into memory.

    The 8-byte header length must fit the file and :data:`MAX_HEADER_BYTES`; the header must be a JSON
    object of well-formed entries (known dtype, shape, offsets of exactly shape x item size bytes),
    laid end to end and ending exactly where the file ends (a file cut short or padded is refused),
    holding at most :data:`MAX_TENSOR_BYTES`.

    Raises
    ------
    CheckpointError
        One line naming the file and what is wrong.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(8)
            length = int.from_bytes(head, "little") if len(head) == 8 else -1
            if length < 0 or length > min(MAX_HEADER_BYTES, size - 8):
                raise CheckpointError(f"{path} is truncated or corrupt: its header length does not fit the "
                                      f"{size:,}-byte file")
            header = json.loads(handle.read(length).decode("utf-8"))
    except CheckpointError:
        raise
    except OSError as exc:
        raise CheckpointError(f"{path} could not be read ({exc.strerror or type(exc).__name__})") from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CheckpointError(f"{path} is truncated or corrupt: its header is not JSON") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} is corrupt: its header is not a JSON object")
    entries = {k: v for k, v in header.items() if k != "__metadata__"}
    problem = next((p for k, v in entries.items() if (p := _entry_problem(k, v))), None)
    if problem:
        raise CheckpointError(f"{path} is corrupt: {problem}")
    spans = sorted(tuple(v["data_offsets"]) for v in entries.values())
    end = 0
    for begin, stop in spans:
        if begin != end:
            raise CheckpointError(f"{path} is corrupt: its tensors overlap or leave gaps")
        end = stop
    if end > MAX_TENSOR_BYTES:
        raise CheckpointError(f"{path} holds {end:,} bytes of tensors, more than the {MAX_TENSOR_BYTES:,} allowed")
    if 8 + length + end != size:
        raise CheckpointError(f"{path} is truncated or corrupt: its header describes {8 + length + end:,} bytes, "
                              f"the file has {size:,}")


def read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file, raising :class:`CheckpointError` when missing, truncated or corrupt.

    The header is checked first (:func:`check_tensor_file`), so a malformed file is refused before any
    tensor memory is allocated.
    """
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"missing checkpoint file {path}")
    check_tensor_file(path)
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for every malformation
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise CheckpointError(f"{path} is truncated or corrupt, not a readable safetensors file ({detail})") from exc


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------- model checkpoints
def _check_arch_model(arch: str, model_class: str, what: str) -> None:
    expected = ARCH_MODEL.get(arch)
    if expected is not None and model_class != expected:
        raise CheckpointError(f"{what}: a {arch} checkpoint holds a {expected!r} model, not {model_class!r}")


def save(model: nn.Module, directory: str | Path, arch: str, noise_kind: str, meta: dict | None = None,
         weights_dtype: str = "float16") -> Path:
    """Save ``model`` as ``<directory>/<arch>-<noise_kind>.safetensors`` + ``.json``.

    Parameters
    ----------
    model : torch.nn.Module
        An :class:`Autoencoder`, :class:`UNet` or :class:`PatchGAN` (the class
        :data:`denoising.catalogue.ARCH_MODEL` names for ``arch``, when it names one).
    directory : str or Path
        Output folder (created if needed).
    arch : str
        Training recipe: ``"autoencoder"``, ``"pix2pix"`` or ``"unet_l1"``.
    noise_kind : str
        Noise kind the model was trained for.
    meta : dict, optional
        Extra JSON-ready fields (noise spec, config, history, timings, data summary ...).
    weights_dtype : {"float16", "float32"}
        Storage dtype of floating-point tensors (integer buffers keep their dtype).

    Returns
    -------
    Path
        The safetensors path. The order of writes (module docstring) makes a kill at any instant
        leave a loadable checkpoint: the old one or the new one.
    """
    if weights_dtype not in DTYPES:
        raise ValueError(f"weights_dtype must be one of {sorted(DTYPES)}, got {weights_dtype!r}")
    _check_arch_model(arch, model_class_name(model), "save")
    stem = checkpoint_stem(directory, arch, noise_kind)
    weights, card, pending = stem.with_suffix(".safetensors"), stem.with_suffix(".json"), _pending(stem)
    dtype = DTYPES[weights_dtype]
    tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    with _temporary_beside(weights) as tmp:
        _save_tensors(tmp, tensors, {"arch": arch, "noise_kind": noise_kind, "weights_dtype": weights_dtype})
        _finish(tmp)
        record = _card(model, arch, noise_kind, weights_dtype, meta, weights.name, tmp)
        write_json(pending, record)
        os.replace(tmp, weights)
    os.replace(pending, card)
    log.info("saved %s (%s, %d bytes)", weights, weights_dtype, record["weights_bytes"])
    return weights


def _card(model: nn.Module, arch: str, noise_kind: str, weights_dtype: str, meta: dict | None, weights_name: str,
          weights_file: Path) -> dict:
    record = dict(meta or {})
    record.update({
        "format_version": FORMAT_VERSION, "arch": arch, "noise_kind": noise_kind,
        "model_class": model_class_name(model), "model_kwargs": model.config(),
        "weights_dtype": weights_dtype, "weights_file": weights_name, "weights_sha256": _sha256(weights_file),
        "weights_bytes": weights_file.stat().st_size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "versions": versions(), "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    return record


def _pending(stem: Path) -> Path:
    """Where :func:`save` parks the new card until the new weights are in place."""
    return stem.with_name(stem.name + PENDING_SUFFIX)


def _resolve(source: str | Path | tuple) -> tuple[Path, str | None, str | None]:
    """(stem, expected arch, expected noise kind); a path names neither."""
    if isinstance(source, tuple):
        directory, arch, kind = source
        return checkpoint_stem(directory, arch, kind), arch, kind
    path = Path(source)
    return (path.with_suffix("") if path.suffix in (".json", ".safetensors") else path), None, None


def _mismatch(expected: dict[str, torch.Size], tensors: dict[str, torch.Tensor], what: str) -> str | None:
    """Why ``tensors`` do not fit a model whose state shapes are ``expected`` (None when they do)."""
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    shapes = [f"{k}: expected {tuple(expected[k])}, got {tuple(tensors[k].shape)}"
              for k in expected if k in tensors and expected[k] != tensors[k].shape]
    if not (missing or unexpected or shapes):
        return None
    parts = []
    if missing:
        parts.append(f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    if unexpected:
        parts.append(f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
    if shapes:
        parts.append("shape mismatch " + "; ".join(shapes[:5]))
    return f"weights in {what} do not match the architecture: " + ", ".join(parts)


def _dtype_problem(expected: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor], weights_dtype: torch.dtype,
                   what: str) -> str | None:
    """Why the stored dtypes differ from the card's (floating tensors) or the model's (integer buffers)."""
    for key, value in expected.items():
        wanted = weights_dtype if value.dtype.is_floating_point else value.dtype
        if tensors[key].dtype != wanted:
            return (f"weights in {what} are stored as the wrong type: {key} is {str(tensors[key].dtype)[6:]}, "
                    f"the card says {str(wanted)[6:]}")
    return None


def load_state_dict_strict(model: nn.Module, tensors: dict[str, torch.Tensor], what: str) -> None:
    """Load ``tensors`` into ``model`` after checking names and shapes; explain any mismatch."""
    expected = model.state_dict()
    problem = _mismatch({k: v.shape for k, v in expected.items()}, tensors, what)
    if problem:
        raise CheckpointError(problem)
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()}, strict=True)


def load(source: str | Path | tuple, arch: str | None = None, device: str | torch.device = "cpu"
         ) -> tuple[nn.Module, dict]:
    """Rebuild a model from its JSON and load its weights strictly.

    Parameters
    ----------
    source : str, Path or tuple
        A ``.safetensors`` or ``.json`` path (or the common stem), or ``(directory, arch, noise_kind)``;
        the tuple form also checks that the checkpoint is of that arch and noise kind.
    arch : str, optional
        Expected training recipe; a checkpoint of another arch raises :class:`CheckpointError`.
    device : str or torch.device
        Where to put the model (weights are always float32 in memory).

    Returns
    -------
    model : torch.nn.Module
        In eval mode.
    meta : dict
        The checkpoint's JSON.

    Raises
    ------
    CheckpointError
        Missing file, unreadable JSON, a card that fails :func:`validate_card` (missing keys, wrong
        types, model sizes out of :data:`KWARG_RULES`' bounds), weights whose SHA-256 differs from the
        card's, wrong arch or noise kind, truncated or corrupt weights, or weights that do not fit the
        architecture. All are found before the model is built (a shapes-only build on the ``meta``
        device compares the card with the weights first).
    """
    stem, expected_arch, expected_kind = _resolve(source)
    expected_arch = arch or expected_arch
    weights_path = stem.with_suffix(".safetensors")
    if not weights_path.is_file():
        raise CheckpointError(f"missing checkpoint weights {weights_path}")
    tensors = read_tensors(weights_path)  # as much memory as the file holds: truncation is found here
    # the card is validated and its SHA-256 compared with the weights before anything is built from it
    json_path, meta = _matching_card(stem, weights_path)
    if expected_arch is not None and meta["arch"] != expected_arch:
        raise CheckpointError(f"{json_path} is a {meta['arch']!r} checkpoint, expected {expected_arch!r}")
    if expected_kind is not None and meta["noise_kind"] != expected_kind:
        raise CheckpointError(f"{json_path} was trained for {meta['noise_kind']!r} noise, not {expected_kind!r}: "
                              "the file is misnamed")
    what = f"{weights_path} ({meta['model_class']} {meta['model_kwargs']})"
    # shapes only (no memory): a card that does not describe these weights is refused before a real build
    shapes = build_model(meta["model_class"], meta["model_kwargs"], device="meta").state_dict()
    problem = _mismatch({k: v.shape for k, v in shapes.items()}, tensors, what) \
        or _dtype_problem(shapes, tensors, DTYPES[meta["weights_dtype"]], what)
    if problem:
        raise CheckpointError(problem)
    model = build_model(meta["model_class"], meta["model_kwargs"])
    load_state_dict_strict(model, tensors, what)
    return model.to(device).eval(), meta


def _format_version_problem(value: Any) -> str | None:
    if type(value) is int and value == FORMAT_VERSION:
        return None
    if isinstance(value, str):
        return f"has format_version {value!r} (a string), this code reads the number {FORMAT_VERSION}"
    return f"has format_version {value!r}, this code reads {FORMAT_VERSION}"


def validate_card(meta: dict, path: str | Path) -> dict:
    """Check a card's required fields (types, bounded model sizes) without reading the weights; returns it.

    Raises
    ------
    CheckpointError
        Naming ``path`` and the first field that is missing or wrong.
    """
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise CheckpointError(f"{path} lacks required keys {missing}")
    problem = _format_version_problem(meta["format_version"])
    if problem:
        raise CheckpointError(f"{path} {problem}")
    for key in ("arch", "noise_kind"):
        if not isinstance(meta[key], str) or not meta[key]:
            raise CheckpointError(f"{path}: field {key!r} must be a non-empty string, got {meta[key]!r}")
    if meta["weights_dtype"] not in DTYPES:
        raise CheckpointError(f"{path}: field 'weights_dtype' must be one of {sorted(DTYPES)}, "
                              f"got {meta['weights_dtype']!r}")
    digest = meta["weights_sha256"]
    if not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
        raise CheckpointError(f"{path}: field 'weights_sha256' must be 64 lowercase hex digits, got {digest!r}")
    check_model_fields(meta["model_class"], meta["model_kwargs"], str(path))
    _check_arch_model(meta["arch"], meta["model_class"], str(path))
    _check_optional_fields(meta, path)
    return meta


_NUMBER, _TEXT, _NONE = (int, float), (str,), (type(None),)
#: the types a card's optional fields may have (what training writes; readers such as the Training page rely on it)
OPTIONAL_FIELD_TYPES: dict[str, tuple] = {
    "history": (list, dict), "data": (dict,), "versions": (dict,), "val_noisy_input": (dict,),
    "weights_bytes": (int,), "parameters": (int,), "epochs_run": (int,), "best_epoch": (int, *_NONE),
    "best_val_mae": _NUMBER + _NONE, "best_val_psnr": _NUMBER + _NONE, "wall_time_s": _NUMBER + _NONE,
    "stopped": _TEXT + _NONE, "selection": _TEXT + _NONE, "noise_label": _TEXT, "device": _TEXT,
    "device_name": _TEXT, "weights_file": _TEXT, "gate_threshold": (dict, *_NUMBER, *_NONE),
}


def _check_optional_fields(meta: dict, path: str | Path) -> None:
    for key, kinds in OPTIONAL_FIELD_TYPES.items():
        value = meta.get(key)
        if key in meta and (isinstance(value, bool) or not isinstance(value, kinds)):
            raise CheckpointError(f"{path}: field {key!r} has the wrong type ({type(value).__name__})")
    for key, kinds in (("val_noisy_input", _NUMBER), ("versions", _TEXT)):
        inner = meta.get(key) or {}
        bad = [k for k, v in inner.items() if isinstance(v, bool) or not isinstance(v, kinds)]
        if bad:
            raise CheckpointError(f"{path}: field '{key}.{bad[0]}' has the wrong type")
    size = (meta.get("data") or {}).get("image_size", [])
    if not isinstance(size, list) or not all(type(v) is int for v in size):
        raise CheckpointError(f"{path}: field 'data.image_size' must be a list of whole numbers")
    gate = meta.get("gate_threshold")
    if isinstance(gate, dict) and not isinstance(gate.get("chosen"), (*_NUMBER, *_NONE)):
        raise CheckpointError(f"{path}: field 'gate_threshold.chosen' must be a number or null")


def _read_card(path: Path) -> dict:
    return validate_card(read_json(path), path)


def _matching_card(stem: Path, weights_path: Path) -> tuple[Path, dict]:
    """The card whose SHA-256 matches the weights: ``<stem>.json``, or the pending card of an interrupted save."""
    json_path, pending = stem.with_suffix(".json"), _pending(stem)
    digest = _sha256(weights_path)
    if pending.is_file():
        with contextlib.suppress(CheckpointError):
            card = _read_card(pending)
            if card["weights_sha256"] == digest:
                # killed between the weights' rename and the card's: the pending card describes these weights
                log.warning("%s: using %s, left by a save that was interrupted before its last rename",
                            weights_path, pending.name)
                return pending, card
    meta = _read_card(json_path)
    if meta["weights_sha256"] != digest:
        raise CheckpointError(f"{weights_path} does not match {json_path.name} (SHA-256 differs): "
                              "the pair was not written together; retrain or restore both files")
    return json_path, meta


# ---------------------------------------------------------------- resume state (tensors + JSON, no pickle)
def optimizer_state(optimizer: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer's state dict into tensors (for safetensors) and JSON-ready rest."""
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for idx, entry in sd["state"].items():
        for name, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{idx}.{name}"] = value
            else:
                scalars[f"{idx}.{name}"] = value
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], info: dict,
                      prefix: str) -> None:
    """Inverse of :func:`optimizer_state`."""
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            idx, name = key[len(prefix) + 1:].split(".", 1)
            state.setdefault(int(idx), {})[name] = value
    for key, value in info.get("scalars", {}).items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in info["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def save_state(directory: str | Path, modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
               info: dict, extra: dict[str, torch.Tensor] | None = None) -> Path:
    """Write a resume state as ONE file, ``<directory>/state.safetensors``, replaced by one rename.

    Module weights and optimizer tensors (float32) are the file's tensors; ``info`` (plus the
    modules' constructor arguments and the optimizers' non-tensor state) is JSON in the file's
    metadata header. A kill at any instant leaves the previous state or this one, never a mix.
    ``extra`` tensors are stored under their own keys (e.g. ``best.<param>``). Returns the path.
    """
    tensors: dict[str, torch.Tensor] = dict(extra or {})
    info = dict(info)
    info["modules"] = {name: {"model_class": model_class_name(m), "model_kwargs": m.config()}
                       for name, m in modules.items()}
    info["optimizers"] = {}
    for name, m in modules.items():
        tensors.update({f"{name}.{k}": v for k, v in m.state_dict().items()})
    for name, opt in optimizers.items():
        t, rest = optimizer_state(opt, f"opt_{name}")
        tensors.update(t)
        info["optimizers"][name] = rest
    path = Path(directory) / STATE_FILE
    write_tensors(path, tensors, metadata={"format_version": str(FORMAT_VERSION),
                                           "info": json.dumps(info, sort_keys=True, allow_nan=True)})
    return path


def has_state(directory: str | Path) -> bool:
    """Whether ``directory`` holds a resume state."""
    return (Path(directory) / STATE_FILE).is_file()


def load_state(directory: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """Read a resume state written by :func:`save_state`; returns ``(info, tensors)``.

    Raises
    ------
    CheckpointError
        No state, or a truncated or corrupt one.
    """
    from safetensors import safe_open

    path = Path(directory) / STATE_FILE
    tensors = read_tensors(path)
    with safe_open(str(path), framework="pt") as f:
        header = f.metadata() or {}
    info = json.loads(header["info"]) if "info" in header else _legacy_state_info(path)
    for key in ("modules", "optimizers"):
        if key not in info:
            raise CheckpointError(f"{path} lacks required key {key!r}")
    return info, tensors


def _legacy_state_info(path: Path) -> dict:
    """The bookkeeping of a state written before it was one file (``state.json`` beside it, with a hash)."""
    legacy = path.with_name("state.json")
    if not legacy.is_file():
        raise CheckpointError(f"{path} holds no training bookkeeping: start the run again without resume")
    info = read_json(legacy)
    if info.get("state_sha256") != _sha256(path):
        raise CheckpointError(f"{path.parent} holds a {path.name} that does not match state.json")
    return info


def module_tensors(tensors: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """The entries of a resume state that belong to module ``name``."""
    return {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + ".")}


# ---------------------------------------------------------------- one writer per checkpoint name
def lock_path(directory: str | Path, arch: str, noise_kind: str) -> Path:
    """The lock file of a checkpoint name (in the git-ignored ``resume`` folder beside the resume states)."""
    return Path(directory) / "resume" / f"{arch}-{noise_kind}.lock"


def _holder(info_path: Path) -> str:
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
        return f"pid {info['pid']} on {info['host']}, since {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (it has not said which yet)"


@contextlib.contextmanager
def writer_lock(directory: str | Path, arch: str, noise_kind: str) -> Iterator[Path]:
    """Hold the right to write ``<directory>/<arch>-<noise_kind>.*`` (and its resume state) for a block.

    Who holds it (pid, host, start time in UTC) is written to ``<lock>.json`` beside the lock
    file, so a second writer can say whom it is waiting for. The operating system releases the
    lock when the process dies, however it dies.

    Raises
    ------
    CheckpointLocked
        At once, when another process (or another lock in this one) holds the name.
    """
    from filelock import FileLock, Timeout

    path = lock_path(directory, arch, noise_kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    info_path = path.with_name(path.name + ".json")
    lock = FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise CheckpointLocked(f"{checkpoint_stem(directory, arch, noise_kind)} is being written by "
                               f"{_holder(info_path)}; wait for that run to finish or choose another --out") from None
    try:
        write_json(info_path, {"pid": os.getpid(), "host": socket.gethostname(),
                               "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        yield path
    finally:
        info_path.unlink(missing_ok=True)
        lock.release()
