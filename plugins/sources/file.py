"""The ``file`` model source: a ``torch.export`` archive (``.pt2``), a TorchScript
archive, or a full-model checkpoint.

Unpickling runs code, so a file that would be unpickled with more than torch's
``weights_only`` allow-list is refused unless the model sets ``unsafe_pickle = true``;
``check_ref`` finds this (and empty or foreign files) statically, before anything runs.
See docs/security.md.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickletools
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import hookimpl
from harness.api import ModelSource

EXPECTED = "a torch.export archive, TorchScript archive or torch.save checkpoint"
OPT_IN = "set options = { unsafe_pickle = true } if you trust it"


@dataclass(frozen=True)
class FileOptions:
    # torch.load runs arbitrary code from pickles; only for files you trust.
    unsafe_pickle: bool = False


def _resolve(ref: str, suite_dir: Path) -> Path:
    path = Path(ref).expanduser()
    return path if path.is_absolute() else suite_dir / path


def _members(archive: zipfile.ZipFile) -> dict[str, str]:
    """Member names without the archive's root folder → full names."""
    return {name.split("/", 1)[1] if "/" in name else name: name for name in archive.namelist()}


def _kind(path: Path) -> str:
    """``export``, ``torchscript``, ``checkpoint`` (zip or legacy), ``empty`` or ``unknown``."""
    if path.stat().st_size == 0:
        return "empty"
    try:
        with zipfile.ZipFile(path) as archive:
            names = _members(archive)
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


# --- what a pickle would call, read without running it --------------------------------

_STRINGS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING",
            "SHORT_BINSTRING"}


def _pickle_globals(data: bytes, count: int = 1) -> set[str]:
    """The ``module.name`` of every global the first ``count`` pickles in ``data`` refer
    to (``?`` where it cannot be told)."""
    found: set[str] = set()
    stream = io.BytesIO(data)
    for _ in range(count):
        if stream.tell() < len(data):
            found |= _globals_of_one(stream)
    return found


def _globals_of_one(stream: io.BytesIO) -> set[str]:
    found: set[str] = set()
    memo: dict[int, Any] = {}
    stack: list[Any] = []  # only strings matter: they name STACK_GLOBAL's module and name
    try:
        for op, arg, _ in pickletools.genops(stream):
            if op.name in ("GLOBAL", "INST"):
                found.add(".".join(str(arg).split(" ", 1)))
            elif op.name == "STACK_GLOBAL":
                module, name = (stack[-2:] if len(stack) >= 2 else [None, None])
                found.add(f"{module}.{name}" if isinstance(module, str) and isinstance(name, str) else "?")
            elif op.name.startswith("EXT"):
                found.add("?")  # the copyreg extension registry
            if op.name in _STRINGS:
                stack.append(arg)
            elif op.name == "MEMOIZE" and stack:
                memo[len(memo)] = stack[-1]
            elif op.name in ("PUT", "BINPUT", "LONG_BINPUT") and stack:
                memo[int(arg)] = stack[-1]
            elif op.name in ("GET", "BINGET", "LONG_BINGET"):
                stack.append(memo.get(int(arg)))
            elif op.name not in ("FRAME", "PROTO"):
                stack.append(None)
    except Exception:  # noqa: BLE001 - a pickle we cannot read is one we will not run
        found.add("?")
    return found


def _unsafe_in_pickle(data: bytes, count: int = 1) -> list[str]:
    """Globals a pickle refers to outside torch's ``weights_only`` allow-list, the
    model's own classes first (not torch's, not builtins)."""
    from torch import _weights_only_unpickler as allowed

    safe = set(allowed._get_allowed_globals()) | set(allowed._get_user_allowed_globals())
    return sorted(_pickle_globals(data, count) - safe,
                  key=lambda name: (name.startswith(("torch.", "__builtin__.", "builtins.")), name))


def _unsafe_in_payload(data: bytes) -> list[str]:
    """The same for a ``torch.save`` payload (a zip of pickles, or a legacy pickle)."""
    if not data:
        return []  # torch reads an empty payload as {}
    if not data.startswith(b"PK"):  # torch's legacy format: five pickles, then storages
        return _unsafe_in_pickle(data, count=5)
    found: list[str] = []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for name in archive.namelist():
                if name.endswith(".pkl"):
                    found += [n for n in _unsafe_in_pickle(archive.read(name)) if n not in found]
    except (zipfile.BadZipFile, OSError):
        return ["?"]
    return found


