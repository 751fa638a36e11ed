"""Face images: decode, crop, resize, split and cache them as float32 (N, H, W, 3) in [0, 1].

The face crop
-------------
Every photo is cut to its **centred square** (side = the shorter side) and resized to
``size x size`` with Pillow's bicubic filter, which is antialiased when shrinking (Pillow widens
the kernel by the reduction factor, so 178 px -> 28 px low-pass filters instead of aliasing).
Measured on CelebA at 28 px: after the reduced-scale JPEG decode below, bicubic lands within
0.3/255 MAE of a full-resolution decode; the BOX (area) filter drifted 2.3/255 and is blocky
for the small ratios of 64 px crops from half-size files; Lanczos is as accurate as bicubic
but costs twice as much (as much as the JPEG decode itself).

For CelebA's aligned 178x218 photos the square is rows 20-197. CelebA aligned every face so
the eyes sit at about row 110 of 218, the image's vertical middle (109): the centred square
puts the eyes on the crop's middle line with the whole face (forehead to chin, mouth at about
3/4 height) inside, with undistorted proportions (the 2020 post squashed 178x218 into a
square). Shifting the square down to centre the eyes-mouth midpoint would cut the top of the
head for little gain, so we keep the plain centred square (:func:`load_face_photo` applies the
same crop to a user photo). The Noise lab's own photo is decoded by :func:`load_photo`, which keeps
its shape and shrinks it only past :data:`PHOTO_MAX_SIDE` pixels, then cut by :func:`crop_to_face`
to a square around its face framed like the training faces (the detector's box, placed as it sits
in CelebA's crops), or to the centred square when no face is found.

Speed
-----
JPEGs are decoded at reduced scale (PIL draft mode: the JPEG decoder skips DCT coefficients,
asking for at least ``2 * size`` pixels on the short side so the final resize still has
twice the resolution it needs; asking for only ``size`` drifted 5/255 MAE from a full decode),
and files are decoded on all cores in chunks.

Cache
-----
:func:`prepare_faces` writes ``images.npy`` (uint8, exact ``x / 255`` round trip),
``faces.csv`` (``image_id, split, identity, source``) and ``meta.json`` (sources, size, crop,
counts, skipped files, fingerprint of inputs) to one folder; a second call with the same
inputs loads it instead of decoding again.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import os
import re
import stat
import time
import warnings
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from PIL import Image, ImageOps

from denoising.celeba import (
    LFW_WORD,
    MAX_MEMBER_BYTES,
    SPLITS,
    FaceDataError,
    ImageRef,
    Source,
    discover_source,
    read_identity,
    read_partition,
    seeded_split,
)

__all__ = [
    "DEFAULT_CACHE_DIR",
    "FaceDataError",
    "FaceSet",
    "PHOTO_MAX_PIXELS",
    "PHOTO_MAX_COSTLY_PIXELS",
    "PHOTO_MAX_SIDE",
    "PHOTO_MIN_SIDE",
    "Photo",
    "FaceCrop",
    "crop_and_resize",
    "crop_to_face",
    "find_face",
    "load_face_photo",
    "load_lfw_faces",
    "load_photo",
    "load_prepared",
    "prepare_faces",
]

logger = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = Path(__file__).resolve().parents[1] / ".cache" / "faces"
CROP = "centred square (side = shorter side), antialiased bicubic resize; JPEG draft decode at >= 2*size"
#: bump when the crop/resize changes, so old caches are not reused
CROP_VERSION = 3
MIN_SIZE, MAX_SIZE = 4, 1024
#: same ceiling as Pillow's own decompression-bomb guard (about 89 megapixels)
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
IMAGES_FILE, TABLE_FILE, META_FILE = "images.npy", "faces.csv", "meta.json"
LFW_CONTAINER = "<skimage.data.lfw_subset>"
TABLE_COLUMNS = ["image_id", "split", "identity", "source"]


@dataclass
class FaceSet:
    """Faces and their split table, row ``i`` of ``table`` describing ``images[i]``.

    Attributes
    ----------
    images : numpy.ndarray
        float32 (N, H, W, 3) in [0, 1].
    table : pandas.DataFrame
        Columns ``image_id`` (str), ``split`` ("train" | "validation" | "test"),
        ``identity`` (Int64, <NA> when unknown), ``source`` ("celeba" | "folder" | "lfw").
    meta : dict
        What :func:`prepare_faces` recorded (empty for built-in sets); ``meta["reused"]`` tells
        whether the cache was reused.
    cache_dir : Path or None
        Folder the faces were loaded from or written to.
    """

    images: np.ndarray
    table: pd.DataFrame
    meta: dict = field(default_factory=dict)
    cache_dir: Path | None = None

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, split: str) -> FaceSet:
        """Only the faces of one split ("train", "validation" or "test"), in the same order."""
        if split not in SPLITS:
            raise FaceDataError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        mask = (self.table["split"] == split).to_numpy()
        return FaceSet(self.images[mask], self.table[mask].reset_index(drop=True), self.meta, self.cache_dir)

    def split_counts(self) -> dict[str, int]:
        """Number of faces per split, in train/validation/test order."""
        counts = self.table["split"].value_counts()
        return {s: int(counts.get(s, 0)) for s in SPLITS}


# ----------------------------------------------------------------------------- single images


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not MIN_SIZE <= size <= MAX_SIZE:
        raise FaceDataError(f"size must be a whole number of pixels from {MIN_SIZE} to {MAX_SIZE}, got {size!r}")
    return int(size)


def _composite_on_white(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB (transparent areas become white, 16-bit is rescaled, not clipped)."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode.startswith("I") or mode == "F":
        # Pillow's own convert() clips 16-bit values at 255, turning most photos white
        arr = np.asarray(img).astype(np.float64)
        top = float(arr.max()) if arr.size else 0.0
        if mode.startswith("I;16") or 255 < top <= 65535:
            arr = arr / 257.0
        elif mode == "F" and top <= 1.0:
            arr = arr * 255.0
        elif top > 65535:
            arr = arr * (255.0 / top)
        grey = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        return _composite_on_white(img)
    return img.convert("RGB")


def _array_to_image(array: np.ndarray) -> Image.Image:
    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)) or min(arr.shape[:2]) < 1:
        raise FaceDataError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image array, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        u8 = arr
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise FaceDataError("image array contains NaN or infinite values")
        u8 = np.rint(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)
    elif arr.dtype == np.uint16:
        u8 = np.rint(arr / 257.0).astype(np.uint8)
    elif arr.dtype == np.bool_:
        u8 = arr.astype(np.uint8) * 255
    elif np.issubdtype(arr.dtype, np.integer):
        u8 = np.clip(arr, 0, 255).astype(np.uint8)
    else:
        raise FaceDataError(f"unsupported image array dtype {arr.dtype}")
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[u8.shape[-1] if u8.ndim == 3 else 2]
    return Image.fromarray(np.ascontiguousarray(u8), mode)


def _crop_resize_u8(img: Image.Image, size: int) -> np.ndarray:
    """Centred square of an RGB image, resized to (size, size, 3) uint8."""
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    # crop first: resize(box=...) would let the filter reach pixels outside the square
    out = img.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(out, dtype=np.uint8)


def crop_and_resize(image: Image.Image | np.ndarray, size: int = 28) -> np.ndarray:
    """Centred square crop, then resize: the project's one face crop.

    Parameters
    ----------
    image : PIL.Image.Image or numpy.ndarray
        Any Pillow image (grey, RGBA, CMYK, 16-bit, palette: converted to RGB) or an array
        (H, W), (H, W, 3) or (H, W, 4): uint8/uint16/bool, or floats in [0, 1].
    size : int, default 28
        Output side in pixels.

    Returns
    -------
    numpy.ndarray
        float32 (size, size, 3) in [0, 1].
    """
    size = _check_size(size)
    img = image if isinstance(image, Image.Image) else _array_to_image(image)
    return _crop_resize_u8(_to_rgb(img), size).astype(np.float32) / np.float32(255.0)


def _decode_u8(fp, size: int, name: str) -> np.ndarray:
    """Decode one encoded image (path or file object) to (size, size, 3) uint8; FaceDataError on failure."""
    try:
        with warnings.catch_warnings():
            # Pillow only *warns* between 1x and 2x its pixel limit: make that an error too
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fp) as img:
                w, h = img.size
                if w * h > MAX_PIXELS:
                    raise Image.DecompressionBombError(f"{w}x{h}")
                # JPEG only (no-op elsewhere): decode at 1/2, 1/4 or 1/8 scale, keeping >= 2*size
                img.draft("RGB", (2 * size, 2 * size))
                img.load()
                img = ImageOps.exif_transpose(img)
                return _crop_resize_u8(_to_rgb(img), size)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise FaceDataError(
            f"{name} is too large to open safely ({exc}; limit {MAX_PIXELS:,} pixels): "
            "it may be a decompression bomb; resize it first"
        ) from exc
    except FaceDataError:
        raise
    except Image.UnidentifiedImageError as exc:
        raise FaceDataError(f"{name} is not an image Pillow can read") from exc
    except FileNotFoundError as exc:
        raise FaceDataError(f"{name} does not exist") from exc
    except Exception as exc:  # noqa: BLE001 - truncated/corrupt files raise OSError, SyntaxError, ValueError, ...
        raise FaceDataError(f"{name} is corrupt or truncated ({type(exc).__name__}: {exc})") from exc


def load_face_photo(path_or_bytes, size: int = 28) -> np.ndarray:
    """Decode one user photo into a face crop.

    Parameters
    ----------
    path_or_bytes : str, path-like, bytes, or file-like
        A file path, the encoded bytes, or an object with ``read()`` (e.g. a Streamlit upload).
    size : int, default 28
        Output side in pixels.

    Returns
    -------
    numpy.ndarray
        float32 (size, size, 3) in [0, 1], see :func:`crop_and_resize`.

    Raises
    ------
    FaceDataError
        Missing file, not an image, corrupt/truncated, or too many pixels (decompression bomb).
    """
    size = _check_size(size)
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        fp, name = io.BytesIO(bytes(path_or_bytes)), "the uploaded file"
    elif isinstance(path_or_bytes, (str, os.PathLike)):
        fp, name = Path(path_or_bytes), str(path_or_bytes)
        if not fp.is_file():
            raise FaceDataError(f"{name} does not exist or is not a file")
    elif hasattr(path_or_bytes, "read"):
        # getvalue() when there is one (BytesIO, Streamlit uploads): read() returns b"" once consumed
        getvalue = getattr(path_or_bytes, "getvalue", None)
        fp = io.BytesIO(getvalue() if callable(getvalue) else path_or_bytes.read())
        name = getattr(path_or_bytes, "name", None) or "the uploaded file"
    else:
        raise FaceDataError(f"expected a path, bytes or a file object, got {type(path_or_bytes).__name__}")
    if isinstance(fp, io.BytesIO) and not fp.getbuffer().nbytes:
        raise FaceDataError(f"{name} is empty")
    return _decode_u8(fp, size, name).astype(np.float32) / np.float32(255.0)


# ----------------------------------------------------------------------------- a user's photo at its own size

#: the Noise lab's own photo keeps its size up to this many pixels on its longer side, and is shrunk to it beyond
PHOTO_MAX_SIDE = 256
#: fewer pixels than this on a side (after any shrinking) leave too little to see noise or its removal
PHOTO_MIN_SIDE = 16
#: refused from the file's header alone, before a pixel is decoded: more than any camera photo (a 24-megapixel
#: JPEG is 6000x4000), far less than the 89 megapixels Pillow itself allows, and 150 MB at most once decoded
PHOTO_MAX_PIXELS = 50_000_000
#: the lower limit for pictures that cost several times more memory per pixel to turn into 8-bit RGB: more than
#: 8 bits per channel (16-bit PNG or TIFF) or a transparency to composite; 12 megapixels is a 4000x3000 photo
PHOTO_MAX_COSTLY_PIXELS = 12_000_000
_SWAPPING_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that turn the picture a quarter turn


class Photo(NamedTuple):
    """A user photo decoded by :func:`load_photo`.

    Attributes
    ----------
    pixels : numpy.ndarray
        float32 (H, W, 3) in [0, 1], upright, at most ``max_side`` pixels on its longer side.
    original_size : tuple of int
        (width, height) of the upright photo in the file, before any shrinking.
    """

    pixels: np.ndarray
    original_size: tuple[int, int]

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of :attr:`pixels`."""
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])

    @property
    def shrunk(self) -> bool:
        """Whether the photo was larger than ``max_side`` and had to be shrunk."""
        return self.size != tuple(self.original_size)


