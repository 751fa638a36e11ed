"""Checkpoints: safetensors weights plus a same-stem JSON that can rebuild the model alone.

``<dir>/<arch>-<noise_kind>.safetensors`` holds the weights (float16 or float32, recorded in
the JSON); ``<dir>/<arch>-<noise_kind>.json`` holds the model class and constructor arguments,
the noise spec, the training config and history, timings, device, library versions and a data
summary. Everything is written atomically (temporary file in the same folder, then
:func:`os.replace`), so an interrupted run never leaves half a file. No pickle anywhere: the
resume state (optimizer included) is also safetensors + JSON (see :func:`save_state`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .autoencoder import Autoencoder
from .patchgan import PatchGAN
from .unet import UNet

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MODEL_CLASSES: dict[str, type[nn.Module]] = {"autoencoder": Autoencoder, "unet": UNet, "patchgan": PatchGAN}
#: training recipe -> generator class it ships
ARCH_MODEL = {"autoencoder": "autoencoder", "pix2pix": "unet", "unet_l1": "unet"}
REQUIRED_KEYS = ("format_version", "arch", "model_class", "model_kwargs", "noise_kind", "weights_dtype",
                 "weights_sha256")
DTYPES = {"float16": torch.float16, "float32": torch.float32}


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, corrupt or does not match what was asked for."""


def checkpoint_stem(directory: str | Path, arch: str, noise_kind: str) -> Path:
    """``<directory>/<arch>-<noise_kind>`` (add ``.safetensors`` / ``.json``)."""
    return Path(directory) / f"{arch}-{noise_kind}"


def model_class_name(model: nn.Module) -> str:
    """Registry name of a model instance (``"autoencoder"``, ``"unet"``, ``"patchgan"``)."""
    for name, cls in MODEL_CLASSES.items():
        if type(model) is cls:
            return name
    raise TypeError(f"unknown model class {type(model).__name__}")


