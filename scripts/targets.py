"""Print the targets of issue #10 (met or missed, with numbers) from the result tables, or write them into README.

Reads summary.csv and sweep_per_image.parquet of a tables folder (the shipped checkpoints/tables by
default) and prints the markdown of README's "Targets (issue #10)" section, or replaces the text
between README's <!-- targets:start --> and <!-- targets:end --> lines with it.

Examples
--------
python scripts/targets.py                              # print the targets of the shipped tables
python scripts/targets.py --write-readme README.md     # regenerate README's targets section
python scripts/targets.py --tables runs/sweep-<time>   # a folder holding both tables
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from denoising.runs import SHIPPED_TABLES
from denoising.targets import README_MARKERS, load_target_tables, replace_section, targets_markdown


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Measure the targets of issue #10 from the result tables (summary.csv and "
        "sweep_per_image.parquet) and print them as markdown, or write them into README.")
    parser.add_argument("--tables", type=Path, default=SHIPPED_TABLES,
                        help="folder holding summary.csv and sweep_per_image.parquet (default: the shipped "
                             "checkpoints/tables)")
    parser.add_argument("--write-readme", type=Path, default=None, metavar="PATH",
                        help=f"replace the text between the lines {README_MARKERS[0]} and {README_MARKERS[1]} of "
                             "this file (e.g. README.md) instead of printing")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        tables = load_target_tables(args.tables)
        markdown = targets_markdown(tables.summary, tables.per_image)
        if args.write_readme is None:
            print(markdown, end="")
            return 0
        text = args.write_readme.read_text(encoding="utf-8")
        args.write_readme.write_text(replace_section(text, markdown), encoding="utf-8")
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote the targets into {args.write_readme}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
