"""One registry of denoising methods: the noisy baseline, the classical filters and the learned models.

Every entry is a :class:`Method`: call it with a noisy batch ``(N, H, W, 3)`` float32 in [0, 1] and
the noise kind, get the cleaned batch back. Classical filters ignore the noise kind; learned
models pick the checkpoint trained for it. Display names and one-sentence descriptions are
written for people who do not read code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from denoising import filters

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT_DIR = Path(__file__).resolve().parents[1] / "checkpoints"


def _always(kind: str) -> bool:
    return True


@dataclass(frozen=True)
class Method:
    """A denoising method on whole batches.

    Attributes
    ----------
    name : str
        Stable key used in tables, e.g. ``"median"``.
    display_name : str
        Name for people, e.g. ``"Median filter (3×3)"``.
    family : str
        ``"baseline"``, ``"classical"`` or ``"learned"``.
    slow : bool
        True when too slow for live use (about a second or more per face).
    description : str
        One sentence for non-programmers.
    denoise : callable
        ``denoise(noisy_batch, noise_kind) -> batch``.
    available : callable
        ``available(noise_kind) -> bool``; learned methods: is there a checkpoint for that kind.
    """

    name: str
    display_name: str
    family: str
    slow: bool
    description: str
    denoise: Callable[[np.ndarray, str], np.ndarray]
    available: Callable[[str], bool] = _always

    def __call__(self, images: Any, noise_kind: str) -> np.ndarray:
        """Denoise a batch ``(N, H, W, 3)`` in [0, 1] that has noise of kind ``noise_kind``."""
        return self.denoise(images, noise_kind)


def _identity(images: Any, noise_kind: str) -> np.ndarray:
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected a batch of RGB images with shape (N, H, W, 3), got {x.shape}")
    return x.copy()


def _blind(fn: Callable[[Any], np.ndarray]) -> Callable[[Any, str], np.ndarray]:
    def denoise(images: Any, noise_kind: str) -> np.ndarray:
        return fn(images)

    denoise.__name__ = getattr(fn, "__name__", "denoise")
    denoise.__doc__ = fn.__doc__
    return denoise


# name -> (display name, description); order = display order (fast first, slow last)
_CLASSICAL = {
    "mean": ("Mean filter (3×3)",
             "Replaces every pixel by the average of its 3×3 neighbourhood, blurring the grain away "
             "together with fine detail (the post's first filter)."),
    "median": ("Median filter (3×3)",
               "Replaces every pixel by the middle value of its 3×3 neighbourhood, which removes isolated "
               "specks while keeping edges (the post's second filter)."),
    "gaussian": ("Gaussian blur",
                 "Averages nearby pixels with weights that fade with distance: a soft, even blur."),
    "bilateral": ("Bilateral filter",
                  "A blur that only averages neighbours of similar colour, so edges such as eyes and lips "
                  "stay sharper."),
    "tv": ("Total variation",
           "Finds the flattest picture close to the noisy one: clean flat areas with sharp edges, "
           "sometimes a slightly cartoon-like look."),
    "wavelet": ("Wavelet shrinkage",
                "Splits the picture into coarse and fine detail and turns down the fine detail that looks "
                "like noise."),
    "nl_means": ("Non-local means",
                 "Averages each small patch with similar-looking patches elsewhere in the photo, so "
                 "repeated structure helps clean itself."),
    "bm3d": ("BM3D",
             "Stacks similar patches together and cleans each stack jointly; one of the strongest classical "
             "methods, but slow (about a second per face)."),
}


def classical_methods() -> dict[str, Method]:
    """The noisy-input baseline and every classical filter, in display order (fast first).

    Returns
    -------
    dict[str, Method]
        ``"noisy"`` (identity), then ``mean, median, gaussian, bilateral, tv, wavelet, nl_means``,
        then the slow ``bm3d``.
    """
    methods = {"noisy": Method(
        name="noisy", display_name="Noisy input (no filter)", family="baseline", slow=False,
        description="The noisy photo as it is, with nothing removed: the score every method should beat.",
        denoise=_identity)}
    for name, (display, description) in _CLASSICAL.items():
        methods[name] = Method(name=name, display_name=display, family="classical",
                               slow=name in filters.SLOW_FILTERS, description=description,
                               denoise=_blind(filters.FILTERS[name]))
    return methods


def _learned(checkpoint_dir: Path) -> dict[str, Method]:
    try:
        from denoising.models import learned_methods
    except ImportError as exc:
        # A missing models package is normal on a stripped-down install; a broken import inside it is not.
        level = logging.INFO if exc.name == "denoising.models" else logging.WARNING
        log.log(level, "learned models unavailable, using classical methods only: %s", exc)
        return {}
    try:
        return dict(learned_methods(checkpoint_dir))
    except Exception:  # keep the classical methods usable, but say loudly why the learned ones are missing
        log.exception("could not list learned models in %s; using classical methods only", checkpoint_dir)
        return {}


def build_registry(checkpoint_dir: str | Path | None = DEFAULT_CHECKPOINT_DIR,
                   include_slow: bool = True) -> dict[str, Method]:
    """Every available method: noisy baseline, classical filters and learned models with checkpoints.

    Parameters
    ----------
    checkpoint_dir : str or Path or None, optional
        Folder of learned-model checkpoints (default ``<repo>/checkpoints``); ``None`` skips
        learned models. A missing folder or one without checkpoints gives the classical methods.
    include_slow : bool, optional
        Keep methods flagged ``slow`` (default True).

    Returns
    -------
    dict[str, Method]
        In display order: ``noisy``, fast classical, slow classical (``bm3d``), learned.
    """
    classical = classical_methods()
    learned = _learned(Path(checkpoint_dir)) if checkpoint_dir is not None else {}
    for name in set(learned) & set(classical):
        log.warning("learned method %r has the name of a classical one; keeping the classical one", name)
        del learned[name]
    fast = {n: m for n, m in classical.items() if not m.slow}
    slow = {n: m for n, m in classical.items() if m.slow}
    methods = {**fast, **slow, **learned}
    if not include_slow:
        methods = {n: m for n, m in methods.items() if not m.slow}
    return methods


__all__ = ["Method", "classical_methods", "build_registry", "DEFAULT_CHECKPOINT_DIR"]
