"""The built-in leaderboard writers: CSV (every column) and a GitHub-flavoured Markdown
table. Registered by :mod:`harness.defaults`, looked up like any reporter.

Names come from suites and plugins, so cells are made inert: a CSV text cell that a
spreadsheet would read as a formula gets a leading ``'`` (OWASP's advice), and Markdown
cells have ``|`` escaped, HTML escaped and line breaks flattened."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from harness.api import Reporter


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def csv_cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula, prefixed with ``'``; numbers
    (negative ones too) as they are. A bare CR would end the CSV row: it becomes LF."""
    if not isinstance(value, str):
        return value
    if value.startswith(("=", "+", "-", "@", "\t", "\r")) and not _number(value):
        value = "'" + value
    return value.replace("\r\n", "\n").replace("\r", "\n")


def markdown_cell(text: str) -> str:
    """Text that stays inside its table cell and shows as text, not HTML."""
    flat = " ".join(text.splitlines())
    return html.escape(flat, quote=False).replace("|", "\\|")


class CsvWriter(Reporter):
    name = "csv"
    description = "the leaderboard with every column, as CSV"
    suffix = "csv"

    def write(self, frame: Any, path: Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        safe = frame.copy()
        for column in safe.columns:
            if safe[column].dtype.kind == "O" or str(safe[column].dtype) in ("str", "string"):
                safe[column] = safe[column].map(csv_cell)
        safe.columns = [csv_cell(str(column)) for column in safe.columns]
        safe.to_csv(path, index=False)


class MarkdownWriter(Reporter):
    name = "markdown"
    description = "the leaderboard as a GitHub-flavoured Markdown table"
    suffix = "md"

    def write(self, frame: Any, path: Path) -> None:
        """Empty cells where a figure was not measured."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        columns = [c for c in frame.columns if c not in ("run_id", "suite", "error")]
        lines = ["| " + " | ".join(markdown_cell(str(c)) for c in columns) + " |", "|" + "---|" * len(columns)]
        for record in frame[columns].to_dict("records"):
            cells = []
            for column in columns:
                value = record[column]
                text = "" if _blank(value) else f"{value:.4g}" if isinstance(value, float) else str(value)
                cells.append(markdown_cell(text))
            lines.append("| " + " | ".join(cells) + " |")
        Path(path).write_text("\n".join(lines) + "\n")
