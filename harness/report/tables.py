"""The leaderboard of a published report, as cells: per (suite, model, task) the runs
that finished ok, ranked, each cell with its marker and the provenance behind it. A
curated table (what decides: the verdict, the primary metric, speed, size, energy) fits
a laptop's page; every column with data is one click away. Rendered by :mod:`.html` and
:mod:`.markdown`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.report.columns import BY_KEY, COLUMNS, Column, cell, marker, numbers, with_data
from harness.report.schemes import SchemeTable, scheme_table
from harness.report.summary import cell_title
from harness.result import RunResult

# Shown in a group's heading instead of as columns; failed runs have their own section.
HEADING = {"suite", "model", "task", "status"}
# The curated table, in order; "quality" stands for the task's primary metric. Columns
# without data are left out, so each task kind gets its own (LMs: TTFT and decode).
CURATED = ["rank", "method", "compile", "holds", "quality", "retained", "p_value", "samples_needed", "speedup",
           "speedup_vs_eager", "latency_ms_p50", "ttft_ms", "decode_tokens_per_s", "throughput_sps", "size_mb",
           "size_ratio", "energy_j_per_1k"]
# Left out of the curated table on a narrow screen (CSS), never from the full one.
NARROW_HIDDEN = {"latency_ms_p50", "throughput_sps", "energy_j_per_1k", "p_value"}
# Published headers of the curated table (the full label is the header's tooltip).
HEADERS = {"rank": "#", "method": "Method", "compile": "compile", "holds": "Holds", "retained": "Kept ×",
           "p_value": "p", "samples_needed": "n to decide", "speedup": "Speed-up ×", "speedup_vs_eager": "vs eager ×",
           "latency_ms_p50": "p50 ms", "throughput_sps": "Samples/s", "size_mb": "Size MB", "size_ratio": "Smaller ×",
           "energy_j_per_1k": "J / 1k inf.", "accuracy": "Accuracy %", "top1_agreement": "Top-1 agr. %",
           "perplexity": "Perplexity", "cosine_mean": "Cosine", "ttft_ms": "TTFT ms", "decode_tokens_per_s": "Tokens/s"}


@dataclass
class Cell:
    text: str
    mark: str = ""  # "*", "~", "!", "^", "?" or ""
    title: str = ""  # the provenance, for a marked cell
    flag: str = ""  # "good" | "bad" | "maybe": holds quality, does not, inconclusive


@dataclass
class Table:
    columns: list[Column]
    rows: list[list[Cell]]

    def header(self, column: Column) -> str:
        return HEADERS.get(column.key, column.label)


@dataclass
class Group:
    suite: str
    model: str
    task: str
    columns: list[Column]  # the curated table
    rows: list[list[Cell]]
    frame: Any  # this group's rows of the leaderboard frame (every status)
    gate: float | None
    full: Table | None = None  # every column with data
    schemes: SchemeTable | None = None  # methods named <scheme>:<toolkit>, side by side

    def title(self, with_suite: bool) -> str:
        return (f"{self.suite} · " if with_suite else "") + f"{self.model} · {self.task}"

    @property
    def table(self) -> Table:
        return Table(self.columns, self.rows)


def quality_key(frame: Any) -> str | None:
    """The frame column of these rows' primary metric."""
    names = frame["quality_metric"].dropna().unique() if "quality_metric" in frame.columns else []
    if len(names) and names[0] in BY_KEY and names[0] in frame.columns:
        return str(names[0])
    from harness.report.plots import quality_of

    found = quality_of(frame)
    return found[0] if found else None


def _table(records: list[dict[str, Any]], columns: list[Column], by_run: dict[str, RunResult]) -> list[list[Cell]]:
    texts = {c.key: numbers([r.get(c.key) for r in records]) for c in columns if c.kind == "num"}
    rows = []
    for i, record in enumerate(records):
        result = by_run.get(record["run_id"])
        row = []
        for column in columns:
            text = texts[column.key][i] if column.key in texts else cell(column, record)
            mark = marker(column, record) if text else ""
            flag = {"yes": "good", "no": "bad", "inconclusive": "maybe"}.get(text, "") if column.key == "holds" else ""
            row.append(Cell(text, mark, cell_title(column.key, mark, result) if mark else "", flag))
        rows.append(row)
    return rows


def groups(frame: Any, by_run: dict[str, RunResult]) -> list[Group]:
    """The leaderboard split per (suite, model, task), in the frame's order."""
    out = []
    for (suite, model, task), part in frame.groupby(["suite", "model", "task"], sort=False):
        ok = part[part["status"] == "ok"]
        present = [c for c in with_data(ok, COLUMNS) if c.key not in HEADING]
        quality = quality_key(ok)
        keys = [quality if k == "quality" else k for k in CURATED]
        curated = [BY_KEY[k] for k in keys if k in {c.key for c in present}]
        runs = [by_run.get(r) for r in part["run_id"]]
        gate = next((r.accuracy_gate for r in runs if r is not None), None)
        records = ok.to_dict("records")
        full = Table(present, _table(records, present, by_run))
        out.append(Group(str(suite), str(model), str(task), curated, _table(records, curated, by_run), part, gate,
                         full, scheme_table(part)))
    return out
