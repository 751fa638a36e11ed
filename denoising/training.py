"""Training loops for the learned denoisers (one model per architecture and noise kind).

Recipes (``arch``):

* ``autoencoder``: the post's autoencoder, MSE loss, Adam(1e-3) as in the post.
* ``unet_l1``: the U-Net generator alone with an L1 loss (the ablation the post never ran);
  same optimizer as pix2pix so the comparison isolates the GAN loss.
* ``pix2pix``: U-Net generator + conditional PatchGAN, least-squares GAN loss + 100 x L1,
  Adam with beta1 0.5 for both nets, a discriminator step then a generator step per batch.

Learning rate of both U-Net recipes: 1e-3 by default, not pix2pix's 2e-4. On 4,000 CelebA faces
at 28x28 (Gaussian noise, 4 epochs) 2e-4 reached validation MAE 0.107 and 1e-3 reached 0.089,
with no instability; a CPU budget of about 20 epochs needs the faster rate. ``lr=2e-4`` (or
``--lr 2e-4``) reproduces the post's recipe exactly.

Every epoch draws fresh noise (seeded from ``(seed, epoch, batch)``) on reshuffled faces; the
validation faces get one fixed seeded noise draw. After each epoch the validation MAE and
PSNR are logged; the **best epoch is the one with the lowest validation MAE** (the post's
metric) and early stopping watches the same number. The best weights are the shipped
checkpoint (``<out>/<arch>-<kind>.safetensors`` + ``.json``, history updated every epoch);
the last epoch's weights and optimizer state go to ``<out>/resume/<arch>-<kind>/`` so
``resume=True`` continues exactly where the run stopped. All files are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .models import checkpoint as ckpt
from .models.autoencoder import Autoencoder
from .models.patchgan import PatchGAN
from .models.unet import UNet

log = logging.getLogger(__name__)

ARCHS = ("autoencoder", "pix2pix", "unet_l1")
#: optimizer defaults per recipe (the post's settings)
OPTIM_DEFAULTS = {"autoencoder": (1e-3, 0.9), "pix2pix": (1e-3, 0.5), "unet_l1": (1e-3, 0.5)}
_NOISE_STREAM, _SHUFFLE_STREAM, _VAL_STREAM, _TORCH_STREAM = 1, 2, 3, 4


class TrainingError(RuntimeError):
    """Training had to stop (NaN, inf or exploding loss) or could not start."""


class TrainingSetupError(TrainingError):
    """Training cannot start: bad arguments, unusable data, or a resume state for another run."""


@dataclass
class TrainConfig:
    """Training settings (stored in the checkpoint JSON).

    Attributes
    ----------
    max_epochs : int
        Upper bound on epochs; early stopping usually ends sooner.
    patience : int
        Stop after this many epochs in a row without a validation-MAE improvement.
    min_improvement : float
        Smallest *relative* decrease of validation MAE that counts as an improvement (0.002 = 0.2 %);
        relative because MAE spans 0.002 (salt & pepper) to 0.07 (Gaussian) across noise kinds.
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
        Stop when the loss exceeds this multiple of the run's initial loss.
    num_threads : int or None
        CPU threads for torch (None: all cores).
    """

    max_epochs: int = 60
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
    num_threads: int | None = None

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Rebuild from :func:`dataclasses.asdict` output, ignoring unknown keys."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class TrainResult:
    """What :func:`train` produced."""

    checkpoint: Path
    best_epoch: int
    epochs: int
    stopped: str
    history: list[dict]


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given (``"auto"`` or None: CUDA when available, else CPU); logs the choice."""
    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainingSetupError("CUDA was requested but torch sees no GPU")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    log.info("training on %s (%s)", device, name)
    return device


def build_models(arch: str, image_size: int, config: TrainConfig) -> tuple[nn.Module, nn.Module | None]:
    """Generator (and discriminator for pix2pix) of a recipe, freshly initialised."""
    if arch == "autoencoder":
        return Autoencoder(image_size=image_size), None
    if arch == "unet_l1":
        return UNet(**config.unet), None
    if arch == "pix2pix":
        return UNet(**config.unet), PatchGAN(**config.patchgan)
    raise TrainingSetupError(f"unknown arch {arch!r} (choose from {', '.join(ARCHS)})")


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