def _fitted_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) with the longer side at most ``max_side``, the shape kept (rounded to whole pixels)."""
    longer = max(width, height)
    if longer <= max_side:
        return width, height
    scale = max_side / longer
    if width >= height:
        return max_side, max(1, round(height * scale))
    return max(1, round(width * scale)), max_side


def _bits_per_channel(img: Image.Image) -> int:
    """Bits per channel the file declares (from the header: Pillow reads 16-bit RGB(A) PNGs as 8-bit modes)."""
    if img.mode in ("I", "F") or img.mode.startswith("I;32"):
        return 32
    raw = getattr(getattr(img, "png", None), "im_rawmode", None)
    if raw is None and img.tile:
        args = img.tile[0].args
        raw = args[0] if isinstance(args, tuple) and args else args
    return 16 if img.mode.startswith("I;16") or (isinstance(raw, str) and ";16" in raw) else 8


def _check_header(img: Image.Image, name: str) -> None:
    """Refuse, from the header alone, animations and pictures too large for the memory their mode costs."""
    width, height = img.size
    pixels, bits = width * height, _bits_per_channel(img)
    if pixels > PHOTO_MAX_PIXELS:
        raise FaceDataError(
            f"{name} is {width}×{height} pixels ({pixels / 1e6:.0f} megapixels); photos of at most "
            f"{PHOTO_MAX_PIXELS // 1_000_000} megapixels are opened: shrink it first")
    transparent = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    if pixels > PHOTO_MAX_COSTLY_PIXELS and (bits > 8 or transparent):
        what = f"{bits} bits per channel" if bits > 8 else "transparency"
        raise FaceDataError(
            f"{name} is {width}×{height} pixels ({pixels / 1e6:.0f} megapixels) with {what}; such pictures are "
            f"opened up to {PHOTO_MAX_COSTLY_PIXELS // 1_000_000} megapixels: shrink it or save it as an 8-bit "
            "JPEG first")
    if getattr(img, "is_animated", False):  # looks for a second frame only: never walks a long animation
        raise FaceDataError(f"{name} holds several frames (an animation or a multi-page file): upload a single "
                            "picture")


def _decode_photo(fp, max_side: int, name: str) -> Photo:
    """Open lazily, check the header (size, bit depth, frames), then decode, turn upright, convert to RGB, shrink."""
    with Image.open(fp) as img:  # reads the header only: no pixel is decoded before the checks below
        _check_header(img, name)
        width, height = img.size
        fitted = _fitted_size(width, height, max_side)
        if min(width, height) < PHOTO_MIN_SIDE:
            raise FaceDataError(f"{name} is only {width}×{height} pixels: it needs at least {PHOTO_MIN_SIDE} "
                                "pixels on each side")
        if min(fitted) < PHOTO_MIN_SIDE:
            raise FaceDataError(
                f"{name} is {width}×{height} pixels, too narrow: shrunk to {max_side} pixels on its longer side "
                f"it would be {fitted[0]}×{fitted[1]}, under {PHOTO_MIN_SIDE} pixels on its shorter side")
        # JPEG only (no-op elsewhere): decode at 1/2, 1/4 or 1/8 scale, keeping >= twice the final size
        img.draft("RGB", (2 * fitted[0], 2 * fitted[1]))
        img.load()
        try:
            swapped = img.getexif().get(0x0112) in _SWAPPING_ORIENTATIONS
            turned = ImageOps.exif_transpose(img)
        except Exception:  # noqa: BLE001 - unreadable EXIF (junk bytes): the pixels are fine, left as they are
            swapped, turned = False, img
        original = (height, width) if swapped else (width, height)
        upright = _to_rgb(turned)
    target = _fitted_size(*original, max_side)
    if upright.size != target:
        # bicubic widens its kernel by the reduction factor when shrinking: antialiased, as for the faces
        upright = upright.resize(target, Image.Resampling.BICUBIC)
    return Photo(np.asarray(upright, dtype=np.float32) / np.float32(255.0), original)


def load_photo(data, max_side: int = PHOTO_MAX_SIDE) -> Photo:
    """Decode a user photo at its own size: no crop, shrunk (antialiased) only when it is too large.

    Parameters
    ----------
    data : bytes or path-like
        The encoded file (e.g. a Streamlit upload's ``getvalue()``) or its path.
    max_side : int, default PHOTO_MAX_SIDE
        Longest side kept, in pixels; a larger photo is shrunk to it, keeping its aspect ratio
        (1024×768 becomes 256×192).

    Returns
    -------
    Photo
        ``pixels``: float32 (H, W, 3) in [0, 1], upright (EXIF orientation applied), RGB (grey
        is repeated on the three channels, transparent areas become white, 16-bit is rescaled);
        ``original_size``: the upright (width, height) in the file.

    Raises
    ------
    FaceDataError
        Empty or missing file, not an image, damaged or cut short, more than
        :data:`PHOTO_MAX_PIXELS` pixels, more than :data:`PHOTO_MAX_COSTLY_PIXELS` pixels with
        more than 8 bits per channel or with transparency, several frames (an animated GIF, PNG or
        WebP, a multi-page TIFF) -- all refused from the header, before a pixel is decoded -- or
        fewer than :data:`PHOTO_MIN_SIDE` pixels on a side (after shrinking).

    Notes
    -----
    Worst-case memory per call, beyond the encoded file itself, is about 600 MB: the header
    limits above bound it. Measured as peak RSS growth (Pillow 13, files of zeros): a 50-megapixel
    CMYK TIFF 575 MB; a 50-megapixel 8-bit RGB PNG 390 MB (EXIF-rotated or not); a 50-megapixel
    8-bit grey PNG 286 MB; a 12-megapixel 16-bit grey PNG 320 MB; a 12-megapixel RGBA PNG, 8 or
    16 bits, 275 MB. A JPEG costs far less: it is decoded at 1/2 to 1/8 scale when it is to be
    shrunk. Callers serving several visitors should also bound how many uploads decode at once.
    """
    max_side = _check_size(max_side)
    if max_side < PHOTO_MIN_SIDE:
        raise FaceDataError(f"max_side must be at least {PHOTO_MIN_SIDE} pixels, got {max_side}")
    if isinstance(data, (bytes, bytearray, memoryview)):
        fp, name = io.BytesIO(bytes(data)), "the file"
        if not fp.getbuffer().nbytes:
            raise FaceDataError(f"{name} is empty")
    elif isinstance(data, (str, os.PathLike)):
        fp, name = Path(data), str(data)
        if not fp.is_file():
            raise FaceDataError(f"{name} does not exist or is not a file")
    else:
        raise FaceDataError(f"expected the file's bytes or its path, got {type(data).__name__}")
    try:
        with warnings.catch_warnings():
            # Pillow only *warns* between 1x and 2x its own pixel limit: make that an error too
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _decode_photo(fp, max_side, name)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise FaceDataError(f"{name} declares more than {PHOTO_MAX_PIXELS // 1_000_000} megapixels and is not "
                            "opened: shrink it first") from exc
    except FaceDataError:
        raise
    except Image.UnidentifiedImageError as exc:
        raise FaceDataError(f"{name} is not a picture that can be read (PNG, JPEG, WebP, GIF, BMP or TIFF)") from exc
    except Exception as exc:  # noqa: BLE001 - truncated/corrupt files raise OSError, SyntaxError, ValueError, ...
        logger.info("could not decode %s: %s: %s", name, type(exc).__name__, exc)
        raise FaceDataError(f"{name} is damaged or cut short: its pixels could not be decoded") from exc


# ----------------------------------------------------------------------------- a photo cropped around its face

#: Where the training faces' square sits around scikit-image's frontal-face detector box, measured on
#: CelebA's aligned 178x218 photos (37 of 40 detected; medians): the square's side is 1.71 box widths
#: and its centre lies 0.01 box widths left of and 0.15 above the box's centre (the box centres on the
#: nose; the square on the eyes' middle line). (side, x offset, y offset), in box widths.
FACE_FRAME = (1.71, -0.01, -0.15)


class FaceCrop(NamedTuple):
    """What :func:`crop_to_face` cut: the square's pixels, where it lies, and the face box it came from.

    Attributes
    ----------
    pixels : numpy.ndarray
        The square crop, same dtype and channels as the input.
    square : tuple of int
        (left, top, side) of the crop in the input.
    face : tuple of int or None
        (left, top, width, height) of the detected face in the input; None when no face was found
        and the centred square was used.
    """

    pixels: np.ndarray
    square: tuple[int, int, int]
    face: tuple[int, int, int, int] | None


@functools.cache
def _face_detector():
    """scikit-image's LBP frontal-face cascade, loaded once per process (reading its XML takes ~50 ms)."""
    from skimage.data import lbp_frontal_face_cascade_filename
    from skimage.feature import Cascade

    return Cascade(lbp_frontal_face_cascade_filename())


def find_face(image: np.ndarray) -> tuple[int, int, int, int] | None:
    """The largest frontal face in ``image`` (H, W[, C], values in [0, 1]) as (left, top, width, height), or None."""
    grey = np.asarray(image, np.float32)
    grey = grey.mean(axis=-1) if grey.ndim == 3 else grey
    shorter = min(grey.shape)
    if shorter < 24:  # the cascade's smallest window
        return None
    found = _face_detector().detect_multi_scale(
        np.ascontiguousarray(grey), scale_factor=1.2, step_ratio=1, min_size=(24, 24), max_size=(shorter, shorter))
    if not found:
        return None
    box = max(found, key=lambda d: d["width"] * d["height"])
    return int(box["c"]), int(box["r"]), int(box["width"]), int(box["height"])


def crop_to_face(image: np.ndarray) -> FaceCrop:
    """A square crop framed like the training faces around the largest face; the centred square without one.

    Parameters
    ----------
    image : numpy.ndarray
        (H, W) or (H, W, C), values in [0, 1] (e.g. :attr:`Photo.pixels`).

    Returns
    -------
    FaceCrop
        The square (side at most the image's shorter side, moved inside the image where the frame
        would cross its edge), where it lies, and the face box (None: no face found, centred square).
    """
    height, width = image.shape[:2]
    face = find_face(image)
    if face is None:
        side = min(height, width)
        left, top = (width - side) // 2, (height - side) // 2
    else:
        factor, dx, dy = FACE_FRAME
        box_left, box_top, box_w, box_h = face
        side = min(height, width, round(factor * box_w))
        centre_x, centre_y = box_left + box_w * (0.5 + dx), box_top + box_h / 2 + box_w * dy
        left = int(np.clip(round(centre_x - side / 2), 0, width - side))
        top = int(np.clip(round(centre_y - side / 2), 0, height - side))
    return FaceCrop(image[top:top + side, left:left + side].copy(), (left, top, side), face)


# ----------------------------------------------------------------------------- built-in faces


def _lfw_raw() -> np.ndarray:
    from skimage import data  # imported here: scikit-image is slow to import and only LFW needs it

    return data.lfw_subset()[:100]  # the first 100 are faces, the last 100 are not


def load_lfw_faces(size: int = 28) -> FaceSet:
    """scikit-image's 100 built-in LFW faces (25x25 grey), as RGB faces of ``size`` pixels.

    Every fresh machine has them (no download). All are in split "test", source "lfw",
    ids ``lfw_000`` ... ``lfw_099``, identity unknown.

    Parameters
    ----------
    size : int, default 28
        Output side in pixels (resampled from 25 with the same resize).

    Returns
    -------
    FaceSet
    """
    size = _check_size(size)
    raw = _lfw_raw()
    images = np.stack([crop_and_resize(face, size) for face in raw])
    table = _make_table([f"lfw_{i:03d}" for i in range(len(raw))], ["test"] * len(raw), [None] * len(raw), ["lfw"] * len(raw))
    return FaceSet(images, table, {"sources": [{"path": LFW_WORD, "kind": "lfw"}], "size": size, "crop": CROP})


# ----------------------------------------------------------------------------- batch decoding (worker side)

_ZIPS: dict[str, zipfile.ZipFile] = {}
_LFW: list[np.ndarray] = []


def _decode_ref(ref: ImageRef, size: int) -> np.ndarray:
    if ref.container == LFW_CONTAINER:
        if not _LFW:
            _LFW.append(_lfw_raw())
        return np.rint(crop_and_resize(_LFW[0][int(ref.member)], size) * 255).astype(np.uint8)
    if ref.in_zip:
        # one open ZipFile per process: ZipFile objects cannot be sent to workers
        zf = _ZIPS.get(ref.container) or _ZIPS.setdefault(ref.container, zipfile.ZipFile(ref.container))
        with zf.open(ref.member) as member:  # never more than the limit read, whatever the header says
            data = member.read(MAX_MEMBER_BYTES + 1)
        if len(data) > MAX_MEMBER_BYTES:
            raise FaceDataError(f"{ref.image_id} is more than {MAX_MEMBER_BYTES:,} bytes once unzipped")
        return _decode_u8(io.BytesIO(data), size, ref.image_id)
    path = os.path.join(ref.container, ref.member)
    try:
        regular = stat.S_ISREG(os.stat(path).st_mode)  # a FIFO put there since the scan would block the open
    except OSError as exc:
        raise FaceDataError(f"{ref.image_id} cannot be read ({exc.strerror or type(exc).__name__})") from exc
    if not regular:
        raise FaceDataError(f"{ref.image_id} is not a regular file")
    return _decode_u8(path, size, ref.image_id)


def _decode_chunk(refs: list[ImageRef], size: int) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Decode a chunk; returns the images (failed rows left black) and ``(index, reason)`` failures."""
    out = np.zeros((len(refs), size, size, 3), np.uint8)
    failures = []
    for i, ref in enumerate(refs):
        try:
            out[i] = _decode_ref(ref, size)
        except FaceDataError as exc:
            failures.append((i, str(exc)))
        except Exception as exc:  # noqa: BLE001 - never let one bad file kill a 200,000-image run
            failures.append((i, f"{ref.image_id}: {type(exc).__name__}: {exc}"))
    return out, failures


def _decode_all(refs: list[ImageRef], size: int, workers: int, progress: Callable | None):
    n = len(refs)
    images = np.empty((n, size, size, 3), np.uint8)
    failures: list[tuple[int, str]] = []
    chunk = int(np.clip(n // (workers * 8) or 1, 16, 256))
    starts = list(range(0, n, chunk))
    done = 0
    if progress:
        progress(0, n)

    def collect(start: int, result) -> None:
        nonlocal done
        block, fails = result
        images[start : start + len(block)] = block
        failures.extend((start + i, reason) for i, reason in fails)
        done += len(block)
        if progress:
            progress(done, n)

    if workers <= 1 or n < 4 * chunk:
        for s in starts:
            collect(s, _decode_chunk(refs[s : s + chunk], size))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [(s, pool.submit(_decode_chunk, refs[s : s + chunk], size)) for s in starts]
            for s, fut in futures:
                collect(s, fut.result())
    return images, sorted(failures)


# ----------------------------------------------------------------------------- prepare / cache


def _make_table(ids, splits, identities, sources) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "image_id": pd.Series(ids, dtype=str),
            "split": pd.Series(splits, dtype=str),
            "identity": pd.array(identities, dtype="Int64"),
            "source": pd.Series(sources, dtype=str),
        }
    )


def _lfw_source() -> Source:
    refs = [ImageRef(f"lfw_{i:03d}", LFW_CONTAINER, str(i), False, 0, 0) for i in range(100)]
    return Source(Path(LFW_WORD), "lfw", refs)


def _stat_file(path: Path) -> list:
    st = path.stat()
    return [str(path), st.st_size, st.st_mtime_ns]


def _fingerprint(refs: list[ImageRef], sources: list[Source], options: dict) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(options, sort_keys=True).encode())
    for src in sources:
        h.update(json.dumps([str(src.path), src.kind, [_stat_file(p) for p in src.metadata_files()]]).encode())
    for r in refs:
        h.update(f"{r.image_id}\0{r.container}\0{r.member}\0{r.nbytes}\0{r.mtime}\n".encode())
    return h.hexdigest()


def default_cache_dir(sources: Sequence[str | os.PathLike], size: int, seed: int = 0, limit: int | None = None) -> Path:
    """``<repo>/.cache/faces/<source names>-<size>px-<hash>``: one folder per set of options."""
    resolved = [LFW_WORD if str(s) == LFW_WORD and not Path(s).exists() else str(Path(s).expanduser().resolve()) for s in sources]
    names = "+".join(re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(r).name or "root") for r in resolved)[:60]
    digest = hashlib.sha256(json.dumps([resolved, size, seed, limit]).encode()).hexdigest()[:10]
    return DEFAULT_CACHE_DIR / f"{names}-{size}px-{digest}"


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def _save(cache_dir: Path, images: np.ndarray, table: pd.DataFrame, meta: dict) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    # meta.json is written last and removed first: a half-written cache never looks valid
    (cache_dir / META_FILE).unlink(missing_ok=True)
    def write_images(path: Path) -> None:
        with open(path, "wb") as fh:  # a file object, so np.save does not append ".npy" to the temp name
            np.save(fh, images)

    _write_atomic(cache_dir / IMAGES_FILE, write_images)
    _write_atomic(cache_dir / TABLE_FILE, lambda p: table.to_csv(p, index=False))
    _write_atomic(cache_dir / META_FILE, lambda p: p.write_text(json.dumps(meta, indent=1)))


def load_prepared(cache_dir: str | os.PathLike) -> FaceSet:
    """Load faces written by :func:`prepare_faces` (or ``scripts/prepare_data.py``).

    Parameters
    ----------
    cache_dir : path-like
        Folder holding ``images.npy``, ``faces.csv`` and ``meta.json``.

    Returns
    -------
    FaceSet
        Images converted to float32 ``x / 255``.

    Raises
    ------
    FaceDataError
        When the folder is missing, incomplete or inconsistent.
    """
    cache_dir = Path(cache_dir).expanduser()
    missing = [n for n in (IMAGES_FILE, TABLE_FILE, META_FILE) if not (cache_dir / n).is_file()]
    if missing:
        raise FaceDataError(
            f"no prepared faces in {cache_dir} (missing {', '.join(missing)}); run scripts/prepare_data.py first"
        )
    try:
        meta = json.loads((cache_dir / META_FILE).read_text())
        raw = np.load(cache_dir / IMAGES_FILE, allow_pickle=False)
        table = pd.read_csv(cache_dir / TABLE_FILE, dtype={"image_id": str, "split": str, "source": str})
        table = _make_table(table["image_id"], table["split"], table["identity"], table["source"])
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise FaceDataError(f"prepared faces in {cache_dir} are unreadable ({exc}); prepare them again with --force") from exc
    if raw.dtype != np.uint8 or raw.ndim != 4 or raw.shape[-1] != 3 or len(raw) != len(table):
        raise FaceDataError(
            f"prepared faces in {cache_dir} are inconsistent ({raw.shape} {raw.dtype} vs {len(table)} rows); "
            "prepare them again with --force"
        )
    images = raw.astype(np.float32)
    images /= np.float32(255.0)
    return FaceSet(images, table, meta, cache_dir)


def prepare_faces(sources: Sequence[str | os.PathLike], size: int = 28, cache_dir: str | os.PathLike | None = None,
                  seed: int = 0, workers: int | None = None, progress: Callable[[int, int], None] | None = None,
                  force: bool = False, limit: int | None = None) -> FaceSet:
    """Find, crop, resize, split and cache faces from one or more sources.

    Parameters
    ----------
    sources : sequence of path-like
        CelebA folders or ``img_align_celeba.zip`` files, folders/zips of any photos, or the
        word ``"lfw"`` (scikit-image's built-in faces). Files with the same image id (CelebA
        file name) are kept once: the first source wins. CelebA partition and identity files
        found with any source apply to the images of all sources.
    size : int, default 28
        Output side in pixels.
    cache_dir : path-like, optional
        Where to write/reuse the cache; default :func:`default_cache_dir` of the options.
    seed : int, default 0
        Seed of the split for images the official partition does not cover
        (75% train+validation / 25% test, validation = 15% of that train share).
    workers : int, optional
        Decoding processes; default ``os.cpu_count()``.
    progress : callable, optional
        Called as ``progress(done, total)`` while decoding.
    force : bool, default False
        Decode again even when a matching cache exists.
    limit : int, optional
        Keep only the first ``limit`` images (by image id) after de-duplication, for quick runs.

    Returns
    -------
    FaceSet
        ``meta["reused"]`` says whether the cache was reused.

    Raises
    ------
    FaceDataError
        Missing path, empty source name, empty folder, zip without images, or no readable image at all.
        Unreadable files are skipped and listed in ``meta["skipped"]``, as are links to nothing, FIFOs,
        names that are not UTF-8 and zip members over :data:`denoising.celeba.MAX_MEMBER_BYTES` (never read).
    """
    size, sources, workers = _check_options(size, sources, limit, workers)
    found = [_lfw_source() if (s := discover_source(p)).kind == "lfw" else s for p in sources]
    chosen, duplicates = _first_of_each_id(found)
    ids = sorted(chosen)[:limit]
    refs = [chosen[i][0] for i in ids]

    options = {"size": size, "seed": seed, "limit": limit, "crop_version": CROP_VERSION}
    fingerprint = _fingerprint(refs, found, options)
    cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir(sources, size, seed, limit)
    cached = None if force else _matching_cache(cache_dir, fingerprint)
    if cached is not None:
        return cached

    # split before decoding, so a file that fails to decode never reshuffles the others
    splits, partition, identity = _assign_splits(found, ids, seed)
    t0 = time.perf_counter()
    images, kept_ids, skipped = _decode_readable(refs, ids, size, workers, progress)
    seconds = time.perf_counter() - t0
    table = _make_table(kept_ids, [splits[i] for i in kept_ids], [identity.get(i) for i in kept_ids],
                        [chosen[i][1].kind for i in kept_ids])
    face_set = FaceSet(images, table, cache_dir=cache_dir)
    meta = {
        "format": 1,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "sources": [_source_summary(s, kept_ids, chosen) for s in found],
        "size": size, "crop": CROP, **options, "count": len(kept_ids), "split_counts": face_set.split_counts(),
        "official_split": sum(1 for i in kept_ids if i in partition),
        "seeded_split": sum(1 for i in kept_ids if i not in partition),
        "duplicates_ignored": duplicates, "skipped": [x for src in found for x in src.skipped] + skipped,
        "fingerprint": fingerprint, **_speed(len(ids), seconds, workers),
    }
    try:
        _save(cache_dir, images, table, meta)
    except OSError as exc:
        raise FaceDataError(f"cannot write prepared faces to {cache_dir}: {exc.strerror or exc}") from exc
    logger.info("prepared %d faces in %.1f s -> %s", len(kept_ids), seconds, cache_dir)
    face_set.images = images.astype(np.float32) / np.float32(255.0)
    face_set.meta = {**meta, "reused": False}
    return face_set


def _check_options(size: int, sources, limit: int | None, workers: int | None) -> tuple[int, list, int]:
    size = _check_size(size)
    sources = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    if not sources:
        raise FaceDataError("no sources given: pass a CelebA folder, img_align_celeba.zip, a photo folder or 'lfw'")
    if any(isinstance(s, str) and not s.strip() for s in sources):
        # Path("") is the current folder: an empty argument (an unset shell variable) must not prepare it
        raise FaceDataError("an empty source name was given: name a CelebA folder, a zip of photos or 'lfw' "
                            "(write '.' for the current folder)")
    if limit is not None and limit < 1:
        raise FaceDataError(f"limit must be at least 1, got {limit}")
    return size, sources, max(1, int(workers or os.cpu_count() or 1))


def _first_of_each_id(found: list[Source]) -> tuple[dict[str, tuple[ImageRef, Source]], int]:
    """Each image id once (the first source wins) and how many duplicates were dropped."""
    chosen: dict[str, tuple[ImageRef, Source]] = {}
    for src in found:
        for ref in src.refs:
            chosen.setdefault(ref.image_id, (ref, src))
    duplicates = sum(len(s.refs) for s in found) - len(chosen)
    if duplicates:
        logger.info("ignored %d duplicate image names found in more than one source (first source wins)", duplicates)
    return chosen, duplicates


def _matching_cache(cache_dir: Path, fingerprint: str) -> FaceSet | None:
    """The cached faces in ``cache_dir`` when they were made from exactly these inputs, else None."""
    if not (cache_dir / META_FILE).is_file():
        return None
    try:
        cached = load_prepared(cache_dir)
    except FaceDataError as exc:
        logger.warning("cache in %s is unusable (%s); preparing again", cache_dir, exc)
        return None
    if cached.meta.get("fingerprint") != fingerprint:
        return None
    logger.info("reused cache %s (%d faces; inputs unchanged)", cache_dir, len(cached))
    cached.meta["reused"] = True
    return cached


def _assign_splits(found: list[Source], ids: list[str], seed: int
                   ) -> tuple[dict[str, str], dict[str, str], dict[str, int]]:
    """(split of every id, official partition, identities): the official partition where listed, else seeded."""
    wanted = set(ids)
    partition: dict[str, str] = {}
    identity: dict[str, int] = {}
    for src in found:
        if src.partition_file:
            partition = {**read_partition(src.partition_file, wanted), **partition}
        if src.identity_file:
            identity = {**read_identity(src.identity_file, wanted), **identity}
    unlisted = [i for i in ids if i not in partition]
    return {**seeded_split(unlisted, seed, identity), **partition}, partition, identity


def _decode_readable(refs: list[ImageRef], ids: list[str], size: int, workers: int, progress: Callable | None
                     ) -> tuple[np.ndarray, list[str], list[dict]]:
    """Decode every file; unreadable ones are dropped, logged and listed as ``{"image_id", "reason"}``."""
    images, failures = _decode_all(refs, size, workers, progress)
    bad = {i for i, _ in failures}
    skipped = [{"image_id": ids[i], "reason": reason} for i, reason in failures]
    if skipped:
        more = f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""
        logger.warning("skipped %d unreadable files: %s", len(skipped),
                       ", ".join(s["image_id"] for s in skipped[:10]) + more)
    keep = [i for i in range(len(ids)) if i not in bad]
    if not keep:
        raise FaceDataError(f"none of the {len(ids)} image files could be read (first: {skipped[0]['reason']})")
    return (images[keep] if bad else images), [ids[i] for i in keep], skipped


def _speed(n_images: int, seconds: float, workers: int) -> dict:
    return {"seconds": round(seconds, 3),
            "images_per_second": round(n_images / seconds, 1) if seconds > 0 else None,
            "workers": workers, "versions": {"pillow": Image.__version__, "numpy": np.__version__}}


def _source_summary(src: Source, kept_ids: list[str], chosen: dict[str, tuple[ImageRef, Source]]) -> dict:
    return {
        "path": str(src.path),
        "kind": src.kind,
        "images_found": len(src.refs),
        "images_used": sum(1 for i in kept_ids if chosen[i][1] is src),
        "partition_file": str(src.partition_file) if src.partition_file else None,
        "identity_file": str(src.identity_file) if src.identity_file else None,
    }
