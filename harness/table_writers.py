"""The built-in leaderboard writers: CSV (every column) and a GitHub-flavoured Markdown
table. Registered by :mod:`harness.defaults`, looked up like any reporter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.api import Reporter


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


class CsvWriter(Reporter):
    name = "csv"
    description = "the leaderboard with every column, as CSV"
    suffix = "csv"

    def write(self, frame: Any, path: Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False)


class MarkdownWriter(Reporter):
    name = "markdown"
    description = "the leaderboard as a GitHub-flavoured Markdown table"
    suffix = "md"

    def write(self, frame: Any, path: Path) -> None:
        """Empty cells where a figure was not measured."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        columns = [c for c in frame.columns if c not in ("run_id", "suite", "error")]
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for record in frame[columns].to_dict("records"):
            cells = []
            for column in columns:
                value = record[column]
                cells.append("" if _blank(value) else f"{value:.4g}" if isinstance(value, float) else str(value))
            lines.append("| " + " | ".join(cells) + " |")
        Path(path).write_text("\n".join(lines) + "\n")
