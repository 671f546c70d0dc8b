"""The append-only results file: ``results/<suite>/results.jsonl``.

Only the driver writes it: one JSON object per line, flushed and fsynced. A line that
does not parse (a torn write after a power cut or ``kill -9``) is skipped on read, and
the run it belonged to is redone.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from harness.result import RunResult


def results_file(results_dir: Path) -> Path:
    return Path(results_dir) / "results.jsonl"


def append_result(path: Path, result: RunResult) -> None:
    """Append one row durably (a one-off :class:`~harness.results_store.ResultsStore`)."""
    from harness.results_store import ResultsStore

    with ResultsStore(path, min_free_bytes=0) as store:
        store.append(result)


def read_results(path: Path, warn: bool = True) -> list[RunResult]:
    """Every complete row, in file order; unreadable lines are skipped."""
    path = Path(path)
    if path.is_dir():
        path = results_file(path)
    if not path.exists():
        return []
    rows = []
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except ValueError:
                if warn:
                    print(f"{path}:{number}: skipping an incomplete line (torn write); its run will be redone",
                          file=sys.stderr)
                continue
            try:
                rows.append(RunResult.from_row(row))
                rows[-1].results_dir = path.parent
            except ValueError as exc:
                if warn:
                    print(f"{path}:{number}: skipping a row of the wrong shape ({exc})", file=sys.stderr)
    return rows


def finished_ids(results: list[RunResult]) -> set[str]:
    """run_ids that need not run again (ok or skipped); failures are retried."""
    return {r.run_id for r in results if r.finished}
