"""The ``harness`` command. Heavy modules are imported inside each command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness import __version__

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness", description="Benchmark and compare model-compression methods.")
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    bench = sub.add_parser("bench", help="run every method on every model of a suite")
    bench.add_argument("suite", type=Path, help="suite .toml file")
    bench.add_argument("--jobs", "-j", type=int, default=1, help="runs at once (CPU threads are split)")
    bench.add_argument("--executor", default="local", help="local (default) or ray")
    bench.add_argument("--force", action="store_true", help="redo runs that already have results")
    bench.add_argument("--only", metavar="GLOB", help="only runs whose model/method/task matches")
    bench.add_argument("--dry-run", action="store_true", help="show what would run, run nothing")
    bench.add_argument("--results", type=Path, default=Path("results"), help="results root (default: results)")

    validate = sub.add_parser("validate", help="check a suite and print its plan")
    validate.add_argument("suite", type=Path)

    sub.add_parser("plugins", help="list plugins with version, hooks and status")
    sub.add_parser("methods", help="list compression methods and their params")

    board = sub.add_parser("leaderboard", help="show the leaderboard of a results directory")
    board.add_argument("results_dir", type=Path)
    board.add_argument("--csv", type=Path, help="also write the table as CSV")
    board.add_argument("--markdown", type=Path, help="also write the table as Markdown")
    board.add_argument("--hide-estimated", action="store_true", help="leave estimated figures empty")

    report = sub.add_parser("report", help="write leaderboard.csv/.md and report.html")
    report.add_argument("results_dir", type=Path)
    report.add_argument("-o", "--output", type=Path, required=True, help="output directory")

    compare = sub.add_parser("compare", help="compare two results directories run by run")
    compare.add_argument("dir_a", type=Path)
    compare.add_argument("dir_b", type=Path)
    compare.add_argument("--csv", type=Path, help="also write the comparison as CSV")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return EXIT_USAGE
    from harness import commands

    try:
        return getattr(commands, f"cmd_{args.command}")(args)
    except KeyboardInterrupt:
        print("interrupted; finished runs are saved, run the same command to go on", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
