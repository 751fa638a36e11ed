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
import stat
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
#: a zip member larger than this (uncompressed, from its header) is skipped without being read: a CelebA face
#: JPEG is about 10 KB and a large camera JPEG about 10 MB
MAX_MEMBER_BYTES = 20_000_000


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
    #: files passed over while scanning (links to nothing, FIFOs, names that are not UTF-8, oversized zip
    #: members), as ``{"image_id", "reason"}`` like the files that fail to decode
    skipped: list[dict] = field(default_factory=list)

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


def printable(name: str) -> str:
    """``name`` as valid UTF-8 text (bytes that are not UTF-8 become U+FFFD), for messages and tables."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _not_usable(full: str, rel: str) -> str | None:
    """Why the folder entry ``full`` cannot be a photo (None when it can): checked without opening it."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return "its file name is not valid UTF-8: rename it"
    try:
        mode = os.stat(full).st_mode  # follows links: a link to a photo is a photo
    except FileNotFoundError:
        return "it is a link to a file that does not exist"
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or type(exc).__name__})"
    return None if stat.S_ISREG(mode) else "it is not a regular file (a FIFO, device or folder)"


def _scan_folder(folder: Path, celeba_layout: bool) -> tuple[list[ImageRef], list[dict]]:
    """(image refs, skipped entries) of every photo under ``folder``; only regular files are kept."""
    refs, skipped = [], []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            rel = Path(full).relative_to(folder).as_posix()
            if not _is_image_name(rel):
                continue
            image_id = name if celeba_layout else rel
            reason = _not_usable(full, rel)
            if reason:
                skipped.append({"image_id": printable(image_id), "reason": f"{printable(rel)}: {reason}"})
                continue
            st = os.stat(full)
            refs.append(ImageRef(image_id, str(folder), rel, False, st.st_size, st.st_mtime_ns))
    return refs, skipped


def _scan_zip(path: Path) -> tuple[list[ImageRef], bool, list[dict]]:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir() and _is_image_name(i.filename)]
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError) as exc:
        raise FaceDataError(f"{path} is not a readable zip file ({exc})") from exc
    celeba = path.stem == CELEBA_FOLDER or any(
        CELEBA_FOLDER in PurePosixPath(i.filename).parts[:-1] for i in infos
    )
    refs, skipped = [], []
    for info in infos:
        member = PurePosixPath(info.filename)
        image_id = member.name if celeba else info.filename
        if info.file_size > MAX_MEMBER_BYTES:  # from the zip's directory: nothing is decompressed
            skipped.append({"image_id": image_id, "reason": f"{info.filename}: {info.file_size:,} bytes once "
                            f"unzipped, more than the {MAX_MEMBER_BYTES:,} a face photo may have"})
            continue
        # zip entries carry their own size and date; they change when the zip is rebuilt
        stamp = int("{:04d}{:02d}{:02d}{:02d}{:02d}{:02d}".format(*info.date_time))
        refs.append(ImageRef(image_id, str(path), info.filename, True, info.file_size, stamp))
    return refs, celeba, skipped


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
    if isinstance(path, str) and not path.strip():
        raise FaceDataError("an empty source name was given: name a CelebA folder, a zip of photos or 'lfw' "
                            "(write '.' for the current folder)")
    p = Path(path).expanduser()
    if str(path) == LFW_WORD and not p.exists():
        return Source(Path(LFW_WORD), "lfw")
    try:
        str(p).encode("utf-8")
    except UnicodeEncodeError:
        raise FaceDataError(f"{printable(str(p))}: the path is not valid UTF-8; rename it") from None
    if not p.exists():
        raise FaceDataError(f"{p} does not exist (expected a CelebA folder, img_align_celeba.zip or a folder of photos)")
    p = p.resolve()
    if p.is_file():
        if p.suffix.lower() != ".zip":
            raise FaceDataError(f"{p} is a file, not a folder or .zip of face photos")
        refs, celeba, skipped = _scan_zip(p)
        _check_found(p, refs, skipped, "jpg/png/...: it does not look like CelebA's img_align_celeba.zip")
        meta_dirs = [p.parent, p.parent.parent]
        kind = "celeba" if celeba else "folder"
    elif (p / f"{CELEBA_FOLDER}.zip").is_file() and not (p / CELEBA_FOLDER).is_dir():
        return _with_metadata(discover_source(p / f"{CELEBA_FOLDER}.zip"), [p])
    else:
        celeba = (p / CELEBA_FOLDER).is_dir() or p.name == CELEBA_FOLDER
        folder = p / CELEBA_FOLDER if (p / CELEBA_FOLDER).is_dir() else p
        refs, skipped = _scan_folder(folder, celeba)
        meta_dirs = [p] if folder != p or not celeba else [p, p.parent]
        kind = "celeba" if celeba else "folder"
        _check_found(p, refs, skipped, f"looked for {', '.join(sorted(IMAGE_SUFFIXES))}, recursively")
    if skipped:
        logger.warning("%s: skipped %d files that cannot be photos (first: %s)", p, len(skipped),
                       skipped[0]["reason"])
    return _with_metadata(Source(p, kind, refs, skipped=skipped), meta_dirs)


def _check_found(path: Path, refs: list[ImageRef], skipped: list[dict], looked_for: str) -> None:
    if not refs:
        note = f"; skipped {len(skipped)} (first: {skipped[0]['reason']})" if skipped else ""
        raise FaceDataError(f"{path} contains no images ({looked_for}){note}")


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
