"""The curated leaderboard of a published report, as cells: per (suite, model, task)
the runs that finished ok, ranked, in the columns that have data, each cell with its
marker and the provenance behind it. Rendered by :mod:`.html` and :mod:`.markdown`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.report.columns import COLUMNS, Column, cell, marker, with_data
from harness.report.summary import cell_title
from harness.result import RunResult

# Shown in a group's heading instead of as columns; failed runs have their own section.
HEADING = {"suite", "model", "task", "status"}


@dataclass
class Cell:
    text: str
    mark: str = ""  # "*", "~", "!" or ""
    title: str = ""  # the provenance, for a marked cell
    flag: str = ""  # "good" | "bad": holds accuracy or not


@dataclass
class Group:
    suite: str
    model: str
    task: str
    columns: list[Column]
    rows: list[list[Cell]]
    frame: Any  # this group's rows of the leaderboard frame (every status)
    gate: float | None

    def title(self, with_suite: bool) -> str:
        return (f"{self.suite} · " if with_suite else "") + f"{self.model} · {self.task}"


def _cells(record: dict[str, Any], columns: list[Column], result: RunResult | None) -> list[Cell]:
    out = []
    for column in columns:
        text = cell(column, record)
        mark = marker(column, record) if text else ""
        flag = ""
        if column.key == "holds" and text:
            flag = {"yes": "good", "no": "bad"}.get(text, "")
        out.append(Cell(text, mark, cell_title(column.key, mark, result) if mark else "", flag))
    return out


def groups(frame: Any, by_run: dict[str, RunResult]) -> list[Group]:
    """The leaderboard split per (suite, model, task), in the frame's order."""
    out = []
    for (suite, model, task), part in frame.groupby(["suite", "model", "task"], sort=False):
        ok = part[part["status"] == "ok"]
        columns = [c for c in with_data(ok, COLUMNS) if c.key not in HEADING]
        runs = [by_run.get(r) for r in part["run_id"]]
        gate = next((r.accuracy_gate for r in runs if r is not None), None)
        rows = [_cells(record, columns, by_run.get(record["run_id"])) for record in ok.to_dict("records")]
        out.append(Group(str(suite), str(model), str(task), columns, rows, part, gate))
    return out
