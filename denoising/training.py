"""Training loops for the learned denoisers (one model per architecture and noise kind).

Recipes (``arch``, names from :data:`denoising.catalogue.ARCHS`):

* ``autoencoder``: the post's autoencoder, MSE loss, Adam(1e-3, beta1 0.9) as in the post.
* ``unet_l1``: the U-Net generator alone with an L1 loss (the ablation the post never ran);
  same optimizer settings as this project's pix2pix, so the comparison isolates the GAN loss.
* ``pix2pix``: U-Net generator + conditional PatchGAN, least-squares GAN loss + 100 x L1. As in
  the official pix2pix code, each batch runs the generator once, then a discriminator step on
  the detached output, then a generator step against the just-updated discriminator.

Optimizer: the post (like the pix2pix paper) trained pix2pix with Adam, learning rate 2e-4,
beta1 0.5. This project keeps beta1 0.5 but starts both U-Net recipes at 1e-3, its own choice:
on 4,000 CelebA faces at 28x28 (Gaussian noise, 4 epochs) 2e-4 reached validation MAE 0.107 and
1e-3 reached 0.089, with no instability, and a CPU budget of about 20 epochs needs the faster
rate. ``lr=2e-4`` (``--lr 2e-4``) gives the post's pix2pix settings.

Every epoch draws fresh noise (seeded from ``(seed, epoch, batch)``) on reshuffled faces; the
validation faces get one fixed seeded noise draw. After each epoch the validation MAE and PSNR
are logged and the kept epoch is updated by the rule of :func:`selection_rule` (an epoch replaces
the kept one only when its validation MAE is lower by more than ``min_improvement``, relative);
early stopping and the learning-rate plateau watch the same rule. The kept weights are the
checkpoint (``<out>/<arch>-<kind>.safetensors`` + ``.json``, rewritten every epoch); the last
epoch's weights and optimizer state are ``<out>/resume/<arch>-<kind>/state.safetensors`` (one
file), so ``resume=True`` continues exactly where the run stopped. A kill at any instant leaves a
loadable checkpoint and resume state (:mod:`denoising.models.checkpoint`), and one process at a
time may write a checkpoint name.

A run that diverges stops with :class:`TrainingError` and writes nothing more: a loss that is not
finite or grows past ``explode_factor`` times its first value (every loss term is watched, the
discriminator's too), or a validation MAE worse than ``diverge_factor`` times the worse of two
do-nothing outputs (the noisy input itself and a flat mid-grey image).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from denoising.catalogue import (
    ARCH_MODEL,
    ARCHS,
    DEFAULT_PRESET,
    NOISE_NAMES,
    RANGE_ARCHS,
    SCHEDULES,
    SELECT_ON,
    STRENGTHS,
    SWEEP_STRENGTHS,
)
from denoising.noise import level_strength, strength_level
from denoising.runs import RUNS_DIR

from .models import checkpoint as ckpt
from .models.autoencoder import Autoencoder
from .models.patchgan import PatchGAN
from .models.unet import UNet

log = logging.getLogger(__name__)

#: Adam (learning rate, beta1) per recipe when the config leaves them None; see the module
#: docstring for where they come from (pix2pix's 1e-3 is this project's choice, not the post's 2e-4).
OPTIM_DEFAULTS = {"autoencoder": (1e-3, 0.9), "pix2pix": (1e-3, 0.5), "unet_l1": (1e-3, 0.5),
                  "unet_range": (1e-3, 0.9)}
#: What a range recipe's U-Net adds to ``TrainConfig.unet`` (see :class:`~denoising.models.unet.UNet`).
RANGE_UNET = {"cond_channels": 1, "gated": True, "full_res_layers": 3, "extreme_hint": True}
RANGE_LOSSES = ("mse", "psnr")
#: a face's squared error is floored here in the "psnr" loss (60 dB): an exact face would weigh infinitely
PSNR_LOSS_FLOOR = 1e-6
#: Gate thresholds a finished range run chooses from on validation (None: the soft gate as trained).
GATE_THRESHOLDS = (None, 0.5, 0.6, 0.7, 0.8, 0.9)
#: What configs saved before the cosine schedule existed used (their cards lack the two keys).
LEGACY_RULE = {"schedule": "plateau", "select_on": "val_mae"}
#: A range recipe draws each training face's noise level log-uniformly from the sweep's mildest level
#: divided by the first factor to its strongest times the second, so both ends are inside the range.
RANGE_MARGIN = (1.5, 1.25)
_NOISE_STREAM, _SHUFFLE_STREAM, _VAL_STREAM, _TORCH_STREAM = 1, 2, 3, 4
#: the flat image whose validation MAE bounds a sane model's (with the noisy input's)
FLAT_GREY = 0.5


class TrainingError(RuntimeError):
    """Training had to stop (NaN, inf, exploding loss or useless validation output) or could not start."""


class TrainingSetupError(TrainingError):
    """Training cannot start: bad arguments, unusable data, a locked or existing checkpoint, or a resume state for another run."""


@dataclass
class TrainConfig:
    """Training settings (stored in the checkpoint JSON).

    Attributes
    ----------
    max_epochs : int
        Epochs to run (the ``"plateau"`` schedule may stop sooner).
    schedule : {"cosine", "plateau"}
        ``"cosine"``: the learning rate follows half a cosine from its start value to zero over
        ``max_epochs`` and every epoch runs (no run is stopped while it is still learning).
        ``"plateau"`` (the per-preset checkpoints' rule): the rate shrinks after ``lr_patience``
        epochs without improvement and the run stops after ``patience``.
    select_on : {"val_psnr", "val_mae"}
        Validation score that picks the kept epoch (:func:`selection_rule`).
    range_loss : {"mse", "psnr"}
        Loss of range recipes: ``"mse"``, the squared error over the batch (dominated by the
        strongest noise in it), or ``"psnr"``, minus each face's PSNR (capped at 60 dB), averaged,
        so every strength counts alike (see :meth:`Trainer.gated_step`). Chosen on validation
        (Gaussian, 6 epochs each, 780 faces over the sweep's six strengths): "psnr" 26.50 dB mean
        (36.88 at σ 0.02, 19.23 at σ 0.45), "mse" 26.37 dB (35.62 and 19.76).
    gate_weight : float
        Weight of the gate's own loss (binary cross-entropy against "this value was changed by
        the noise") for gated networks (range recipes).
    patience : int
        Stop after this many epochs in a row without an improvement (see ``min_improvement``).
    min_improvement : float
        Smallest *relative* decrease of validation MAE that counts as an improvement (0.002 = 0.2 %);
        relative because MAE spans 0.002 (salt & pepper) to 0.07 (Gaussian) across noise kinds.
        Only an improvement replaces the kept epoch (:func:`selection_rule`).
    lr_patience, lr_factor : int, float
        Multiply the learning rate by ``lr_factor`` after every ``lr_patience`` epochs in a row
        without improvement, so a plateau is first attacked with smaller steps before stopping.
    batch_size : int
        Faces per step.
    lr, beta1 : float or None
        Adam learning rate and beta1; None takes the recipe's default (:data:`OPTIM_DEFAULTS`).
    l1_weight : float
        Weight of the L1 term in pix2pix's generator loss (pix2pix: 100).
    seed : int
        Seeds weights, shuffling and noise.
    weights_dtype : str
        Storage dtype of the shipped weights ("float16" or "float32").
    limit, val_limit : int or None
        Use only the first N training / validation faces (smoke runs).
    unet : dict
        Constructor arguments of the U-Net generator.
    patchgan : dict
        Constructor arguments of the PatchGAN discriminator.
    explode_factor : float
        Stop when any loss term exceeds this multiple of its value on the run's first batch.
    diverge_factor : float
        Stop when the validation MAE exceeds this multiple of the worse of the noisy input's and
        a flat mid-grey image's (a model that far behind doing nothing has diverged).
    num_threads : int or None
        CPU threads for torch (None: all cores).
    """

    max_epochs: int = 60
    schedule: str = "cosine"
    select_on: str = "val_psnr"
    range_loss: str = "psnr"
    gate_weight: float = 0.0
    patience: int = 6
    min_improvement: float = 0.002
    lr_patience: int = 2
    lr_factor: float = 0.5
    batch_size: int = 64
    lr: float | None = None
    beta1: float | None = None
    l1_weight: float = 100.0
    seed: int = 0
    weights_dtype: str = "float16"
    limit: int | None = None
    val_limit: int | None = None
    unet: dict = field(default_factory=lambda: {"base": 16, "depth": 4})
    patchgan: dict = field(default_factory=lambda: {"base": 16, "n_layers": 2})
    explode_factor: float = 100.0
    diverge_factor: float = 1.5
    num_threads: int | None = None

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Rebuild from :func:`dataclasses.asdict` output, ignoring unknown keys."""
        names = {f.name for f in fields(cls)}
        return cls(**{**LEGACY_RULE, **{k: v for k, v in d.items() if k in names}})


def check_config(arch: str, config: TrainConfig) -> None:
    """Raise :class:`TrainingSetupError` naming the first setting that cannot train."""
    if arch not in ARCHS:
        raise TrainingSetupError(f"unknown arch {arch!r} (choose from {', '.join(ARCHS)})")
    if config.weights_dtype not in ckpt.DTYPES:
        raise TrainingSetupError(f"weights_dtype must be float16 or float32, got {config.weights_dtype!r}")
    positive = {"lr": config.lr, "lr_factor": config.lr_factor, "explode_factor": config.explode_factor,
                "diverge_factor": config.diverge_factor}
    for name, value in positive.items():
        if value is not None and not (math.isfinite(value) and value > 0):
            raise TrainingSetupError(f"{name} must be a positive finite number, got {value}")
    for name in ("max_epochs", "patience", "lr_patience", "batch_size"):
        if getattr(config, name) < 1:
            raise TrainingSetupError(f"{name} must be at least 1, got {getattr(config, name)}")
    if not 0 <= config.min_improvement < 1:
        raise TrainingSetupError(f"min_improvement is a fraction in [0, 1), got {config.min_improvement}")
    if config.beta1 is not None and not 0 <= config.beta1 < 1:
        raise TrainingSetupError(f"beta1 must be in [0, 1), got {config.beta1}")
    if config.schedule not in SCHEDULES or config.select_on not in SELECT_ON:
        raise TrainingSetupError(f"schedule must be one of {', '.join(SCHEDULES)} and select_on one of "
                                 f"{', '.join(SELECT_ON)}, got {config.schedule!r} and {config.select_on!r}")
    if not isinstance(config.unet, dict) or not isinstance(config.patchgan, dict):
        raise TrainingSetupError("unet and patchgan must be dicts of constructor arguments")
    try:  # the same bounds a saved card must meet: refuse now rather than after training
        ckpt.check_model_fields("unet", {**config.unet, **(RANGE_UNET if arch in RANGE_ARCHS else {})}, "unet")
        ckpt.check_model_fields("patchgan", config.patchgan, "patchgan")
    except ckpt.CheckpointError as exc:
        raise TrainingSetupError(str(exc)) from None
    if config.range_loss not in RANGE_LOSSES:
        raise TrainingSetupError(f"range_loss must be one of {', '.join(RANGE_LOSSES)}, got {config.range_loss!r}")
    if not (math.isfinite(config.gate_weight) and config.gate_weight >= 0):
        raise TrainingSetupError(f"gate_weight must be a finite number >= 0, got {config.gate_weight}")


@dataclass
class TrainResult:
    """What :func:`train` produced."""

    checkpoint: Path
    best_epoch: int
    epochs: int
    stopped: str
    history: list[dict]


# ----------------------------------------------------------------------------- which epoch is kept
def improves(val_mae: float, kept_mae: float, min_improvement: float) -> bool:
    """Whether an epoch's validation MAE replaces the kept epoch's (any finite MAE replaces none)."""
    return not math.isfinite(kept_mae) or val_mae < kept_mae * (1.0 - min_improvement)


def improves_record(record: dict, kept: dict | None, min_improvement: float, select_on: str = "val_mae") -> bool:
    """Whether an epoch's history record replaces the kept one under the ``select_on`` score.

    MAE must fall by more than ``min_improvement`` (relative); PSNR must rise (any rise counts).
    """
    if kept is None:
        return True
    if select_on == "val_psnr":
        return record["val_psnr"] > kept["val_psnr"]
    return improves(record["val_mae"], kept["val_mae"], min_improvement)


def select_epoch(history: list[dict], min_improvement: float, select_on: str = "val_mae") -> int:
    """The epoch :func:`selection_rule` keeps from a run's history (0 for an empty history)."""
    kept = None
    for record in history:
        if improves_record(record, kept, min_improvement, select_on):
            kept = record
    return kept["epoch"] if kept else 0


def selection_rule(min_improvement: float, select_on: str = "val_mae", schedule: str = "plateau") -> str:
    """The rule that chose a checkpoint's epoch, in words (the card's ``selection`` field)."""
    if select_on == "val_psnr":
        rule = "the epoch with the highest validation PSNR (the earliest one if several tie)"
    elif min_improvement == 0:
        rule = "the epoch with the lowest validation MAE (the earliest one if several tie)"
    else:
        rule = (f"the last epoch whose validation MAE beat the previously kept epoch's by more than "
                f"{100 * min_improvement:g} % (relative: below {1 - min_improvement:g} x its MAE); epoch 1 is kept "
                "first, and smaller gains do not count, so a later epoch may have a slightly lower MAE")
    if schedule == "cosine":
        rule += ("; every epoch runs while the learning rate follows a cosine decay to zero, so no run is "
                 "stopped while it is still learning")
    return rule


# ----------------------------------------------------------------------------- models, data, device
def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given (``"auto"`` or None: CUDA when available, else CPU); logs the choice."""
    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainingSetupError("CUDA was requested but torch sees no GPU")
    log.info("training on %s (%s)", device, device_name(device))
    return device


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's cores and torch threads."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def _setup_device(device: str | torch.device | None, config: TrainConfig) -> torch.device:
    if device is None or str(device) == "auto" or torch.device(device).type == "cpu":
        torch.set_num_threads(config.num_threads or os.cpu_count() or 1)
    return pick_device(device)


def build_models(arch: str, image_size: int, config: TrainConfig) -> tuple[nn.Module, nn.Module | None]:
    """Generator (and discriminator for pix2pix) of a recipe, freshly initialised."""
    if arch not in ARCH_MODEL:
        raise TrainingSetupError(f"unknown arch {arch!r} (choose from {', '.join(ARCHS)})")
    if ARCH_MODEL[arch] == "autoencoder":
        gen = Autoencoder(image_size=image_size)
    elif arch in RANGE_ARCHS:  # told the noise level; gated so untouched values pass through exactly
        gen = UNet(**{**config.unet, **RANGE_UNET})
    else:
        gen = UNet(**config.unet)
    return gen, PatchGAN(**config.patchgan) if arch == "pix2pix" else None


def _split(faces: Any, config: TrainConfig) -> tuple[np.ndarray, np.ndarray, dict]:
    """Train/validation arrays and a data summary from a FaceSet or a ``(train, val)`` pair."""
    if isinstance(faces, (tuple, list)):
        train, val = faces
        summary: dict = {"source": "arrays"}
    else:
        train, val = faces.subset("train").images, faces.subset("validation").images
        table = faces.table
        summary = {"source": "FaceSet", "counts_per_split": {str(k): int(v) for k, v in table["split"].value_counts().items()}}
        if "source" in table:
            summary["counts_per_source"] = {str(k): int(v) for k, v in table["source"].value_counts().items()}
    train, val = train[: config.limit], val[: config.val_limit]
    if len(train) < 2 or len(val) < 1:
        raise TrainingSetupError(f"need at least 2 training and 1 validation faces, got {len(train)} and {len(val)}")
    if train.shape[1:] != val.shape[1:] or train.ndim != 4 or train.shape[-1] != 3:
        raise TrainingSetupError(f"faces must be (N, H, W, 3) arrays of one size, got {train.shape} and {val.shape}")
    digest = hashlib.sha256()
    for arr in (train, val):
        digest.update(np.ascontiguousarray(arr, dtype=np.float32).tobytes())
    summary.update({"n_train": int(len(train)), "n_validation": int(len(val)), "image_size": list(train.shape[1:3]),
                    "fingerprint_sha256": digest.hexdigest()})
    return np.asarray(train, np.float32), np.asarray(val, np.float32), summary


def _to_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    # NHWC numpy -> NCHW tensor stored channels-last, which is what CPU convolutions run fastest on
    t = torch.from_numpy(np.ascontiguousarray(images, np.float32)).permute(0, 3, 1, 2)
    return t.to(device).contiguous(memory_format=torch.channels_last)


def _rng(seed: int, stream: int, *parts: int) -> np.random.Generator:
    # SeedSequence mixing: stable across platforms and independent streams per (epoch, batch)
    return np.random.default_rng([int(seed), stream, *map(int, parts)])


def _noisy(spec: Any, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(np.asarray(spec.apply(clean, rng), np.float32), 0.0, 1.0)


def level_range(kind: str) -> tuple[float, float]:
    """The (mild, strong) noise levels a range recipe trains over: the sweep's ends widened by :data:`RANGE_MARGIN`."""
    levels = strength_level(kind, np.asarray(SWEEP_STRENGTHS[kind], np.float64))
    return float(levels.min()) / RANGE_MARGIN[0], float(levels.max()) * RANGE_MARGIN[1]


def strength_range(kind: str) -> tuple[float, float]:
    """The (mild, strong) strengths of :func:`level_range` (for Poisson, the mild end is the larger peak)."""
    mild, strong = level_range(kind)
    return float(level_strength(kind, mild)), float(level_strength(kind, strong))


def _noisy_each(spec: Any, clean: np.ndarray, strengths: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each face with ``spec``'s noise at its own strength, drawn from ``rng`` face after face."""
    if not len(clean):
        return clean.copy()
    return np.stack([_noisy(spec.with_strength(float(strength)), face[None], rng)[0]
                     for face, strength in zip(clean, strengths, strict=True)])


def draw_range_noise(spec: Any, clean: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Noisy copies with a strength drawn per face (log-uniform in level over :func:`level_range`).

    Returns the noisy faces and each face's noise level (what a conditioned network is told).
    """
    mild, strong = level_range(spec.kind)
    levels = np.exp(rng.uniform(np.log(mild), np.log(strong), len(clean)))
    noisy = _noisy_each(spec, clean, level_strength(spec.kind, levels), rng)
    return noisy, levels.astype(np.float32)


def validation_noise(spec: Any, clean: np.ndarray, rng: np.random.Generator, ranged: bool
                     ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The fixed noisy validation faces, and for a range recipe each face's strength and level.

    A range recipe's faces take the sweep's strengths in turn (face i gets strength i mod 6).
    """
    if not ranged:
        return _noisy(spec, clean, rng), None, None
    sweep = np.asarray(SWEEP_STRENGTHS[spec.kind], np.float64)
    strengths = sweep[np.arange(len(clean)) % len(sweep)]
    return _noisy_each(spec, clean, strengths, rng), strengths, strength_level(spec.kind, strengths).astype(np.float32)


def evaluate(model: nn.Module, noisy: np.ndarray, clean: np.ndarray, device: torch.device,
             batch_size: int = 256, levels: np.ndarray | None = None) -> tuple[float, float]:
    """Mean per-image MAE and PSNR (data_range 1, capped at 100 dB) of ``model`` on a noisy set.

    The definitions of :func:`denoising.metrics.mae` and :func:`denoising.metrics.psnr` averaged
    over images, computed in float64 on the model's float32 output; only an exact output differs
    (PSNR 100 dB here, ``inf`` there). ``levels``: each face's noise level, for a network told it.
    """
    maes, psnrs = per_image_scores(model, noisy, clean, device, batch_size, levels)
    return float(maes.mean()), float(psnrs.mean())


@torch.inference_mode()
def per_image_scores(model: nn.Module, noisy: np.ndarray, clean: np.ndarray, device: torch.device,
                     batch_size: int = 256, levels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-image MAE and PSNR arrays of :func:`evaluate`."""
    was_training = model.training
    model.eval()
    maes, psnrs = [], []
    for i in range(0, len(noisy), batch_size):
        x = _to_tensor(noisy[i:i + batch_size], device)
        level = None if levels is None else torch.as_tensor(levels[i:i + batch_size], device=device)
        out = (model(x) if level is None else model(x, level)).float()
        ref = _to_tensor(clean[i:i + batch_size], device)
        diff = (out - ref).flatten(1).double()
        maes.append(diff.abs().mean(1).cpu())
        mse = diff.pow(2).mean(1).clamp_min(1e-10)
        psnrs.append((10 * torch.log10(1.0 / mse)).cpu())
    model.train(was_training)
    return torch.cat(maes).numpy(), torch.cat(psnrs).numpy()


def _input_scores(noisy: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    diff = (noisy - clean).reshape(len(clean), -1).astype(np.float64)
    mse = np.maximum((diff ** 2).mean(1), 1e-10)
    return float(np.abs(diff).mean(1).mean()), float((10 * np.log10(1.0 / mse)).mean())


@dataclass
class TrainingData:
    """Training faces, validation faces with their fixed noisy copies, and what they score doing nothing."""

    train: np.ndarray
    val_clean: np.ndarray
    val_noisy: np.ndarray
    summary: dict
    noisy_mae: float
    noisy_psnr: float
    flat_mae: float
    #: range recipes: each validation face's strength and noise level (None for one preset)
    val_strengths: np.ndarray | None = None
    val_levels: np.ndarray | None = None

    def divergence_limit(self, config: TrainConfig) -> float:
        """Validation MAE above which a model has diverged (see :attr:`TrainConfig.diverge_factor`)."""
        return config.diverge_factor * max(self.noisy_mae, self.flat_mae)


def prepare_data(faces: Any, noise_spec: Any, config: TrainConfig, data_summary: dict | None = None,
                 ranged: bool = False) -> TrainingData:
    """Split the faces, draw the validation noise once (seeded) and score the do-nothing outputs.

    ``ranged``: the validation faces take the sweep's strengths in turn (:func:`validation_noise`).
    """
    train, val, summary = _split(faces, config)
    summary.update(data_summary or {})
    val_noisy, strengths, levels = validation_noise(noise_spec, val, _rng(config.seed, _VAL_STREAM), ranged)
    noisy_mae, noisy_psnr = _input_scores(val_noisy, val)
    flat_mae = float(np.abs(val.astype(np.float64) - FLAT_GREY).mean())
    return TrainingData(train, val, val_noisy, summary, noisy_mae, noisy_psnr, flat_mae, strengths, levels)


# ----------------------------------------------------------------------------- optimisation steps
class Trainer:
    """One (arch, noise kind) run's networks and optimizers, and its optimisation steps."""

    def __init__(self, arch: str, spec: Any, config: TrainConfig, image_size: int, device: torch.device):
        self.arch, self.spec, self.config, self.device = arch, spec, config, device
        torch.manual_seed(config.seed)
        self.gen, self.disc = build_models(arch, image_size, config)
        lr0, b0 = OPTIM_DEFAULTS[arch]
        lr = self.base_lr = lr0 if config.lr is None else config.lr
        beta1 = b0 if config.beta1 is None else config.beta1
        self.ranged = arch in RANGE_ARCHS
        self.modules = {"generator": self.gen}
        self.opts = {"generator": torch.optim.Adam(self.gen.parameters(), lr=lr, betas=(beta1, 0.999))}
        if self.disc is not None:
            self.modules["discriminator"] = self.disc
            self.opts["discriminator"] = torch.optim.Adam(self.disc.parameters(), lr=lr, betas=(beta1, 0.999))
        for m in self.modules.values():
            m.to(device=device, memory_format=torch.channels_last).train()

    def lr(self) -> float:
        """The generator's current learning rate."""
        return float(self.opts["generator"].param_groups[0]["lr"])

    def scale_lr(self, factor: float) -> float:
        """Multiply every optimizer's learning rate by factor (saved with the optimizer state); returns the new one."""
        for opt in self.opts.values():
            for group in opt.param_groups:
                group["lr"] *= factor
        return self.lr()

    def set_lr(self, lr: float) -> None:
        """Set every optimizer's learning rate (the cosine schedule's value for an epoch)."""
        for opt in self.opts.values():
            for group in opt.param_groups:
                group["lr"] = lr

    def step(self, x: torch.Tensor, y: torch.Tensor, level: torch.Tensor | None = None) -> dict[str, float]:
        """One optimisation step on noisy ``x`` / clean ``y``; returns the batch's losses (``loss``: generator total).

        ``level``: each face's noise level, for a range recipe (which is told it).
        """
        if self.ranged:
            return self.gated_step(x, y, level)
        if self.disc is None:
            return self.reconstruction_step(x, y)
        raw = self.gen.forward_raw(x)  # one generator pass serves both steps, as in pix2pix
        fake = raw.clamp(0.0, 1.0)
        loss_d = self.discriminator_step(x, y, fake.detach())
        return {**self.generator_step(x, y, raw, fake), "loss_d": loss_d}

    def reconstruction_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """Autoencoder (MSE) or U-Net (L1 on the unclamped output) step."""
        opt = self.opts["generator"]
        opt.zero_grad(set_to_none=True)
        out = self.gen.forward_raw(x) if isinstance(self.gen, UNet) else self.gen(x)
        loss = F.mse_loss(out, y) if self.arch == "autoencoder" else F.l1_loss(out, y)
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    def gated_step(self, x: torch.Tensor, y: torch.Tensor, level: torch.Tensor | None) -> dict[str, float]:
        """Range recipe: squared error of the output plus squared error of the correction alone.

        Without the correction's own loss a shut gate passes no gradient to the correction and
        stays shut. Squared error, not L1: on salt & pepper an L1 loss leaves the network passing
        the input through (the shipped U-Net L1 stayed at 29.2 dB for 30 epochs; a gated CNN on 200
        validation faces at 5 % hits stayed at 17.8 dB for 300 steps under L1 and reached 27.8 dB
        under squared error). ``gate_weight`` adds the gate's own target (binary cross-entropy
        against "this value was changed"); the same test reached only 24.0 dB with weight 0.1, so
        it defaults to 0.
        """
        if level is None:
            raise TrainingError(f"{self.arch} is told the noise level: step() needs level")
        opt = self.opts["generator"]
        opt.zero_grad(set_to_none=True)
        out, correction, gate_logit = self.gen.forward_parts(x, level)
        if self.config.range_loss == "psnr":
            mse, mse_correction = _minus_psnr(out, y), _minus_psnr(correction, y)
            losses = {"minus_psnr": mse, "minus_psnr_correction": mse_correction}
        else:
            mse, mse_correction = F.mse_loss(out, y), F.mse_loss(correction, y)
            losses = {"mse": mse, "mse_correction": mse_correction}
        if self.config.gate_weight:
            losses["gate"] = F.binary_cross_entropy_with_logits(gate_logit, (x != y).to(gate_logit.dtype))
        loss = mse + mse_correction + self.config.gate_weight * losses.get("gate", 0.0)
        loss.backward()
        opt.step()
        return {"loss": loss.item(), **{k: v.item() for k, v in losses.items()}}

    def discriminator_step(self, x: torch.Tensor, y: torch.Tensor, fake: torch.Tensor) -> float:
        """LSGAN discriminator step: real pairs -> 1, generated pairs (detached) -> 0."""
        opt = self.opts["discriminator"]
        opt.zero_grad(set_to_none=True)
        pred_real, pred_fake = self.disc(x, y), self.disc(x, fake)
        loss = 0.5 * (F.mse_loss(pred_real, torch.ones_like(pred_real))
                      + F.mse_loss(pred_fake, torch.zeros_like(pred_fake)))
        loss.backward()
        opt.step()
        return loss.item()

    def generator_step(self, x: torch.Tensor, y: torch.Tensor, raw: torch.Tensor, fake: torch.Tensor
                       ) -> dict[str, float]:
        """Generator step: fool the just-updated discriminator and stay close (L1) to the clean face."""
        opt = self.opts["generator"]
        opt.zero_grad(set_to_none=True)
        self.disc.requires_grad_(False)  # its gradients would be thrown away (official pix2pix does the same)
        pred = self.disc(x, fake)
        adv = F.mse_loss(pred, torch.ones_like(pred))
        l1 = F.l1_loss(raw, y)
        loss = adv + self.config.l1_weight * l1
        loss.backward()
        opt.step()
        self.disc.requires_grad_(True)
        return {"loss": loss.item(), "l1": l1.item(), "adv": adv.item()}


def _minus_psnr(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Minus the mean per-face PSNR in dB (squared error floored at :data:`PSNR_LOSS_FLOOR`)."""
    mse = (out - y).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(mse.clamp_min(PSNR_LOSS_FLOOR)).mean()


# ----------------------------------------------------------------------------- one run's bookkeeping
@dataclass
class RunState:
    """Where a run stands after its last finished epoch (saved in the resume state)."""

    epoch: int = 0
    history: list[dict] = field(default_factory=list)
    best_mae: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    wall: float = 0.0
    loss_reference: dict[str, float] = field(default_factory=dict)
    best_weights: dict[str, torch.Tensor] | None = None
    stopped: str | None = None

    def to_info(self) -> dict:
        return {"epoch": self.epoch, "history": self.history, "best_val_mae": self.best_mae,
                "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs, "wall_time_s": self.wall,
                "loss_reference": self.loss_reference, "stopped": self.stopped}

    @classmethod
    def from_info(cls, info: dict, best_weights: dict[str, torch.Tensor] | None) -> RunState:
        reference = info.get("loss_reference") or {}
        if not isinstance(reference, dict):  # states written before every loss term was watched
            reference = {"loss": reference}
        return cls(info["epoch"], info["history"], info["best_val_mae"], info["best_epoch"], info["bad_epochs"],
                   info["wall_time_s"], reference, best_weights or None, info.get("stopped"))


class _Diverged(Exception):
    """Raised inside an epoch; :func:`_fit` turns it into a :class:`TrainingError` saying what was kept."""


def _check_losses(losses: dict[str, float], run: RunState, config: TrainConfig, epoch: int, batch: int) -> None:
    """Every loss term finite and within ``explode_factor`` x its value on the run's first batch."""
    for term, value in losses.items():
        reference = run.loss_reference.setdefault(term, value)
        if not math.isfinite(value):
            raise _Diverged(f"training loss {_term(term)}is not finite at epoch {epoch}, batch {batch}")
        if reference and abs(value) > config.explode_factor * abs(reference):
            raise _Diverged(f"training loss {_term(term)}exploded ({value:.4g} > {config.explode_factor:g} x "
                            f"first-batch {reference:.4g}) at epoch {epoch}, batch {batch}")


def _term(term: str) -> str:
    return "" if term == "loss" else f"term {term!r} "


def _check_validation(val_mae: float, data: TrainingData, config: TrainConfig, epoch: int) -> None:
    limit = data.divergence_limit(config)
    if not math.isfinite(val_mae) or val_mae > limit:
        raise _Diverged(f"validation MAE {val_mae:.4g} at epoch {epoch} is worse than {config.diverge_factor:g} x "
                        f"the worse of the noisy input ({data.noisy_mae:.4g}) and a flat grey image "
                        f"({data.flat_mae:.4g})")


# ----------------------------------------------------------------------------- the loop
def _batches(n: int, batch_size: int) -> int:
    # a last batch of one face would break BatchNorm in training mode: fold it into the previous one
    return max(1, n // batch_size) if n % batch_size == 1 or n < batch_size else math.ceil(n / batch_size)


def _train_epoch(trainer: Trainer, data: TrainingData, epoch: int, run: RunState,
                 progress: Callable[[dict], None] | None) -> dict[str, float]:
    """One pass over reshuffled training faces with fresh seeded noise; the epoch's mean of each loss term."""
    config, name = trainer.config, f"{trainer.arch}-{trainer.spec.kind}"
    n, bs = len(data.train), config.batch_size
    batches = _batches(n, bs)
    torch.manual_seed(int(_rng(config.seed, _TORCH_STREAM, epoch).integers(2 ** 62)))
    order = _rng(config.seed, _SHUFFLE_STREAM, epoch).permutation(n)
    sums: dict[str, float] = {}
    for b in range(batches):
        idx = order[b * bs:(b + 1) * bs] if b < batches - 1 else order[b * bs:]
        clean = data.train[idx]
        rng = _rng(config.seed, _NOISE_STREAM, epoch, b)
        if trainer.ranged:
            noisy, levels = draw_range_noise(trainer.spec, clean, rng)
            level = torch.from_numpy(levels).to(trainer.device)
        else:
            noisy, level = _noisy(trainer.spec, clean, rng), None
        losses = trainer.step(_to_tensor(noisy, trainer.device), _to_tensor(clean, trainer.device), level)
        _check_losses(losses, run, config, epoch, b + 1)
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + v * len(idx)
        if progress:
            progress({"event": "batch", "name": name, "epoch": epoch, "batch": b + 1, "batches": batches,
                      "images": len(idx), **losses})
    return {k: v / n for k, v in sums.items()}


def _record_epoch(trainer: Trainer, run: RunState, record: dict, seconds: float) -> None:
    """Append the epoch to the history; keep it if it improves; shrink the rate or stop on a plateau."""
    config, name = trainer.config, f"{trainer.arch}-{trainer.spec.kind}"
    kept = next((h for h in run.history if h["epoch"] == run.best_epoch), None)
    run.history.append(record)
    run.epoch, run.wall, run.stopped = record["epoch"], run.wall + seconds, None
    if improves_record(record, kept, config.min_improvement, config.select_on):
        run.best_mae, run.best_epoch, run.bad_epochs = record["val_mae"], record["epoch"], 0
        run.best_weights = {k: v.detach().clone().cpu() for k, v in trainer.gen.state_dict().items()}
    else:
        run.bad_epochs += 1
        # only the plateau rule shrinks the rate here; the cosine schedule sets it per epoch in _fit
        plateau = config.schedule == "plateau"
        if plateau and run.bad_epochs % config.lr_patience == 0 and run.bad_epochs < config.patience:
            lr = trainer.scale_lr(config.lr_factor)
            log.info("%s: no improvement for %d epochs; learning rate now %.3g", name, run.bad_epochs, lr)
    log.info("%s epoch %d: loss %.5f, val MAE %.5f, val PSNR %.2f dB, %.1f s%s", name, record["epoch"],
             record["train_loss"], record["val_mae"], record["val_psnr"], record["seconds"],
             " (kept)" if run.best_epoch == record["epoch"] else "")
    if config.schedule == "plateau" and run.bad_epochs >= config.patience:
        run.stopped = "early_stopping"
    elif run.epoch == config.max_epochs:
        run.stopped = "max_epochs"


def choose_gate_threshold(model_kwargs: dict, weights: dict[str, torch.Tensor], data: TrainingData,
                          device: torch.device, select_on: str = "val_psnr") -> tuple[float | None, dict]:
    """The :data:`GATE_THRESHOLDS` entry that scores best on validation, and every candidate's scores.

    Scored by ``select_on`` (mean validation PSNR, or MAE); the soft gate wins ties, then the lower threshold.
    """
    scores, best, best_score = {}, None, -math.inf
    for threshold in GATE_THRESHOLDS:
        model = UNet(**{**model_kwargs, "gate_threshold": threshold})
        model.load_state_dict(weights)
        mae, psnr = evaluate(model.to(device), data.val_noisy, data.val_clean, device, levels=data.val_levels)
        scores["soft" if threshold is None else f"{threshold:g}"] = {"val_mae": mae, "val_psnr": psnr}
        score = psnr if select_on == "val_psnr" else -mae
        if score > best_score:
            best, best_score = threshold, score
    return best, scores


def cosine_lr(base_lr: float, epoch: int, max_epochs: int) -> float:
    """Learning rate of (1-based) ``epoch``: half a cosine from ``base_lr`` at epoch 1 towards 0 after the last."""
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / max_epochs))


def _validate(trainer: Trainer, data: TrainingData) -> dict:
    """Validation MAE and PSNR; for a range recipe also PSNR and MAE per strength (keys are the strengths)."""
    maes, psnrs = per_image_scores(trainer.gen, data.val_noisy, data.val_clean, trainer.device, levels=data.val_levels)
    record = {"val_mae": float(maes.mean()), "val_psnr": float(psnrs.mean())}
    if data.val_strengths is not None:
        groups = {f"{s:g}": data.val_strengths == s for s in dict.fromkeys(data.val_strengths.tolist())}
        record["val_psnr_by_strength"] = {k: round(float(psnrs[m].mean()), 4) for k, m in groups.items()}
        record["val_mae_by_strength"] = {k: round(float(maes[m].mean()), 6) for k, m in groups.items()}
    return record


def _fit(trainer: Trainer, data: TrainingData, run: RunState, out: _Output,
         progress: Callable[[dict], None] | None) -> TrainResult:
    """Train epoch after epoch until early stopping or ``max_epochs``, saving after every epoch."""
    config = trainer.config
    epoch = run.epoch
    if run.epoch >= config.max_epochs:
        log.info("%s: already at epoch %d of %d", out.name, run.epoch, config.max_epochs)
        run.stopped = run.stopped or "max_epochs"
    try:
        for epoch in range(run.epoch + 1, config.max_epochs + 1):
            t0 = time.perf_counter()
            if config.schedule == "cosine":
                trainer.set_lr(cosine_lr(trainer.base_lr, epoch, config.max_epochs))
            means = _train_epoch(trainer, data, epoch, run, progress)
            validation = _validate(trainer, data)
            _check_validation(validation["val_mae"], data, config, epoch)
            seconds = time.perf_counter() - t0
            record = {"epoch": epoch, "train_loss": means.pop("loss"), **{f"train_{k}": v for k, v in means.items()},
                      **validation, "seconds": round(seconds, 3),
                      "images_per_s": round(len(data.train) / seconds, 1), "lr": trainer.lr()}
            _record_epoch(trainer, run, record, seconds)
            out.save(trainer, run)
            if progress:
                progress({"event": "epoch", "name": out.name, **record, "best_epoch": run.best_epoch})
            if run.stopped == "early_stopping":
                log.info("%s: no val MAE improvement for %d epochs; stopping", out.name, run.bad_epochs)
                break
    except _Diverged as exc:
        raise TrainingError(f"{out.name}: {exc}; stopped. {out.kept_after_divergence(run)} Try a lower --lr.") from None
    except KeyboardInterrupt:
        log.warning("%s interrupted during epoch %d; %s holds the last epoch saved before it (continue with resume)",
                    out.name, epoch, out.resume_dir)
        raise
    return TrainResult(out.weights, run.best_epoch, len(run.history), run.stopped or "max_epochs", run.history)


# ----------------------------------------------------------------------------- what a run writes
class _Output:
    """A run's checkpoint and resume state: names, the card's fixed fields, and the writes after each epoch."""

    def __init__(self, out_dir: str | Path, arch: str, noise_spec: Any):
        self.out_dir, self.arch, self.kind = Path(out_dir), arch, noise_spec.kind
        self.name = f"{arch}-{self.kind}"
        self.weights = ckpt.checkpoint_stem(self.out_dir, arch, self.kind).with_suffix(".safetensors")
        self.resume_dir = self.out_dir / "resume" / self.name
        self.card: dict = {}
        self.state_info: dict = {}
        self.gate_threshold: float | None = None

    def describe(self, trainer: Trainer, noise_spec: Any, data: TrainingData) -> None:
        """Fill the fields every card and resume state of this run share."""
        config, device = trainer.config, trainer.device
        self.card = {"noise": json.loads(noise_spec.to_json()), "noise_json": noise_spec.to_json(),
                     "noise_label": getattr(noise_spec, "label", self.kind), "config": asdict(config),
                     "data": data.summary,
                     "selection": selection_rule(config.min_improvement, config.select_on, config.schedule),
                     "val_noisy_input": {"mae": data.noisy_mae, "psnr": data.noisy_psnr},
                     "device": str(device), "device_name": device_name(device)}
        if trainer.ranged:
            mild, strong = strength_range(self.kind)
            self.card["noise_label"] = (f"{NOISE_NAMES[self.kind]}, {STRENGTHS[self.kind].parameter} from {mild:.3g} "
                                        f"to {strong:.3g} (told the strength)")
            self.card["strength_range"] = {
                "parameter": STRENGTHS[self.kind].parameter,
                "mild": mild, "strong": strong, "drawn": "per training face, log-uniform in noise level",
                "told": "the noise level (denoising.noise.strength_level) as an extra input channel",
                "validation_strengths": sorted(set(data.val_strengths.tolist()))}
        if trainer.disc is not None:
            self.card["discriminator"] = {"model_class": "patchgan", "model_kwargs": trainer.disc.config(),
                                          "shipped": False}
        self.state_info = {"arch": self.arch, "noise": noise_spec.to_json(), "config": asdict(config),
                           "data_fingerprint": data.summary["fingerprint_sha256"]}

    def save(self, trainer: Trainer, run: RunState) -> None:
        """Write the kept epoch's checkpoint, then the resume state (each a unit a kill cannot split)."""
        kwargs = trainer.gen.config()
        if self.gate_threshold is not None:
            kwargs["gate_threshold"] = self.gate_threshold
        shipped = ckpt.build_model(ckpt.model_class_name(trainer.gen), kwargs)
        shipped.load_state_dict(run.best_weights)
        best_psnr = next((h["val_psnr"] for h in run.history if h["epoch"] == run.best_epoch), None)
        meta = dict(self.card, history=run.history, best_epoch=run.best_epoch, best_val_mae=run.best_mae,
                    best_val_psnr=best_psnr, epochs_run=len(run.history), wall_time_s=round(run.wall, 3),
                    stopped=run.stopped)
        ckpt.save(shipped, self.out_dir, self.arch, self.kind, meta, weights_dtype=trainer.config.weights_dtype)
        # the kept weights (float32) ride along so a resumed run can still ship them exactly
        extra = {f"best.{k}": v for k, v in (run.best_weights or {}).items()}
        ckpt.save_state(self.resume_dir, trainer.modules, trainer.opts, {**self.state_info, **run.to_info()}, extra)

    def choose_gate(self, trainer: Trainer, run: RunState, data: TrainingData) -> None:
        """After a finished range run: make the kept weights' gate all or nothing if validation says so."""
        self.gate_threshold, scores = choose_gate_threshold(trainer.gen.config(), run.best_weights, data,
                                                            trainer.device, trainer.config.select_on)
        chosen = "soft" if self.gate_threshold is None else f"{self.gate_threshold:g}"
        self.card["gate_threshold"] = {
            "chosen": self.gate_threshold, "validation": scores,
            "rule": f"after training, the threshold among {', '.join(scores)} with the best validation "
                    f"{'PSNR' if trainer.config.select_on == 'val_psnr' else 'MAE'} on the kept epoch's weights "
                    f"(chosen: {chosen})"}
        log.info("%s: gate %s chosen on validation", self.name, chosen)

    def kept_after_divergence(self, run: RunState) -> str:
        """What a diverged run leaves behind, in words (nothing is written after the divergence)."""
        if not run.history:
            return "No healthy epoch finished, so this run wrote no checkpoint."
        return (f"Nothing more was written: {self.weights} keeps epoch {run.best_epoch} (marked unfinished), "
                f"and the resume state in {self.resume_dir} holds epoch {run.epoch}.")


# ----------------------------------------------------------------------------- starting and resuming
def _load_resume(out: _Output, arch: str, noise_spec: Any, config: TrainConfig
                 ) -> tuple[TrainConfig, dict, dict[str, torch.Tensor]]:
    """The saved run's config (with this call's stopping rules), bookkeeping and tensors."""
    if not ckpt.has_state(out.resume_dir):
        raise TrainingSetupError(f"nothing to resume for {out.name}: no {out.resume_dir / ckpt.STATE_FILE}")
    info, tensors = ckpt.load_state(out.resume_dir)
    if info.get("arch") != arch or info.get("noise") != noise_spec.to_json():
        raise TrainingSetupError(f"{out.resume_dir} holds a {info.get('arch')} run for noise "
                                 f"{info.get('noise')}, not {arch} for {noise_spec.to_json()}")
    saved = TrainConfig.from_dict(info["config"])
    # only the stopping rules may change on resume; everything else must match the first run
    for key in ("max_epochs", "patience", "min_improvement", "lr_patience", "lr_factor"):
        setattr(saved, key, getattr(config, key))
    return saved, info, tensors


def _restore(trainer: Trainer, out: _Output, info: dict, tensors: dict[str, torch.Tensor]) -> RunState:
    for name, module in trainer.modules.items():
        ckpt.load_state_dict_strict(module, ckpt.module_tensors(tensors, name), f"{out.resume_dir} ({name})")
    for name, opt in trainer.opts.items():
        ckpt.restore_optimizer(opt, tensors, info["optimizers"][name], f"opt_{name}")
    run = RunState.from_info(info, ckpt.module_tensors(tensors, "best"))
    if run.stopped != "early_stopping":
        run.stopped = None  # a run that reached max_epochs may go on under a larger max_epochs
    log.info("resuming %s after epoch %d (kept epoch %d)", out.name, run.epoch, run.best_epoch)
    return run


def existing_checkpoint(out_dir: str | Path, arch: str, noise_kind: str) -> str | None:
    """Describe the checkpoint already at ``<out_dir>/<arch>-<noise_kind>`` (None when there is none)."""
    stem = ckpt.checkpoint_stem(out_dir, arch, noise_kind)
    if not (stem.with_suffix(".safetensors").exists() or stem.with_suffix(".json").exists()):
        return None
    try:
        card = ckpt.read_json(stem.with_suffix(".json"))
        state = f"finished ({card['stopped']})" if card.get("stopped") else "unfinished"
        return f"{stem}.safetensors ({state}, kept epoch {card.get('best_epoch', '?')})"
    except ckpt.CheckpointError:
        return f"{stem}.safetensors"


def _refuse_overwrite(out: _Output, overwrite: bool) -> None:
    found = existing_checkpoint(out.out_dir, out.arch, out.kind)
    if found and not overwrite:
        raise TrainingSetupError(f"{found} already exists; replace it with --force (overwrite=True), "
                                 "or write elsewhere with --out")


def train(arch: str, noise_spec: Any, faces: Any, config: TrainConfig | None = None,
          device: str | torch.device | None = None, progress: Callable[[dict], None] | None = None,
          resume: bool = False, out_dir: str | Path | None = None, data_summary: dict | None = None,
          overwrite: bool = False) -> TrainResult:
    """Train one denoiser for one noise kind and write its checkpoint.

    Parameters
    ----------
    arch : {"autoencoder", "pix2pix", "unet_l1"}
        Recipe (see module docstring).
    noise_spec : denoising.noise.NoiseSpec
        Noise to remove; needs ``kind``, ``apply(images, rng)`` and ``to_json()``.
    faces : FaceSet or tuple of arrays
        A FaceSet (its "train" and "validation" splits are used) or ``(train_images, val_images)``,
        float32 (N, H, W, 3) in [0, 1].
    config : TrainConfig, optional
        Settings; defaults to ``TrainConfig()``.
    device : str or torch.device, optional
        "cuda", "cpu" or None/"auto" (CUDA when available).
    progress : callable, optional
        Called with a dict per event: ``{"event": "start", ...}``, ``{"event": "batch", "epoch",
        "batch", "batches", "loss", ...}`` and ``{"event": "epoch", **history_record}``.
    resume : bool
        Continue from ``<out_dir>/resume/<arch>-<kind>/`` (weights, optimizer, history, counters).
    out_dir : str or Path, optional
        Checkpoint folder (default: a fresh ``runs/<arch>-<kind>-<UTC time>`` folder).
    data_summary : dict, optional
        Extra data description stored in the JSON (e.g. the prepared cache folder and its fingerprint).
    overwrite : bool
        Allow a fresh run to replace a checkpoint already in ``out_dir`` (a resumed run may always
        replace its own).

    Returns
    -------
    TrainResult

    Raises
    ------
    TrainingSetupError
        Bad settings or data, a checkpoint already there (without ``overwrite``), the name locked
        by another run, or a resume state for another run.
    TrainingError
        A NaN/inf/exploding loss or a useless validation MAE: nothing is written after it (the
        message says what the folder holds).
    KeyboardInterrupt
        Re-raised after logging; the resume folder holds the last finished epoch.
    """
    config = config or TrainConfig()
    check_config(arch, config)
    out = _Output(default_run_dir(f"{arch}-{noise_spec.kind}") if out_dir is None else out_dir, arch, noise_spec)
    try:
        with ckpt.writer_lock(out.out_dir, arch, out.kind):
            return _train_locked(out, noise_spec, faces, config, device, progress, resume, data_summary, overwrite)
    except ckpt.CheckpointLocked as exc:
        raise TrainingSetupError(str(exc)) from None


def _train_locked(out: _Output, noise_spec: Any, faces: Any, config: TrainConfig, device: Any,
                  progress: Callable[[dict], None] | None, resume: bool, data_summary: dict | None,
                  overwrite: bool) -> TrainResult:
    """:func:`train` once the checkpoint name is locked: set up or restore, then fit."""
    saved = _load_resume(out, out.arch, noise_spec, config) if resume else None
    if saved is None:
        _refuse_overwrite(out, overwrite)
    else:
        config = saved[0]
    device = _setup_device(device, config)
    data = prepare_data(faces, noise_spec, config, data_summary, ranged=out.arch in RANGE_ARCHS)
    if saved is not None and saved[1].get("data_fingerprint") != data.summary["fingerprint_sha256"]:
        raise TrainingSetupError(f"{out.resume_dir} was trained on other faces (data fingerprint differs); "
                                 "resume with the same --data and --limit")
    trainer = Trainer(out.arch, noise_spec, config, data.train.shape[1], device)
    out.describe(trainer, noise_spec, data)
    run = _restore(trainer, out, saved[1], saved[2]) if saved is not None else RunState()
    if run.stopped == "early_stopping":
        log.info("%s had already stopped early at epoch %d; nothing to do", out.name, run.epoch)
        return TrainResult(out.weights, run.best_epoch, run.epoch, "early_stopping", run.history)
    if progress:
        progress({"event": "start", "name": out.name, "start_epoch": run.epoch, "max_epochs": config.max_epochs,
                  "batches": _batches(len(data.train), config.batch_size), "device": str(device)})
    result = _fit(trainer, data, run, out, progress)
    if trainer.ranged and run.stopped and run.best_weights:
        out.choose_gate(trainer, run, data)
        out.save(trainer, run)
    return result


# ----------------------------------------------------------------------------- several runs (the CLI's call)
RUNS_ROOT = RUNS_DIR


def run_label(archs: tuple[str, ...] | list[str], kinds: tuple[str, ...] | list[str]) -> str:
    """``<arch>-<noise>`` part of a run folder's name ("all" for every recipe or every noise kind)."""
    from denoising.catalogue import NOISE_KINDS

    arch = "all" if set(archs) == set(ARCHS) else "+".join(archs)
    kind = "all" if set(kinds) == set(NOISE_KINDS) else "+".join(kinds)
    return f"{arch}-{kind}"


def default_run_dir(label: str, root: str | Path = RUNS_ROOT, now: float | None = None) -> Path:
    """A fresh run folder ``<root>/<label>-<UTC time>`` (e.g. ``runs/unet_l1-gaussian-20261125T111300Z``)."""
    return Path(root) / f"{label}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now))}"


def latest_run_dir(label: str, root: str | Path = RUNS_ROOT) -> Path | None:
    """The newest ``<root>/<label>-<time>`` folder that holds a resume state (None when there is none)."""
    found = sorted(p for p in Path(root).glob(f"{label}-*") if any(p.glob(f"resume/*/{ckpt.STATE_FILE}")))
    return found[-1] if found else None


def load_training_faces(data: str | Path, image_size: int = 28) -> tuple[Any, dict]:
    """Faces to train on and a summary for the cards: a prepared cache folder, or ``"lfw"`` (smoke runs).

    ``"lfw"`` is scikit-image's 100 LFW faces, the first 80 for training and the last 20 for validation.

    Raises
    ------
    TrainingSetupError
        No such folder, or not a usable prepared cache.
    """
    if str(data) == "lfw":
        from denoising.faces import load_lfw_faces

        images = load_lfw_faces(image_size).images
        return (images[:80], images[80:]), {"data": "lfw (scikit-image lfw_subset, smoke run)"}
    from denoising.faces import FaceDataError, load_prepared

    path = Path(data)
    if not path.is_dir():
        raise TrainingSetupError(f"--data {data}: no such folder (make one with scripts/prepare_data.py, "
                                 "or use --data lfw)")
    try:
        faces = load_prepared(path)
    except (FaceDataError, OSError, ValueError) as exc:
        raise TrainingSetupError(f"--data {data}: {exc}") from None
    summary: dict = {"data": str(path)}
    meta = path / "meta.json"
    if meta.is_file() and meta.stat().st_size < 20_000:
        with contextlib.suppress(json.JSONDecodeError):
            summary["cache_meta"] = json.loads(meta.read_text())
    return faces, summary


@dataclass
class TrainPlan:
    """What :func:`train_models` trains: recipes x noise kinds, where, and how."""

    archs: tuple[str, ...]
    kinds: tuple[str, ...]
    data: str | Path
    config: TrainConfig = field(default_factory=TrainConfig)
    preset: str = DEFAULT_PRESET
    out_dir: Path | None = None
    resume: bool = False
    overwrite: bool = False
    device: str = "auto"
    runs_root: Path = RUNS_ROOT


@dataclass
class TrainOutcome:
    """One model of a plan: its result, or the reason it diverged."""

    name: str
    result: TrainResult | None
    error: str | None
    minutes: float


def resolve_out_dir(plan: TrainPlan) -> Path:
    """``plan.out_dir``, else a fresh run folder; with ``resume``, the newest run folder of the same label."""
    if plan.out_dir is not None:
        return Path(plan.out_dir)
    label = run_label(plan.archs, plan.kinds)
    latest = latest_run_dir(label, plan.runs_root) if plan.resume else None
    return latest or default_run_dir(label, plan.runs_root)


def check_plan(plan: TrainPlan, out_dir: Path) -> None:
    """Refuse, before anything trains, names another run is writing and checkpoints a fresh run would replace."""
    from denoising.noise import PRESETS

    if plan.preset not in PRESETS:
        raise TrainingSetupError(f"unknown noise preset {plan.preset!r} (choose from {', '.join(sorted(PRESETS))})")
    for arch in plan.archs:
        check_config(arch, plan.config)
    taken = []
    for arch in plan.archs:
        for kind in plan.kinds:
            try:
                with ckpt.writer_lock(out_dir, arch, kind):
                    pass
            except ckpt.CheckpointLocked as exc:
                raise TrainingSetupError(str(exc)) from None
            resuming = plan.resume and ckpt.has_state(out_dir / "resume" / f"{arch}-{kind}")
            found = None if resuming else existing_checkpoint(out_dir, arch, kind)
            if found:
                taken.append(found)
    if taken and not plan.overwrite:
        raise TrainingSetupError(f"{'; '.join(taken)} already exist{'s' if len(taken) == 1 else ''}: "
                                 "replace with --force, or write elsewhere with --out")


def train_models(plan: TrainPlan, progress: Callable[[dict], None] | None = None) -> list[TrainOutcome]:
    """Train every (recipe, noise kind) of ``plan`` in turn; the scripts' one call.

    Everything a user can get wrong is checked before the first model trains (:func:`check_plan`).
    A model that diverges is reported in its outcome and the others still train. Besides
    :func:`train`'s events, ``progress`` gets ``{"event": "plan", "out_dir", "models", "device",
    "device_name"}`` first and ``{"event": "fresh", "name", "reason"}`` when ``resume`` finds no state.

    Raises
    ------
    TrainingSetupError, denoising.models.checkpoint.CheckpointError
        Unusable settings, data, output folder or resume state: nothing (more) is trained.
    KeyboardInterrupt
        After the interrupted model's last finished epoch was saved.
    """
    from denoising.noise import PRESETS

    out_dir = resolve_out_dir(plan)
    check_plan(plan, out_dir)
    faces, summary = load_training_faces(plan.data)
    device = _setup_device(plan.device, plan.config)
    if progress:
        progress({"event": "plan", "out_dir": str(out_dir), "models": len(plan.archs) * len(plan.kinds),
                  "device": str(device), "device_name": device_name(device)})
    outcomes = []
    for arch in plan.archs:
        for kind in plan.kinds:
            resume = plan.resume and ckpt.has_state(out_dir / "resume" / f"{arch}-{kind}")
            if plan.resume and not resume and progress:
                progress({"event": "fresh", "name": f"{arch}-{kind}",
                          "reason": f"no resume state in {out_dir / 'resume'}; training from scratch"})
            t0 = time.perf_counter()
            try:
                result = train(arch, PRESETS[plan.preset][kind], faces, plan.config, device=device,
                               progress=progress, resume=resume, out_dir=out_dir, data_summary=summary,
                               overwrite=plan.overwrite)
                outcomes.append(TrainOutcome(f"{arch}-{kind}", result, None, (time.perf_counter() - t0) / 60))
            except TrainingSetupError:
                raise
            except TrainingError as exc:  # diverged: nothing written after it; go on with the other models
                outcomes.append(TrainOutcome(f"{arch}-{kind}", None, str(exc), (time.perf_counter() - t0) / 60))
    return outcomes


__all__ = ["TrainConfig", "TrainResult", "TrainingError", "TrainingSetupError", "Trainer", "TrainPlan",
           "TrainOutcome", "OPTIM_DEFAULTS", "train", "train_models", "evaluate", "build_models", "check_config",
           "improves", "improves_record", "choose_gate_threshold", "GATE_THRESHOLDS", "select_epoch", "cosine_lr", "strength_range", "draw_range_noise", "selection_rule", "pick_device", "prepare_data", "load_training_faces",
           "default_run_dir", "latest_run_dir", "resolve_out_dir", "check_plan", "existing_checkpoint", "run_label"]
