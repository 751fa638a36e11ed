"""Write the findings as one HTML file that opens offline: the same report as the Findings page's button.

Reads a tables folder (the shipped ``checkpoints/tables`` by default), draws the example faces from
their stored noise seeds (the test set's own photos where they are configured, else the built-in
LFW faces) and writes one self-contained file: no network, no machine paths, prints on A4.

Examples
--------
python scripts/make_report.py --out report.html                  # the shipped tables, CelebA numbers
python scripts/make_report.py --out report.html --test-set lfw   # the LFW numbers and faces
python scripts/make_report.py --tables runs/evaluate-<time>      # a run folder; writes runs/report-<time>/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dashboard.report import ReportError, report_from_folder
from denoising.cli import make_parent
from denoising.runs import SHIPPED_TABLES, new_run_dir

REPORT_NAME = "report.html"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Write the findings (what was compared, the results in words, tables, charts, example faces) "
                    "as one HTML file that opens offline, the same as the dashboard's Findings page download.")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE",
                        help=f"the HTML file to write (default: a new run folder, runs/report-<time>/{REPORT_NAME}); "
                             "an existing file is kept unless --force; missing folders above it are made")
    parser.add_argument("--force", action="store_true", help="replace the --out file when it exists")
    parser.add_argument("--tables", type=Path, default=SHIPPED_TABLES, metavar="DIR",
                        help="folder holding summary.csv, per_image.csv and meta.json (default: the shipped "
                             "checkpoints/tables)")
    parser.add_argument("--test-set", default=None, metavar="NAME",
                        help="which test set's numbers to report, e.g. celeba_test or lfw (default: CelebA's when "
                             "the tables have it, else the first)")
    parser.add_argument("--checkpoints", type=Path, default=None, metavar="DIR",
                        help="trained networks for the example faces (default: DENOISING_CHECKPOINT_DIR or "
                             "checkpoints/)")
    parser.add_argument("--faces", type=int, default=2, metavar="N",
                        help="example faces per kind of noise (default 2; 0 leaves the examples out)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = args.out or new_run_dir("report") / REPORT_NAME
    try:
        if out.exists() and not args.force:
            raise ReportError(f"{out} already exists; pass --force to replace it, or choose another --out")
        if args.faces < 0:
            raise ReportError("--faces must be 0 or more")
        report = report_from_folder(args.tables, args.test_set, args.checkpoints, args.faces)
        made = make_parent(out)
        out.write_text(report, encoding="utf-8")
    except (ReportError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - a reader of this tool gets one line, not a traceback
        print(f"error: the report could not be made ({type(error).__name__}: {error})", file=sys.stderr)
        return 2
    print(f"wrote {out} ({len(report.encode('utf-8')) / 1e6:.2f} MB" + (f"; {made})" if made else ")"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
