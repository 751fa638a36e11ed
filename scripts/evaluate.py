"""Score every denoising method on the same noisy test faces and write the result tables.

For each noise kind, each test face gets one noisy copy drawn from a seed derived from
(run seed, image id, noise kind, noise parameters); every method denoises that same copy and is
scored against the clean face (MAE, PSNR, SSIM). Writes per_image.csv, summary.csv,
timings.csv and meta.json, then prints a markdown results table for README.

Examples
--------
python scripts/evaluate.py --data .cache/faces/<prepared cache>            # full run -> runs/evaluate-<time>/
python scripts/evaluate.py --data <cache> --out checkpoints/tables --force  # replace the shipped tables
python scripts/evaluate.py --data <cache> --limit 20 --skip-slow           # smoke run
python scripts/evaluate.py --data <cache> --dask-scheduler tcp://scheduler-host:8786   # on a Dask cluster
python scripts/evaluate.py --markdown-only                                 # README table from shipped tables
python scripts/evaluate.py --data <cache> --reuse checkpoints/tables       # after retraining: keep the BM3D rows
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from denoising.cli import comma_list, positive_int, progress_bar, sigterm_as_interrupt
from denoising.registry import DEFAULT_CHECKPOINT_DIR
from denoising.runs import SHIPPED_TABLES, EvaluationOptions, RunError, run_evaluation, tables_markdown


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
    parser.add_argument("--methods", type=comma_list, default=None,
                        help="comma-separated method names (default: every available one: noisy, the classical "
                             "filters, and the learned models that have checkpoints)")
    parser.add_argument("--noise", type=comma_list, default=None,
                        help="comma-separated noise kinds (default: all four: gaussian,poisson,salt_pepper,speckle)")
    parser.add_argument("--preset", default="post", help="noise preset in denoising.noise.PRESETS (default: post)")
    parser.add_argument("--checkpoints", type=Path, default=DEFAULT_CHECKPOINT_DIR,
                        help="folder of learned-model checkpoints (default: checkpoints/)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the tables (default: a new runs/evaluate-<UTC time>/); a folder that already "
                             "holds tables, such as the shipped checkpoints/tables, needs --force")
    parser.add_argument("--force", action="store_true", help="replace the tables already in --out")
    parser.add_argument("--seed", type=int, default=0,
                        help="run seed for the noisy copies and the bootstrap intervals (default: 0)")
    parser.add_argument("--slow-subset", type=positive_int, default=None,
                        help="score slow methods (BM3D) only on the first N faces of each test set in sorted image-id "
                             "order; the tables record N (default: every face)")
    parser.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1,
                        help=f"processes on this machine, every method included (default: all {os.cpu_count()} "
                             "cores; 1 = this process only)")
    parser.add_argument("--dask-scheduler", default=None, metavar="ADDRESS",
                        help="run the work on the Dask distributed cluster whose scheduler is at ADDRESS (e.g. "
                             "tcp://scheduler-host:8786) instead of local processes; workers need this package installed "
                             "and the checkpoints at the same path; same tables as a local run")
    parser.add_argument("--skip-slow", action="store_true", help="leave out slow methods (BM3D) entirely")
    parser.add_argument("--reuse", type=Path, default=None,
                        help="tables folder of an earlier run: rows of classical methods (not the learned ones, "
                             "whose weights may have changed) are copied from it when they cover exactly the same "
                             "faces, noise and seeds, instead of being recomputed; the result is the same table")
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="score only the first N faces of each test set in sorted image-id order (smoke runs)")
    parser.add_argument("--markdown-only", action="store_true",
                        help="evaluate nothing: read the tables in --tables and print the README results table")
    parser.add_argument("--tables", type=Path, default=SHIPPED_TABLES,
                        help="tables folder that --markdown-only reads (default: the shipped checkpoints/tables)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--verbose", action="store_true", help="log each method's time and mean MAE")
    return parser


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _options(args: argparse.Namespace, argv: list[str]) -> EvaluationOptions:
    return EvaluationOptions(
        data=args.data, lfw=args.lfw, methods=args.methods, noise=args.noise, preset=args.preset,
        checkpoints=args.checkpoints, out=args.out, force=args.force, seed=args.seed, slow_subset=args.slow_subset,
        workers=args.workers, skip_slow=args.skip_slow, reuse=args.reuse, limit=args.limit,
        dask_scheduler=args.dask_scheduler, argv=argv)


def _markdown_only(args: argparse.Namespace) -> int:
    """Print README's table from --tables; any file that cannot make it is one plain line and exit status 2."""
    if args.out is not None:
        return _fail("--markdown-only writes nothing; give the folder it reads with --tables, not --out")
    try:
        text = tables_markdown(args.tables)
    except RunError:
        raise
    except (OSError, ValueError, KeyError, TypeError, OverflowError) as exc:  # a file no check foresaw
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        return _fail(f"cannot make the results table from {args.tables}: {type(exc).__name__}: {first}")
    print(text, end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        if args.markdown_only:
            return _markdown_only(args)
        with sigterm_as_interrupt():
            run = run_evaluation(_options(args, argv), progress_bar("evaluating", args.quiet))
    except RunError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted; no tables written")
    print(f"scored {len(run.per_image):,} face-method pairs in {run.meta['wall_seconds']:.1f} s; wrote "
          f"{', '.join(p.name for p in run.paths.values())} to {run.out_dir}", file=sys.stderr)
    print(run.markdown, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
