"""One registry of denoisers: the noisy baseline, the classical filters and the learned models.

The registry is a plain ordered ``dict`` of :class:`~denoising.denoisers.Denoiser` objects keyed
by name: classical and learned methods are interchangeable, each called as
``denoiser(noisy_batch, noise_spec)``. Display names and descriptions come from
:mod:`denoising.catalogue`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from denoising.denoisers import CLASSICAL_TYPES, Denoiser
from denoising.models.learned import learned_denoisers

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT_DIR = Path(__file__).resolve().parents[1] / "checkpoints"


def classical_methods() -> dict[str, Denoiser]:
    """The noisy-input baseline and every classical filter, in display order (fast first, BM3D last)."""
    return {cls.name: cls() for cls in CLASSICAL_TYPES}


def _learned(checkpoint_dir: Path) -> dict[str, Denoiser]:
    try:
        return dict(learned_denoisers(checkpoint_dir))
    except OSError:  # an unreadable folder: keep the classical methods usable, and say why the rest are missing
        log.exception("could not list learned models in %s; using classical methods only", checkpoint_dir)
        return {}


def build_registry(checkpoint_dir: str | Path | None = DEFAULT_CHECKPOINT_DIR,
                   include_slow: bool = True) -> dict[str, Denoiser]:
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
    dict[str, Denoiser]
        In display order: ``noisy``, fast classical, slow classical (``bm3d``), learned.
    """
    methods = classical_methods()
    if checkpoint_dir is not None:
        methods.update(_learned(Path(checkpoint_dir)))
    if not include_slow:
        methods = {name: m for name, m in methods.items() if not m.slow}
    return methods


__all__ = ["classical_methods", "build_registry", "DEFAULT_CHECKPOINT_DIR"]
