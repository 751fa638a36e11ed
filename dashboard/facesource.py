"""Where the dashboard's faces come from: the built-in LFW faces, or the user's CelebA folder.

Only the test faces the tables mention are prepared (never the whole of CelebA), through
``denoising.faces`` so they are processed exactly like the faces that were scored, and cached on disk.
No streamlit here.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
MAX_UNLISTED_FACES = 64  # with no tables, show this many CelebA test faces


class FaceSourceError(ValueError):
    """A CelebA folder that cannot be used; the message is meant for the reader."""


@dataclass
class FaceBank:
    """Face images addressed by image id."""

    ids: list[str]
    images: np.ndarray  # float32 (N, H, W, 3)

    def __post_init__(self) -> None:
        self._index = {image_id: i for i, image_id in enumerate(self.ids)}

    def __contains__(self, image_id: str) -> bool:
        return image_id in self._index

    def get(self, image_id: str) -> np.ndarray:
        return self.images[self._index[image_id]]


def dashboard_cache_dir() -> Path:
    """Where prepared CelebA test faces are kept: ``DENOISING_DASHBOARD_CACHE`` or ``<repo>/.cache/dashboard``."""
    return Path(os.environ.get("DENOISING_DASHBOARD_CACHE") or REPO_ROOT / ".cache" / "dashboard")


def lfw_bank(size: int = 28) -> FaceBank:
    from denoising.faces import load_lfw_faces

    faces = load_lfw_faces(size)
    return FaceBank(list(faces.table["image_id"].astype(str)), faces.images)


def _image_folder(folder: Path) -> Path:
    for candidate in (folder / "img_align_celeba" / "img_align_celeba", folder / "img_align_celeba", folder):
        if candidate.is_dir() and any(candidate.glob("*.jpg")):
            return candidate
    raise FaceSourceError(f"No CelebA photos (*.jpg) found in {folder} or its img_align_celeba folder.")


def _partition_file(folder: Path, images: Path) -> Path | None:
    for candidate in (folder / "list_eval_partition.txt", images / "list_eval_partition.txt",
                      images.parent / "list_eval_partition.txt", folder.parent / "list_eval_partition.txt"):
        if candidate.is_file():
            return candidate
    return None


def default_test_ids(folder: Path, limit: int = MAX_UNLISTED_FACES) -> list[str]:
    """Test faces to show when no table names any: CelebA's official test split, else the last photos."""
    images = _image_folder(folder)
    partition = _partition_file(folder, images)
    ids: list[str] = []
    if partition is not None:
        for line in partition.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == "2" and (images / parts[0]).is_file():
                ids.append(parts[0])
                if len(ids) >= limit:
                    break
    if not ids:
        ids = sorted(p.name for p in images.glob("*.jpg"))[-limit:]
    return ids


def celeba_bank(folder: Path, ids: list[str], size: int, cache_root: Path) -> FaceBank:
    """Prepare (once, cached) just the CelebA faces ``ids`` from the user's folder."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FaceSourceError(f"The CelebA folder {folder} does not exist, so its faces cannot be pictured here.")
    images = _image_folder(folder)
    ids = list(ids) or default_test_ids(folder)
    present = [i for i in ids if (images / i).is_file()]
    if not present:
        raise FaceSourceError(f"None of the test faces listed in the tables are in {images}.")
    key = hashlib.sha256(repr((str(images.resolve()), present, size)).encode()).hexdigest()[:16]
    cache = Path(cache_root) / f"celeba-{key}"
    from denoising.faces import FaceDataError, load_prepared, prepare_faces

    try:
        if cache.is_dir():
            faces = load_prepared(cache)
        else:
            # A folder of links to only the needed photos, so preparation touches nothing else.
            with tempfile.TemporaryDirectory() as tmp:
                staged = Path(tmp) / "img_align_celeba"
                staged.mkdir()
                for image_id in present:
                    try:
                        os.symlink((images / image_id).resolve(), staged / image_id)
                    except OSError:
                        shutil.copy2(images / image_id, staged / image_id)
                faces = prepare_faces([staged], size=size, cache_dir=cache, workers=1)
    except FaceDataError as error:
        raise FaceSourceError(f"Could not read the CelebA faces in {folder}: {error}") from error
    return FaceBank(list(faces.table["image_id"].astype(str)), faces.images)


def noisy_from_seed(clean: np.ndarray, spec, seed: int) -> np.ndarray:
    """One face's noisy version from its stored per-image seed (as ``noisy_copies`` draws it)."""
    return np.asarray(spec.apply(clean[None], np.random.default_rng(int(seed))), np.float32)[0]


def meta_face_size(meta: dict) -> int:
    """Face size (pixels) the tables were scored at, from their meta.json; 28 (the post's) when not recorded."""
    for key in ("size", "image_size", "face_size"):
        if isinstance(meta.get(key), int):
            return int(meta[key])
    return 28


def scored_case(per_image, bank: FaceBank | None, test_set: str, image_id: str, noise: str):
    """(clean, noisy, noise spec) for one face, the noisy input rebuilt from its stored seed exactly as it was scored.

    None when the per-image table has no row for it or the face is not in ``bank``.
    """
    from denoising.noise import NoiseSpec

    if bank is None or image_id not in bank or per_image.empty:
        return None
    rows = per_image[(per_image["test_set"] == test_set) & (per_image["image_id"] == image_id)
                     & (per_image["noise"] == noise)]
    if rows.empty:
        return None
    clean, spec = bank.get(image_id), NoiseSpec.from_json(str(rows["noise_params"].iloc[0]))
    return clean, noisy_from_seed(clean, spec, int(rows["noise_seed"].iloc[0])), spec