def build_model(model_class: str, kwargs: dict) -> nn.Module:
    """Instantiate a registered model class from JSON constructor arguments."""
    if model_class not in MODEL_CLASSES:
        raise CheckpointError(f"unknown model class {model_class!r} (known: {sorted(MODEL_CLASSES)})")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    try:
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
def _atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path`` (same folder, so the rename is atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; checkpoints are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n"
    _atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Write tensors as safetensors, atomically (tensors are made contiguous CPU copies)."""
    from safetensors.torch import save_file

    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    _atomic_write(Path(path), lambda tmp: save_file(flat, tmp, metadata=metadata))


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


def read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file, raising :class:`CheckpointError` when missing, truncated or corrupt."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"missing checkpoint file {path}")
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for every malformation
        raise CheckpointError(f"{path} is truncated or corrupt, not a readable safetensors file ({exc})") from exc


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- model checkpoints
def save(model: nn.Module, directory: str | Path, arch: str, noise_kind: str, meta: dict | None = None,
         weights_dtype: str = "float16") -> Path:
    """Save ``model`` as ``<directory>/<arch>-<noise_kind>.safetensors`` + ``.json``.

    Parameters
    ----------
    model : torch.nn.Module
        An :class:`Autoencoder`, :class:`UNet` or :class:`PatchGAN`.
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
        The safetensors path. The weights are written first, then the JSON (which records the
        weights' SHA-256, so a pair left inconsistent by a crash is detected on load).
    """
    if weights_dtype not in DTYPES:
        raise ValueError(f"weights_dtype must be one of {sorted(DTYPES)}, got {weights_dtype!r}")
    stem = checkpoint_stem(directory, arch, noise_kind)
    dtype = DTYPES[weights_dtype]
    tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    weights = stem.with_suffix(".safetensors")
    write_tensors(weights, tensors, metadata={"arch": arch, "noise_kind": noise_kind, "weights_dtype": weights_dtype})
    record = dict(meta or {})
    record.update({
        "format_version": FORMAT_VERSION, "arch": arch, "noise_kind": noise_kind,
        "model_class": model_class_name(model), "model_kwargs": model.config(),
        "weights_dtype": weights_dtype, "weights_file": weights.name, "weights_sha256": _sha256(weights),
        "weights_bytes": weights.stat().st_size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "versions": versions(), "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    write_json(stem.with_suffix(".json"), record)
    log.info("saved %s (%s, %d bytes)", weights, weights_dtype, record["weights_bytes"])
    return weights


def _resolve(source: str | Path | tuple) -> tuple[Path, str | None, str | None]:
    """(stem, expected arch, expected noise kind); a path names neither."""
    if isinstance(source, tuple):
        directory, arch, kind = source
        return checkpoint_stem(directory, arch, kind), arch, kind
    path = Path(source)
    return (path.with_suffix("") if path.suffix in (".json", ".safetensors") else path), None, None


def load_state_dict_strict(model: nn.Module, tensors: dict[str, torch.Tensor], what: str) -> None:
    """Load ``tensors`` into ``model`` after checking names and shapes; explain any mismatch."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    shapes = [f"{k}: expected {tuple(expected[k].shape)}, got {tuple(tensors[k].shape)}"
              for k in expected if k in tensors and expected[k].shape != tensors[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        if shapes:
            parts.append("shape mismatch " + "; ".join(shapes[:5]))
        raise CheckpointError(f"weights in {what} do not match the architecture: " + ", ".join(parts))
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
        Missing file, unreadable JSON, missing JSON keys, wrong arch or noise kind, truncated or corrupt
        weights, or weights that do not fit the architecture.
    """
    stem, expected_arch, expected_kind = _resolve(source)
    expected_arch = arch or expected_arch
    json_path, weights_path = stem.with_suffix(".json"), stem.with_suffix(".safetensors")
    if not weights_path.is_file():
        raise CheckpointError(f"missing checkpoint weights {weights_path}")
    meta = read_json(json_path)
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise CheckpointError(f"{json_path} lacks required keys {missing}")
    if expected_arch is not None and meta["arch"] != expected_arch:
        raise CheckpointError(f"{json_path} is a {meta['arch']!r} checkpoint, expected {expected_arch!r}")
    if expected_kind is not None and meta["noise_kind"] != expected_kind:
        raise CheckpointError(f"{json_path} was trained for {meta['noise_kind']!r} noise, not {expected_kind!r}: "
                              "the file is misnamed")
    if meta["format_version"] != FORMAT_VERSION:
        raise CheckpointError(f"{json_path} has format_version {meta['format_version']}, this code reads {FORMAT_VERSION}")
    model = build_model(meta["model_class"], meta["model_kwargs"])
    tensors = read_tensors(weights_path)
    if _sha256(weights_path) != meta["weights_sha256"]:
        raise CheckpointError(f"{weights_path} does not match {json_path.name} (SHA-256 differs): "
                              "the pair was not written together; retrain or restore both files")
    load_state_dict_strict(model, tensors, f"{weights_path} ({meta['model_class']} {meta['model_kwargs']})")
    return model.to(device).eval(), meta


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
               info: dict, extra: dict[str, torch.Tensor] | None = None) -> None:
    """Write a resume state: ``state.safetensors`` (weights + optimizer tensors, float32) + ``state.json``.

    ``extra`` tensors are stored under their own keys (e.g. ``best.<param>``).
    """
    directory = Path(directory)
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
    write_tensors(directory / "state.safetensors", tensors)
    info["state_sha256"] = _sha256(directory / "state.safetensors")
    write_json(directory / "state.json", info)


def load_state(directory: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """Read a resume state written by :func:`save_state`; returns ``(info, tensors)``."""
    directory = Path(directory)
    info = read_json(directory / "state.json")
    for key in ("modules", "optimizers", "state_sha256"):
        if key not in info:
            raise CheckpointError(f"{directory / 'state.json'} lacks required key {key!r}")
    tensors = read_tensors(directory / "state.safetensors")
    if _sha256(directory / "state.safetensors") != info["state_sha256"]:
        raise CheckpointError(f"{directory} holds a state.safetensors that does not match state.json")
    return info, tensors


def module_tensors(tensors: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """The entries of a resume state that belong to module ``name``."""
    return {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + ".")}
