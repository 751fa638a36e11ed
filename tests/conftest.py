"""Shared fixtures: the real CelebA sample (skipped when absent) and tiny synthetic faces."""

from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# .streamlit/config.toml hides error details from visitors; the tests want the real exception text
try:
    import streamlit.config

    streamlit.config.set_option("client.showErrorDetails", "full")
except ImportError:  # pragma: no cover - streamlit is a pinned requirement
    pass
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """Path to ``../shared/data``; skips the test when this machine has no copy."""
    if not (SHARED_DATA / "celeba" / "img_align_celeba").is_dir():
        pytest.skip(f"real CelebA sample not found at {SHARED_DATA} (only developer and CI machines have it)")
    return SHARED_DATA


def make_tiny_faces(n: int = 8, size: int = 28, seed: int = 0) -> np.ndarray:
    """Smooth, face-like synthetic images: a bright ellipse on a gradient, with random colours."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    images = np.empty((n, size, size, 3), np.float32)
    for i in range(n):
        cy, cx = rng.uniform(0.4, 0.6, 2)
        ry, rx = rng.uniform(0.25, 0.4, 2)
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
        background = rng.uniform(0.1, 0.4, 3) + 0.2 * yy[..., None]
        skin = rng.uniform(0.5, 0.9, 3)
        images[i] = np.where(inside[..., None], skin, background)
    return np.clip(images, 0.0, 1.0).astype(np.float32)


@pytest.fixture
def tiny_faces() -> np.ndarray:
    """Eight deterministic 28x28 RGB float32 face-like images in [0, 1]."""
    return make_tiny_faces()
