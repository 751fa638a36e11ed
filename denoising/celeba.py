"""Where face photos come from: CelebA folders and zips, any photo folder, and how they are split.

This module only *finds* images and decides their split; decoding and caching live in
:mod:`denoising.faces`. It understands:

* a CelebA download: a folder holding ``img_align_celeba/`` (or that folder itself), or the
  official ``img_align_celeba.zip``, with ``list_eval_partition.txt`` and ``identity_CelebA.txt``
  next to it (or in ``Eval/`` / ``Anno/`` as on the official Google Drive) when present;
* any folder of photos (searched recursively) or zip of photos.

Partial downloads are normal: partition and identity files list all 202,599 CelebA images and
only the files actually present are used.
"""

from __future__ import annotations

import logging
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
CELEBA_FOLDER = "img_align_celeba"
PARTITION_FILE = "list_eval_partition.txt"
IDENTITY_FILE = "identity_CelebA.txt"
PARTITION_NAMES = {0: "train", 1: "validation", 2: "test"}
SPLITS = ("train", "validation", "test")
LFW_WORD = "lfw"

#: seeded split used when the official partition does not cover an image: 25% test (as in the post),
#: then 15% of the remaining training faces become the validation slice.
TEST_FRACTION = 0.25
VALIDATION_FRACTION = 0.15


class FaceDataError(ValueError):
    """Expected bad input (missing path, empty folder, unreadable image, ...), with a message for people."""


@dataclass(frozen=True)
class ImageRef:
    """One image file found in a source.

    Attributes
    ----------
    image_id : str
        Name used everywhere else: the CelebA file name (``"000001.jpg"``) or, for other
        folders, the path relative to the folder (``"alice/01.jpg"``).
    container : str
        Folder or zip file the image lives in.
    member : str
        Path relative to the folder, or zip member name.
    in_zip : bool
        Whether ``container`` is a zip file.
    nbytes, mtime : int
        File size and modification time (ns), for the cache fingerprint.
    """

    image_id: str
    container: str
    member: str
    in_zip: bool
    nbytes: int
    mtime: int


@dataclass
class Source:
    """A resolved source: its images and the CelebA metadata files found with it."""

    path: Path
    kind: str  # "celeba" | "folder" | "lfw"
    refs: list[ImageRef] = field(default_factory=list)
    partition_file: Path | None = None
    identity_file: Path | None = None

    def metadata_files(self) -> list[Path]:
        """The partition/identity files that apply to this source."""
        return [p for p in (self.partition_file, self.identity_file) if p is not None]


def _is_image_name(name: str) -> bool:
    pure = PurePosixPath(name)
    # macOS zips carry "__MACOSX/._x.jpg" resource forks that are not images
    if any(part.startswith(".") or part == "__MACOSX" for part in pure.parts):
        return False
    return pure.suffix.lower() in IMAGE_SUFFIXES


def _find_metadata(dirs: list[Path], name: str) -> Path | None:
    for d in dirs:
        for candidate in (d / name, d / "Eval" / name, d / "Anno" / name):
            if candidate.is_file():
                return candidate
    return None


def _scan_folder(folder: Path, celeba_layout: bool) -> list[ImageRef]:
    refs = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            full = Path(dirpath) / name
            rel = full.relative_to(folder).as_posix()
            if not _is_image_name(rel):
                continue
            st = full.stat()
            image_id = name if celeba_layout else rel
            refs.append(ImageRef(image_id, str(folder), rel, False, st.st_size, st.st_mtime_ns))
    return refs


def _scan_zip(path: Path) -> tuple[list[ImageRef], bool]:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir() and _is_image_name(i.filename)]
    except (zipfile.BadZipFile, OSError) as exc:
        raise FaceDataError(f"{path} is not a readable zip file ({exc})") from exc
    celeba = path.stem == CELEBA_FOLDER or any(
        CELEBA_FOLDER in PurePosixPath(i.filename).parts[:-1] for i in infos
    )
    refs = []
    for info in infos:
        member = PurePosixPath(info.filename)
        image_id = member.name if celeba else info.filename
        # zip entries carry their own size and date; they change when the zip is rebuilt
        stamp = int("{:04d}{:02d}{:02d}{:02d}{:02d}{:02d}".format(*info.date_time))
        refs.append(ImageRef(image_id, str(path), info.filename, True, info.file_size, stamp))
    return refs, celeba


