"""Compress once per (model, method): the compressed model of a run, stored in the results
directory and loaded by every other task's run of the same (model, method).

An artifact is keyed by a hash of what decides the compressed weights: the model spec and
the contents of the files it names, the method steps with their params, seed, device and
the versions of harness, torch and the plugins (with their code's hash) — plus the task
spec and its files when a step calibrates or trains on the task's data. It
holds the model (``torch.save`` of the whole module) and the compression's own figures
and step infos. A model that cannot be pickled, or written (a full disk), is compressed in
each run, and the row says why. Artifacts are pickles written by this harness:
``torch.load`` runs code from them, so a results directory is trusted like the code that
wrote it (docs/security.md). ``harness clean`` removes them.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import suppress
from pathlib import Path
from typing import Any

from harness.spec import RunSpec

TASK_DEPENDENT = {"calibration", "training"}


def artifact_key(spec: RunSpec, methods: list[Any], task_plugin: str, steps: list[Any] | None = None) -> str:
    """The hash of what decides the compressed model (``methods``: the step classes;
    ``task_plugin``: the plugin of the run's task kind, whose version counts only when a
    step uses the task's data; ``steps``: the steps that made it, default all)."""
    steps = spec.steps if steps is None else steps
    depends_on_task = any(TASK_DEPENDENT & set(m.needs) for m in methods)
    plugins = {name: version for name, version in spec.versions.get("plugins", {}).items()
               if depends_on_task or name != task_plugin}
    files = dict(spec.versions.get("files") or {})
    if not depends_on_task:
        files.pop("task", None)  # the task's data decides nothing here: one artifact for every task
    identity: dict[str, Any] = {"model": spec.model.to_dict(), "steps": [s.to_dict() for s in steps],
                                "seed": spec.seed, "device": spec.device,
                                "versions": spec.versions | {"plugins": plugins, "files": files}}
    if depends_on_task:
        identity["task"] = spec.task.to_dict()
    blob = json.dumps(identity, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


class ArtifactStore:
    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def paths(self, key: str) -> tuple[Path, Path]:
        return self.directory / f"{key}.pt", self.directory / f"{key}.json"

    def load(self, key: str, device: str) -> tuple[Any, dict[str, Any]] | None:
        """(model on ``device``, meta) of ``key``, or None when there is none (or it cannot be read)."""
        import torch

        model_path, meta_path = self.paths(key)
        if not (model_path.is_file() and meta_path.is_file()):
            return None
        try:
            meta = json.loads(meta_path.read_text())
            return torch.load(model_path, weights_only=False, map_location=device).eval(), meta
        except Exception:  # a partial or foreign file: compress again, and overwrite it
            return None

    def save(self, key: str, model: Any, meta: dict[str, Any]) -> str | None:
        """Store ``model``; None when stored, else why it could not be (the run goes on)."""
        import torch

        model_path, meta_path = self.paths(key)
        tmp = model_path.with_name(f"{model_path.name}.tmp{os.getpid()}")
        meta_tmp = meta_path.with_name(f"{meta_path.name}.tmp{os.getpid()}")
        stripped = _strip_instance_reprs(model)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as file:  # our own file: a full disk is an OSError, not torch's opaque RuntimeError
                torch.save(model, file)
            meta_tmp.write_text(json.dumps(meta, default=str))
        except OSError as exc:  # the disk, not the model: ENOSPC, EDQUOT, EROFS, EACCES ...
            for path in (tmp, meta_tmp):
                with suppress(OSError):
                    path.unlink(missing_ok=True)
            why = exc.strerror or str(exc)
            return f"{why[:1].lower()}{why[1:]} at {self.directory}"
        except Exception as exc:
            tmp.unlink(missing_ok=True)
            return f"the compressed model cannot be pickled ({type(exc).__name__}: {str(exc)[:120]})"
        finally:
            for module, value in stripped:
                module.extra_repr = value
        os.replace(tmp, model_path)
        os.replace(meta_tmp, meta_path)  # the meta last: a model without meta is never loaded
        return None

    def clean(self) -> int:
        """Remove every artifact; return how many files were removed."""
        removed = 0
        timings = self.directory / "timings"  # shared speed figures (harness.measure.shared_timing)
        for folder in (timings, self.directory):
            if folder.is_dir():
                for path in folder.iterdir():
                    if path.is_file():
                        path.unlink()
                        removed += 1
        if timings.is_dir() and not any(timings.iterdir()):
            timings.rmdir()
        return removed


def _strip_instance_reprs(model: Any) -> list[tuple[Any, Any]]:
    """torchao sets ``extra_repr`` on quantized Linear instances as a functools.partial,
    which pickle refuses; it only affects ``repr``. Taken off for the save, put back after."""
    stripped = []
    for module in model.modules():
        if "extra_repr" in vars(module):
            stripped.append((module, vars(module).pop("extra_repr")))
    return stripped
