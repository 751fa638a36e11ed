"""Score every denoising method on the same noisy test faces and write the result tables.

For each noise kind, each test face gets one noisy copy drawn from a seed derived from
(run seed, image id, noise kind, noise parameters); every method denoises that same copy and is
scored against the clean face (MAE, PSNR, SSIM). Writes per_image.csv, summary.csv,
timings.csv and meta.json, then prints a markdown results table for README.

Examples
--------
python scripts/evaluate.py --data .cache/faces/<prepared cache>           # full run -> checkpoints/tables
python scripts/evaluate.py --data <cache> --limit 20 --skip-slow --out /tmp/t  # smoke run
python scripts/evaluate.py --markdown-only                                # README table from shipped tables
python scripts/evaluate.py --data <cache> --reuse checkpoints/tables      # after retraining: keep the BM3D rows
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import logging
import os
import platform
import shlex
import signal
import sys
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from denoising.cli import positive_int  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "checkpoints" / "tables"
DEFAULT_CHECKPOINTS = REPO / "checkpoints"
N_BOOT = 2000


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Score every method (noisy input, classical filters, learned models) on the same seeded noisy "
        "test faces against the clean originals; write per_image.csv, summary.csv, timings.csv and meta.json and "
        "print a markdown table of mean MAE / PSNR / SSIM.",
    )
    parser.add_argument("--data", type=Path, default=None,
                        help="prepared face cache from scripts/prepare_data.py; its test split is scored as test set "
                             "'celeba_test' (required unless --markdown-only)")
    parser.add_argument("--lfw", action=argparse.BooleanOptionalAction, default=True,
                        help="also score scikit-image's 100 built-in LFW faces as test set 'lfw' (default: on)")
    parser.add_argument("--methods", type=_names, default=None,
                        help="comma-separated method names (default: every available one: noisy, the classical "
                             "filters, and the learned models that have checkpoints)")
    parser.add_argument("--noise", type=_names, default=None,
                        help="comma-separated noise kinds (default: all four: gaussian,poisson,salt_pepper,speckle)")
    parser.add_argument("--preset", default="post", help="noise preset in denoising.noise.PRESETS (default: post)")
    parser.add_argument("--checkpoints", type=Path, default=DEFAULT_CHECKPOINTS,
                        help="folder of learned-model checkpoints (default: checkpoints/)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="folder for the tables (default: checkpoints/tables/)")
    parser.add_argument("--seed", type=int, default=0,
                        help="run seed for the noisy copies and the bootstrap intervals (default: 0)")
    parser.add_argument("--slow-subset", type=positive_int, default=None,
                        help="score slow methods (BM3D) only on the first N faces of each test set in sorted image-id "
                             "order; the tables record N (default: every face)")
    parser.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1,
                        help=f"processes for slow methods (default: all {os.cpu_count()} cores)")
    parser.add_argument("--skip-slow", action="store_true", help="leave out slow methods (BM3D) entirely")
    parser.add_argument("--reuse", type=Path, default=None,
                        help="tables folder of an earlier run: rows of classical methods (not the learned ones, "
                             "whose weights may have changed) are copied from it when they cover exactly the same "
                             "faces, noise and seeds, instead of being recomputed; the result is the same table")
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="score only the first N faces of each test set in sorted image-id order (smoke runs)")
    parser.add_argument("--markdown-only", action="store_true",
                        help="evaluate nothing: read the tables already in --out and print the README results table")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--verbose", action="store_true", help="log each method's time and mean MAE")
    return parser


def _reusable_rows(folder: Path, methods: dict):
    """Per-image rows (with each call's seconds from timings.csv) of the non-learned methods in an earlier run."""
    from denoising.evaluation import load_tables

    earlier = load_tables(folder)
    keep = [name for name, m in methods.items() if m.family != "learned"]
    rows = earlier.per_image[earlier.per_image["method"].isin(keep)]
    if earlier.timings is None or earlier.timings.empty:
        raise ValueError(f"{folder} has no timings.csv, so reused rows would lose their seconds")
    seconds = earlier.timings[["test_set", "noise", "method", "seconds_per_image"]]
    rows = rows.merge(seconds, on=["test_set", "noise", "method"], how="left", validate="many_to_one")
    return rows.rename(columns={"seconds_per_image": "seconds"})


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _versions() -> dict[str, str]:
    import denoising

    out = {"denoising": denoising.__version__, "python": platform.python_version()}
    for dist in ("numpy", "pandas", "scipy", "scikit-image", "bm3d", "torch"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _first(faces, n: int | None):
    """The first ``n`` faces in sorted image-id order (all when ``n`` is None)."""
    from denoising.faces import FaceSet

    if n is None:
        return faces
    order = faces.table["image_id"].astype(str).argsort(kind="stable").to_numpy()[:n]
    return FaceSet(faces.images[order], faces.table.iloc[order].reset_index(drop=True), faces.meta, faces.cache_dir)


def markdown_only(args) -> int:
    from denoising.evaluation import load_tables, markdown_results

    try:
        tables = load_tables(args.out)
    except (FileNotFoundError, ValueError) as exc:
        return _fail(str(exc))
    names = {m["name"]: m["display_name"] for m in tables.meta.get("methods", []) if "display_name" in m}
    print(markdown_results(tables.summary, names=names), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s: %(message)s")
    if args.markdown_only:
        return markdown_only(args)
    if args.data is None:
        return _fail("--data is required: a prepared face cache from scripts/prepare_data.py "
                     "(or use --markdown-only to print the table of existing results)")
    if not args.data.is_dir():
        return _fail(f"data folder {args.data} does not exist; prepare faces with scripts/prepare_data.py first")

    from denoising.evaluation import evaluate, faces_summary, markdown_results, planned_work, write_tables
    from denoising.faces import FaceDataError, load_lfw_faces, load_prepared
    from denoising.noise import NOISE_KINDS, PRESETS
    from denoising.models.checkpoint import CheckpointError
    from denoising.registry import build_registry
    from denoising.stats import PSNR_CAP, summarize

    if args.preset not in PRESETS:
        return _fail(f"unknown preset {args.preset!r}; choose from {', '.join(PRESETS)}")
    kinds = args.noise or list(NOISE_KINDS)
    unknown = [k for k in kinds if k not in PRESETS[args.preset]]
    if unknown:
        return _fail(f"unknown noise kind(s) {', '.join(unknown)}; choose from {', '.join(NOISE_KINDS)}")
    specs = {k: PRESETS[args.preset][k] for k in kinds}

    registry = build_registry(args.checkpoints, include_slow=not args.skip_slow)
    if args.methods:
        missing = [m for m in args.methods if m not in registry]
        if missing:
            return _fail(f"method(s) {', '.join(missing)} unknown or unavailable (learned models need checkpoints in "
                         f"{args.checkpoints}{'; --skip-slow drops slow ones' if args.skip_slow else ''}); "
                         f"available: {', '.join(registry)}")
        methods = {name: m for name, m in registry.items() if name in args.methods}  # keep registry order
    else:
        methods = registry

    try:
        prepared = load_prepared(args.data)
    except FaceDataError as exc:
        return _fail(str(exc))
    test_sets = {"celeba_test": _first(prepared.subset("test"), args.limit)}
    if len(test_sets["celeba_test"]) == 0:
        return _fail(f"the prepared faces in {args.data} have no test split")
    if args.lfw:
        size = int(prepared.images.shape[1])
        test_sets["lfw"] = _first(load_lfw_faces(size), args.limit)

    reuse = None
    if args.reuse is not None:
        try:
            reuse = _reusable_rows(args.reuse, methods)
        except (FileNotFoundError, ValueError) as exc:
            return _fail(f"--reuse: {exc}")

    from tqdm import tqdm

    total = sum(planned_work(len(f), methods, specs, args.slow_subset) for f in test_sets.values())
    bar = None if args.quiet else tqdm(total=total, unit="face", desc="evaluating", file=sys.stderr,
                                       dynamic_ncols=True)

    def progress(n: int, desc: str) -> None:
        if bar is not None:
            bar.set_postfix_str(desc, refresh=False)
            bar.update(n)

    import pandas as pd

    def stop_on_sigterm(signum, frame):  # `kill` gets the same clean stop as Ctrl-C (worker pool included)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_on_sigterm)
    t0 = time.perf_counter()
    frames = []
    try:
        for name, faces in test_sets.items():
            frames.append(evaluate(faces, name, methods, specs, base_seed=args.seed, slow_subset=args.slow_subset,
                                   workers=args.workers, progress=progress, reuse=reuse))
    except KeyboardInterrupt:
        return _fail("interrupted; no tables written")
    except CheckpointError as exc:
        return _fail(f"{exc}; no tables written")
    finally:
        if bar is not None:
            bar.close()
    per_image = pd.concat(frames, ignore_index=True)
    summary = summarize(per_image, n_boot=N_BOOT, seed=args.seed)
    wall = time.perf_counter() - t0

    used_checkpoints = {}
    for name, method in methods.items():
        if method.family == "learned":
            for kind in specs:
                path = args.checkpoints / f"{name}-{kind}.safetensors"
                if method.available(kind) and path.is_file():
                    used_checkpoints[path.name] = _sha256(path)
    counts = per_image.groupby(["test_set", "method"], sort=False)["image_id"].nunique()
    meta = {
        "command": "python " + " ".join(shlex.quote(a) for a in ["scripts/evaluate.py", *(argv or sys.argv[1:])]),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seed": args.seed,
        "preset": args.preset,
        "noise": {k: s.to_json() for k, s in specs.items()},
        "size": int(prepared.images.shape[1]),
        "data": str(args.data),
        "test_sets": {name: faces_summary(faces) for name, faces in test_sets.items()},
        "limit": args.limit,
        "slow_subset": args.slow_subset,
        "reused_from": str(args.reuse) if args.reuse else None,
        "slow_subset_rule": "slow methods scored on the first N faces of each test set in sorted image_id order"
                            if args.slow_subset else "slow methods scored on every face",
        "methods": [{"name": n, "display_name": m.display_name, "family": m.family, "slow": m.slow,
                     "faces": {ts: int(counts.get((ts, n), 0)) for ts in test_sets}} for n, m in methods.items()],
        "checkpoints_sha256": used_checkpoints,
        "metrics": {"mae": "mean |clean - output| over pixels and channels, values in [0, 1]",
                    "psnr": f"10 log10(1 / MSE), data_range 1; inf for identical images, capped at {PSNR_CAP:g} dB "
                            "in summary statistics",
                    "ssim": "skimage-equivalent structural_similarity, channel_axis=-1, data_range=1, win_size=7"},
        "bootstrap": {"kind": "percentile, 95%", "n_boot": N_BOOT, "seed": args.seed},
        "noise_seed_rule": "noise_seed = derive_seed(seed, image_id, kind, noise_params); "
                           "noisy = NoiseSpec.from_json(noise_params).apply(clean[None], default_rng(noise_seed))[0]",
        "versions": _versions(),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "workers": args.workers},
        "wall_seconds": round(wall, 1),
    }
    paths = write_tables(per_image, summary, meta, args.out)
    print(f"scored {len(per_image):,} face-method pairs in {wall:.1f} s; wrote {', '.join(p.name for p in paths.values())} "
          f"to {args.out}", file=sys.stderr)
    names = {n: m.display_name for n, m in methods.items()}
    print(markdown_results(summary, names=names), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