def _generate(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Unclamped output for losses (U-Net) or the plain output (autoencoder)."""
    return model.forward_raw(x) if isinstance(model, UNet) else model(x)


@torch.inference_mode()
def evaluate(model: nn.Module, noisy: np.ndarray, clean: np.ndarray, device: torch.device,
             batch_size: int = 256) -> tuple[float, float]:
    """Mean per-image MAE and PSNR (data_range 1, capped at 100 dB) of ``model`` on a noisy set."""
    was_training = model.training
    model.eval()
    maes, psnrs = [], []
    for i in range(0, len(noisy), batch_size):
        out = model(_to_tensor(noisy[i:i + batch_size], device)).float()
        ref = _to_tensor(clean[i:i + batch_size], device)
        diff = (out - ref).flatten(1).double()
        maes.append(diff.abs().mean(1).cpu())
        mse = diff.pow(2).mean(1).clamp_min(1e-10)
        psnrs.append((10 * torch.log10(1.0 / mse)).cpu())
    model.train(was_training)
    return float(torch.cat(maes).mean()), float(torch.cat(psnrs).mean())


def _input_scores(noisy: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    diff = (noisy - clean).reshape(len(clean), -1).astype(np.float64)
    mse = np.maximum((diff ** 2).mean(1), 1e-10)
    return float(np.abs(diff).mean(1).mean()), float((10 * np.log10(1.0 / mse)).mean())


class Trainer:
    """One (arch, noise kind) run: models, optimizers, steps and bookkeeping."""

    def __init__(self, arch: str, spec: Any, config: TrainConfig, image_size: int, device: torch.device):
        self.arch, self.spec, self.config, self.device = arch, spec, config, device
        torch.manual_seed(config.seed)
        self.gen, self.disc = build_models(arch, image_size, config)
        lr0, b0 = OPTIM_DEFAULTS[arch]
        lr, beta1 = config.lr or lr0, config.beta1 if config.beta1 is not None else b0
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

    def step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """One optimisation step; returns the batch's losses (``loss`` is the generator's total)."""
        opt_g = self.opts["generator"]
        if self.arch != "pix2pix":
            opt_g.zero_grad(set_to_none=True)
            out = _generate(self.gen, x)
            loss = F.mse_loss(out, y) if self.arch == "autoencoder" else F.l1_loss(out, y)
            loss.backward()
            opt_g.step()
            return {"loss": loss.item()}
        raw = self.gen.forward_raw(x)
        fake = raw.clamp(0.0, 1.0)
        # discriminator step (LSGAN: real -> 1, fake -> 0), generator output detached
        opt_d = self.opts["discriminator"]
        opt_d.zero_grad(set_to_none=True)
        pred_real, pred_fake = self.disc(x, y), self.disc(x, fake.detach())
        loss_d = 0.5 * (F.mse_loss(pred_real, torch.ones_like(pred_real))
                        + F.mse_loss(pred_fake, torch.zeros_like(pred_fake)))
        loss_d.backward()
        opt_d.step()
        # generator step: fool the (just updated) discriminator + stay close to the clean face
        opt_g.zero_grad(set_to_none=True)
        pred = self.disc(x, fake)
        adv = F.mse_loss(pred, torch.ones_like(pred))
        l1 = F.l1_loss(raw, y)
        loss_g = adv + self.config.l1_weight * l1
        loss_g.backward()
        opt_g.step()
        return {"loss": loss_g.item(), "l1": l1.item(), "adv": adv.item(), "loss_d": loss_d.item()}


def train(arch: str, noise_spec: Any, faces: Any, config: TrainConfig | None = None,
          device: str | torch.device | None = None, progress: Callable[[dict], None] | None = None,
          resume: bool = False, out_dir: str | Path = "checkpoints", data_summary: dict | None = None) -> TrainResult:
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
    out_dir : str or Path
        Checkpoint folder.
    data_summary : dict, optional
        Extra data description stored in the JSON (e.g. the prepared cache folder and its fingerprint).

    Returns
    -------
    TrainResult

    Raises
    ------
    TrainingError
        No usable data, a resume state for another run, or a NaN/inf/exploding loss (the best
        weights so far stay in the checkpoint, the last good epoch in the resume folder).
    KeyboardInterrupt
        Re-raised after logging; the resume folder holds the last finished epoch.
    """
    config = config or TrainConfig()
    if arch not in ARCHS:
        raise TrainingSetupError(f"unknown arch {arch!r} (choose from {', '.join(ARCHS)})")
    if config.weights_dtype not in ckpt.DTYPES:
        raise TrainingSetupError(f"weights_dtype must be float16 or float32, got {config.weights_dtype!r}")
    out_dir = Path(out_dir)
    kind = noise_spec.kind
    name = f"{arch}-{kind}"
    resume_dir = out_dir / "resume" / name
    state_info, state_tensors = None, None
    if resume:
        if not (resume_dir / "state.json").is_file():
            raise TrainingSetupError(f"nothing to resume for {name}: no {resume_dir / 'state.json'}")
        state_info, state_tensors = ckpt.load_state(resume_dir)
        if state_info.get("arch") != arch or state_info.get("noise") != noise_spec.to_json():
            raise TrainingSetupError(f"{resume_dir} holds a {state_info.get('arch')} run for noise "
                                f"{state_info.get('noise')}, not {arch} for {noise_spec.to_json()}")
        saved = TrainConfig.from_dict(state_info["config"])
        # only the stopping rules may change on resume; everything else must match the first run
        for key in ("max_epochs", "patience", "min_improvement", "lr_patience", "lr_factor"):
            setattr(saved, key, getattr(config, key))
        config = saved

    if device is None or str(device) == "auto" or torch.device(device).type == "cpu":
        torch.set_num_threads(config.num_threads or os.cpu_count() or 1)
    device = pick_device(device)
    train_images, val_images, summary = _split(faces, config)
    summary.update(data_summary or {})
    if state_info is not None and state_info.get("data_fingerprint") != summary["fingerprint_sha256"]:
        raise TrainingSetupError(f"{resume_dir} was trained on other faces (data fingerprint differs); "
                            "resume with the same --data and --limit")
    image_size = train_images.shape[1]
    trainer = Trainer(arch, noise_spec, config, image_size, device)
    val_noisy = _noisy(noise_spec, val_images, _rng(config.seed, _VAL_STREAM))
    noisy_mae, noisy_psnr = _input_scores(val_noisy, val_images)

    history: list[dict] = []
    start_epoch, best_mae, best_epoch, bad_epochs, wall, loss_ref = 0, math.inf, 0, 0, 0.0, None
    best_state: dict[str, torch.Tensor] | None = None
    if state_info is not None:
        for mname, module in trainer.modules.items():
            ckpt.load_state_dict_strict(module, ckpt.module_tensors(state_tensors, mname), f"{resume_dir} ({mname})")
        for oname, opt in trainer.opts.items():
            ckpt.restore_optimizer(opt, state_tensors, state_info["optimizers"][oname], f"opt_{oname}")
        best_state = ckpt.module_tensors(state_tensors, "best") or None
        history, start_epoch = state_info["history"], state_info["epoch"]
        best_mae, best_epoch = state_info["best_val_mae"], state_info["best_epoch"]
        bad_epochs, wall, loss_ref = state_info["bad_epochs"], state_info["wall_time_s"], state_info["loss_reference"]
        log.info("resuming %s after epoch %d (best epoch %d)", name, start_epoch, best_epoch)
        if state_info.get("stopped") == "early_stopping":
            log.info("%s had already stopped early at epoch %d; nothing to do", name, start_epoch)
            return TrainResult(ckpt.checkpoint_stem(out_dir, arch, kind).with_suffix(".safetensors"),
                               best_epoch, start_epoch, "early_stopping", history)

    n = len(train_images)
    bs = config.batch_size
    # a last batch of one face would break BatchNorm in training mode: fold it into the previous one
    batches = max(1, n // bs) if n % bs == 1 or n < bs else math.ceil(n / bs)
    base_meta = {"noise": json.loads(noise_spec.to_json()), "noise_json": noise_spec.to_json(),
                 "noise_label": getattr(noise_spec, "label", kind), "config": asdict(config),
                 "data": summary, "selection": "lowest validation MAE",
                 "val_noisy_input": {"mae": noisy_mae, "psnr": noisy_psnr},
                 "device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
                 else f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"}
    if trainer.disc is not None:
        base_meta["discriminator"] = {"model_class": "patchgan", "model_kwargs": trainer.disc.config(),
                                      "shipped": False}
    if progress:
        progress({"event": "start", "name": name, "start_epoch": start_epoch, "max_epochs": config.max_epochs,
                  "batches": batches, "device": str(device)})

    def write_checkpoint(stopped: str | None) -> Path:
        shipped = ckpt.build_model(ckpt.model_class_name(trainer.gen), trainer.gen.config())
        shipped.load_state_dict(best_state)
        meta = dict(base_meta, history=history, best_epoch=best_epoch, best_val_mae=best_mae,
                    best_val_psnr=next((h["val_psnr"] for h in history if h["epoch"] == best_epoch), None),
                    epochs_run=len(history), wall_time_s=round(wall, 3), stopped=stopped)
        return ckpt.save(shipped, out_dir, arch, kind, meta, weights_dtype=config.weights_dtype)

    def write_state(epoch: int, stopped: str | None) -> None:
        info = {"arch": arch, "noise": noise_spec.to_json(), "config": asdict(config), "epoch": epoch,
                "history": history, "best_val_mae": best_mae, "best_epoch": best_epoch, "bad_epochs": bad_epochs,
                "wall_time_s": wall, "loss_reference": loss_ref, "stopped": stopped,
                "data_fingerprint": summary["fingerprint_sha256"]}
        # best weights (float32) ride along so a resumed run can still ship them exactly
        extra = {f"best.{k}": v for k, v in (best_state or {}).items()}
        ckpt.save_state(resume_dir, trainer.modules, trainer.opts, info, extra)

    stopped = "max_epochs"
    epoch = start_epoch
    try:
        for epoch in range(start_epoch + 1, config.max_epochs + 1):
            t0 = time.perf_counter()
            torch.manual_seed(int(_rng(config.seed, _TORCH_STREAM, epoch).integers(2 ** 62)))
            order = _rng(config.seed, _SHUFFLE_STREAM, epoch).permutation(n)
            sums: dict[str, float] = {}
            for b in range(batches):
                idx = order[b * bs:(b + 1) * bs] if b < batches - 1 else order[b * bs:]
                clean = train_images[idx]
                noisy = _noisy(noise_spec, clean, _rng(config.seed, _NOISE_STREAM, epoch, b))
                losses = trainer.step(_to_tensor(noisy, device), _to_tensor(clean, device))
                loss = losses["loss"]
                if loss_ref is None and b == 0:
                    loss_ref = loss
                if not math.isfinite(loss) or (loss_ref and loss > config.explode_factor * loss_ref):
                    what = "is not finite" if not math.isfinite(loss) else \
                        f"exploded ({loss:.4g} > {config.explode_factor:g} x initial {loss_ref:.4g})"
                    raise TrainingError(f"{name}: training loss {what} at epoch {epoch}, batch {b + 1}; stopped. "
                                        f"Best weights (epoch {best_epoch}) kept in {out_dir}, last good epoch "
                                        f"({epoch - 1}) in {resume_dir}. Try a lower --lr.")
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + v * len(idx)
                if progress:
                    progress({"event": "batch", "name": name, "epoch": epoch, "batch": b + 1, "batches": batches,
                              "images": len(idx), **losses})
            val_mae, val_psnr = evaluate(trainer.gen, val_noisy, val_images, device)
            seconds = time.perf_counter() - t0
            wall += seconds
            record = {"epoch": epoch, "train_loss": sums.pop("loss") / n,
                      **{f"train_{k}": v / n for k, v in sums.items()},
                      "val_mae": val_mae, "val_psnr": val_psnr, "seconds": round(seconds, 3),
                      "images_per_s": round(n / seconds, 1), "lr": trainer.lr()}
            history.append(record)
            if not math.isfinite(best_mae) or val_mae < best_mae * (1.0 - config.min_improvement):
                best_mae, best_epoch, bad_epochs = val_mae, epoch, 0
                best_state = {k: v.detach().clone().cpu() for k, v in trainer.gen.state_dict().items()}
            else:
                bad_epochs += 1
                if bad_epochs % config.lr_patience == 0 and bad_epochs < config.patience:
                    lr = trainer.scale_lr(config.lr_factor)
                    log.info("%s: no improvement for %d epochs; learning rate now %.3g", name, bad_epochs, lr)
            log.info("%s epoch %d: loss %.5f, val MAE %.5f, val PSNR %.2f dB, %.1f s%s", name, epoch,
                     record["train_loss"], val_mae, val_psnr, seconds, " (best)" if best_epoch == epoch else "")
            if bad_epochs >= config.patience:
                stopped = "early_stopping"
            done = stopped == "early_stopping" or epoch == config.max_epochs
            write_checkpoint(stopped if done else None)
            write_state(epoch, stopped if done else None)
            if progress:
                progress({"event": "epoch", "name": name, **record, "best_epoch": best_epoch})
            if stopped == "early_stopping":
                log.info("%s: no val MAE improvement for %d epochs; stopping", name, bad_epochs)
                break
    except TrainingError:
        if best_state is not None:
            write_checkpoint("diverged")
        raise
    except KeyboardInterrupt:
        log.warning("%s interrupted during epoch %d; epoch %d is saved in %s (continue with resume)",
                    name, epoch, epoch - 1, resume_dir)
        raise
    path = ckpt.checkpoint_stem(out_dir, arch, kind).with_suffix(".safetensors")
    if best_state is None:  # resumed at/after max_epochs: nothing new to do
        log.info("%s: already at epoch %d of %d", name, start_epoch, config.max_epochs)
    return TrainResult(path, best_epoch, len(history), stopped, history)
