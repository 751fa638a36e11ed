"""Summarise, export or archive the blind test's vote database (the dashboard's Blind test page).

The database is ``$DENOISING_VOTES_DIR/votes.sqlite3`` (by default ``runs/votes/votes.sqlite3``,
git-ignored); ``--db`` names another file. Errors (no database, a damaged or locked one) are one line
on stderr and exit status 2.

Examples
--------
python scripts/votes.py summary                       # votes, sessions, strengths and the verdict
python scripts/votes.py export --out votes.csv        # every vote as CSV
python scripts/votes.py archive --clear               # a dated copy beside it, then start empty
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from denoising import votes
from denoising.catalogue import display_name, plural
from denoising.cli import make_parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Summarise, export or archive the blind test's vote database.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", type=Path, default=None,
                        help=f"the vote database (default: ${votes.VOTES_ENV}/{votes.DB_NAME}, else "
                             f"runs/votes/{votes.DB_NAME})")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{summary,export,archive}")
    commands.add_parser("summary", parents=[common], help="print the number of votes, each method's strength per "
                        "question (Bradley-Terry, 95 %% intervals) and the verdict on the post's claim",
                        description="Print the votes' counts, strengths and the verdict on the post's claim.")
    export = commands.add_parser("export", parents=[common], help="write every vote to a CSV file",
                                 description="Write every vote, oldest first, to a CSV file.")
    export.add_argument("--out", type=Path, required=True, help="the CSV file to write (replaced if it exists; missing folders above it are made)")
    archive = commands.add_parser(
        "archive", parents=[common], help="copy the database to votes-<UTC time>.sqlite3 (SQLite's online backup)",
        description="Copy the database with SQLite's online backup (safe while people vote) to "
                    "votes-<UTC time>.sqlite3, and with --clear remove the copied votes from the live one.")
    archive.add_argument("--to", type=Path, default=None,
                         help="folder for the copy (default: the folder of the database)")
    archive.add_argument("--clear", action="store_true",
                         help="afterwards delete the copied votes from the live database (votes cast meanwhile "
                              "stay), so a new study starts empty")
    return parser


def summary_text(path: Path) -> str:
    """The summary printed by ``summary``: counts, then per question the strengths and the verdict."""
    known = votes.read_votes(path, missing_ok=False)
    lines = [f"{path}: {plural(len(known), 'vote')} from {plural(known['session_id'].nunique(), 'browser session')}"]
    if not known.empty:
        lines[0] += f", {known['time_utc'].min()} to {known['time_utc'].max()}"
    for kind, text in votes.QUESTIONS.items():
        part = known[known["question"] == kind]
        lines += ["", f"{text} ({plural(len(part), 'vote')}, {int((part['answer'] == 'tie').sum())} can't tell)"]
        fit = votes.bradley_terry(part)
        if fit is not None:
            lines.append(f"  strength: log-odds of being picked over {display_name(fit.reference)}")
            rows = zip(fit.methods, fit.coef, *fit.intervals(), strict=True)
            for method, coef, low, high in sorted(rows, key=lambda r: -r[1]):
                lines.append(f"  {display_name(method):<42} {coef:+6.2f}  [{low:+6.2f}, {high:+6.2f}]")
        sentence, status = votes.verdict(known, kind)
        lines.append(f"  {sentence or status}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    path = args.db or votes.database_path()
    try:
        if args.command == "summary":
            print(summary_text(path))
        elif args.command == "export":
            known = votes.read_votes(path, missing_ok=False)
            made = make_parent(args.out)
            known.to_csv(args.out, index=False)
            print(f"wrote {plural(len(known), 'vote')} to {args.out}" + (f" ({made})" if made else ""))
        else:
            copy, n = votes.archive(path, args.to, clear=args.clear)
            print(f"copied {n} votes to {copy}" + (" and removed them from the live database" if args.clear else ""))
    except (votes.VoteStoreError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
