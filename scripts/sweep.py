"""Score every method at six strengths of every noise kind (the strength sweep) and write its tables.

For each test set, noise kind and strength in denoising.catalogue.SWEEP_STRENGTHS (the kind's own
parameter: Gaussian σ, Poisson peak, salt & pepper amount, speckle σ; the other parameters from the
preset), every method denoises noisy copies seeded exactly like the preset tables' (at the preset
strength the rows are the preset tables' rows). Slow (BM3D-based) methods score the first
--slow-subset faces by id away from the preset strength, every face at it. Writes
sweep_per_image.parquet, sweep_summary.csv, sweep_timings.csv and sweep_meta.json.

Examples
--------
# regenerate the shipped tables: the sweep first (at the preset strength it scores BM3D on every face), then the
# preset tables taking those rows from its Parquet, so summary.csv equals sweep_summary.csv there digit for digit
python scripts/sweep.py --data .cache/faces/<prepared cache> --slow-subset 100 --out checkpoints/tables --force
python scripts/evaluate.py --data .cache/faces/<prepared cache> --reuse checkpoints/tables --out checkpoints/tables --force
python scripts/sweep.py --data <cache>                                       # -> runs/sweep-<time>/
python scripts/sweep.py --data <cache> --limit 10 --noise gaussian --strengths gaussian=0.05,0.316   # smoke run
python scripts/sweep.py --data <cache> --reuse runs/sweep-<time>             # after retraining: keep classical rows
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from denoising.cli import comma_list, positive_int, progress_bar, sigterm_as_interrupt
from denoising.registry import DEFAULT_CHECKPOINT_DIR
from denoising.runs import RunError
from denoising.sweep import SLOW_SUBSET, SweepOptions, parse_strengths, run_sweep


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Score every method at every strength of every noise kind (denoising.catalogue.SWEEP_STRENGTHS) "
        "on the same seeded noisy test faces; write sweep_per_image.parquet, sweep_summary.csv, sweep_timings.csv "
        "and sweep_meta.json. Regenerate the shipped tables with: python scripts/sweep.py --data "
        ".cache/faces/<cache> --slow-subset 100 --out checkpoints/tables --force, then python scripts/evaluate.py "
        "--data .cache/faces/<cache> --reuse checkpoints/tables --out checkpoints/tables --force (the preset tables "
        "then take their classical rows, BM3D on every face included, from the sweep).",
    )
    parser.add_argument("--data", type=Path, default=None,
                        help="prepared face cache from scripts/prepare_data.py; its test split is scored as test set "
                             "'celeba_test' (required)")
    parser.add_argument("--lfw", action=argparse.BooleanOptionalAction, default=True,
                        help="also score scikit-image's 100 built-in LFW faces as test set 'lfw' (default: on)")
    parser.add_argument("--methods", type=comma_list, default=None,
                        help="comma-separated method names (default: every available one)")
    parser.add_argument("--noise", type=comma_list, default=None,
                        help="comma-separated noise kinds (default: all four, or those named by --strengths)")
    parser.add_argument("--strengths", action="append", default=None, metavar="KIND=V1,V2,...",
                        help="strengths of one noise kind in its own parameter (sigma, peak, amount, sigma), e.g. "
                             "gaussian=0.05,0.1; repeat for more kinds (default: the catalogue's six per kind); the "
                             "post's Gaussian sigma is sqrt(0.1) = 0.31622776601683794, so 0.316 is another strength")
    parser.add_argument("--preset", default="post",
                        help="noise preset giving each kind's other parameters and its preset strength (default: post)")
    parser.add_argument("--checkpoints", type=Path, default=DEFAULT_CHECKPOINT_DIR,
                        help="folder of learned-model checkpoints (default: checkpoints/)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the sweep tables (default: a new runs/sweep-<UTC time>/); a folder that "
                             "already holds sweep tables, such as the shipped checkpoints/tables, needs --force")
    parser.add_argument("--force", action="store_true", help="replace the sweep tables already in --out")
    parser.add_argument("--seed", type=int, default=0,
                        help="run seed for the noisy copies and the bootstrap intervals (default: 0, as the preset "
                             "tables)")
    parser.add_argument("--slow-subset", type=positive_int, default=SLOW_SUBSET,
                        help="score slow methods (BM3D-based) only on the first N faces of each test set in sorted "
                             f"image-id order at strengths other than the preset's (default: {SLOW_SUBSET})")
    parser.add_argument("--slow-subset-at-preset", action="store_true",
                        help="use the --slow-subset faces at the preset strength too (default: every face there, "
                             "like the preset tables)")
    parser.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1,
                        help=f"processes on this machine (default: all {os.cpu_count()} cores; 1 = this process only)")
    parser.add_argument("--dask-scheduler", default=None, metavar="ADDRESS",
                        help="run the work on the Dask distributed cluster whose scheduler is at ADDRESS (e.g. "
                             "tcp://scheduler-host:8786); same tables as a local run")
    parser.add_argument("--skip-slow", action="store_true", help="leave out slow methods (BM3D-based) entirely")
    parser.add_argument("--reuse", type=Path, default=None,
                        help="folder of an earlier sweep and/or preset tables (checkpoints/tables holds both): rows "
                             "of classical methods are copied from it where faces, noise parameters and seeds match "
                             "exactly, instead of being recomputed")
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="score only the first N faces of each test set in sorted image-id order (smoke runs)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--verbose", action="store_true", help="log each method's time and mean MAE")
    return parser


def _options(args: argparse.Namespace, argv: list[str]) -> SweepOptions:
    return SweepOptions(
        data=args.data, lfw=args.lfw, methods=args.methods, noise=args.noise, preset=args.preset,
        checkpoints=args.checkpoints, out=args.out, force=args.force, seed=args.seed, slow_subset=args.slow_subset,
        workers=args.workers, skip_slow=args.skip_slow, reuse=args.reuse, limit=args.limit,
        dask_scheduler=args.dask_scheduler, argv=argv, strengths=parse_strengths(args.strengths),
        slow_subset_at_preset=args.slow_subset_at_preset)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        with sigterm_as_interrupt():
            run = run_sweep(_options(args, argv), progress_bar("sweep", args.quiet))
    except RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; no tables written", file=sys.stderr)
        return 2
    settings = sum(len(kind["strengths"]) for kind in run.meta["noise"].values())
    print(f"scored {len(run.per_image):,} face-method pairs at {settings} noise settings in "
          f"{run.meta['wall_seconds']:.1f} s; wrote {', '.join(p.name for p in run.paths.values())} to {run.out_dir}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