def discover_source(path: str | os.PathLike) -> Source:
    """Resolve one source path into its image list and metadata files.

    Parameters
    ----------
    path : str or path-like
        A CelebA folder (containing ``img_align_celeba/`` or ``img_align_celeba.zip``), the
        ``img_align_celeba`` folder itself, a zip of images, or any folder of photos.
        The word ``"lfw"`` (when no such path exists) means scikit-image's built-in faces.

    Returns
    -------
    Source

    Raises
    ------
    FaceDataError
        When the path does not exist, is not a folder or zip, or holds no images.
    """
    p = Path(path).expanduser()
    if str(path) == LFW_WORD and not p.exists():
        return Source(Path(LFW_WORD), "lfw")
    if not p.exists():
        raise FaceDataError(f"{p} does not exist (expected a CelebA folder, img_align_celeba.zip or a folder of photos)")
    p = p.resolve()
    if p.is_file():
        if p.suffix.lower() != ".zip":
            raise FaceDataError(f"{p} is a file, not a folder or .zip of face photos")
        refs, celeba = _scan_zip(p)
        if not refs:
            raise FaceDataError(
                f"{p} contains no images (jpg/png/...): it does not look like CelebA's img_align_celeba.zip"
            )
        meta_dirs = [p.parent, p.parent.parent]
        kind = "celeba" if celeba else "folder"
    elif (p / CELEBA_FOLDER).is_dir():
        refs, meta_dirs, kind = _scan_folder(p / CELEBA_FOLDER, True), [p], "celeba"
    elif (p / f"{CELEBA_FOLDER}.zip").is_file():
        return _with_metadata(discover_source(p / f"{CELEBA_FOLDER}.zip"), [p])
    elif p.name == CELEBA_FOLDER:
        refs, meta_dirs, kind = _scan_folder(p, True), [p, p.parent], "celeba"
    else:
        refs, meta_dirs, kind = _scan_folder(p, False), [p], "folder"
    if not refs:
        raise FaceDataError(f"{p} contains no images (looked for {', '.join(sorted(IMAGE_SUFFIXES))}, recursively)")
    return _with_metadata(Source(p, kind, refs), meta_dirs)


def _with_metadata(source: Source, dirs: list[Path]) -> Source:
    source.partition_file = source.partition_file or _find_metadata(dirs, PARTITION_FILE)
    source.identity_file = source.identity_file or _find_metadata(dirs, IDENTITY_FILE)
    if source.metadata_files():
        source.kind = "celeba"
    return source


def _read_table(path: Path, wanted: set[str]) -> dict[str, int]:
    """Read a CelebA ``name value`` listing, keeping only the names we have (the files are 202,599 lines)."""
    out: dict[str, int] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, 1):
                parts = line.split()
                if len(parts) != 2 or parts[0] not in wanted:
                    continue
                try:
                    out[parts[0]] = int(parts[1])
                except ValueError:
                    logger.warning("%s line %d: %r is not an integer; ignored", path, lineno, parts[1])
    except OSError as exc:
        raise FaceDataError(f"cannot read {path}: {exc}") from exc
    return out


def read_partition(path: Path, wanted: set[str]) -> dict[str, str]:
    """Official CelebA split of the ``wanted`` file names: ``{"000001.jpg": "train", ...}``."""
    raw = _read_table(path, wanted)
    bad = sorted(k for k, v in raw.items() if v not in PARTITION_NAMES)
    if bad:
        logger.warning("%s: %d entries with a partition other than 0/1/2 ignored (e.g. %s)", path, len(bad), bad[0])
    return {k: PARTITION_NAMES[v] for k, v in raw.items() if v in PARTITION_NAMES}


def read_identity(path: Path, wanted: set[str]) -> dict[str, int]:
    """CelebA identity of the ``wanted`` file names: ``{"000001.jpg": 2880, ...}``."""
    return _read_table(path, wanted)


def seeded_split(
    image_ids: list[str],
    rng: np.random.Generator | int | None = 0,
    identities: dict[str, int] | None = None,
    test_fraction: float = TEST_FRACTION,
    validation_fraction: float = VALIDATION_FRACTION,
) -> dict[str, str]:
    """Split images into train/validation/test reproducibly.

    ``test_fraction`` of the images go to test; ``validation_fraction`` of the rest to
    validation. When identities are known, all images of one person land in the same split
    (so test faces belong to people never seen in training); counts are then approximate.

    Parameters
    ----------
    image_ids : list of str
        Images to split (order does not matter: they are sorted first).
    rng : numpy.random.Generator or int, optional
        Seed or generator. Same seed, same split.
    identities : dict, optional
        ``image_id -> identity`` for images whose person is known.
    test_fraction, validation_fraction : float
        See above.

    Returns
    -------
    dict
        ``image_id -> "train" | "validation" | "test"``.
    """
    rng = np.random.default_rng(rng)
    identities = identities or {}
    groups: dict[str, list[str]] = {}
    for image_id in sorted(set(image_ids)):
        key = f"id:{identities[image_id]}" if image_id in identities else f"img:{image_id}"
        groups.setdefault(key, []).append(image_id)
    keys = sorted(groups)
    order = rng.permutation(len(keys))
    n = sum(len(g) for g in groups.values())
    n_test = round(n * test_fraction)
    n_val = round((n - n_test) * validation_fraction)
    out: dict[str, str] = {}
    counts = {"test": 0, "validation": 0}
    for idx in order:
        members = groups[keys[idx]]
        if counts["test"] < n_test:
            split = "test"
        elif counts["validation"] < n_val:
            split = "validation"
        else:
            split = "train"
        if split != "train":
            counts[split] += len(members)
        for image_id in members:
            out[image_id] = split
    return out
