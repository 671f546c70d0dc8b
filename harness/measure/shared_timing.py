"""One speed per (model, method, device, compile mode, input shape): speed is a property of
the compressed model and its inputs, not of the task. The first run of a (model, method)
times it and keeps the figures; every other task's run with the same inputs reuses them,
so a model's speedup cannot differ between its tasks.

Kept in ``results/<suite>/artifacts/timings/<key>.json``; the key hashes the compressed
model's identity (the artifact key), the ``[measure]`` settings and the SHA-256 of every
timed input batch. Runs started at the same time (``--jobs``) may each time it; the last
to finish is kept.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.measure.figures import Figures


@dataclass(frozen=True)
class SharedTiming:
    directory: Path
    model_key: str  # the artifact key: what decides the compressed weights
    run_id: str
    task: str

    def key(self, config: Any, fingerprints: dict[str, str]) -> str:
        settings = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
        blob = json.dumps({"model": self.model_key, "measure": settings, "inputs": fingerprints},
                          sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:20]

    def load(self, key: str) -> Figures | None:
        """The figures another run timed (provenance saying so), or None."""
        try:
            record = json.loads((self.directory / f"{key}.json").read_text())
            metrics, provenance = record["metrics"], record["provenance"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        note = f"reused: timed once by run {record.get('run_id')} (task {record.get('task')}) on the same inputs"
        return Figures(dict(metrics), {k: v if v.startswith("absent") else f"{v}; {note}"
                                       for k, v in provenance.items()})

    def save(self, key: str, figures: Figures) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{key}.json"
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        tmp.write_text(json.dumps({"run_id": self.run_id, "task": self.task, "metrics": figures.metrics,
                                   "provenance": figures.provenance}, default=str))
        os.replace(tmp, path)
