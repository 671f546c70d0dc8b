"""The ``harness`` command. Heavy modules are imported inside each command."""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from harness import __version__
from harness.errors import EXIT_FAILED_RUNS, EXIT_RESULTS_LOST, EXIT_USAGE, UsageError
from harness.plural import plural


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
    _json_flag(validate)

    _json_flag(sub.add_parser("plugins", help="list plugins with version, hooks and status"))
    _json_flag(sub.add_parser("methods", help="list compression methods and their params"))

    results_help = "a results root (results/: every suite in it) or one suite's results (results/<suite>)"
    board = sub.add_parser("leaderboard", help="show the leaderboard of a results directory")
    board.add_argument("results_dir", type=Path, help=results_help)
    board.add_argument("--suite", metavar="NAME", help="only this suite of a results root")
    board.add_argument("--csv", type=Path, help="also write the table as CSV")
    board.add_argument("--markdown", type=Path, help="also write the table as Markdown")
    board.add_argument("--hide-estimated", action="store_true", help="leave estimated figures empty")
    board.add_argument("--columns", metavar="A,B,C", help="show these columns (keys such as "
                       "model,method,accuracy,speedup,latency_ms_p50, or their headers)")
    board.add_argument("--wide", action="store_true", help="show every column, however wide")
    _json_flag(board)

    report = sub.add_parser("report", help="write report.html, report.md (with SVG plots) and leaderboard.csv/.md")
    report.add_argument("results_dir", type=Path, help=results_help)
    report.add_argument("-o", "--output", type=Path, required=True, help="output directory")
    report.add_argument("--suite", metavar="NAME", help="only this suite of a results root")

    compare = sub.add_parser("compare", help="compare two results directories run by run, with 95%% intervals")
    compare.add_argument("dir_a", type=Path, help=results_help)
    compare.add_argument("dir_b", type=Path, help=results_help)
    compare.add_argument("--suite", metavar="NAME", help="only this suite of results roots")
    compare.add_argument("--csv", type=Path, help="also write the comparison as CSV")

    clean = sub.add_parser("clean", help="remove the stored compressed models (artifacts) of results")
    clean.add_argument("results_dir", type=Path, help=results_help)
    return parser


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON to stdout (nothing else there)")


def _print_json(data: object) -> None:
    import json

    print(json.dumps(data, indent=1, default=str))


def _bench(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from harness import commands, display
    from harness.bench import BenchOptions, results_dir

    plugins, suite = commands.load(args.suite)
    display.suite_warnings(args.suite, suite.warnings)
    opts = BenchOptions(args.jobs, args.executor, args.force, args.only, args.results)
    if args.dry_run:
        display.dry_run(commands.bench_plan(plugins, suite, opts))
        return 0
    with _terminate_like_interrupt():
        produced = commands.bench(plugins, suite, opts, display.console(), display.ProgressLog)
    directory = results_dir(suite, args.results)
    display.leaderboard(commands.leaderboard(directory))
    bad = [r for r in produced if r.status in ("failed", "timeout")]
    if bad:
        display.console(stderr=True).print(f"[red]{plural(len(bad), 'run')} failed[/]; errors are in "
                                           f"{escape(str(directory))}/results.jsonl and worker output in "
                                           f"{escape(str(directory))}/logs/")
        return EXIT_FAILED_RUNS
    return 0


@contextlib.contextmanager
def _terminate_like_interrupt() -> Iterator[None]:
    """SIGTERM (kill, a CI timeout) stops a suite like Ctrl-C: workers are killed, rows kept."""
    import signal

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach only the main thread
        return
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _validate(args: argparse.Namespace) -> int:
    from harness import commands, display

    plan = commands.validate(args.suite)
    display.suite_warnings(args.suite, plan.suite.warnings)
    if args.json:
        config = plan.suite.config
        _print_json({"path": str(plan.path), "suite": config.name, "description": config.description,
                     "runs": [run.to_dict() for run in plan.runs]})
        return 0
    display.plan(plan)
    return 0


def _plugins(args: argparse.Namespace) -> int:
    from harness import display
    from harness.plugins import load_plugins
    from harness.requirements import plugin_problems

    plugins = load_plugins()
    missing = plugin_problems(plugins)  # usable, but not all it provides: an extra is not installed
    if args.json:
        import dataclasses

        _print_json([dataclasses.asdict(p) | {"missing": missing.get(p.name, [])} for p in plugins.plugins])
    else:
        display.console().print(display.plugins_table(plugins, missing))
    return 1 if plugins.broken() else 0


def _methods(args: argparse.Namespace) -> int:
    from harness import commands, display

    rows = commands.methods()
    if args.json:
        import dataclasses

        _print_json([dataclasses.asdict(r) for r in rows])
    else:
        display.console().print(display.methods_table(rows))
    return 0


def _leaderboard(args: argparse.Namespace) -> int:
    from harness import commands, display

    columns = [c for c in (args.columns or "").split(",") if c.strip()]
    board = commands.leaderboard(args.results_dir, args.csv, args.markdown, args.hide_estimated, args.suite, columns)
    if args.json:
        import json

        frame = board.frame if board.columns is None else board.frame[[c.key for c in board.columns]]
        _print_json(json.loads(frame.to_json(orient="records")))
        display.written(board.written, stderr=True)
    else:
        display.leaderboard(board, wide=args.wide)
    return 0


def _report(args: argparse.Namespace) -> int:
    from harness import commands, display

    display.written(commands.report(args.results_dir, args.output, args.suite))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from harness import commands
    from harness.display_compare import comparison

    comparison(commands.compare(args.dir_a, args.dir_b, args.csv, args.suite))
    return 0


def _clean(args: argparse.Namespace) -> int:
    from harness import commands, display

    for directory, removed in commands.clean(args.results_dir):
        display.console().print(f"{directory}/artifacts: removed {plural(removed, 'file')}", markup=False)
    return 0


COMMANDS = {"bench": _bench, "validate": _validate, "plugins": _plugins, "methods": _methods,
            "leaderboard": _leaderboard, "report": _report, "compare": _compare, "clean": _clean}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return EXIT_USAGE
    from harness import display
    from harness.results_store import ResultsLost
    from harness.suite import SuiteError

    try:
        return COMMANDS[args.command](args)
    except UsageError as exc:
        return display.error(str(exc))
    except SuiteError as exc:
        return display.suite_problems(exc.path, exc.problems)
    except ResultsLost as exc:
        return display.error(str(exc), EXIT_RESULTS_LOST)
    except KeyboardInterrupt:
        print("interrupted; finished runs are saved, run the same command to go on", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