def _shown(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _checkpoint_problem(path: Path) -> str | None:
    with zipfile.ZipFile(path) as archive:
        unsafe = _unsafe_in_pickle(archive.read(_members(archive)["data.pkl"]))
    return f"model file '{path}' holds a pickled model class ({_shown(unsafe)}); {OPT_IN}" if unsafe else None


# --- a torch.export archive: which members torch.export.load would unpickle -----------

def _export_risks(archive: zipfile.ZipFile) -> Iterator[tuple[str, str, str]]:
    """(what, member, how torch reads it) for every member torch.export.load (torch 2.13)
    would read with more than ``weights_only``: torch.load payloads whose pickles refer to
    globals off the allow-list (sample inputs, ``use_pickle`` weights and constants, legacy
    files), plain-pickled ``opaque_obj_`` constants, AOTInductor shared libraries."""
    names = _members(archive)
    scanned: set[str] = set()
    aoti = False
    for short, full in names.items():
        base = short.rsplit("/", 1)[-1]
        if short.startswith("data/aotinductor/"):
            if not aoti:
                aoti = True
                yield "AOTInductor-compiled code", short, "load as a shared library"
        elif short.startswith("data/constants/") and base.startswith("opaque_obj_"):
            yield "a pickled Python object", short, "unpickle with plain pickle"
        elif short.endswith("_config.json") and short.startswith(("data/weights/", "data/constants/")):
            folder = short.rsplit("/", 1)[0]
            for meta in json.loads(archive.read(full)).get("config", {}).values():
                member = f"{folder}/{meta.get('path_name')}"
                # opaque_obj_ is refused above; custom_obj_ (TorchBind) goes to TorchScript's unpickler
                pickled_object = str(meta.get("path_name")).startswith(("opaque_obj_", "custom_obj_"))
                if meta.get("use_pickle") and member in names and member not in scanned and not pickled_object:
                    scanned.add(member)
                    yield from _payload_risk(archive, member, names[member])
    for short, full in names.items():  # sample inputs, legacy weights and formats
        if short not in scanned and (short.endswith((".pt", ".pkl")) or short.startswith("serialized_")) \
                and short != "serialized_exported_program.json":
            yield from _payload_risk(archive, short, full)


def _payload_risk(archive: zipfile.ZipFile, short: str, full: str) -> Iterator[tuple[str, str, str]]:
    unsafe = _unsafe_in_payload(archive.read(full))
    if unsafe:
        yield f"a pickle calling {_shown(unsafe)}", short, "unpickle unrestricted"


def _export_problem(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            risks = list(_export_risks(archive))
    except (zipfile.BadZipFile, OSError, ValueError, AttributeError) as exc:
        return f"model file '{path}' is not a readable torch.export archive ({exc})"
    if not risks:
        return None
    what, member, how = risks[0]
    more = f" (and {len(risks) - 1} more such member(s))" if len(risks) > 1 else ""
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
            return None
        if kind == "export":
            return _export_problem(path)
        if kind == "checkpoint" and zipfile.is_zipfile(path):
            return _checkpoint_problem(path)
        return None

    def load(self, ref: str, options: FileOptions, ctx: Any) -> Any:
        import pickle

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
        try:
            model = torch.load(path, map_location=ctx.device, weights_only=not options.unsafe_pickle)
        except pickle.UnpicklingError as exc:
            raise ValueError(
                f"model file '{path}' holds pickled code that torch.load(weights_only=True) refuses "
                f"({str(exc).splitlines()[0]}); if you trust it, set options = {{ unsafe_pickle = true }} on this model"
            ) from None
        if isinstance(model, dict):
            raise ValueError(
                f"model file '{path}' holds a state_dict, not a model; save it with torch.save(model) "
                "or torch.jit.save(torch.jit.script(model))"
            )
        if not isinstance(model, torch.nn.Module):
            raise ValueError(f"model file '{path}' holds a {type(model).__name__}, not a torch.nn.Module")
        return model.eval()


@hookimpl
def harness_register_models(register):
    register(FileSource)
