"""Prepare face images once: crop, resize, split and cache them for training, evaluation and the dashboard.

Examples
--------
python scripts/prepare_data.py ../shared/data/celeba
python scripts/prepare_data.py ../shared/data/celeba ../shared/data/celeba-half --size 64
python scripts/prepare_data.py lfw --out .cache/faces/lfw-28
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from denoising.cli import positive_int
from denoising.faces import FaceDataError, default_cache_dir, prepare_faces


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Crop, resize and split face photos into a cache (uint8 images.npy + faces.csv split table "
        "+ meta.json) that training, evaluation and the dashboard share. Re-running with unchanged inputs "
        "reuses the cache.",
    )
    parser.add_argument(
        "sources",
        nargs="+",
        help="one or more CelebA folders (holding img_align_celeba/ or img_align_celeba.zip, with "
        "list_eval_partition.txt / identity_CelebA.txt when present), img_align_celeba.zip files, folders "
        "or zips of any face photos, or the word 'lfw' for scikit-image's 100 built-in faces. Duplicate "
        "file names: the first source wins.",
    )
    parser.add_argument("--size", type=positive_int, default=28, help="output side in pixels (default: 28; 64 also works)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="cache folder to write (default: .cache/faces/<sources>-<size>px-<hash> in the repository)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the 75%%/25%% train/test split (validation = 15%% of train) used for images that "
        "CelebA's official partition file does not cover (default: 0)",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=os.cpu_count() or 1,
        help=f"decoding processes (default: all {os.cpu_count()} cores)",
    )
    parser.add_argument("--force", action="store_true", help="decode again even when a matching cache exists")
    parser.add_argument(
        "--limit", type=positive_int, default=None, help="keep only the first N images (by file name), for quick tries"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    from tqdm import tqdm

    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if args.quiet:
            return
        if bar is None:
            bar = tqdm(total=total, unit="img", desc="decoding", file=sys.stderr, dynamic_ncols=True)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()  # closed before the summary/warnings so they do not interleave with the bar

    out = args.out or default_cache_dir(args.sources, args.size, args.seed, args.limit)
    t0 = time.perf_counter()
    try:
        faces = prepare_faces(
            args.sources, size=args.size, cache_dir=out, seed=args.seed, workers=args.workers,
            progress=progress, force=args.force, limit=args.limit,
        )
    except FaceDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    finally:
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - t0
    counts = ", ".join(f"{k} {v:,}" for k, v in faces.split_counts().items())
    meta = faces.meta
    if meta.get("reused"):
        print(f"reused cache {out}: {len(faces):,} faces ({counts}) at {meta['size']}x{meta['size']}, loaded in {wall:.1f} s")
        return 0
    skipped = len(meta.get("skipped", []))
    rate = meta["images_per_second"]
    print(
        f"prepared {len(faces):,} faces ({counts}) at {args.size}x{args.size} in {wall:.1f} s "
        f"({rate:,.0f} images/s decoding, {args.workers} workers)"
        + (f", skipped {skipped} unreadable (listed in meta.json; first: {meta['skipped'][0]['reason']})"
           if skipped else "")
        + f" -> {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
