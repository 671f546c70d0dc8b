"""The append-only results file: ``results/<suite>/results.jsonl``.

Only the driver writes it: one JSON object per line, flushed and fsynced. A line that
does not parse (a torn write after a power cut or ``kill -9``) is skipped on read, and
the run it belonged to is redone.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from harness.result import RunResult


def results_file(results_dir: Path) -> Path:
    return Path(results_dir) / "results.jsonl"


def append_result(path: Path, result: RunResult) -> None:
    """Append one row durably; a torn previous last line is closed off first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(result.to_row(), sort_keys=True, default=str)
    with open(path, "ab+") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() > 0:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                fh.write(b"\n")
        fh.write(line.encode() + b"\n")
        fh.flush()
        os.fsync(fh.fileno())


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
            if isinstance(row, dict) and "run_id" in row:
                rows.append(RunResult.from_row(row))
    return rows


def finished_ids(results: list[RunResult]) -> set[str]:
    """run_ids that need not run again (ok or skipped); failures are retried."""
    return {r.run_id for r in results if r.finished}
