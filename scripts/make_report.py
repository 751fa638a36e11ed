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
import os
import sys
from pathlib import Path

import numpy as np

from dashboard.report import display_names, example_faces, faces_note, findings_report
from dashboard.tables import checkpoint_dir, read_tables
from denoising.runs import SHIPPED_TABLES, new_run_dir

REPORT_NAME = "report.html"


class ReportError(Exception):
    """Something the user can fix; the message is printed as one line."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Write the findings (what was compared, the results in words, tables, charts, example faces) "
                    "as one HTML file that opens offline, the same as the dashboard's Findings page download.")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE",
                        help=f"the HTML file to write (default: a new run folder, runs/report-<time>/{REPORT_NAME}); "
                             "an existing file is kept unless --force")
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


def load(tables: Path, test_set: str | None):
    """The tables and the test set to report, or a :class:`ReportError` saying what is wrong."""
    if not tables.is_dir():
        raise ReportError(f"no tables folder at {tables} (pass --tables DIR, a folder holding summary.csv)")
    data = read_tables(tables)
    if data.error:
        raise ReportError(f"the tables in {tables} cannot be used: {data.error}")
    if data.empty or data.summary.empty:
        raise ReportError(f"no result tables (summary.csv, per_image.csv) in {tables}; make them with "
                          "scripts/evaluate.py")
    sets = data.test_sets()
    chosen = test_set or sets[0]
    if chosen not in sets:
        raise ReportError(f"unknown test set {chosen!r}; the tables have: {', '.join(sets)}")
    return data, chosen


def face_bank(data, test_set: str):
    """(faces, the test set they belong to): CelebA from DENOISING_CELEBA_DIR when set, else the built-in LFW faces."""
    from dashboard import facesource

    size = facesource.meta_face_size(data.meta)
    folder = os.environ.get("DENOISING_CELEBA_DIR", "").strip()
    if test_set != "lfw" and folder:
        ids = list(dict.fromkeys(data.per_image.loc[data.per_image["test_set"] == test_set, "image_id"].astype(str)))
        try:
            return facesource.celeba_bank(Path(folder), ids, size, facesource.dashboard_cache_dir()), test_set
        except (facesource.FaceSourceError, OSError) as error:
            print(f"note: {error} Using the built-in LFW faces for the examples.", file=sys.stderr)
    if test_set == "lfw" or "lfw" in data.test_sets():
        return facesource.lfw_bank(size), "lfw"
    return None, test_set


def registry_outputs(checkpoints: Path | None):
    """A runner for :func:`dashboard.report.example_faces`: each method from the registry, once per batch."""
    from denoising.registry import build_registry

    methods = build_registry(checkpoints or checkpoint_dir())

    def outputs(noisy: np.ndarray, spec, wanted: list[str]) -> dict[str, np.ndarray]:
        done = {}
        for name in wanted:
            method = methods.get(name)
            if method is None or not method.available(spec.kind):
                continue
            try:
                done[name] = np.asarray(method(noisy, spec), np.float32)
            except Exception as error:  # noqa: BLE001 - a broken checkpoint leaves one picture out, not the report
                print(f"note: {name} left out of the examples: {error}", file=sys.stderr)
        return done

    return outputs


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = args.out or new_run_dir("report") / REPORT_NAME
    try:
        if out.exists() and not args.force:
            raise ReportError(f"{out} already exists; pass --force to replace it, or choose another --out")
        if args.faces < 0:
            raise ReportError("--faces must be 0 or more")
        data, test_set = load(args.tables, args.test_set)
        bank, face_set = face_bank(data, test_set) if args.faces else (None, test_set)
        examples = example_faces(data.per_image, data.summary, bank, face_set, test_set,
                                 registry_outputs(args.checkpoints), display_names(data.meta), args.faces) if bank else []
        report = findings_report(data, test_set, examples, faces_note(test_set, face_set))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report, encoding="utf-8")
    except (ReportError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - a reader of this tool gets one line, not a traceback
        print(f"error: the report could not be made ({type(error).__name__}: {error})", file=sys.stderr)
        return 2
    print(f"wrote {out} ({len(report.encode('utf-8')) / 1e6:.2f} MB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
