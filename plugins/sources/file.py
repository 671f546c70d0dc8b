"""The ``file`` model source: a ``torch.export`` archive (``.pt2``), a TorchScript
archive, or a full-model checkpoint.

Unpickling runs code, so a file that would be unpickled with more than torch's
``weights_only`` allow-list is refused unless the model sets ``unsafe_pickle = true``;
``check_ref`` finds this (and empty or foreign files) statically, before anything runs.
See docs/security.md. A pickled model's own code is found through ``python_path`` and
``main_module`` (:mod:`harness_plugins.sources.user_code`); options: docs/data.md.
"""

from __future__ import annotations

import contextlib
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import hookimpl
from harness.api import ModelSource
from harness.toolkit import OMIT_AT_DEFAULT, plural
from harness_plugins.sources.pickle_scan import export_risks, members, shown, unsafe_in_pickle

EXPECTED = "a torch.export archive, TorchScript archive or torch.save checkpoint"
OPT_IN = "set options = { unsafe_pickle = true } if you trust it"


@dataclass(frozen=True)
class FileOptions:
    # torch.load runs arbitrary code from pickles; only for files you trust.
    unsafe_pickle: bool = False
    # Folders (relative to the suite) put on sys.path before unpickling: where the model's code is.
    # Added after runs were stored: at their defaults they stay out of a run's identity.
    python_path: tuple[str, ...] = field(default=(), metadata=OMIT_AT_DEFAULT)
    # The module (on python_path) to read classes pickled as __main__.X from: a script that saved its own model.
    main_module: str | None = field(default=None, metadata=OMIT_AT_DEFAULT)

    def __post_init__(self) -> None:
        if (self.python_path or self.main_module) and not self.unsafe_pickle:
            raise ValueError("python_path and main_module are for unpickling a model's code: set unsafe_pickle = true "
                             "too, if you trust the file")
        name = self.main_module
        if name is not None and (name.endswith(".py") or not all(p.isidentifier() for p in name.split("."))):
            raise ValueError(f"main_module '{self.main_module}' must be a module name (e.g. \"train\" for train.py)")


def _resolve(ref: str, suite_dir: Path) -> Path:
    path = Path(ref).expanduser()
    return path if path.is_absolute() else suite_dir / path


def _kind(path: Path) -> str:
    """``export``, ``torchscript``, ``checkpoint`` (zip or legacy), ``empty`` or ``unknown``."""
    if path.stat().st_size == 0:
        return "empty"
    try:
        with zipfile.ZipFile(path) as archive:
            names = members(archive)
    except (zipfile.BadZipFile, OSError):
        with open(path, "rb") as handle:
            return "checkpoint" if handle.read(1) == b"\x80" else "unknown"  # a legacy torch.save pickle
    if "archive_format" in names or "serialized_exported_program.json" in names:
        return "export"
    if "constants.pkl" in names or any(name.startswith("code/") for name in names):
        return "torchscript"
    return "checkpoint" if "data.pkl" in names else "unknown"


def _not_a_model(path: Path, kind: str) -> str:
    if kind == "empty":
        return f"model file '{path}' is empty; expected {EXPECTED}"
    with open(path, "rb") as handle:
        head = handle.read(16)
    return f"model file '{path}' is not {EXPECTED} (first bytes: {head!r})"


def _checkpoint_problem(path: Path) -> str | None:
    with zipfile.ZipFile(path) as archive:
        unsafe = unsafe_in_pickle(archive.read(members(archive)["data.pkl"]))
    return f"model file '{path}' holds a pickled model class ({shown(unsafe)}); {OPT_IN}" if unsafe else None


def _export_problem(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            risks = list(export_risks(archive))
    except (zipfile.BadZipFile, OSError, ValueError, AttributeError) as exc:
        return f"model file '{path}' is not a readable torch.export archive ({exc})"
    if not risks:
        return None
    what, member, how = risks[0]
    more = f" (and {plural(len(risks) - 1, 'more such member')})" if len(risks) > 1 else ""
    return (f"model file '{path}' holds {what} ({member}{more}) that torch.export.load would {how}, "
            f"which can run any code; {OPT_IN}")


@contextlib.contextmanager
def _weights_only_everywhere() -> Iterator[None]:
    """Every torch.load inside, even one asking for weights_only=False, reads weights only."""
    saved = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
        else:
            os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = saved


class FileSource(ModelSource):
    name = "file"
    description = ("a torch.export .pt2 archive, a TorchScript file or a torch.save(model) checkpoint "
                   "(path relative to the suite)")
    Options = FileOptions

    def check_ref(self, ref: str, options: Any, suite_dir: Path) -> str | None:
        path = _resolve(ref, suite_dir)
        if not path.is_file():
            return f"model file '{path}' does not exist"
        kind = _kind(path)
        if kind in ("empty", "unknown"):
            return _not_a_model(path, kind)
        if getattr(options, "unsafe_pickle", False):
            from harness_plugins.sources.user_code import code_problem, python_path_problems

            problems = python_path_problems(options, suite_dir)
            if problems:
                return problems[0]
            return code_problem(path, options, suite_dir) if kind == "checkpoint" else None
        if kind == "export":
            return _export_problem(path)
        if kind == "checkpoint" and zipfile.is_zipfile(path):
            return _checkpoint_problem(path)
        return None

    def load(self, ref: str, options: FileOptions, ctx: Any) -> Any:
        import torch

        path = _resolve(ref, ctx.suite_dir)
        kind = _kind(path)
        if kind in ("empty", "unknown"):
            raise ValueError(_not_a_model(path, kind))
        if kind == "export":  # torch.export.save: TorchScript's successor
            if options.unsafe_pickle:
                return torch.export.load(str(path)).module().to(ctx.device)
            problem = _export_problem(path)
            if problem:
                raise ValueError(problem)
            with _weights_only_everywhere():
                return torch.export.load(str(path)).module().to(ctx.device)
        if kind == "torchscript":  # its unpickler resolves TorchScript types only, no Python
            return torch.jit.load(str(path), map_location=ctx.device).eval()
        model = _load_checkpoint(path, options, ctx)
        if isinstance(model, dict):
            raise ValueError(
                f"model file '{path}' holds a state_dict, not a model; save it with torch.save(model) "
                "or torch.jit.save(torch.jit.script(model))"
            )
        if not isinstance(model, torch.nn.Module):
            raise ValueError(f"model file '{path}' holds a {type(model).__name__}, not a torch.nn.Module")
        return model.eval()


def _load_checkpoint(path: Path, options: FileOptions, ctx: Any) -> Any:
    """``torch.load`` of a ``torch.save`` file: weights only, or (``unsafe_pickle``) with the
    model's code from ``python_path`` and ``main_module``."""
    import pickle

    import torch

    if options.unsafe_pickle:
        from harness_plugins.sources import user_code

        user_code.add_python_path(options, ctx.suite_dir)
        problem = user_code.code_problem(path, options, ctx.suite_dir)
        if problem:
            raise ValueError(problem)
        remap = user_code.remapping_pickle(options.main_module) if options.main_module else None
        return torch.load(path, map_location=ctx.device, weights_only=False, pickle_module=remap)
    try:
        return torch.load(path, map_location=ctx.device, weights_only=True)
    except pickle.UnpicklingError as exc:
            raise ValueError(
                f"model file '{path}' holds pickled code that torch.load(weights_only=True) refuses "
                f"({str(exc).splitlines()[0]}); if you trust it, set options = {{ unsafe_pickle = true }} on this model"
            ) from None


@hookimpl
def harness_register_models(register):
    register(FileSource)
