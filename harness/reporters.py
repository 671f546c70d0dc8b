"""Writers for the leaderboard frame: CSV and Markdown."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_csv(frame: Any, path: Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def write_markdown(frame: Any, path: Path) -> None:
    """A GitHub-flavoured table; empty cells where a figure was not measured."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    columns = [c for c in frame.columns if c not in ("run_id", "suite", "error")]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for record in frame[columns].to_dict("records"):
        cells = []
        for column in columns:
            value = record[column]
            if value is None or (isinstance(value, float) and value != value):
                cells.append("")
            elif isinstance(value, float):
                cells.append(f"{value:.4g}")
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    Path(path).write_text("\n".join(lines) + "\n")
