"""One run's result, as the worker and the executor's failure path produce it and as
the results file, leaderboard, report and compare read it.

A row on disk (``results.jsonl``) is :meth:`RunResult.to_row`; rows written by any
earlier harness read back through :meth:`RunResult.from_row` (missing fields default).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.spec import RunSpec

FINISHED = ("ok", "skipped")  # statuses that need not run again; failed/timeout are retried
STATUSES = ("ok", "skipped", "failed", "timeout")


@dataclass
class RunResult:
    run_id: str
    suite: str
    model: str
    method: str
    task: str
    status: str  # ok | skipped | failed | timeout
    device: str = ""
    started_at: str = ""
    duration_s: float = 0.0
    error: str | None = None  # why a run did not finish ok: one line, then details
    steps: list[dict[str, Any]] = field(default_factory=list)  # use, params, apply_s, info
    metrics: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, str] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict)  # the RunSpec as JSON
    # Per-sample outcomes of the primary metric (harness.outcomes): carried from the
    # worker to the driver, which stores them in samples/<run_id>.json, not in the row.
    samples: dict[str, Any] | None = None
    # Where a row read from disk came from (its suite's results directory): not stored.
    results_dir: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, spec: RunSpec, status: str, error: str | None = None, *,
           started: datetime | None = None, duration_s: float = 0.0) -> RunResult:
        """A result for ``spec``; ``started`` defaults to now."""
        started = started or datetime.now(timezone.utc)
        return cls(run_id=spec.run_id, suite=spec.suite, model=spec.model.name, method=spec.method,
                   task=spec.task.name, status=status, device=spec.device, started_at=started.isoformat(),
                   duration_s=duration_s, error=error, steps=[s.to_dict() for s in spec.steps],
                   spec=spec.to_dict())

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def first_error_line(self) -> str:
        return self.error.splitlines()[0] if self.error else ""

    @property
    def accuracy_gate(self) -> float:
        return float(self.spec.get("accuracy_gate", 0.99))

    def to_row(self, samples: bool = True) -> dict[str, Any]:
        """The row as JSON values; ``samples=False``: as results.jsonl stores it."""
        row = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "results_dir"}
        for key in ("error", "samples"):
            if row[key] is None or key == "samples" and not samples:
                del row[key]
        return row

    @classmethod
    def from_row(cls, row: Any) -> RunResult:
        """A result from a row as stored; ValueError (saying which field) when the row
        does not have the shape of one."""
        if not isinstance(row, dict):
            raise ValueError(f"a row is a JSON object, got {type(row).__name__}")
        values = {k: v for k, v in row.items() if k in SHAPE and v is not None}
        for key in ("run_id", "suite", "model", "method", "task", "status"):
            if key not in values:
                raise ValueError(f"'{key}' is missing")
        for key, value in values.items():
            if not isinstance(value, SHAPE[key]) or isinstance(value, bool) and SHAPE[key] is not bool:
                raise ValueError(f"'{key}' should be {_type_names(SHAPE[key])}, got {type(value).__name__}")
        if values["status"] not in STATUSES:
            raise ValueError(f"'status' {values['status']!r} is not one of {', '.join(STATUSES)}")
        return cls(**values)


def _type_names(types: Any) -> str:
    names = {str: "a string", int: "a number", float: "a number", dict: "an object", list: "a list"}
    return " or ".join(dict.fromkeys(names[t] for t in (types if isinstance(types, tuple) else (types,))))


# field -> the JSON types a stored row may hold there
SHAPE: dict[str, Any] = {
    "run_id": str, "suite": str, "model": str, "method": str, "task": str, "status": str,
    "device": str, "started_at": str, "duration_s": (int, float), "error": str, "steps": list,
    "metrics": dict, "provenance": dict, "env": dict, "spec": dict, "samples": dict,
}
